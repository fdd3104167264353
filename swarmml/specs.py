"""Pure edits of a ServiceSpec: what scale, update and rebalance change."""
import copy
import re

from swarmml.errors import UsageError
from swarmml.stack.units import duration_ns, nano_cpus, size_bytes

ORDERS = ("start-first", "stop-first")
FAILURE_ACTIONS = ("rollback", "pause", "continue")


def parse_replicas(value, where="replicas"):
    """'10' -> 10; anything but a non-negative integer is a UsageError."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
        return int(value)
    raise UsageError(f"{where}: expected a non-negative integer, got {value!r}")


def parse_targets(args):
    """['predictor=10'] or ['predictor', '10'] -> {'predictor': 10}."""
    if len(args) == 2 and "=" not in args[0] and "=" not in args[1]:
        return {args[0]: parse_replicas(args[1], f"replicas for {args[0]}")}
    out = {}
    for a in args:
        name, sep, n = a.partition("=")
        if not sep or not name:
            raise UsageError(f"{a!r}: expected SERVICE=REPLICAS (or SERVICE REPLICAS)")
        out[name] = parse_replicas(n, f"replicas for {name}")
    if not out:
        raise UsageError("nothing to scale: give SERVICE=REPLICAS")
    return out


def is_global(spec):
    mode = spec.get("Mode", {})
    return "Global" in mode or "GlobalJob" in mode


def with_replicas(spec, n):
    if is_global(spec):
        raise UsageError(f"service {spec['Name']} is global (one task per node); it can't be scaled")
    out = copy.deepcopy(spec)
    if "ReplicatedJob" in out["Mode"]:
        out["Mode"]["ReplicatedJob"]["TotalCompletions"] = n
    else:
        out["Mode"] = {"Replicated": {"Replicas": n}}
    return out


def with_update(spec, image=None, env=(), replicas=None, cpus=None, memory=None, parallelism=None, delay=None,
                order=None, failure_action=None, monitor=None, force=False):
    """A new spec with the update options applied; options left None keep their value."""
    out = copy.deepcopy(spec)
    task = out["TaskTemplate"]
    cs = task["ContainerSpec"]
    if image is not None:
        cs["Image"] = image
        out.setdefault("Labels", {})
        if "com.docker.stack.image" in out["Labels"]:
            out["Labels"]["com.docker.stack.image"] = image.split("@")[0]
    if env:
        current = dict(e.split("=", 1) if "=" in e else (e, None) for e in cs.get("Env", []))
        for item in env:
            key, sep, value = item.partition("=")
            if not key or not sep:
                raise UsageError(f"--env: expected KEY=VALUE, got {item!r}")
            current[key] = value
        cs["Env"] = sorted(k if v is None else f"{k}={v}" for k, v in current.items())
    if replicas is not None:
        out = with_replicas(out, parse_replicas(replicas, "--replicas"))
        task = out["TaskTemplate"]
    limits = task.setdefault("Resources", {}).setdefault("Limits", {})
    if cpus is not None:
        try:
            if float(cpus) <= 0:
                raise ValueError
        except ValueError:
            raise UsageError(f"--cpus: expected a positive number, got {cpus!r}") from None
        limits["NanoCPUs"] = nano_cpus(cpus)
    if memory is not None:
        try:
            limits["MemoryBytes"] = size_bytes(memory)
        except UsageError:
            raise UsageError(f"--memory: expected a size like 512M, got {memory!r}") from None
    uc = out.setdefault("UpdateConfig", {"Parallelism": 1})
    if parallelism is not None:
        uc["Parallelism"] = parse_replicas(parallelism, "--parallelism")
    if delay is not None:
        uc["Delay"] = _duration(delay, "--delay")
    if monitor is not None:
        uc["Monitor"] = _duration(monitor, "--monitor")
    if order is not None:
        if order not in ORDERS:
            raise UsageError(f"--order: expected one of {', '.join(ORDERS)}, got {order!r}")
        uc["Order"] = order
    if failure_action is not None:
        if failure_action not in FAILURE_ACTIONS:
            raise UsageError(f"--failure-action: expected one of {', '.join(FAILURE_ACTIONS)}, got {failure_action!r}")
        uc["FailureAction"] = failure_action
    if force:
        task["ForceUpdate"] = task.get("ForceUpdate", 0) + 1
    return out


def _duration(value, flag):
    try:
        return duration_ns(value)
    except UsageError:
        raise UsageError(f"{flag}: expected a duration like 5s, got {value!r}") from None
