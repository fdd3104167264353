"""`swarmml rollback`: one service to Swarm's previous spec, or a whole stack to a recorded revision."""
import time

from swarmml.ops import rollout, services
from swarmml.engine import configs as engine_configs
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import swarm as engine_swarm
from swarmml.engine import tasks as engine_tasks
from swarmml.errors import UsageError
from swarmml.ops import deploy, history
from swarmml.ops import state
from swarmml.stack.convert import DesiredStack
from swarmml.ops.results import Change, RollbackResult
from swarmml.ops.scale import finish
from swarmml.ops.update import spec_changes
from swarmml.stack.convert import NAMESPACE_LABEL


def rollback(client, name, stack=None, detach=False, timeout=600, show=True):
    """Back to the service's previous spec, as `docker service rollback`: Swarm swaps Spec and PreviousSpec
    and rolls the tasks with the service's RollbackConfig."""
    started = time.monotonic()
    svc = services.match(engine_services.services(client), name, stack)
    full = svc["Spec"]["Name"]
    if not svc.get("PreviousSpec"):
        raise UsageError(f"service {full} has no previous spec to roll back to (it was never updated, or Swarm "
                         "already rolled its last update back)")
    result = RollbackResult(stack=services.stack_of(svc))
    result.changes = spec_changes(full, svc["Spec"], svc["PreviousSpec"])
    marker = rollout.update_marker(svc)
    since = state.parse_ts(engine_swarm.now(client))
    engine_services.update_service(client, svc, svc["Spec"], rollback=True)
    result.timings["submit_s"] = time.monotonic() - started
    return finish(client, result, [full], "rollback", {full: marker}, detach, timeout, show, started, since)


def stack_changes(current, desired):
    """Pure: [Change] between the services running now and a revision's: created/removed, image, replicas, env.

    current, desired: {full service name: ServiceSpec}.
    """
    out = []
    for name in sorted(set(current) | set(desired)):
        old, new = current.get(name), desired.get(name)
        if old is None:
            out.append(Change(name, "service", None, "created"))
            continue
        if new is None:
            out.append(Change(name, "service", "running", "removed"))
            continue
        oi, ni = (s["TaskTemplate"]["ContainerSpec"].get("Image") for s in (old, new))
        if oi != ni:
            out.append(Change(name, "image", oi, ni))
        orep, nrep = state.desired_replicas(old), state.desired_replicas(new)
        if orep != nrep:
            out.append(Change(name, "replicas", orep, nrep))
        oenv, nenv = (set(s["TaskTemplate"]["ContainerSpec"].get("Env") or []) for s in (old, new))
        if oenv != nenv:
            out.append(Change(name, "env", sorted(oenv - nenv), sorted(nenv - oenv)))
    return out


def missing_secrets(desired, existing):
    """Pure: secrets a revision needs that are gone (their data was never kept in the history)."""
    return sorted(n for n in (desired.get("secrets") or {}) if n not in existing)


def rollback_stack(client, stack, to=None, detach=False, timeout=600, show=True):
    """Redeploy revision `to` of the stack (default: the one before the newest) through swarmml.ops.deploy.

    The rollback is itself recorded as a new revision, so history only grows
    and rolling back twice returns to where you were.
    """

    started = time.monotonic()
    revision, desired = history.load_revision(client, stack, to)
    gone = missing_secrets(desired, engine_configs.secret_names(client))
    if gone:
        raise UsageError(f"revision {revision} of stack {stack!r} uses secrets that no longer exist "
                         f"({', '.join(gone)}); their data is never kept in the history (nothing changed)")
    current = {s["Spec"]["Name"]: s["Spec"] for s in engine_services.services(client, f"{NAMESPACE_LABEL}={stack}")}
    known = getattr(DesiredStack, "__dataclass_fields__", {})
    desired_stack = DesiredStack(**{k: v for k, v in desired.items() if k in known})
    result = RollbackResult(stack=stack, revision=revision)
    result.changes = [Change(stack, "revision", None, revision)] + stack_changes(current, desired["services"])
    applied = deploy.apply(client, desired_stack, prune=True, resolve_image="never", detach=detach,
                           timeout=timeout, show_progress=show)
    result.recorded = getattr(applied, "revision", None)
    result.timings["deploy_s"] = time.monotonic() - started
    conv = getattr(applied, "convergence", None)
    if conv is not None:
        result.ok, result.problems = conv.ok, list(conv.problems)
    result.detached = detach
    nodes = engine_nodes.nodes(client)
    result.placements = [state.placement(s, engine_tasks.tasks(client, s["ID"]), nodes)
                         for s in engine_services.services(client, f"{NAMESPACE_LABEL}={stack}")]
    result.duration_s = time.monotonic() - started
    return result


def list_revisions(client, stack):
    """The stack's kept revisions, oldest first (history.Revision)."""
    found = history.revisions(client, stack)
    if not found:
        raise UsageError(f"stack {stack!r} has no recorded revisions (swarmml deploy records one per change)")
    return found
