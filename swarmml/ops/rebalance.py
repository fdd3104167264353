"""`swarmml rebalance`: spread replicas evenly again after a node joined or came back.

Swarm places tasks when they are created and never moves them, so a node
that returns from an outage stays empty. Rebalance measures how far the
spread is from even and, only at or above a threshold, moves tasks without
ever running fewer replicas than asked:

- strategy "scale" (default): scale up by just enough replicas that Swarm,
  which places new tasks on the emptiest eligible nodes, fills the emptier
  nodes; then scale back down, and Swarm removes tasks from the nodes that
  hold the most copies (swarmkit's replicated orchestrator does exactly
  this). Exactly the surplus moves; removed tasks drain their requests.
- strategy "force": a start-first forced update (ForceUpdate+1), what
  `docker service update --force` does. Every task is replaced; each new
  one goes to the emptiest node, but the old task of its slot still counts
  while the new one starts, so ties can leave the spread uneven (measured:
  3-3-0 became 1-2-3 once). It is kept for services whose spec must not
  change in replicas even for a moment.
"""
import copy
import time

from swarmml.ops import converge, rollout, services
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import tasks as engine_tasks
from swarmml.errors import SwarmmlError, UsageError
from swarmml.ops import state
from swarmml.ops.results import Change, Imbalance, RebalanceResult
from swarmml.ops.scale import with_replicas

STRATEGIES = ("scale", "force")


def spread(per_node, eligible):
    """Pure: how many replicas the fullest or emptiest eligible node is away from an even spread.

    R replicas on N eligible nodes are even when every node holds floor(R/N)
    or ceil(R/N). Replicas on nodes that are not eligible (drained, down)
    count as displaced: they belong on an eligible node.
    """
    if not eligible:
        return 0
    counts = [per_node.get(n, 0) for n in eligible]
    total = sum(per_node.values())
    hi, lo = -(-total // len(eligible)), total // len(eligible)
    return max(max(counts) - hi, lo - min(counts), 0)


def measure(service, tasks, nodes):
    """Pure: the Imbalance of a service from the engine's task and node lists."""
    p = state.placement(service, tasks, nodes)
    eligible = state.eligible_hostnames(service["Spec"], nodes)
    return Imbalance(service["Spec"]["Name"], p.per_node, eligible, spread(p.per_node, eligible))


def simulate(per_node, eligible, extra, cap=None):
    """Pure: the spread after scaling up by `extra` then back down, as Swarm places and removes tasks.

    Up: each new task goes to an eligible node with the fewest copies (below
    cap). Down: each removed task comes from a node with the most copies.
    """
    counts = {n: per_node.get(n, 0) for n in eligible}
    outside = {n: c for n, c in per_node.items() if n not in counts}
    for _ in range(extra):
        room = [n for n in counts if cap is None or counts[n] < cap]
        if not room:
            return None
        counts[min(room, key=lambda n: counts[n])] += 1
    for _ in range(extra):
        fullest = max(list(counts) + list(outside), key=lambda n: counts.get(n, outside.get(n, 0)))
        if fullest in counts:
            counts[fullest] -= 1
        else:
            outside[fullest] -= 1
    return {**{n: c for n, c in outside.items() if c}, **counts}


def extra_replicas(per_node, eligible, cap=None):
    """Pure: the fewest extra replicas whose scale-up-and-down evens the spread, or None if none does."""
    total = sum(per_node.values())
    for extra in range(1, total + len(eligible) + 1):
        after = simulate(per_node, eligible, extra, cap)
        if after is None:
            return None
        if spread(after, eligible) == 0:
            return extra
    return None


def rebalance(client, name=None, stack=None, threshold=1, strategy="scale", timeout=600, show=True,
              dry_run=False):
    """Even out SERVICE (or every replicated service of STACK) where its spread reaches `threshold`."""
    started = time.monotonic()
    if strategy not in STRATEGIES:
        raise UsageError(f"--strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        raise UsageError(f"--threshold: expected an integer of at least 1, got {threshold!r}")
    all_services = engine_services.services(client)
    if name:
        chosen = [services.match(all_services, name, stack)]
    elif stack:
        chosen = services.of_stack(all_services, stack)
    else:
        raise UsageError("rebalance: give a SERVICE or --stack STACK")
    nodes = engine_nodes.nodes(client)
    result = RebalanceResult(strategy=strategy, threshold=threshold)
    work = []
    for svc in chosen:
        spec = svc["Spec"]
        if state.is_global(spec) or state.is_job(spec):
            if name:
                raise UsageError(f"service {spec['Name']} is {'global' if state.is_global(spec) else 'a job'}: "
                                 "Swarm decides where its tasks go; there is nothing to rebalance")
            continue
        tasks = engine_tasks.tasks(client, svc["ID"])
        imb = measure(svc, tasks, nodes)
        result.before.append(imb)
        want = state.desired_replicas(spec)
        if imb.spread < threshold or want == 0:
            continue
        p = state.placement(svc, tasks, nodes)
        if p.running != want:
            raise SwarmmlError(f"{spec['Name']}: {p.running} of {want} replicas run; rebalancing moves tasks only "
                               "once a service has converged (nothing changed)")
        work.append((svc, imb))
    result.timings["measure_s"] = time.monotonic() - started
    if dry_run or not work:
        result.placements = [state.placement(s, engine_tasks.tasks(client, s["ID"]), nodes) for s in chosen
                             if not state.is_global(s["Spec"])]
        result.duration_s = time.monotonic() - started
        return result

    for svc, imb in work:
        full = svc["Spec"]["Name"]
        how = strategy
        extra = None
        if how == "scale":
            extra = extra_replicas(imb.per_node, imb.eligible, state.max_per_node(svc["Spec"]))
            if extra is None:
                how = "force"  # max_replicas_per_node leaves no room for the extra tasks
        t0 = time.monotonic()
        if how == "scale":
            problems = _by_scaling(client, svc, extra, timeout, show, started)
            result.changes.append(Change(full, "replicas (moved through)", state.desired_replicas(svc["Spec"]),
                                         state.desired_replicas(svc["Spec"]) + extra))
        else:
            problems = _by_forced_update(client, svc, timeout, show, started)
            result.changes.append(Change(full, "TaskTemplate.ForceUpdate", svc["Spec"]["TaskTemplate"].get(
                "ForceUpdate", 0), (svc["Spec"]["TaskTemplate"].get("ForceUpdate") or 0) + 1))
        result.timings[f"{full}_s"] = time.monotonic() - t0
        result.problems += problems
        result.moved.append(full)

    nodes = engine_nodes.nodes(client)
    for full in result.moved:
        svc = engine_services.service(client, full)
        tasks = engine_tasks.tasks(client, svc["ID"])
        after = measure(svc, tasks, nodes)
        result.after.append(after)
        if after.spread >= threshold and not result.problems:
            result.problems.append(f"{full}: still uneven after rebalancing ({_counts(after)})" +
                                   ("; `--strategy scale` moves exactly the surplus" if strategy == "force" else ""))
    result.placements = [state.placement(s, engine_tasks.tasks(client, s["ID"]), nodes)
                         for s in (engine_services.service(client, n) for n in result.moved)]
    result.ok = not result.problems
    result.duration_s = time.monotonic() - started
    return result


def _counts(imb):
    return " ".join(f"{n}:{imb.per_node.get(n, 0)}" for n in imb.eligible)


def _by_scaling(client, svc, extra, timeout, show, started):
    full = svc["Spec"]["Name"]
    want = state.desired_replicas(svc["Spec"])
    marker = rollout.update_marker(svc)
    since = converge.now(client)
    engine_services.update_service(client, svc, with_replicas(svc["Spec"], want + extra))
    up = converge.wait(client, [full], "scale", {full: marker}, timeout=timeout, show=show, started=started,
                       since=since)
    # Back down whatever happened: the service must end with the replicas it had.
    current = engine_services.service(client, full)
    engine_services.update_service(client, current, with_replicas(current["Spec"], want))
    down = converge.wait(client, [full], "scale", {full: rollout.update_marker(current)}, timeout=timeout,
                         show=show, started=started, since=since)
    return up.problems + down.problems


def _by_forced_update(client, svc, timeout, show, started):
    """ForceUpdate+1, start-first for this one update; the service's own UpdateConfig is put back after."""
    full = svc["Spec"]["Name"]
    spec = copy.deepcopy(svc["Spec"])
    spec["TaskTemplate"]["ForceUpdate"] = (spec["TaskTemplate"].get("ForceUpdate") or 0) + 1
    own_config = copy.deepcopy(spec.get("UpdateConfig"))
    spec["UpdateConfig"] = {**(own_config or {}), "Order": "start-first"}
    marker = rollout.update_marker(svc)
    since = converge.now(client)
    engine_services.update_service(client, svc, spec)
    outcome = converge.wait(client, [full], "update", {full: marker}, timeout=timeout, show=show, started=started,
                            since=since)
    if (own_config or {}).get("Order") != "start-first":
        current = engine_services.service(client, full)
        restored = copy.deepcopy(current["Spec"])
        if own_config is None:
            restored.pop("UpdateConfig", None)
        else:
            restored["UpdateConfig"] = own_config
        # UpdateConfig alone replaces no task.
        engine_services.update_service(client, current, restored)
    return outcome.problems
