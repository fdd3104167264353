"""`swarmml update`: a health-gated rolling update, rolled back by Swarm when new tasks fail.

Swarm starts a task of the new spec, counts it as running only once its
healthcheck passes, watches it for the update's monitor period, then goes on
to the next batch. With failure_action rollback a failed task makes Swarm
restore the previous spec by itself; we wait for that to finish, then say
what failed.
"""
import copy
import time

from swarmml import labels
from swarmml.ops import rollout, services
from swarmml.engine import images as engine_images
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import swarm as engine_swarm
from swarmml.engine import tasks as engine_tasks
from swarmml.errors import UsageError
from swarmml.ops import state
from swarmml.ops.results import Change, UpdateResult
from swarmml.ops.scale import finish, parse_replicas, with_replicas
from swarmml.stack.plan import diff as plan_diff
from swarmml.stack.units import duration_ns, nano_cpus, size_bytes

ORDERS = ("start-first", "stop-first")
FAILURE_ACTIONS = ("rollback", "pause", "continue")
IMAGE_LABEL = labels.STACK_IMAGE


def with_update(spec, image=None, env=(), replicas=None, cpus=None, memory=None, parallelism=None, delay=None,
                order=None, failure_action=None, monitor=None, force=False):
    """Pure: a new spec with the update options applied; options left None keep their value."""
    out = copy.deepcopy(spec)
    task = out["TaskTemplate"]
    cs = task["ContainerSpec"]
    if image is not None:
        if not str(image).strip() or any(c.isspace() for c in str(image)):
            raise UsageError(f"--image: expected an image reference like registry:5000/app:2, got {image!r}")
        cs["Image"] = image
        labels = out.get("Labels") or {}
        if IMAGE_LABEL in labels:
            # docker stack deploy records the unpinned reference here; keep it telling the truth.
            labels[IMAGE_LABEL] = image.split("@")[0]
    if env:
        current = dict(e.split("=", 1) if "=" in e else (e, None) for e in cs.get("Env") or [])
        for item in env:
            key, sep, value = item.partition("=")
            if not key or not sep:
                raise UsageError(f"--env: expected KEY=VALUE, got {item!r}")
            current[key] = value
        cs["Env"] = sorted(k if v is None else f"{k}={v}" for k, v in current.items())
    if replicas is not None:
        out = with_replicas(out, parse_replicas(replicas, "--replicas"))
        task = out["TaskTemplate"]
    if cpus is not None:
        try:
            if float(cpus) <= 0:
                raise ValueError
            nano = nano_cpus(cpus)
        except (ValueError, UsageError):
            raise UsageError(f"--cpus: expected a positive number like 0.5, got {cpus!r}") from None
        task.setdefault("Resources", {}).setdefault("Limits", {})["NanoCPUs"] = nano
    if memory is not None:
        try:
            size = size_bytes(memory)
            if size <= 0:
                raise UsageError("not positive")
        except UsageError:
            raise UsageError(f"--memory: expected a size like 512M, got {memory!r}") from None
        task.setdefault("Resources", {}).setdefault("Limits", {})["MemoryBytes"] = size
    config = {}
    if parallelism is not None:
        config["Parallelism"] = parse_replicas(parallelism, "--parallelism")
    if delay is not None:
        config["Delay"] = _duration(delay, "--delay")
    if monitor is not None:
        config["Monitor"] = _duration(monitor, "--monitor")
    if order is not None:
        if order not in ORDERS:
            raise UsageError(f"--order: expected one of {', '.join(ORDERS)}, got {order!r}")
        config["Order"] = order
    if failure_action is not None:
        if failure_action not in FAILURE_ACTIONS:
            raise UsageError(f"--failure-action: expected one of {', '.join(FAILURE_ACTIONS)}, got {failure_action!r}")
        config["FailureAction"] = failure_action
    if config:
        out["UpdateConfig"] = {**(out.get("UpdateConfig") or {}), **config}
    if force:
        task["ForceUpdate"] = (task.get("ForceUpdate") or 0) + 1
    return out


def check_options(**options):
    """Pure: raise UsageError for a bad update option, before any engine is asked."""
    skeleton = {"Name": "-", "Mode": {"Replicated": {"Replicas": 1}},
                "TaskTemplate": {"ContainerSpec": {"Image": "-"}}}
    with_update(skeleton, **options)


def _duration(value, flag):
    try:
        ns = duration_ns(value)
    except UsageError:
        raise UsageError(f"{flag}: expected a duration like 5s, got {value!r}") from None
    if ns < 0:
        raise UsageError(f"{flag}: expected a duration that is not negative, got {value!r}")
    return ns


def spec_changes(service, old, new, prefix=""):
    """Pure: [Change] for every leaf that differs between two specs (paths like TaskTemplate.ContainerSpec.Image),
    by the same differ as deploy's plan."""
    return [Change(service, path, a, b) for path, a, b in plan_diff(old, new, prefix)]


def resolve_image(client, image):
    """image -> image@digest as the manager sees it in its registry; UsageError when it isn't there."""
    try:
        digest, _ = engine_images.distribution(client, image)
    except engine_images.RegistryLookupFailed as exc:
        raise UsageError(f"--image {image}: not found in its registry ({exc.reason}); nothing changed") from None
    return image if "@" in image else f"{image}@{digest}"


def update(client, name, stack=None, detach=False, timeout=600, show=True, resolve=True, image=None, env=(),
           replicas=None, cpus=None, memory=None, parallelism=None, delay=None, order=None, failure_action=None,
           monitor=None, force=False):
    """Roll SERVICE to a changed spec and wait; returns an UpdateResult (ok False when Swarm rolled it back)."""
    started = time.monotonic()
    options = dict(image=image, env=env, replicas=replicas, cpus=cpus, memory=memory, parallelism=parallelism,
                   delay=delay, order=order, failure_action=failure_action, monitor=monitor, force=force)
    check_options(**options)
    svc = services.match(engine_services.services(client), name, stack)
    full = svc["Spec"]["Name"]
    with_update(svc["Spec"], **options)  # e.g. --replicas on a global service, before the registry is asked
    if image is not None and resolve:
        options["image"] = resolve_image(client, image)
    if replicas is not None:
        problem = state.capacity_problem(svc["Spec"], parse_replicas(replicas, "--replicas"),
                                         engine_nodes.nodes(client))
        if problem:
            raise UsageError(problem + " (nothing changed)")
    new_spec = with_update(svc["Spec"], **options)
    result = UpdateResult()
    result.changes = spec_changes(full, svc["Spec"], new_spec)
    if not result.changes:
        result.placements = [state.placement(svc, engine_tasks.tasks(client, svc["ID"]), engine_nodes.nodes(client))]
        result.duration_s = time.monotonic() - started
        return result
    marker = rollout.update_marker(svc)
    since = state.parse_ts(engine_swarm.now(client))
    engine_services.update_service(client, svc, new_spec)
    result.timings["submit_s"] = time.monotonic() - started
    finish(client, result, [full], "update", {full: marker}, detach, timeout, show, started, since)
    if not detach and not result.ok:
        explain(client, result, full, new_spec)
    return result


def explain(client, result, name, attempted):
    """After a failed update: what happened to the service and why (a task's error, health output, log)."""
    svc = engine_services.service(client, name)
    us = svc.get("UpdateStatus") or {}
    tasks = engine_tasks.tasks(client, svc["ID"])
    nodes = engine_nodes.nodes(client)
    task = state.failed_task(tasks, attempted["TaskTemplate"])
    if task is not None:
        facts = _container_facts(client, task, nodes)
        result.cause = state.explain_failure(svc, task, nodes, facts)
    st = us.get("State")
    swarm_says = us.get("Message") or st or "no update status"
    if st == "rollback_completed":
        result.rolled_back = True
        line = f"{name}: the update failed and Swarm rolled it back to the previous spec ({swarm_says})"
    elif st in ("paused", "rollback_paused"):
        line = (f"{name}: the update is {st.replace('_', ' ')} ({swarm_says}); roll back with `swarmml rollback "
                f"{services.short_name(svc)}` or retry with `swarmml update {services.short_name(svc)} --force`")
    else:
        line = "; ".join(result.problems) or f"{name}: the update did not finish ({swarm_says})"
    if result.cause:
        line += f"; cause: {result.cause}"
    result.problems = [line]


def _container_facts(client, task, nodes):
    """Inspect the failed task's container where its node's engine can be reached, else None."""
    return engine_tasks.task_container_facts(client, task, state.hostnames(nodes).get(task.get("NodeID")))
