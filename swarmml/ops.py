"""Day-2 operations on running services: scale, update, rollback, rebalance.

Each verb checks all its input before changing anything, then waits for
Swarm to converge (unless detached) and returns a typed result.
"""
import time
from dataclasses import dataclass, field

from swarmml import converge, history, placement, services, specs
from swarmml.engine import swarm as engine
from swarmml.errors import SwarmmlError, UsageError


@dataclass
class OpResult:
    verb: str
    changes: list = field(default_factory=list)  # (service, what, old, new)
    placements: list = field(default_factory=list)  # ServicePlacement after the operation
    duration_s: float = 0.0
    ok: bool = True
    problems: list = field(default_factory=list)
    since: str | None = None  # when the change was made: task failures before it are not ours

    def to_json(self):
        return {"verb": self.verb, "ok": self.ok, "duration_s": round(self.duration_s, 3),
                "changes": [{"service": s, "field": f, "old": o, "new": n} for s, f, o, n in self.changes],
                "placement": [p.to_dict() for p in self.placements], "problems": self.problems}


def _finish(result, client, names, detach, timeout, show, started, rollback=False):
    if detach:
        nodes = engine.nodes(client)
        result.placements = [placement.placement(s, engine.tasks(client, [s["ID"]]), nodes)
                             for s in (engine.service(client, n) for n in names)]
    else:
        conv = converge.wait(client, names, timeout=timeout, since=result.since, show=show, rollback=rollback)
        result.placements, result.ok, result.problems = conv.placements, conv.ok, conv.problems
    result.duration_s = time.monotonic() - started
    return result


def scale(client, targets, stack=None, detach=False, timeout=300, show=True):
    """targets: {service name: replicas}."""
    started = time.monotonic()
    found = []
    for name, n in targets.items():
        n = specs.parse_replicas(n, f"replicas for {name}")
        svc = services.find(client, name, stack)
        new_spec = specs.with_replicas(svc["Spec"], n)  # refuses global services
        _check_capacity(client, svc["Spec"], n)
        found.append((svc, n, new_spec))
    result = OpResult("scale")
    for svc, n, new_spec in found:
        old = placement.desired_replicas(svc["Spec"])
        engine.update_service(client, svc["ID"], svc["Version"]["Index"], new_spec)
        result.changes.append((svc["Spec"]["Name"], "replicas", old, n))
    return _finish(result, client, [s["Spec"]["Name"] for s, _, _ in found], detach, timeout, show, started)


def _check_capacity(client, spec, n):
    """Refuse up front what max_replicas_per_node makes impossible, saying why."""
    per_node = spec["TaskTemplate"].get("Placement", {}).get("MaxReplicas")
    if not per_node:
        return
    eligible = [x for x in engine.nodes(client)
                if x["Status"]["State"] == "ready" and x["Spec"].get("Availability") == "active"]
    if n > per_node * len(eligible):
        raise UsageError(f"{spec['Name']}: {n} replicas can't be placed: max_replicas_per_node is {per_node} and "
                         f"{len(eligible)} nodes are eligible (at most {per_node * len(eligible)})")


def update(client, name, stack=None, detach=False, timeout=600, show=True, **options):
    started = time.monotonic()
    svc = services.find(client, name, stack)
    image = options.get("image")
    if image is not None:
        try:
            digest = engine.image_digest(client, image.split("@")[0])
        except SwarmmlError:
            raise UsageError(f"--image: {image} does not exist in its registry (nothing changed)") from None
        options["image"] = image if "@" in image else f"{image}@{digest}"
    new_spec = specs.with_update(svc["Spec"], **options)
    result = OpResult("update")
    result.since = converge.now_iso()
    for path, old, new in _changed(svc["Spec"], new_spec):
        result.changes.append((svc["Spec"]["Name"], path, old, new))
    if not result.changes:
        result.duration_s = time.monotonic() - started
        return result
    engine.update_service(client, svc["ID"], svc["Version"]["Index"], new_spec)
    if detach:
        return _finish(result, client, [svc["Spec"]["Name"]], True, timeout, show, started)
    return _wait_rollout(client, svc["Spec"]["Name"], result, timeout, show, started)


def _changed(old, new):
    from swarmml.stack.plan import canonical, diff
    return diff(canonical(old), canonical(new))


def _wait_rollout(client, name, result, timeout, show, started):
    """Follow Swarm's UpdateStatus; an automatic rollback is waited for, then reported as the failure."""
    conv = converge.wait(client, [name], timeout=timeout, since=result.since, show=show)
    svc = engine.service(client, name)
    state = (svc.get("UpdateStatus") or {}).get("State")
    if state == "rollback_started":
        # Wait for the rollback to finish before reporting, so the service is whole again.
        deadline = time.monotonic() + timeout
        while state == "rollback_started" and time.monotonic() < deadline:
            time.sleep(1)
            svc = engine.service(client, name)
            state = (svc.get("UpdateStatus") or {}).get("State")
        conv = converge.wait(client, [name], timeout=max(30, deadline - time.monotonic()), show=False)
    nodes = engine.nodes(client)
    final = placement.placement(svc, engine.tasks(client, [svc["ID"]]), nodes, result.since)
    result.placements = [final]
    result.duration_s = time.monotonic() - started
    if state in ("rollback_completed", "rollback_started", "rollback_paused", "paused"):
        message = (svc.get("UpdateStatus") or {}).get("Message") or state
        cause = final.failed[-1] if final.failed else "no task error recorded"
        result.ok = False
        result.problems = [f"{name}: update failed and was rolled back ({message}); cause: {cause}"
                           if state.startswith("rollback") else f"{name}: update {state}: {message}; cause: {cause}"]
    else:
        result.ok, result.problems = conv.ok, conv.problems
    return result


def rollback(client, name, stack=None, detach=False, timeout=600, show=True):
    """Back to Swarm's previous spec of one service."""
    started = time.monotonic()
    svc = services.find(client, name, stack)
    if not svc.get("PreviousSpec"):
        raise UsageError(f"service {svc['Spec']['Name']} has no previous spec to roll back to")
    result = OpResult("rollback")
    for path, old, new in _changed(svc["Spec"], svc["PreviousSpec"]):
        result.changes.append((svc["Spec"]["Name"], path, old, new))
    engine.update_service(client, svc["ID"], svc["Version"]["Index"], svc["Spec"], rollback=True)
    return _finish(result, client, [svc["Spec"]["Name"]], detach, timeout, show, started, rollback=True)


def rollback_stack(client, stack, to=None, detach=False, timeout=600, show=True):
    """Redeploy a recorded revision of the whole stack (the one before the newest by default)."""
    from swarmml import deploy
    started = time.monotonic()
    revision, desired = history.load_revision(client, stack, to)
    applied = deploy.apply(client, desired, prune=True, resolve_image="never", detach=detach, timeout=timeout,
                           show_progress=show)
    result = OpResult("rollback")
    result.changes = [(a.name, p, o, n) for a in applied.plan.actions if a.kind == "service"
                      for p, o, n in a.changes] + [(a.name, "service", None, a.action)
                                                   for a in applied.plan.actions
                                                   if a.kind == "service" and a.action in ("create", "remove")]
    result.changes.insert(0, (stack, "revision", None, revision))
    if applied.convergence is not None:
        result.ok, result.problems = applied.convergence.ok, applied.convergence.problems
        result.placements = applied.convergence.placements
    result.duration_s = time.monotonic() - started
    return result


@dataclass
class Imbalance:
    service: str
    per_node: dict
    eligible: list
    spread: int
    moved: bool = False


def measure_imbalance(svc, tasks, nodes):
    """Pure: how many replicas the fullest (or emptiest) eligible node is away from an even spread.

    With R replicas on N eligible nodes, an even spread has floor(R/N) to
    ceil(R/N) on each node; 0 means balanced.
    """
    p = placement.placement(svc, tasks, nodes)
    eligible = sorted(n["Description"]["Hostname"] for n in nodes
                      if n["Status"]["State"] == "ready" and n["Spec"].get("Availability") == "active")
    if not eligible:
        return Imbalance(svc["Spec"]["Name"], p.per_node, eligible, 0)
    want = p.running
    counts = [p.per_node.get(n, 0) for n in eligible]
    hi, lo = -(-want // len(eligible)), want // len(eligible)
    return Imbalance(svc["Spec"]["Name"], p.per_node, eligible, max(max(counts) - hi, lo - min(counts), 0))


def rebalance(client, name=None, stack=None, threshold=1, timeout=600, show=True):
    """Spread replicas evenly again, only where the imbalance reaches threshold, without losing capacity.

    Swarm places new tasks on the emptiest eligible nodes (spread) and, when
    scaling down, removes tasks from the nodes holding the most. So scaling up
    by the emptier nodes' deficit, then back down, evens the spread; at no
    moment are there fewer replicas than before, and removed tasks drain
    their in-flight requests.
    """
    started = time.monotonic()
    if name:
        targets = [services.find(client, name, stack)]
    else:
        if not stack:
            raise UsageError("rebalance: give a SERVICE or --stack STACK")
        targets = [engine.service(client, s["ID"]) for s in engine.stack_objects(client, stack)["services"].values()]
        if not targets:
            raise UsageError(f"no stack named {stack!r}")
    nodes = engine.nodes(client)
    result = OpResult("rebalance")
    moved = []
    for svc in targets:
        if specs.is_global(svc["Spec"]) or placement.desired_replicas(svc["Spec"]) in (None, 0):
            continue
        imb = measure_imbalance(svc, engine.tasks(client, [svc["ID"]], desired_running=True), nodes)
        result.changes.append((imb.service, "imbalance", imb.per_node, imb.spread))
        if imb.spread < threshold:
            continue
        want = placement.desired_replicas(svc["Spec"])
        lo = want // len(imb.eligible)
        deficit = sum(max(0, lo - imb.per_node.get(n, 0)) for n in imb.eligible) or 1
        name_ = svc["Spec"]["Name"]
        engine.update_service(client, svc["ID"], svc["Version"]["Index"], specs.with_replicas(svc["Spec"], want + deficit))
        conv = converge.wait(client, [name_], timeout=timeout, show=show)
        current = engine.service(client, name_)
        engine.update_service(client, current["ID"], current["Version"]["Index"], specs.with_replicas(current["Spec"], want))
        if not conv.ok:
            result.problems += conv.problems
        moved.append(name_)
    if not moved:
        result.duration_s = time.monotonic() - started
        return result
    result.since = converge.now_iso()
    result = _finish(result, client, moved, False, timeout, show, started)
    if result.problems:
        result.ok = False
    return result
