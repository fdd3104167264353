"""Who used the CPU during a scaling step, and what limited it: pure functions over two snapshots.

A step measures the service only when its replicas were the limit (each at
its CPU quota). When the machine ran out of cores first, or the gateway or
the load generator hit theirs, the step's throughput says more about them;
the report names which, with the numbers.
"""

NEAR = 0.9  # "at its limit" means at least 90 % of it: quotas are enforced per 100 ms period
SATURATED = 0.95  # of the machine's cores busy


def _delta(before, after):
    if before is None or after is None:
        return None
    return [a - b for a, b in zip(after, before)]


def rates(before, after):
    """Two swarmml.verify.cpu.cpu_snapshot()s -> cores used per group, the machine, the load generator."""
    seconds = after["at"] - before["at"]
    if seconds <= 0:
        raise ValueError("snapshots out of order")
    out = {"seconds": round(seconds, 3)}
    for group, ids in after["containers"].items():
        per = []
        throttled = []
        for cid, now in ids.items():
            d = _delta(before["containers"].get(group, {}).get(cid), now)
            if d is None:
                continue
            per.append(d[0] / 1e9 / seconds)
            if d[2] > 0:
                throttled.append(d[1] / d[2])
        out[group] = {"containers": len(ids), "measured": len(per),
                      "cores": round(sum(per), 3) if per else None,
                      "per_container": [round(x, 3) for x in per],
                      "throttled": round(sum(throttled) / len(throttled), 3) if throttled else None}
    m = _delta(before["machine"], after["machine"])
    out["machine"] = {"cores": after["cores"], "busy": round(m[0] / m[1] * after["cores"], 3) if m and m[1] else None}
    if before.get("ballast") is not None and after.get("ballast") is not None:
        # verify.ballast's idle-priority loops only fill what nothing else wanted: not part of "busy"
        filled = (after["ballast"] - before["ballast"]) / seconds
        out["machine"]["ballast"] = round(filled, 3)
        if out["machine"]["busy"] is not None:
            out["machine"]["busy"] = round(max(0.0, out["machine"]["busy"] - filled), 3)
    out["load_generator"] = round((after["thread_cpu"] - before["thread_cpu"]) / seconds, 3)
    known = [out[g]["cores"] for g in after["containers"] if out[g]["cores"] is not None]
    if out["machine"]["busy"] is not None:
        out["machine"]["other"] = round(out["machine"]["busy"] - sum(known) - out["load_generator"], 3)
    return out


def bottleneck(u, replica_limit, gateway_limit=None):
    """(what limited the step, one line with the numbers). u: rates() with groups replicas and gateway."""
    rep = u.get("replicas") or {}
    gw = (u.get("gateway") or {}).get("cores")
    lg = u.get("load_generator")
    busy, cores = u["machine"].get("busy"), u["machine"]["cores"]
    if not rep.get("measured"):
        return "unknown", "the replicas' CPU is not visible from this machine (a remote swarm)"
    per = rep["per_container"]
    mean = sum(per) / len(per)
    share = f"replicas used {mean:.3f} of their {replica_limit} CPU each (lowest {min(per):.3f})"
    others = (f"gateway {gw:.3f}" if gw is not None else "gateway unknown") + f", load generator {lg:.3f}"
    if busy is not None:
        others += f", everything else {u['machine']['other']:.3f} cores"
    if replica_limit and min(per) >= NEAR * replica_limit:
        return "replicas", f"{share}: the replicas were the limit"
    if busy is not None and busy >= SATURATED * cores:
        return "machine", f"the machine was saturated ({busy:.2f} of {cores} cores busy): {share}; {others}"
    if gateway_limit and gw is not None and gw >= NEAR * gateway_limit:
        return "gateway", f"the gateway used {gw:.3f} of its {gateway_limit} CPU limit: {share}"
    if lg >= NEAR:
        return "load generator", f"the load generator used {lg:.2f} cores (one thread): {share}"
    return "offered load", f"{share}, with cores to spare: too few connections or too low a rate to keep them busy"
