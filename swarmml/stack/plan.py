"""Plan a deploy: what to create, update (and which fields), leave alone, or remove.

Specs are compared after canonicalizing both sides the way the engine stores
them: it fills defaults (Isolation "default", Runtime "container", zero
counters, EndpointSpec.Mode "vip"), keeps network IDs instead of names, and
may pin images to digests. Without that, every redeploy would look changed.
"""
from dataclasses import dataclass, field

ENGINE_DEFAULTS = {
    ("TaskTemplate", "ContainerSpec", "Isolation"): "default",
    ("TaskTemplate", "Runtime"): "container",
    ("EndpointSpec", "Mode"): "vip",
}
IGNORED = {("TaskTemplate", "ForceUpdate")}  # a counter bumped by forced updates (rebalance)


@dataclass
class Action:
    kind: str  # service | network | secret | config
    name: str
    action: str  # create | update | unchanged | remove
    changes: list = field(default_factory=list)  # (dotted path, old, new)


@dataclass
class Plan:
    namespace: str
    actions: list = field(default_factory=list)

    def of(self, action, kind=None):
        return [a for a in self.actions if a.action == action and (kind is None or a.kind == kind)]

    @property
    def changes_anything(self):
        return any(a.action != "unchanged" for a in self.actions)

    def to_json(self):
        return {"stack": self.namespace, "actions": [
            {"kind": a.kind, "name": a.name, "action": a.action,
             "changes": [{"field": p, "old": o, "new": n} for p, o, n in a.changes]} for a in self.actions]}


def canonical(spec, network_names=None, pin_digests=False, path=()):
    """Spec without engine defaults, empty values, IDs; network targets as names; digests dropped unless pinned."""
    if isinstance(spec, dict):
        out = {}
        for k, v in spec.items():
            p = path + (k,)
            if p in IGNORED or ENGINE_DEFAULTS.get(p) == v:
                continue
            if k in ("SecretID", "ConfigID"):
                continue
            if k == "Target" and path[-2:-1] == ("Networks",) or (k == "Target" and "Networks" in path):
                v = (network_names or {}).get(v, v)
            if k == "Image" and isinstance(v, str) and not pin_digests:
                v = v.split("@", 1)[0]
            c = canonical(v, network_names, pin_digests, p)
            if c not in (None, "", [], {}, 0, False):
                out[k] = c
        return out
    if isinstance(spec, list):
        return [canonical(v, network_names, pin_digests, path) for v in spec]
    return spec


def diff(old, new, path=""):
    """[(dotted path, old, new)] for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += diff(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))
        return out
    if old != new:
        return [(path, old, new)]
    return []


def plan(desired, current, network_names=None, prune=False, pin_digests=False):
    """desired: DesiredStack; current: swarmml.engine.swarm.stack_objects(); -> Plan."""
    p = Plan(desired.namespace)
    for kind, wanted in (("network", desired.networks), ("secret", desired.secrets), ("config", desired.configs)):
        have = current.get(kind + "s", {})
        for name in sorted(wanted):
            p.actions.append(Action(kind, name, "unchanged" if name in have else "create"))
    have_services = current.get("services", {})
    for name, spec in sorted(desired.services.items()):
        if name not in have_services:
            p.actions.append(Action("service", name, "create"))
            continue
        # An image the desired spec pins (a recorded revision) is compared by digest, whatever the mode.
        pin = pin_digests or "@sha256:" in spec["TaskTemplate"]["ContainerSpec"].get("Image", "")
        old = canonical(have_services[name]["Spec"], network_names, pin)
        new = canonical(spec, network_names, pin)
        changes = diff(old, new)
        p.actions.append(Action("service", name, "update" if changes else "unchanged", changes))
    if prune:
        for name in sorted(set(have_services) - set(desired.services)):
            p.actions.append(Action("service", name, "remove"))
    # Secrets and configs with a content hash in their name are replaced, not
    # updated: once no service uses the old one, it goes (docker/cli keeps them).
    for kind, wanted in (("secret", desired.secrets), ("config", desired.configs)):
        for name, obj in sorted(current.get(kind + "s", {}).items()):
            if name not in wanted and "io.swarmml.logical-name" in obj.get("Labels", {}):
                p.actions.append(Action(kind, name, "remove"))
    if prune:
        for name in sorted(set(current.get("networks", {})) - set(desired.networks)):
            p.actions.append(Action("network", name, "remove"))
    return p


def rows(plan_):
    """Table rows for people."""
    out = []
    for a in plan_.actions:
        detail = ", ".join(f"{path}: {_short(o)} -> {_short(n)}" for path, o, n in a.changes[:4])
        if len(a.changes) > 4:
            detail += f", ... ({len(a.changes)} fields)"
        out.append({"action": a.action, "kind": a.kind, "name": a.name, "changes": detail})
    return out


def _short(v):
    s = "-" if v is None else str(v)
    return s if len(s) <= 40 else s[:37] + "..."
