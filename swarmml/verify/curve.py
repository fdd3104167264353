"""The scaling curve: efficiency E(N) = throughput(N) / (N x throughput(1)), and its thresholds."""
import math
from statistics import median

from swarmml.errors import UsageError
from swarmml.verify.usage import SATURATED


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


def _cpu_per_request(step):
    if step.get("cpu_s_per_request") is not None:
        return step["cpu_s_per_request"]
    cores = ((step.get("cpu") or {}).get("replicas") or {}).get("cores")
    return cores / step["requests_per_s"] if cores and step["requests_per_s"] else None


def _from_runs(runs):
    """(median, [low, high]) of bracketed runs' [low, mid, high] (method.relative), or None without any."""
    if not runs:
        return None
    return round(median(r[1] for r in runs), 3), [min(r[0] for r in runs), max(r[2] for r in runs)]


def _noise_half_width(sigma, dof, runs):
    """Half the 95 % interval, in log terms, of the median of `runs` bracketed runs whose own noise is sigma.

    Each run's E carries its own noise and that of the mean of two base runs
    around it: 1.5 sigma^2. Student's t for the ratios sigma rests on.
    """
    from scipy.stats import t  # a second to import: only here, when a curve is judged
    return t.ppf(0.975, dof) * sigma * math.sqrt(1.5 / runs)


def efficiencies(steps, sigma=None, dof=0):
    """steps: [{replicas, requests_per_s, ...}] -> the same dicts with `efficiency` (and `cpu_efficiency`).

    The base is the step with the fewest replicas, per replica: E(N) =
    thr(N) / (N * thr(b) / b), which is the definition when the curve starts at 1.
    cpu_efficiency compares the CPU-seconds each request cost the replicas
    with the base's: near 1 while E(N) falls means the replicas did not get
    their CPU (a busy machine), not that the service scales badly.
    Steps measured between base runs (method.combine's efficiency_runs) take
    the median of their runs, each against the base runs around it, and an
    interval from the lowest to the highest against either, widened where the
    machine's noise (sigma: one run's, from method.noise, over dof ratios)
    says two or three runs can't pin it closer; the base's interval is how far
    it moved from one bracket to the next.
    """
    if not steps:
        return []
    base = min(steps, key=lambda s: s["replicas"])
    per_replica = base["requests_per_s"] / base["replicas"]
    base_cpu = _cpu_per_request(base)
    out = []
    for s in steps:
        e = round(s["requests_per_s"] / (s["replicas"] * per_replica), 3) if per_replica else 0.0
        mine = _cpu_per_request(s)
        step = {**s, "efficiency": e, "cpu_efficiency": round(base_cpu / mine, 3) if mine and base_cpu else None}
        if s is base and s.get("base_moves"):
            step["efficiency_interval"] = [min(1.0, *s["base_moves"]), max(1.0, *s["base_moves"])]
        for key in ("efficiency", "cpu_efficiency"):
            measured = _from_runs(s.get(key + "_runs"))
            if s is not base and measured:
                value, (low, high) = measured
                if sigma and dof >= 2:
                    half = _noise_half_width(sigma, dof, len(s[key + "_runs"]))
                    low, high = min(low, round(value * math.exp(-half), 3)), max(high, round(value * math.exp(half), 3))
                step[key], step[key + "_interval"] = value, [low, high]
        out.append(step)
    return out


# Requests cost a replica a few percent more or less CPU with what its neighbours do to the caches
# and the clock, even when the repeats happen to agree: a smaller excess of E per CPU is no evidence.
WORK_MARGIN = 0.05


# What a step's throughput measures when these were its limit: this machine, not the service. The gateway
# and the offered load are parts of the deployment verify was asked about; they stay the step's own.
STARVED = {"machine": "the machine could not give the replicas their CPU",
           "load generator": "the load generator on this machine could not send more"}


def verdict(step, base_replicas, thresholds):
    """base, measured (no threshold), pass, fail (the service), inconclusive (what it got), or suspect.

    A low E(N) is evidence about the service only when the replicas had
    what they may use. When this machine ran out of cores, or the load
    generator out of its thread, the step measured them: inconclusive. So
    too when each request cost the replicas as much CPU as at the base: the
    service held, the replicas only got less CPU. If requests cost more
    with cores to spare, the service itself scales badly. Above 1 beyond
    the interval, in throughput or in work, no service explains it: the
    base step was off, so a pass would not be evidence; a step below its
    threshold still fails, since a base measured low only overstates E(N).
    """
    if step["replicas"] == base_replicas:
        return "base"
    e, w = step["efficiency"], step.get("cpu_efficiency")
    e_low = (step.get("efficiency_interval") or [e])[0]
    w_low = (step.get("cpu_efficiency_interval") or [w])[0]
    want = threshold_for(step["replicas"], thresholds)
    if want is not None and e < want:
        # Below the threshold even if the base was off: a base measured low only overstates E(N).
        return "inconclusive" if starved(step) or (w is not None and w >= want) else "fail"
    if e_low > 1 or (w_low is not None and w_low > 1 + WORK_MARGIN):
        return "suspect"
    return "measured" if want is None else "pass"


def starved(step):
    """Why this machine, not the service, may explain a step's throughput; None when nothing says so.

    A saturated machine counts even when the replicas reached their quota:
    their neighbours then make each request dearer too (caches, switches),
    so neither E nor E per CPU is the service's (seen: E per CPU 0.71 on two
    replicas at their quota, the machine 99.6 % busy with other work).
    """
    if step.get("bottleneck") in STARVED:
        return f"{STARVED[step['bottleneck']]} ({step.get('bottleneck_detail') or 'limited by ' + step['bottleneck']})"
    machine = (step.get("cpu") or {}).get("machine") or {}
    if machine.get("busy") is not None and machine.get("cores") and machine["busy"] >= SATURATED * machine["cores"]:
        return (f"the machine was saturated ({machine['busy']:.2f} of {machine['cores']} cores busy, "
                f"{machine.get('other') or 0:.2f} of them by other work), which makes each request dearer")
    return None


def with_verdicts(steps, thresholds):
    """The steps, each with its `verdict` and the threshold that applied."""
    base = min((s["replicas"] for s in steps), default=None)
    return [{**s, "threshold": threshold_for(s["replicas"], thresholds) if s["replicas"] != base else None,
             "verdict": verdict(s, base, thresholds)} for s in steps]


def _interval(step, key):
    iv = step.get(key + "_interval")
    return f" ({iv[0]:.2f}..{iv[1]:.2f} over the repeats)" if iv and iv[0] != iv[1] else ""


def _remedy(step, steps):
    """What would let verify measure a step it could not: fewer steps, less CPU each, or a quieter machine."""
    lower = [s["replicas"] for s in steps if s["replicas"] < step["replicas"]]
    fewer = f"fewer steps (--steps {','.join(map(str, lower))})" if len(lower) > 1 else "fewer steps"
    kind = None if starved(step) else step.get("bottleneck")
    if kind == "gateway":
        return f"a higher CPU limit for the gateway, or {fewer}"
    if kind == "offered load":
        return "more --connections"
    return f"{fewer}, a smaller --cpus, or a quieter machine"


def curve_check(steps, thresholds, max_errors=0):
    """(ok, failures, inconclusive): one line each.

    A failure: a step below its threshold with the replicas at their CPU,
    or with failed requests. Inconclusive: a step below its threshold that
    did not get the CPU it needed, with what starved it and what to do; or
    one above 1 beyond its interval (suspect: the base was off). The base
    step is E = 1 by definition; only its errors count.
    """
    problems, inconclusive = [], []
    base = min((s["replicas"] for s in steps), default=None)
    for s in steps:
        n, e, w = s["replicas"], s["efficiency"], s.get("cpu_efficiency")
        judged = verdict(s, base, thresholds)
        want = threshold_for(n, thresholds)
        limited = f"limited by {s['bottleneck']}" if s.get("bottleneck") not in (None, "replicas") else ""
        if judged == "suspect":
            what = (f"E({n}) = {e:.2f}{_interval(s, 'efficiency')}"
                    if (s.get("efficiency_interval") or [e])[0] > 1
                    else f"requests cost the replicas less CPU at {n} than at {base} "
                         f"(E per CPU {w:.2f}{_interval(s, 'cpu_efficiency')})")
            # Evidence of a bad base, not of the service: could not measure, like a starved step.
            inconclusive.append(f"{what}: above 1 beyond the repeats' spread, which no service does; "
                                f"the measurement is suspect (the {base}-replica base is low), not a pass")
        elif judged == "inconclusive":
            why = starved(s)
            if why is None:
                why = (f"each request cost the replicas as much CPU as at {base} (E per CPU {w:.2f}), so they got "
                       f"less CPU than they may use{' (' + limited + ')' if limited else ''}")
            inconclusive.append(f"E({n}) = {e:.2f}{_interval(s, 'efficiency')} < {want}, inconclusive: {why}; "
                                f"to measure it: {_remedy(s, steps)}")
        elif judged == "fail":
            problems.append(f"E({n}) = {e:.2f}{_interval(s, 'efficiency')} < {want}"
                            + (f": each request cost the replicas {1 / w:.2f}x the CPU it did at {base}"
                               if w else "")
                            + (f" ({limited})" if limited else ""))
        if s.get("replicas_answering") is not None and s["replicas_answering"] != n:
            problems.append(f"{s['replicas_answering']} of {n} replicas answered during the step")
        if s["errors"] > max_errors:
            problems.append(f"{s['errors']} failed requests at {n} replicas"
                            + (f" ({', '.join(f'{k} {v}' for k, v in s['error_kinds'].items())})"
                               if s.get("error_kinds") else ""))
    return not problems and not inconclusive, problems, inconclusive
