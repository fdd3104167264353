"""Which steps of the default curve the cluster's free CPU can hold: a pure function of a reading before the curve.

A step whose replicas can't all get their CPU limit measures the machine, not
the service. Before the curve, with the base's replicas up and no load,
verify reads how busy the cores already are (the cluster at rest, and
whatever else runs beside it); a step is measured only if its replicas, and
the gateway and load generator that serve them, fit in the rest.
"""
DEFAULT_STEPS = (1, 2, 4, 6)
# Beside the replicas, a loaded step costs the gateway and the load generator: at the base about 0.1 cores
# (0.25-CPU iris-rf replicas, batching off), growing by about 6 % of the replicas' CPU per replica added
# (the recorded curve, scripts/results/verify-report.md: 0.50 cores busy at 1 replica, 1.82 at 6).
LOAD_BASE_CORES = 0.1
LOAD_PER_REPLICA_CORE = 0.06


def needed_cores(replicas, cpus, busy_at_rest):
    """The cores a step of `replicas` at `cpus` each needs, on top of what was busy at rest."""
    return busy_at_rest + LOAD_BASE_CORES + replicas * cpus * (1 + LOAD_PER_REPLICA_CORE)


def fit(candidates, cpus, cores, busy_at_rest):
    """(the steps to measure, [{replicas, why}] of those left out).

    cores: the cores the cluster's replicas run on; busy_at_rest: how many were
    busy before the curve. The base (the fewest replicas) is always kept: it
    is what every other step is compared with.
    """
    steps = sorted(candidates)
    if not steps:
        return [], []
    # All of the cores, not usage.SATURATED's share: a step that fits only just is still measured, and judged
    # afterwards on what it got (a quiet machine here needs about 1.9 of its 2 cores at 6 replicas, and passes).
    room = cores
    kept, left = [steps[0]], []
    for n in steps[1:]:
        need = needed_cores(n, cpus, busy_at_rest)
        if need <= room:
            kept.append(n)
        else:
            left.append({"replicas": n, "why": f"{n} replicas at {cpus:g} CPU need about {need:.2f} of the {cores:g} "
                                               f"cores, and {busy_at_rest:.2f} were busy before the curve"})
    return kept, left


def too_few(kept, left, cpus):
    """The one line that says why a curve of fewer than two steps proves nothing, and what to do; else None."""
    if len(kept) >= 2 or not left:
        return None
    return (f"only the base ({kept[0]} replica{'s' if kept[0] > 1 else ''}) fits this machine's free CPU: "
            f"{left[0]['why']}; to measure a curve: a smaller --cpus (e.g. {max(0.05, round(cpus / 2, 2)):g}), "
            "or a quieter machine")
