"""How the scaling curve is measured so that the machine's drift cancels: pure functions over plain data.

Each step count is measured `repeat` times in a serpentine order (1, 2, 4, 6,
6, 4, 2, 1): a drift over the run (a neighbour's job starting, the machine
heating up, caches filling) then lands on both ends of the curve alike instead
of on its last steps. The turns measure the same step twice in a row, with no
scale between: that difference is the machine's own noise.
"""
from statistics import median

SETTLE_WINDOWS = 3  # the last windows of a warm-up that must agree
SETTLE_TOLERANCE = 0.1  # (max - min) / median of those windows


def order(steps, repeat):
    """The replica counts in measuring order: steps forward, then backward, `repeat` passes in all."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    steps = list(steps)
    return [n for i in range(repeat) for n in (steps if i % 2 == 0 else steps[::-1])]


def settled(values, windows=SETTLE_WINDOWS, tolerance=SETTLE_TOLERANCE):
    """Whether a warm-up's per-window measure (requests/s, or latency in an open loop) has stopped moving.

    A fresh replica under a CPU quota starts slow (imports and first predictions
    in 25 ms slices); a fixed sleep is either too short for it or wasted on a warm one.
    """
    last = list(values)[-windows:]
    if len(last) < windows or any(v is None for v in last):
        return False
    mid = median(last)
    return mid > 0 and (max(last) - min(last)) / mid <= tolerance


def cpu_per_request(run):
    """The replicas' CPU-seconds per answered request in one run, or None where their CPU is not visible."""
    cores = ((run.get("cpu") or {}).get("replicas") or {}).get("cores")
    ok = run["requests_per_s"]
    return cores / ok if cores and ok else None


def _gateway_per_request(run):
    cores = ((run.get("cpu") or {}).get("gateway") or {}).get("cores")
    return cores / run["requests_per_s"] if cores is not None and run["requests_per_s"] else None


def _median(values):
    values = [v for v in values if v is not None]
    return median(values) if values else None


def combine(runs):
    """Runs (one dict per measurement, in order) -> one step per replica count, by medians over its repeats.

    A step keeps every run's requests/s (`runs_per_s`) for the intervals, and
    the CPU, bottleneck and warm-up of its median run, so that what the table
    shows comes from one real measurement rather than a blend.
    """
    by_n = {}
    for run in runs:
        by_n.setdefault(run["replicas"], []).append(run)
    steps = []
    for n in sorted(by_n):
        group = by_n[n]
        rps = [r["requests_per_s"] for r in group]
        mid = min(group, key=lambda r: abs(r["requests_per_s"] - median(rps)))
        kinds = {}
        for r in group:
            for kind, count in (r.get("error_kinds") or {}).items():
                kinds[kind] = kinds.get(kind, 0) + count
        cpu_runs = [cpu_per_request(r) for r in group]
        steps.append({**mid, "repeats": len(group), "requests_per_s": round(median(rps), 1), "runs_per_s": rps,
                      "spread_per_s": [min(rps), max(rps)],
                      "requests": sum(r["requests"] for r in group),
                      **{k: _round(_median(r.get(k) for r in group), 2) for k in ("p50_ms", "p95_ms", "p99_ms")},
                      "errors": sum(r["errors"] for r in group), "error_kinds": kinds,
                      "replicas_answering": min(r.get("replicas_answering", n) for r in group),
                      "cpu_s_per_request": _round(_median(cpu_runs), 6), "cpu_s_per_request_runs": cpu_runs,
                      "gateway_cpu_s_per_request": _round(_median(_gateway_per_request(r) for r in group), 6)})
    return steps


def noise(runs):
    """The machine's noise: each pair of back-to-back runs of one step count, and how far apart they were."""
    pairs = []
    for a, b in zip(runs, runs[1:]):
        if a["replicas"] == b["replicas"]:
            x, y = a["requests_per_s"], b["requests_per_s"]
            pairs.append({"replicas": a["replicas"], "requests_per_s": [x, y],
                          "difference": round(abs(x - y) / ((x + y) / 2), 3) if x + y else None})
    diffs = [p["difference"] for p in pairs if p["difference"] is not None]
    return {"pairs": pairs, "max_difference": max(diffs) if diffs else None}


def _round(v, digits):
    return None if v is None else round(v, digits)
