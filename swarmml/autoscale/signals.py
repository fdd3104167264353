"""What the replicas of a service report: Prometheus text in, per-replica load out. Pure.

The signal comes from each replica's own /metrics (the model service), not
from the gateway's per-server statistics, because:
- it is per task: the controller scrapes each task at its overlay address,
  so a replica that does not answer is known by name and counted as unknown;
  HAProxy's server-template slots do not say which task they hold;
- it counts every request the replica serves, whichever gateway (or client
  inside the network) sent it, and its time in the micro-batcher's queue;
- the gateway can be replicated or replaced without the autoscaler noticing.

In flight is the mean concurrency between two scrapes, by Little's law:
the growth of the request-duration histogram's sum over the wall time
between them (request-seconds per second). A single read of the in-flight
gauge is a coin toss at 10 ms per request; it is used for a replica's first
scrape, when there is no interval yet, and when no request completed in the
interval while some are open (a stuck replica, or requests longer than the
interval, which the histogram has not seen yet).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from swarmml.metrics_formats import (
    IN_FLIGHT,
    REQUEST_SECONDS,
    BadMetrics,
    bucket_bound,
    quantile,
    read_haproxy_stats,
    read_prometheus_text,
)


@dataclass
class Scrape:
    """One replica's counters at one moment (summed over the models asked for, all versions)."""

    at: float  # seconds, on the controller's clock
    in_flight: float
    requests: float  # requests completed, ever
    seconds: float  # their total duration, ever
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count


def read_scrape(text: str, at: float, model: str | None = None) -> Scrape:
    """The model service's /metrics text -> Scrape; BadMetrics when its metrics are not there."""
    s = Scrape(at, 0.0, 0.0, 0.0)
    seen = False
    for name, labels, value in read_prometheus_text(text):
        if model is not None and labels.get("model") != model:
            continue
        if name == IN_FLIGHT:
            s.in_flight += value
            seen = True
        elif name == REQUEST_SECONDS + "_count":
            s.requests += value
        elif name == REQUEST_SECONDS + "_sum":
            s.seconds += value
        elif name == REQUEST_SECONDS + "_bucket":
            le = bucket_bound(labels)
            s.buckets[le] = s.buckets.get(le, 0.0) + value
    if not seen:
        what = f" for model {model!r}" if model else ""
        raise BadMetrics(f"no {IN_FLIGHT}{what} in the metrics")
    return s


@dataclass
class ReplicaSignal:
    """One replica's load; known is False when it could not be scraped (its values are then None)."""

    task: str
    known: bool
    in_flight: float | None = None
    rps: float | None = None
    p95_ms: float | None = None
    error: str | None = None

    def value(self, metric: str) -> float | None:
        return {"inflight": self.in_flight, "rps": self.rps, "p95-ms": self.p95_ms}.get(metric)


def replica_signal(task: str, now: Scrape | None, before: Scrape | None = None,
                   error: str | None = None) -> ReplicaSignal:
    """The load of one replica between two scrapes of it (before may be None: the first look)."""
    if now is None:
        return ReplicaSignal(task, False, error=error or "not scraped")
    dt = now.at - before.at if before is not None else 0.0
    if before is None or dt <= 0 or now.requests < before.requests:  # first look, or the counters restarted
        return ReplicaSignal(task, True, in_flight=now.in_flight, rps=None, p95_ms=None)
    done = now.requests - before.requests
    busy = max(0.0, now.seconds - before.seconds)
    p95 = quantile(0.95, {le: now.buckets.get(le, 0.0) - before.buckets.get(le, 0.0) for le in now.buckets})
    # Nothing completed while requests are open: the replica is stuck or its requests are longer than the
    # interval, and the histogram has not seen them yet; the gauge is then the better reading.
    in_flight = now.in_flight if done == 0 and now.in_flight > busy / dt else busy / dt
    return ReplicaSignal(task, True, in_flight=in_flight, rps=done / dt,
                         p95_ms=None if p95 is None else p95 * 1000.0)


@dataclass
class Signal:
    """The load of a service's running replicas at one tick."""

    replicas: list[ReplicaSignal] = field(default_factory=list)
    query_value: float | None = None  # the Prometheus query's value (a total for the service), if used
    query_error: str | None = None
    gateway_inflight: float | None = None  # requests the gateway has sent and not yet answered, plus its queue
    gateway_rps: float | None = None  # requests per second arriving at the gateway for the service (queued too)
    gateway_error: str | None = None

    @property
    def known(self) -> list[ReplicaSignal]:
        return [r for r in self.replicas if r.known]

    @property
    def unknown(self) -> list[ReplicaSignal]:
        return [r for r in self.replicas if not r.known]

    def values(self, metric: str) -> list[float]:
        """The metric of each known replica that has it."""
        return [v for v in (r.value(metric) for r in self.known) if v is not None]

    def to_json(self) -> dict:
        out = {"replicas": len(self.replicas), "known": len(self.known), "unknown": [r.task for r in self.unknown]}
        for metric in ("inflight", "rps", "p95-ms"):
            vals = self.values(metric)
            out[metric] = round(sum(vals) / len(vals), 3) if vals else None
        if self.gateway_inflight is not None or self.gateway_error:
            out["gateway_inflight"] = self.gateway_inflight if self.gateway_error is None else self.gateway_error
        if self.gateway_rps is not None:
            out["gateway_rps"] = round(self.gateway_rps, 3)
        if self.query_value is not None or self.query_error:
            out["query"] = self.query_value if self.query_error is None else self.query_error
        out["per_replica"] = [asdict(r) for r in self.replicas]
        return out


def read_query_answer(body: str) -> float:
    """A Prometheus /api/v1/query answer -> one number (a vector's samples summed); BadMetrics otherwise."""
    try:
        doc = json.loads(body)
    except ValueError:
        raise BadMetrics("the Prometheus answer is not JSON") from None
    if not isinstance(doc, dict) or doc.get("status") != "success":
        said = (doc or {}).get("error", "no success status") if isinstance(doc, dict) else "not an object"
        raise BadMetrics(f"Prometheus says: {said}")
    data = doc.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind not in ("scalar", "vector"):
        raise BadMetrics(f"the query returned a {kind}; expected a scalar or an instant vector")
    if kind == "vector" and not result:
        raise BadMetrics("the query returned no samples")
    try:
        value = float(result[1]) if kind == "scalar" else sum(float(s["value"][1]) for s in result)
    except (TypeError, KeyError, IndexError, ValueError):
        raise BadMetrics("the Prometheus answer has no sample values") from None
    if not math.isfinite(value):
        raise BadMetrics(f"the query returned {value}")
    return value


def read_haproxy_csv(text: str, backend: str) -> float:
    """In flight through one HAProxy for `backend`: its sessions open to the servers plus its queue.

    From the stats CSV (`/stats;csv`): the backend's summary row, scur + qcur. BadMetrics when the
    text is not HAProxy's CSV or has no such backend.
    """
    return read_haproxy_backend(text, backend)[0]


def read_haproxy_backend(text: str, backend: str) -> tuple[float, float | None]:
    """(in flight, requests received so far) through one HAProxy for `backend`, from its stats CSV.

    In flight is the backend's summary row's sessions open to the servers plus its queue (scur + qcur).
    Requests received (req_tot) count at the backend's door, queued ones included: their rate is
    the load that arrives. The replicas' own counters say what they finished, which is less than
    what arrives exactly when they are overloaded. None when this HAProxy does not count it.
    BadMetrics when the text is not HAProxy's CSV or has no such backend.
    """
    rows = read_haproxy_stats(text)
    row = next((r for r in rows if r.get("pxname") == backend and r.get("svname") == "BACKEND"), None)
    if row is None:
        raise BadMetrics(f"no backend {backend!r} in the gateway's statistics")
    if "scur" not in row or "qcur" not in row:
        raise BadMetrics("HAProxy statistics without scur or qcur")
    try:
        inflight = float(row["scur"] or 0) + float(row["qcur"] or 0)
        received = float(row["req_tot"]) if row.get("req_tot") else None
    except ValueError:
        raise BadMetrics(f"bad scur/qcur/req_tot for backend {backend}") from None
    return inflight, received


def arrival_rate(now: dict[str, tuple[float, float]], before: dict[str, tuple[float, float]]) -> float | None:
    """Requests per second that reached the gateways, from {gateway task: (time, req_tot)} at two ticks.

    Only tasks seen both times with a counter that grew count (a restarted gateway starts again
    from 0); None when no task can say yet.
    """
    rates = []
    for task, (at, total) in now.items():
        if task in before:
            at0, total0 = before[task]
            if at > at0 and total >= total0:
                rates.append((total - total0) / (at - at0))
    return sum(rates) if rates else None
