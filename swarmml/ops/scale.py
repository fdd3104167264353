"""`swarmml scale`: set the replicas of one or more services and wait until they run."""
import copy
import re
import time

from swarmml import labels
from swarmml.ops import converge, rollout, services
from swarmml.stack import gateway_slots
from swarmml.engine import configs as engine_configs
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import swarm as engine_swarm
from swarmml.engine import tasks as engine_tasks
from swarmml.errors import UsageError
from swarmml.ops import state
from swarmml.ops.results import Change, ScaleResult


def parse_replicas(value, where="replicas"):
    """'10' -> 10; anything but a non-negative integer is a UsageError."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
        return int(value)
    raise UsageError(f"{where}: expected a non-negative integer, got {value!r}")


def parse_targets(args):
    """['predictor', '10'] or ['predictor=10', 'gateway=2'] -> {'predictor': 10, ...}."""
    args = list(args)
    if len(args) == 2 and "=" not in args[0] and "=" not in args[1]:
        return {args[0]: parse_replicas(args[1], f"replicas for {args[0]}")}
    out = {}
    for a in args:
        name, sep, n = a.partition("=")
        if not sep or not name:
            raise UsageError(f"{a!r}: expected SERVICE=REPLICAS (or SERVICE REPLICAS)")
        if name in out:
            raise UsageError(f"{name!r} is given twice")
        out[name] = parse_replicas(n, f"replicas for {name}")
    if not out:
        raise UsageError("nothing to scale: give SERVICE REPLICAS or SERVICE=REPLICAS")
    return out


def with_replicas(spec, n):
    """Pure: the spec with n replicas (or n completions for a replicated job); global services refuse."""
    if state.is_global(spec):
        raise UsageError(f"service {spec['Name']} is global (one task on every eligible node); it can't be scaled "
                         "— change its placement constraints or use a replicated service")
    out = copy.deepcopy(spec)
    if "ReplicatedJob" in (out.get("Mode") or {}):
        out["Mode"]["ReplicatedJob"]["TotalCompletions"] = n
    else:
        out["Mode"] = {"Replicated": {"Replicas": n}}
    return out


def _gateway_limits(client, all_services, namespace):
    """{service name: (slots, where)} for the services a stack's gateways route to, from the configs the
    stack's services mount (namespace None: the services outside any stack)."""
    stack = {s["Spec"]["Name"]: s["Spec"] for s in all_services
             if (s["Spec"].get("Labels") or {}).get(labels.STACK_NAMESPACE) == namespace}
    refs = {r["ConfigName"]: r["ConfigID"] for spec in stack.values()
            for r in spec["TaskTemplate"].get("ContainerSpec", {}).get("Configs") or []}
    configs = {name: engine_configs.config_data(client, config_id) for name, config_id in refs.items()}
    return gateway_slots.limits(stack, configs)


def scale(client, replicas, stack=None, detach=False, timeout=300, show=True):
    """Set replicas: `scale(client, {"predictor": 10}, stack="ml")`. Returns a ScaleResult.

    Every name and number is checked, and every target checked against
    max_replicas_per_node, before any service changes.
    """
    started = time.monotonic()
    if not isinstance(replicas, dict) or not replicas:
        raise UsageError("nothing to scale: give {service: replicas}")
    all_services = engine_services.services(client)
    nodes = engine_nodes.nodes(client)
    plan = []
    limits = {}  # per stack namespace: its configs are read once however many of its services are scaled
    for name, n in replicas.items():
        n = parse_replicas(n, f"replicas for {name}")
        svc = services.match(all_services, name, stack)
        new_spec = with_replicas(svc["Spec"], n)
        namespace = (svc["Spec"].get("Labels") or {}).get(labels.STACK_NAMESPACE)
        if namespace not in limits:
            limits[namespace] = _gateway_limits(client, all_services, namespace)
        problem = (state.capacity_problem(svc["Spec"], n, nodes)
                   or gateway_slots.problem(svc["Spec"]["Name"], n, limits[namespace].get(svc["Spec"]["Name"])))
        if problem:
            raise UsageError(problem + " (nothing changed)")
        plan.append((svc, n, new_spec))
    names = [svc["Spec"]["Name"] for svc, _, _ in plan]
    if len(set(names)) != len(names):
        raise UsageError("the same service is named twice (by short and full name)")

    result = ScaleResult()
    since = state.parse_ts(engine_swarm.now(client))
    markers = {svc["Spec"]["Name"]: rollout.update_marker(svc) for svc, _, _ in plan}
    for svc, n, new_spec in plan:
        old = state.desired_replicas(svc["Spec"])
        if old == n:
            continue
        engine_services.update_service(client, svc, new_spec)
        result.changes.append(Change(svc["Spec"]["Name"], "replicas", old, n))
    result.timings["submit_s"] = time.monotonic() - started
    finish(client, result, names, "scale", markers, detach, timeout, show, started, since)
    return result


def finish(client, result, names, mode, markers, detach, timeout, show, started, since=None):
    """Wait (unless detached) and fill the result's placement, status and durations."""
    if detach:
        nodes = engine_nodes.nodes(client)
        result.detached = True
        result.placements = [state.placement(s, engine_tasks.tasks(client, s["ID"]), nodes, since)
                             for s in (engine_services.service(client, n) for n in names)]
    else:
        outcome = converge.wait(client, names, mode, markers, timeout=timeout, since=since, show=show,
                                started=started)
        result.placements = outcome.placements
        result.ok, result.problems = outcome.ok, outcome.problems
        result.timings["converge_s"] = outcome.duration_s
        if hasattr(result, "batches"):
            result.batches = outcome.batches
    result.duration_s = time.monotonic() - started
    return result
