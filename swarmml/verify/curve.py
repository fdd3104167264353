"""The scaling curve: efficiency E(N) = throughput(N) / (N x throughput(1)), and its thresholds."""
from swarmml.errors import UsageError


def parse_thresholds(text):
    """'0.8' (every step) or '2=0.9,4=0.85,6=0.8' (from N replicas up) -> {min replicas: threshold}.

    A plain number applies from 1 replica; N=T applies from N replicas until
    the next N listed. Mixed: '0.8,2=0.9' means 0.9 for 2 and 3 replicas, 0.8 otherwise.
    """
    out = {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        n, sep, value = part.rpartition("=")
        try:
            n = int(n) if sep else 1
            value = float(value)
        except ValueError:
            raise UsageError(f"--min-efficiency: expected 0.8 or 2=0.9,4=0.85, got {text!r}") from None
        if n < 1 or not 0 <= value <= 2:
            raise UsageError(f"--min-efficiency: replicas must be at least 1 and thresholds within 0..2, got {part!r}")
        out[n] = value
    if not out:
        raise UsageError(f"--min-efficiency: expected 0.8 or 2=0.9,4=0.85, got {text!r}")
    return dict(sorted(out.items()))


def threshold_for(replicas, thresholds):
    """The threshold that applies at `replicas`: the one listed for the largest N <= replicas, or None."""
    found = None
    for n, value in thresholds.items():
        if n <= replicas:
            found = value
    return found


def _per_cpu(step):
    cores = ((step.get("cpu") or {}).get("replicas") or {}).get("cores")
    return step["requests_per_s"] / cores if cores else None


def efficiencies(steps):
    """steps: [{replicas, requests_per_s, ...}] -> the same dicts with `efficiency` (and `cpu_efficiency`).

    The base is the step with the fewest replicas, per replica: E(N) =
    thr(N) / (N * thr(b) / b), which is the definition when the curve starts at 1.
    cpu_efficiency compares requests per CPU-second the replicas actually got
    with the base's: near 1 while E(N) falls means the replicas did not get
    their CPU (a busy machine), not that the service scales badly.
    """
    if not steps:
        return []
    base = min(steps, key=lambda s: s["replicas"])
    per_replica = base["requests_per_s"] / base["replicas"]
    base_cpu = _per_cpu(base)
    out = []
    for s in steps:
        e = round(s["requests_per_s"] / (s["replicas"] * per_replica), 3) if per_replica else 0.0
        mine = _per_cpu(s)
        out.append({**s, "efficiency": e, "cpu_efficiency": round(mine / base_cpu, 3) if mine and base_cpu else None})
    return out


def curve_check(steps, thresholds, max_errors=0):
    """(ok, one line per failure): a step fails below its threshold or with failed requests.

    The base step is E = 1 by definition; only its errors count.
    """
    problems = []
    base = min((s["replicas"] for s in steps), default=None)
    for s in steps:
        want = threshold_for(s["replicas"], thresholds)
        if s["replicas"] != base and want is not None and s["efficiency"] < want:
            problems.append(f"E({s['replicas']}) = {s['efficiency']:.2f} < {want}"
                            + (f" (limited by {s['bottleneck']})"
                               if s.get("bottleneck") not in (None, "replicas") else ""))
        if s.get("replicas_answering") is not None and s["replicas_answering"] != s["replicas"]:
            problems.append(f"{s['replicas_answering']} of {s['replicas']} replicas answered during the step")
        if s["errors"] > max_errors:
            problems.append(f"{s['errors']} failed requests at {s['replicas']} replicas"
                            + (f" ({', '.join(f'{k} {v}' for k, v in s['error_kinds'].items())})"
                               if s.get("error_kinds") else ""))
    return not problems, problems
