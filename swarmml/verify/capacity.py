"""The capacity answer: what each replica count sustains under a latency SLO, and how many a load needs. Pure.

A closed loop can't answer this: it only ever offers what the service
already keeps up with, and its latency percentiles leave out the queue a
user meets. So each replica count gets an open-loop ladder of rates, and
the highest rate whose percentile stays within the SLO, with no failed
request and nothing left behind, is what it sustains.
"""
import math
import re

from swarmml.errors import UsageError

# Fractions of the closed loop's throughput. Low first rungs: under a 0.25-CPU quota a replica waits out
# 75 ms of every 100 ms period, so its p99 can miss a tight SLO at well under half its throughput.
LADDER = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1)
KEPT_UP = 0.95  # answered at least this share of the offered rate, or the queue grew through the rung

_SLO = re.compile(r"^p(\d{1,2}(?:\.\d+)?)=(\d+(?:\.\d+)?)(ms|s)$")
_LOAD = re.compile(r"^(\d+(?:\.\d+)?)(?:/s)?$")


def parse_slo(text):
    """'p99=250ms' or 'p95=0.5s' -> (99.0, 250.0): the percentile and its bound in ms."""
    m = _SLO.match((text or "").strip().lower())
    if not m or not 0 < float(m.group(1)) < 100 or float(m.group(2)) <= 0:
        raise UsageError(f"--slo: expected a percentile and a latency like p99=250ms or p95=0.5s, got {text!r}")
    value = float(m.group(2)) * (1000.0 if m.group(3) == "s" else 1.0)
    return float(m.group(1)), value


def parse_load(text):
    """'200/s' or '200' -> 200.0 requests/s."""
    m = _LOAD.match((text or "").strip().lower())
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"--for: expected a load in requests/s like 200/s, got {text!r}")
    return float(m.group(1))


def ladder(estimate):
    """The open-loop rates to try, rising, from a closed-loop throughput estimate."""
    if not estimate or estimate <= 0:
        raise ValueError(f"a ladder needs a positive throughput estimate, got {estimate!r}")
    return [round(estimate * f, 1) for f in LADDER]


def meets(rung, percentile, bound_ms):
    """(whether one rung met the SLO, why not). rung: offered_per_s, requests_per_s, latency_ms, errors."""
    if rung["errors"]:
        return False, f"{rung['errors']} failed requests"
    if rung["latency_ms"] is None or rung["latency_ms"] > bound_ms:
        return False, f"p{percentile:g} {_ms(rung['latency_ms'])} > {bound_ms:g} ms"
    if rung["requests_per_s"] < KEPT_UP * rung["offered_per_s"]:
        return False, (f"answered {rung['requests_per_s']:.1f} of {rung['offered_per_s']:.1f} requests/s: "
                       "the queue grew")
    return True, ""


def _ms(value):
    return "unknown (no answer)" if value is None else f"{value:.0f} ms"


def sustainable(rungs, percentile, bound_ms):
    """What one replica count sustains: the highest rate met before the first rung that was not.

    rungs: in the order they ran (rising). Returns sustainable_per_s (None if
    not even the first rung met it), the rung that first failed and why.
    """
    best, failed, why = None, None, ""
    for rung in rungs:
        ok, why = meets(rung, percentile, bound_ms)
        if not ok:
            failed = rung
            break
        best = rung
    return {"sustainable_per_s": best["offered_per_s"] if best else None,
            "latency_ms": best["latency_ms"] if best else None,
            "first_failed_per_s": failed["offered_per_s"] if failed else None, "why": why if failed else "",
            # every rung met it: the ladder's top, a floor under what this count sustains
            "at_least": bool(best) and failed is None,
            "limited_by": (failed or best or {}).get("bottleneck")}


def replicas_for(load, table):
    """How many replicas a load needs, from {replicas: sustainable_per_s}.

    Beyond the largest count measured, the answer is extrapolated from its
    rate per replica, and says so: the gateway and the machine may well stop
    it first.
    """
    measured = {n: v for n, v in table.items() if v}
    for n in sorted(measured):
        if measured[n] >= load:
            return {"load_per_s": load, "replicas": n, "extrapolated": False,
                    "detail": f"{n} replicas sustain {measured[n]:g} requests/s >= {load:g}"}
    if not measured:
        return {"load_per_s": load, "replicas": None, "extrapolated": False,
                "detail": "no replica count met the SLO even at the lowest rate tried"}
    top = max(measured)
    per = measured[top] / top
    need = math.ceil(load / per)
    return {"load_per_s": load, "replicas": need, "extrapolated": True,
            "detail": f"more than the {top} measured ({measured[top]:g} requests/s); at their "
                      f"{per:.1f} requests/s per replica, about {need}, if the gateway and the machine keep up"}


OUTSIDE = ("gateway", "machine", "load generator")  # limits that more replicas can't lift


def first_limit(rows):
    """The fewest replicas at which the gateway, the machine or the load generator limited what was sustained.

    rows: [{replicas, limited_by}]. That is where adding replicas stops
    paying. "offered load" is no such limit: an open-loop rung offers a fixed
    rate, and its p99 can miss the SLO with cores to spare (quota periods).
    """
    for row in sorted(rows, key=lambda r: r["replicas"]):
        if row.get("limited_by") in OUTSIDE:
            return {"replicas": row["replicas"], "limited_by": row["limited_by"]}
    return None


# A percentile above this share of the bound already at the lowest rate tried is the replicas' own floor
# (under a CPU quota, the pauses of its periods), not a queue: the SLO then has little room at any rate.
FLOOR_SHARE = 0.6


def floor_note(rows, bound_ms, percentile):
    """A line when even the lowest rate tried came near the bound at every replica count; else None."""
    floors = [r["rungs"][0]["latency_ms"] for r in rows if r.get("rungs") and r["rungs"][0]["latency_ms"]]
    if not floors or min(floors) <= FLOOR_SHARE * bound_ms:
        return None
    return (f"p{percentile:g} was {min(floors):.0f} ms or more already at the lowest rate tried: that is the "
            f"replicas' own floor, and it leaves the {bound_ms:g} ms SLO little room at any rate (more CPU per "
            "replica, --cpus, lowers it)")


def answer(rows, slo, load=None):
    """The capacity section of the report: the rows, the replicas a load needs, the first limit, problems."""
    percentile, bound_ms = slo
    table = {r["replicas"]: r["sustainable_per_s"] for r in rows}
    out = {"slo": {"percentile": percentile, "bound_ms": bound_ms}, "rows": rows, "first_limit": first_limit(rows),
           "for": replicas_for(load, table) if load is not None else None,
           "note": floor_note(rows, bound_ms, percentile), "problems": []}
    if not any(table.values()):
        out["problems"].append(f"no replica count kept p{percentile:g} <= {bound_ms:g} ms, even at the lowest rate "
                               "tried")
    return out
