"""Where tasks run, and why some don't: pure functions over the engine's task and node lists.

deploy, the day-2 verbs and verify all read placement through this module.
"""
import datetime
import ipaddress
import re
from dataclasses import asdict, dataclass, field

# Task states on the way to running; and the ones that end a task that was meant to run.
ACTIVE = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting")
ENDED = ("complete", "failed", "rejected", "orphaned", "shutdown", "remove")
FAILED = ("failed", "rejected", "orphaned")
# What the scheduler writes on a task it found no node for.
UNPLACEABLE = "no suitable node"


@dataclass
class Placement:
    """Where one service's tasks run, and why some don't."""

    service: str
    desired: int | None  # None for global services
    running: int
    per_node: dict = field(default_factory=dict)  # hostname -> running tasks
    images: list = field(default_factory=list)  # distinct images (with digest) of running tasks
    pending: list = field(default_factory=list)  # one line per task on its way, with why it waits
    failed: list = field(default_factory=list)  # recent task failures, with the error
    unplaceable: list = field(default_factory=list)  # tasks the scheduler found no node for, with why

    def to_dict(self):
        return asdict(self)


def parse_ts(text):
    """The engine's RFC 3339 timestamps (nanoseconds, Z) -> aware datetime; None for empty or zero times.

    Compared as datetimes, not strings: Go trims trailing zeros of the fraction, so the strings don't sort.
    """
    if not text or text.startswith("0001-"):
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if not m:
        return None
    micro = (m.group(2) or "0")[:6].ljust(6, "0")
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.datetime.fromisoformat(f"{m.group(1)}.{micro}{tz}")


def task_time(task):
    """When the task's state last changed, as a datetime (the earliest possible one when unknown): a sort key."""
    return parse_ts(task["Status"].get("Timestamp")) or _NEVER


_NEVER = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


def desired_replicas(spec):
    mode = spec.get("Mode") or {}
    if "Replicated" in mode:
        return (mode["Replicated"] or {}).get("Replicas", 1)
    if "ReplicatedJob" in mode:
        return (mode["ReplicatedJob"] or {}).get("TotalCompletions", 1)
    return None


def _matches(expected, actual):
    return any(expected.lower() == (a or "").lower() for a in actual)


def constraint_holds(constraint, node):
    """Pure: does `node` (an engine node dict) satisfy one placement constraint, as Swarm reads it?

    `key == value` or `key != value`, values compared ignoring case; keys: node.id, node.hostname,
    node.ip (an address or a CIDR), node.role, node.platform.os/arch, node.labels.K, engine.labels.K.
    An unknown key matches no node (Swarm places nothing for it).
    """
    op = "!=" if "!=" in constraint else "=="
    key, _, value = (part.strip() for part in constraint.partition(op))
    k = key.lower()
    desc, spec = node.get("Description") or {}, node.get("Spec") or {}
    if k == "node.ip":
        try:
            addr = ipaddress.ip_address((node.get("Status") or {}).get("Addr", ""))
            inside = addr in ipaddress.ip_network(value, strict=False)
        except ValueError:
            return False
        return inside if op == "==" else not inside
    if k == "node.id":
        actual = [node.get("ID")]
    elif k == "node.hostname":
        actual = [desc.get("Hostname")]
    elif k == "node.role":
        actual = [spec.get("Role")]
    elif k == "node.platform.os":
        actual = [(desc.get("Platform") or {}).get("OS")]
    elif k == "node.platform.arch":
        actual = [(desc.get("Platform") or {}).get("Architecture")]
    elif k.startswith("node.labels.") and len(k) > len("node.labels."):
        actual = [(spec.get("Labels") or {}).get(key[len("node.labels."):], "")]
    elif k.startswith("engine.labels.") and len(k) > len("engine.labels."):
        actual = [((desc.get("Engine") or {}).get("Labels") or {}).get(key[len("engine.labels."):], "")]
    else:
        return False
    found = _matches(value, actual)
    return found if op == "==" else not found


# Nodes report the kernel's machine name; images name the Go architecture.
_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm", "i386": "386"}


def _platform_fits(platforms, node):
    if not platforms:
        return True
    have = (node.get("Description") or {}).get("Platform") or {}
    arch = _ARCH.get((have.get("Architecture") or "").lower(), (have.get("Architecture") or "").lower())
    os_ = (have.get("OS") or "").lower()
    return any((not p.get("OS") or p["OS"].lower() == os_) and
               (not p.get("Architecture") or _ARCH.get(p["Architecture"].lower(), p["Architecture"].lower()) == arch)
               for p in platforms)


def eligible_nodes(spec, nodes):
    """Pure: the nodes Swarm gives a global service (or global job) a task on: ready, active,
    within the placement constraints and the image's platforms."""
    placement_ = (spec.get("TaskTemplate") or {}).get("Placement") or {}
    constraints = placement_.get("Constraints") or []
    return [n for n in nodes
            if n["Status"]["State"] == "ready" and n["Spec"].get("Availability") == "active"
            and all(constraint_holds(c, n) for c in constraints)
            and _platform_fits(placement_.get("Platforms"), n)]


def hostnames(nodes):
    return {n["ID"]: n["Description"]["Hostname"] for n in nodes}


def task_name(service, task):
    name = service["Spec"]["Name"]
    slot = task.get("Slot")
    return f"{name}.{slot}" if slot else f"{name}.{(task.get('NodeID') or '')[:12]}"


def _why(task):
    st = task["Status"]
    return st.get("Err") or st.get("Message") or st["State"]


def failed_since(task, since):
    """Did the task fail at or after `since` (a datetime, the engine's RFC 3339 text, or None for ever)?"""
    if task["Status"]["State"] not in FAILED:
        return False
    if isinstance(since, str):
        since = parse_ts(since)
    return since is None or (parse_ts(task["Status"].get("Timestamp")) or since) >= since


def is_running(task):
    """Is the task running, and meant to? (A task Swarm is shutting down may still report running.)"""
    return task.get("DesiredState") == "running" and task["Status"]["State"] == "running"


def placement(service, tasks, nodes, since=None):
    """Where the service's tasks run now; pending ones with why; failures (see failed_since) with why."""
    names = hostnames(nodes)
    spec = service["Spec"]
    p = Placement(spec["Name"], desired_replicas(spec), 0)
    images = set()
    for t in tasks:
        state, desired = t["Status"]["State"], t.get("DesiredState")
        node = names.get(t.get("NodeID"), (t.get("NodeID") or "-")[:12])
        if is_running(t):
            p.running += 1
            p.per_node[node] = p.per_node.get(node, 0) + 1
            images.add(t["Spec"]["ContainerSpec"]["Image"])
        elif desired in ("running", "ready") and state in ACTIVE:
            line = f"{task_name(service, t)} {state}" + (f" on {node}" if t.get("NodeID") else "") + f": {_why(t)}"
            (p.unplaceable if UNPLACEABLE in (t["Status"].get("Err") or "") else p.pending).append(line)
        elif failed_since(t, since):
            p.failed.append(f"{task_name(service, t)} {state} on {node}: {_why(t)}")
    p.per_node = dict(sorted(p.per_node.items()))
    p.images = sorted(images)
    return p


def spread(per_node, eligible_nodes):
    """Imbalance of a placement: max - min of running tasks over eligible nodes (0 is perfect)."""
    counts = [per_node.get(n, 0) for n in eligible_nodes] or [0]
    return max(counts) - min(counts)


def rows(placements):
    out = []
    for p in placements:
        out.append({
            "service": p.service,
            "replicas": f"{p.running}/{p.desired}" if p.desired is not None else f"{p.running} (global)",
            "per_node": " ".join(f"{n}:{c}" for n, c in p.per_node.items()) or "-",
            "image": ", ".join(short_image(i) for i in p.images) or "-",
            "problems": "; ".join((p.unplaceable + p.failed + p.pending)[:2]),
        })
    return out


def short_image(image):
    """`name:tag@sha256:<12 hex>` without the registry and repository path: enough to tell versions apart."""
    name, _, digest = image.partition("@")
    name = name.rsplit("/", 1)[-1]
    if digest:
        algo, _, hexes = digest.partition(":")
        return f"{name}@{algo}:{hexes[:12]}"
    return name
