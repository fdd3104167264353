"""The autoscale policy of a service, read from its `io.swarmml.autoscale.*` labels. Pure.

In a stack file the policy sits with the service, so the stack file stays
the source of truth:

    deploy:
      labels:
        io.swarmml.autoscale.min: 2
        io.swarmml.autoscale.max: 10
        io.swarmml.autoscale.target-inflight: 4

Every label under the prefix must be known and well-formed; a mistake is a
UsageError of one line that names the label (and the service).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from swarmml.errors import UsageError
from swarmml.stack.units import duration_ns

PREFIX = "io.swarmml.autoscale."

# metric name -> the label that carries its target, and what the target means.
METRICS = {
    "inflight": ("target-inflight", "requests in flight per replica"),
    "rps": ("target-rps", "requests per second per replica"),
    "p95-ms": ("target-p95-ms", "95th percentile latency in ms"),
    "query": ("target", "value of the Prometheus query per replica"),
}
TARGET_LABELS = {label: metric for metric, (label, _) in METRICS.items()}

DEFAULTS = {
    "up-window": 6.0,  # s: scale up only to what every recommendation of the last 6 s asked for
    "down-window": 60.0,  # s: scale down only to the highest recommendation of the last minute
    "panic-threshold": 2.0,  # a recommendation this many times the current replicas skips the up-window
    "tolerance": 0.1,  # |observed/target - 1| under which nothing changes
    "interval": 2.0,  # s between two looks at the service
}
KNOWN = {"min", "max", "max-step", "metric", "model", "metrics-port", "metrics-path", "metrics-url", "query", "gateway",
         *DEFAULTS, *TARGET_LABELS}


@dataclass(frozen=True)
class Policy:
    """What one service's labels ask of the autoscaler."""

    min: int
    max: int
    targets: dict[str, float]  # metric -> target per replica; scaling follows the metric that asks for most
    up_window_s: float = DEFAULTS["up-window"]
    down_window_s: float = DEFAULTS["down-window"]
    panic_threshold: float = DEFAULTS["panic-threshold"]
    tolerance: float = DEFAULTS["tolerance"]
    interval_s: float = DEFAULTS["interval"]
    max_step: int | None = None  # most replicas added or removed by one decision
    model: str | None = None  # scale on this model's requests only (default: all models of the replica)
    metrics_port: int = 8080
    metrics_path: str = "/metrics"
    metrics_url: str | None = None  # a Prometheus server, for metric "query"
    query: str | None = None
    gateway: str | None = None  # the gateway service whose HAProxy statistics count requests in flight
    gateway_port: int = 8404
    labels: dict[str, str] = field(default_factory=dict)  # the labels as written, for status

    def to_json(self) -> dict:
        return asdict(self)


def has_policy(labels: dict | None) -> bool:
    return any(k.startswith(PREFIX) for k in (labels or {}))


def policy_labels(labels: dict | None) -> dict[str, str]:
    """The autoscale labels without their prefix: {'min': '2', ...}."""
    return {k[len(PREFIX):]: str(v) for k, v in (labels or {}).items() if k.startswith(PREFIX)}


def parse(labels: dict | None, where: str = "service") -> Policy | None:
    """Labels -> Policy, None when the service has no autoscale label; UsageError naming the label otherwise."""
    found = policy_labels(labels)
    if not found:
        return None

    def bad(key, why):
        return UsageError(f"{where}: label {PREFIX}{key}: {why}")

    for key in sorted(found):
        if key not in KNOWN:
            raise bad(key, f"unknown autoscale setting; known: {', '.join(sorted(KNOWN))}")
    for key in ("min", "max"):
        if key not in found:
            raise bad(key, "missing: an autoscaled service needs both min and max")
    lo = _integer(found, "min", bad, least=1)
    hi = _integer(found, "max", bad, least=1)
    if lo > hi:
        raise bad("min", f"min {lo} is greater than max {hi}")

    targets = {}
    for label, metric in TARGET_LABELS.items():
        if label in found:
            targets[metric] = _number(found, label, bad, positive=True)
    if "metric" in found:
        names = [m.strip() for m in found["metric"].split(",") if m.strip()]
        if not names:
            raise bad("metric", "empty; expected one or more of " + ", ".join(METRICS))
        for name in names:
            if name not in METRICS:
                raise bad("metric", f"unknown metric {name!r}; expected one of {', '.join(METRICS)}")
            if name not in targets:
                raise bad(METRICS[name][0], f"missing: metric {name} needs a target")
        targets = {m: targets[m] for m in names}
    if not targets:
        raise bad("target-inflight", "missing: give a target (target-inflight, target-rps, target-p95-ms, or "
                                     "target with query)")
    if "query" in targets:
        for key in ("query", "metrics-url"):
            if not found.get(key, "").strip():
                raise bad(key, "missing: metric query needs both query and metrics-url")
        if not found["metrics-url"].startswith(("http://", "https://")):
            raise bad("metrics-url", f"expected an http:// or https:// URL, got {found['metrics-url']!r}")

    opts = {}
    for key, attr in (("up-window", "up_window_s"), ("down-window", "down_window_s")):
        if key in found:
            opts[attr] = _seconds(found, key, bad)
    if "interval" in found:
        opts["interval_s"] = _seconds(found, "interval", bad)
        if opts["interval_s"] <= 0:
            raise bad("interval", "must be more than 0 s")
    if "panic-threshold" in found:
        opts["panic_threshold"] = _number(found, "panic-threshold", bad, positive=True)
        if opts["panic_threshold"] <= 1:
            raise bad("panic-threshold", "must be more than 1 (a ratio of observed to target)")
    if "tolerance" in found:
        opts["tolerance"] = _number(found, "tolerance", bad)
        if not 0 <= opts["tolerance"] < 1:
            raise bad("tolerance", f"expected a fraction from 0 to below 1, got {found['tolerance']!r}")
    if "max-step" in found:
        opts["max_step"] = _integer(found, "max-step", bad, least=1)
    if "metrics-port" in found:
        opts["metrics_port"] = _integer(found, "metrics-port", bad, least=1)
        if opts["metrics_port"] > 65535:
            raise bad("metrics-port", f"expected a port from 1 to 65535, got {found['metrics-port']!r}")
    if "metrics-path" in found:
        if not found["metrics-path"].startswith("/"):
            raise bad("metrics-path", f"expected a path starting with /, got {found['metrics-path']!r}")
        opts["metrics_path"] = found["metrics-path"]
    if found.get("gateway", "").strip():
        name, _, port = found["gateway"].strip().partition(":")
        if not name or (port and (not port.isdigit() or not 0 < int(port) < 65536)):
            raise bad("gateway", f"expected SERVICE or SERVICE:PORT (its HAProxy statistics), got {found['gateway']!r}")
        opts["gateway"] = name
        if port:
            opts["gateway_port"] = int(port)
    for key in ("model", "metrics-url", "query"):
        if found.get(key, "").strip():
            opts[key.replace("-", "_")] = found[key].strip()
    return Policy(lo, hi, targets, labels={PREFIX + k: v for k, v in sorted(found.items())}, **opts)


def check_services(specs: dict[str, dict]) -> dict[str, Policy]:
    """Every service spec's policy ({full name: Policy}), or the first bad label as a UsageError."""
    out = {}
    for name, spec in sorted(specs.items()):
        policy = parse(spec.get("Labels"), where=f"service {name}")
        if policy is not None:
            if "Replicated" not in (spec.get("Mode") or {"Replicated": {}}):
                raise UsageError(f"service {name}: label {PREFIX}min: only replicated services can be autoscaled")
            out[name] = policy
    return out


def with_overrides(policy: Policy | None, minimum: int | None = None, maximum: int | None = None,
                   target_inflight: float | None = None, where: str = "service") -> Policy:
    """A policy with command-line overrides (`swarmml autoscale SERVICE --min --max --target-inflight`)."""
    labels = dict(policy.labels) if policy else {}
    for key, value in (("min", minimum), ("max", maximum), ("target-inflight", target_inflight)):
        if value is not None:
            labels[PREFIX + key] = str(value)
    if not labels:
        raise UsageError(f"{where} has no {PREFIX}* labels; give --min, --max and --target-inflight")
    parsed = parse(labels, where)
    assert parsed is not None
    return parsed


def _number(found, key, bad, positive=False):
    text = found[key].strip()
    try:
        value = float(text)
    except ValueError:
        raise bad(key, f"expected a number, got {found[key]!r}") from None
    if not math.isfinite(value):
        raise bad(key, f"expected a finite number, got {found[key]!r}")
    if positive and value <= 0:
        raise bad(key, f"must be more than 0, got {found[key]!r}")
    return value


def _integer(found, key, bad, least=0):
    text = found[key].strip()
    if not text.lstrip("+").isdigit():
        raise bad(key, f"expected a whole number, got {found[key]!r}")
    value = int(text)
    if value < least:
        raise bad(key, f"must be at least {least}, got {value}")
    return value


def _seconds(found, key, bad):
    """'30s', '2m', '500ms' or a bare number of seconds."""
    text = found[key].strip()
    try:
        value = float(text)
    except ValueError:
        try:
            value = duration_ns(text) / 1e9
        except UsageError:
            raise bad(key, f"expected a duration like 30s or 2m, got {found[key]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise bad(key, f"expected a duration of 0 s or more, got {found[key]!r}")
    return value
