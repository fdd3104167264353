"""A load run against an autoscaled service, second by second, and what it proves. Pure.

Input: the load generator's records (send time, latency, error) and samples
of the service's replicas over the same clock. Output: one row per second
(arrival rate, p99, failures, replicas) and the issue's measures: replica-
seconds, share of seconds with p99 under target, how long after the step up
the replicas reached their peak and p99 came back under target, whether the
scale-down waited for its window, and how many times the count changed.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field


@dataclass
class Second:
    t: int
    sent: int
    failed: int
    p99_ms: float | None
    replicas: int  # running replicas at that second (last sample)
    desired: int  # the spec's replicas at that second


@dataclass
class Summary:
    mode: str
    duration_s: int
    requests: int
    failed: int
    replica_seconds: float  # running replicas, second by second
    p99_ok_share: float  # seconds with traffic whose p99 is under target
    p99_target_ms: float
    scale_changes: int
    peak_replicas: int
    reach_peak_s: float | None = None  # from the step up until the running replicas reached their peak
    p99_recovered_s: float | None = None  # from the step up until p99 stayed under target (10 s)
    first_scale_down_s: float | None = None  # from the step down until the first scale-down
    seconds: list = field(default_factory=list)
    provisioned_replica_seconds: float = 0.0  # the replicas asked for (what static provisioning pays for)

    def to_json(self, with_seconds: bool = True) -> dict:
        out = asdict(self)
        if not with_seconds:
            out.pop("seconds")
        return out


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))
    return s[k]


def seconds(records: list, samples: list[tuple[float, int, int]], duration_s: float) -> list[Second]:
    """records: objects with at_s, latency_ms, error; samples: (t, running, desired) sorted by t."""
    n = max(1, math.ceil(duration_s))
    lat: list[list[float]] = [[] for _ in range(n)]
    sent = [0] * n
    failed = [0] * n
    for r in records:
        i = int(r.at_s)
        if 0 <= i < n:
            sent[i] += 1
            if r.error:
                failed[i] += 1
            else:
                lat[i].append(r.latency_ms)
    out = []
    j, running, desired = 0, (samples[0][1] if samples else 0), (samples[0][2] if samples else 0)
    for i in range(n):
        while j < len(samples) and samples[j][0] <= i + 1:
            running, desired = samples[j][1], samples[j][2]
            j += 1
        out.append(Second(i, sent[i], failed[i], percentile(lat[i], 0.99), running, desired))
    return out


def summarize(mode: str, rows: list[Second], p99_target_ms: float, step_up_s: float | None = None,
              step_down_s: float | None = None, hold_s: int = 10) -> Summary:
    with_traffic = [r for r in rows if r.sent]
    ok = [r for r in with_traffic if r.p99_ms is not None and r.p99_ms <= p99_target_ms and not r.failed]
    changes = sum(1 for a, b in itertools.pairwise(rows) if a.desired != b.desired)
    s = Summary(mode, len(rows), sum(r.sent for r in rows), sum(r.failed for r in rows),
                float(sum(r.replicas for r in rows)), len(ok) / len(with_traffic) if with_traffic else 0.0,
                p99_target_ms, changes, max((r.replicas for r in rows), default=0),
                seconds=[asdict(r) for r in rows], provisioned_replica_seconds=float(sum(r.desired for r in rows)))
    if step_up_s is not None:
        end = step_down_s if step_down_s is not None else len(rows)
        during = [r for r in rows if step_up_s <= r.t < end]
        if during:
            peak = max(r.replicas for r in during)
            s.reach_peak_s = next(r.t for r in during if r.replicas == peak) - step_up_s
            for k, r in enumerate(during):
                window = during[k:k + hold_s]
                if len(window) == hold_s and all(w.p99_ms is not None and w.p99_ms <= p99_target_ms
                                                 for w in window):
                    s.p99_recovered_s = r.t - step_up_s
                    break
    if step_down_s is not None:
        at_step = next((r.desired for r in rows if r.t >= step_down_s), None)
        down = next((r.t for r in rows if r.t >= step_down_s and at_step is not None and r.desired < at_step), None)
        s.first_scale_down_s = None if down is None else down - step_down_s
    return s


def markdown(summaries: list[Summary]) -> str:
    """The comparison table for the README."""
    base = next((x for x in summaries if x.mode == "static-max"), None)
    lines = [("| provisioning | replica-seconds asked (running) | vs static max | p99 under target | failed | "
              "scale changes | peak running | peak reached after step up | p99 back under target after |"),
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in summaries:
        asked = s.provisioned_replica_seconds
        ratio = f"{asked / base.provisioned_replica_seconds:.0%}" if base and base.provisioned_replica_seconds else "-"
        reach = "-" if s.reach_peak_s is None else f"{s.reach_peak_s:.0f} s"
        back = "-" if s.p99_recovered_s is None else f"{s.p99_recovered_s:.0f} s"
        lines.append(f"| {s.mode} | {asked:.0f} ({s.replica_seconds:.0f}) | {ratio} | {s.p99_ok_share:.0%} | "
                     f"{s.failed} of {s.requests} | {s.scale_changes} | {s.peak_replicas} | {reach} | {back} |")
    return "\n".join(lines) + "\n"
