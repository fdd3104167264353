"""How the scaling curve is measured so that the machine's drift cancels: pure functions over plain data.

Every step is bracketed by the base (the fewest replicas): 1, 2, 1, 4, 1, 6,
6, 1, 4, 1, 2, 1 for two passes. Each run of N replicas is compared with the
base measured just before and just after it, a minute apart, so a drift over
the run (this machine's speed moved by a fifth within one) cancels: E(N)
compares neighbours, not the start of the run with its end. The passes
turn on the same step, measured twice in a row with no scale between: that
difference is the machine's own noise; the base's moves between brackets
are what a bracket can not cancel, and they set the base's interval.
"""
import math
from statistics import median

SETTLE_WINDOWS = 3  # the last windows of a warm-up that must agree
SETTLE_TOLERANCE = 0.1  # (max - min) / median of those windows


def order(steps, repeat):
    """The replica counts in measuring order: the other steps forward, then backward, `repeat` passes in all,
    with the base (the fewest) before, after and between them."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    if not steps:
        return []
    base = min(steps)
    others = sorted(n for n in steps if n != base)
    if not others:
        return [base] * repeat
    out = [base]
    for i in range(repeat):
        for n in (others if i % 2 == 0 else others[::-1]):
            turn = out[-1] == n and out[-2:] != [n, n]  # the same step twice in a row, never three times
            if out[-1] != base and not turn:
                out.append(base)
            out.append(n)
    return out + [base]


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


def brackets(runs):
    """For each run, the base runs (the fewest replicas) measured nearest before and after it; None where none."""
    base = min((r["replicas"] for r in runs), default=None)
    at = [i for i, r in enumerate(runs) if r["replicas"] == base]
    out = []
    for i in range(len(runs)):
        before = [runs[j] for j in at if j < i]
        after = [runs[j] for j in at if j > i]
        out.append((before[-1] if before else None, after[0] if after else None))
    return out


def _bracketed(value, bases):
    """[low, mid, high] of value against each base around it and against their mean; None without a base."""
    bases = [b for b in bases if b]
    if not value or not bases:
        return None
    each = [value / b for b in bases]
    return [round(min(each), 3), round(value * len(bases) / sum(bases), 3), round(max(each), 3)]


def relative(runs):
    """Per run of more than the base's replicas: E and E per CPU against the base runs just around it.

    E: its requests/s over N/base times the base's; E per CPU: the base's
    CPU-seconds per request over its own. Each as [low, mid, high]: against
    the base before, against the mean of both, against the base after.
    """
    base = min((r["replicas"] for r in runs), default=None)
    out = []
    for run, around in zip(runs, brackets(runs)):
        if run["replicas"] == base:
            out.append(None)
            continue
        bases = [b for b in around if b]
        mine = cpu_per_request(run)
        out.append({"efficiency": _bracketed(run["requests_per_s"] * base / run["replicas"],
                                             [b["requests_per_s"] for b in bases]),
                    "cpu_efficiency": _bracketed(1 / mine if mine else None,
                                                 [1 / c for c in map(cpu_per_request, bases) if c])})
    return out


def combine(runs):
    """Runs (one dict per measurement, in order) -> one step per replica count, by medians over its repeats.

    A step keeps every run's requests/s (`runs_per_s`) and, past the base,
    every run's bracketed E and E per CPU (`efficiency_runs`, see relative);
    the base keeps how far it moved from one bracket to the next
    (`base_moves`). The CPU, bottleneck and warm-up are those of the step's
    median run, so that what the table shows comes from one real
    measurement rather than a blend.
    """
    by_n, rel = {}, {}
    for run, r in zip(runs, relative(runs)):
        by_n.setdefault(run["replicas"], []).append(run)
        rel.setdefault(run["replicas"], []).append(r)
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
        step = {**mid, "repeats": len(group), "requests_per_s": round(median(rps), 1), "runs_per_s": rps,
                "spread_per_s": [min(rps), max(rps)],
                "requests": sum(r["requests"] for r in group),
                **{k: _round(_median(r.get(k) for r in group), 2) for k in ("p50_ms", "p95_ms", "p99_ms")},
                "errors": sum(r["errors"] for r in group), "error_kinds": kinds,
                "replicas_answering": min(r.get("replicas_answering", n) for r in group),
                "cpu_s_per_request": _round(_median(cpu_runs), 6), "cpu_s_per_request_runs": cpu_runs,
                "gateway_cpu_s_per_request": _round(_median(_gateway_per_request(r) for r in group), 6)}
        if n == min(by_n):
            step["base_moves"] = [round(move, 3) for move, _ in base_moves(runs)]
        else:
            step["efficiency_runs"] = [r["efficiency"] for r in rel[n] if r and r["efficiency"]]
            step["cpu_efficiency_runs"] = [r["cpu_efficiency"] for r in rel[n] if r and r["cpu_efficiency"]]
        steps.append(step)
    return steps


def noise(runs):
    """The machine's noise: each pair of back-to-back runs of one step count, and how far apart they were;
    and `sigma`, the relative noise of one run, pooled over those pairs and the base's moves between brackets.

    sigma is the root mean square of their log ratios over sqrt(2) (each ratio holds two runs' noise), taken
    around 0 rather than their mean, so that a drift between the two counts as noise: it is what a
    bracket's E(N) carries. `dof`: how many ratios it rests on.
    """
    pairs = []
    for a, b in zip(runs, runs[1:]):
        if a["replicas"] == b["replicas"]:
            x, y = a["requests_per_s"], b["requests_per_s"]
            pairs.append({"replicas": a["replicas"], "requests_per_s": [x, y],
                          "difference": round(abs(x - y) / ((x + y) / 2), 3) if x + y else None})
    diffs = [p["difference"] for p in pairs if p["difference"] is not None]
    ratios = [y / x for x, y in (p["requests_per_s"] for p in pairs) if x and y]
    ratios += [move for move, back_to_back in base_moves(runs) if not back_to_back]  # those are pairs already
    logs = [math.log(r) for r in ratios]
    sigma = math.sqrt(sum(v * v for v in logs) / len(logs) / 2) if len(logs) >= 2 else None
    return {"pairs": pairs, "max_difference": max(diffs) if diffs else None,
            "sigma": _round(sigma, 4), "dof": len(logs)}


def base_moves(runs):
    """How far the base moved from each of its runs to the next: [(ratio, whether back to back)]."""
    base = min((r["replicas"] for r in runs), default=None)
    at = [(i, r["requests_per_s"]) for i, r in enumerate(runs) if r["replicas"] == base]
    return [(y / x, j == i + 1) for (i, x), (j, y) in zip(at, at[1:]) if x and y]


def _round(v, digits):
    return None if v is None else round(v, digits)
