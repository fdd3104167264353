"""The scaling curve: efficiency E(N) = throughput(N) / (N x throughput(1))."""


def efficiencies(steps):
    """steps: [{replicas, requests_per_s, ...}] -> same dicts with `efficiency` (1.0 for the base step)."""
    if not steps:
        return []
    base = next((s for s in steps if s["replicas"] == min(x["replicas"] for x in steps)), steps[0])
    per_replica = base["requests_per_s"] / base["replicas"] if base["replicas"] else 0
    out = []
    for s in steps:
        e = s["requests_per_s"] / (s["replicas"] * per_replica) if per_replica and s["replicas"] else 0.0
        out.append({**s, "efficiency": round(e, 3)})
    return out


def curve_check(steps, min_efficiency, max_errors=0):
    """(ok, failing lines): a step fails below min_efficiency or with errors."""
    problems = []
    for s in steps:
        if s["efficiency"] < min_efficiency:
            problems.append(f"E({s['replicas']}) = {s['efficiency']:.2f} < {min_efficiency}")
        if s["errors"] > max_errors:
            problems.append(f"{s['errors']} failed requests at {s['replicas']} replicas")
    return not problems, problems
