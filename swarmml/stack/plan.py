"""Plan a deploy: what to create, update (and which fields), leave alone, or remove.

Pure: `current` is what the deploy reads from the engine, as plain data:
{"services": {full name: {"ID", "Version", "Spec"}}, "networks": {name: {"ID", "Labels"}},
 "secrets": {name: {"ID", "Labels"}}, "configs": {name: {"ID", "Labels"}}}.

Specs are compared after canonicalizing both sides the way the engine
stores them, so that an unchanged stack plans no update at all. The engine
fills defaults (Isolation "default", Runtime "container", EndpointSpec.Mode
"vip", update/rollback FailureAction "pause" and Order "stop-first", restart
Condition "any", port Protocol "tcp" and PublishMode "ingress"), answers
with network IDs where we gave names, drops empty values, and may pin
images to digests (`image:tag@sha256:...`). Only fields we set are compared.
"""
from dataclasses import dataclass, field

from swarmml.errors import UsageError
from swarmml.stack.convert import CONTENT_HASH_LABEL, LOGICAL_NAME_LABEL

_UPDATE_DEFAULTS = {"FailureAction": "pause", "Order": "stop-first"}
ENGINE_DEFAULTS = {
    ("TaskTemplate", "ContainerSpec", "Isolation"): "default",
    ("TaskTemplate", "Runtime"): "container",
    ("TaskTemplate", "RestartPolicy", "Condition"): "any",
    ("EndpointSpec", "Mode"): "vip",
    ("EndpointSpec", "Ports", "Protocol"): "tcp",
    ("EndpointSpec", "Ports", "PublishMode"): "ingress",
    **{(top, k): v for top in ("UpdateConfig", "RollbackConfig") for k, v in _UPDATE_DEFAULTS.items()},
}
# A counter bumped by forced updates (swarmml rebalance, docker service update --force), never ours to reset.
IGNORED = {("TaskTemplate", "ForceUpdate")}
# Zero is a real value here (a service scaled to 0), not an unset one.
ZERO_MATTERS = {"Replicas", "MaxConcurrent", "TotalCompletions"}


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

    def counts(self):
        out = {}
        for a in self.actions:
            out[a.action] = out.get(a.action, 0) + 1
        return out

    def to_json(self):
        return {"stack": self.namespace, "actions": [
            {"kind": a.kind, "name": a.name, "action": a.action,
             "changes": [{"field": p, "old": o, "new": n} for p, o, n in a.changes]} for a in self.actions]}


def canonical(spec, network_names=None, pin_digests=False, path=()):
    """A spec without engine defaults, empty values and IDs; network targets as names; image digests
    dropped unless pin_digests (and Placement.Platforms with them: they come from the digest)."""
    if isinstance(spec, dict):
        out = {}
        for k, v in spec.items():
            p = path + (k,)
            if p in IGNORED or ENGINE_DEFAULTS.get(p) == v or k in ("SecretID", "ConfigID"):
                continue
            if not pin_digests and p == ("TaskTemplate", "Placement", "Platforms"):
                continue
            if k == "Target" and "Networks" in path:  # list items share their list's path
                v = (network_names or {}).get(v, v)
            if k == "Image" and isinstance(v, str) and not pin_digests:
                v = v.split("@", 1)[0]
            c = canonical(v, network_names, pin_digests, p)
            if path == ("Mode",) or (k in ZERO_MATTERS and c == 0):
                out[k] = c  # {"Global": {}} and Replicas 0 mean something
            elif c not in (None, "", [], {}, 0, False):
                out[k] = c
        return out
    if isinstance(spec, list):
        return [canonical(v, network_names, pin_digests, path) for v in spec]
    return spec


def diff(old, new, path=""):
    """[(dotted path, old, new)] for every leaf that differs; lists of equal length compare item by item."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += diff(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and old != new \
            and all(isinstance(x, dict) for x in old + new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += diff(a, b, f"{path}[{i}]")
        return out
    if old != new:
        return [(path, old, new)]
    return []


def plan(desired, current, network_names=None, prune=False, pin_digests=False):
    """DesiredStack + what the engine has -> Plan.

    network_names maps network IDs to names (the engine answers with IDs in
    TaskTemplate.Networks). prune removes services and networks of the stack
    that the files no longer have. Raises UsageError when a secret or config
    whose name is fixed by `name:` has new content: Swarm can't change it.
    """
    p = Plan(desired.namespace)
    have_nets = current.get("networks", {})
    for name in sorted(desired.networks):
        p.actions.append(Action("network", name, "unchanged" if name in have_nets else "create"))
    for kind, wanted in (("secret", desired.secrets), ("config", desired.configs)):
        have = current.get(kind + "s", {})
        for name in sorted(wanted):
            if name not in have:
                p.actions.append(Action(kind, name, "create"))
                continue
            old_hash = (have[name].get("Labels") or {}).get(CONTENT_HASH_LABEL)
            new_hash = wanted[name]["Labels"].get(CONTENT_HASH_LABEL)
            if old_hash and new_hash and old_hash != new_hash:
                raise UsageError(f"{kind}s.{wanted[name]['Labels'].get(LOGICAL_NAME_LABEL, name)}: the content of "
                                 f"{kind} {name} changed, and Swarm can't change a {kind}'s data; drop its `name:` "
                                 "to let swarmml version it, or give it a new name (nothing was deployed)")
            p.actions.append(Action(kind, name, "unchanged"))
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
    # Content-hashed secrets and configs are replaced, not updated: an old
    # version no longer wanted goes (once no service uses it; docker/cli keeps them).
    for kind, wanted in (("secret", desired.secrets), ("config", desired.configs)):
        for name, obj in sorted(current.get(kind + "s", {}).items()):
            if name not in wanted and LOGICAL_NAME_LABEL in (obj.get("Labels") or {}):
                p.actions.append(Action(kind, name, "remove"))
    if prune:
        for name in sorted(set(have_nets) - set(desired.networks)):
            p.actions.append(Action("network", name, "remove"))
    return p


def send_credentials(plan_, services):
    """Pure: services (with a registry login to hand over) are updated even when their spec is unchanged.

    What `docker stack deploy --with-registry-auth` does: Swarm keeps the credentials with the
    service, hidden from its spec, so only an update delivers new ones (or the first ones).
    """
    for a in plan_.actions:
        if a.kind == "service" and a.name in services and a.action in ("unchanged", "update"):
            a.action = "update"
            a.changes = list(a.changes) + [("registry credentials", None, "from the docker config")]
    return plan_


def rows(plan_):
    """Table rows for people: action, kind, name, and the changed fields as `path: old -> new`."""
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
