"""The node-loss drill: stop a worker node under load, time the recovery, bring it back, rebalance.

The load runs open loop for the whole drill, so a failed request is counted
whenever it happens: while the node is gone, while Swarm reschedules, while
the node returns and the replicas move back.
"""
import time
from collections import Counter

from swarmml import placement as placements
from swarmml import rollout
from swarmml.engine import swarm as engine
from swarmml.errors import SwarmmlError, UsageError
from swarmml.loadgen import Background

POLL_S = 0.5
RECOVERY_TIMEOUT_S = 120


def choose_victim(tasks, nodes, gateway_nodes):
    """Pure: the worker node running the most replicas, and not the gateway (whose loss is another drill).

    tasks: the service's tasks; nodes: engine node dicts; gateway_nodes: node IDs running the gateway.
    Returns (node id, hostname, replicas on it).
    """
    by_node = {}
    for t in tasks:
        if rollout.is_live(t):
            by_node[t["NodeID"]] = by_node.get(t["NodeID"], 0) + 1
    workers = {n["ID"]: n["Description"]["Hostname"] for n in nodes
               if n["Spec"].get("Role") == "worker" and n["Status"]["State"] == "ready"}
    candidates = [nid for nid in by_node if nid in workers and nid not in gateway_nodes]
    if not candidates:
        raise SwarmmlError("node-loss drill: no ready worker runs replicas without also running the gateway; "
                           "scale the service so that replicas spread over the workers")
    victim = max(candidates, key=lambda nid: (by_node[nid], workers[nid]))
    return victim, workers[victim], by_node[victim]


def summarize(records, t_stop, t_recovered, t_return, t_end):
    """Pure: failed requests overall and per phase of the drill (times on the load's clock, seconds)."""
    phases = {"before": (0, t_stop), "node_lost": (t_stop, t_recovered if t_recovered is not None else t_return),
              "recovered": (t_recovered, t_return) if t_recovered is not None else None,
              "node_back_and_rebalance": (t_return, t_end)}
    out = {}
    for name, span in phases.items():
        if span is None:
            continue
        inside = [r for r in records if span[0] <= r.at_s < span[1]]
        out[name] = {"from_s": round(span[0] - t_stop, 1), "requests": len(inside),
                     "failed": sum(1 for r in inside if r.error)}
    failed = [r for r in records if r.error]
    return {"requests": len(records), "failed": len(failed),
            "failed_pct": round(100.0 * len(failed) / max(len(records), 1), 4),
            "error_kinds": dict(sorted(Counter(r.error for r in failed).items())),
            "failures_at_s": [round(r.at_s - t_stop, 2) for r in failed[:20]],
            "phases": out}


def _running_elsewhere(client, service_id, victim):
    return sum(1 for t in engine.tasks(client, [service_id], desired_running=True)
               if rollout.is_live(t) and t["NodeID"] != victim)


def node_loss(client, name, gateway_name, infer_url, body, cluster, rebalance, stop_node, start_node, node_running,
              rate=100.0, connections=16, max_recovery_s=30.0, max_failed_pct=0.1, on_phase=None):
    """Run the drill on service `name` and return its result as plain data.

    rebalance(client, name), stop_node(cluster, hostname), start_node(cluster, hostname),
    node_running(cluster, hostname): the operations used (swarmml.ops and swarmml.cluster);
    on_phase(text): progress.
    """
    if not cluster:
        raise UsageError("--drill node-loss stops a node's container: it needs a local swarmml cluster "
                         "(`swarmml --cluster NAME verify ...`)")
    say = on_phase or (lambda text: None)
    svc = engine.service(client, name)
    gw = engine.service(client, gateway_name)
    want = placements.desired_replicas(svc["Spec"])
    nodes = engine.nodes(client)
    tasks = engine.tasks(client, [svc["ID"]], desired_running=True)
    gw_nodes = {t["NodeID"] for t in engine.tasks(client, [gw["ID"]], desired_running=True)}
    victim, host, lost = choose_victim(tasks, nodes, gw_nodes)
    problems = []
    recovered = returned = marked_down = None
    stopped = False
    with Background(infer_url, body, connections=connections, rate=rate) as load:
        try:
            time.sleep(3)
            say(f"stopping {host} ({lost} of {want} replicas)")
            t_stop = load.elapsed()
            stop_node(cluster, host)
            stopped = True
            while load.elapsed() - t_stop < RECOVERY_TIMEOUT_S:
                if node_running(cluster, host):
                    # On a shared cluster something else (another `cluster up`) may start the node again.
                    problems.append(f"node-loss drill: {host} was started again by something else "
                                    f"{load.elapsed() - t_stop:.1f} s after the stop; the drill measured nothing")
                    break
                if marked_down is None and _node_state(client, victim) == "down":
                    marked_down = load.elapsed() - t_stop
                if _running_elsewhere(client, svc["ID"], victim) >= want:
                    recovered = load.elapsed() - t_stop
                    break
                time.sleep(POLL_S)
            say(f"{want} replicas running again after {recovered:.1f} s" if recovered is not None
                else f"replicas not back after {RECOVERY_TIMEOUT_S} s")
            time.sleep(3)  # failures right after the recovery still count
            say(f"starting {host}")
            t_return = load.elapsed()
            start_node(cluster, host)
            stopped = False
            returned = load.elapsed() - t_stop
            say("rebalancing")
            before = _per_node(client, name)
            moved = rebalance(client, name)
            time.sleep(2)
            t_end = load.elapsed()
        finally:
            if stopped:  # interrupted or failed with the node down: never leave it stopped
                start_node(cluster, host)
    result = summarize(load.result.records, t_stop, None if recovered is None else t_stop + recovered, t_return, t_end)
    after = _per_node(client, name)
    if recovered is None:
        # Not measured: either the replicas never came back, or the node was restarted under us (said above).
        if not problems:
            problems.append(f"node-loss drill: the {want} replicas did not run again within {RECOVERY_TIMEOUT_S} s")
    elif recovered > max_recovery_s:
        problems.append(f"node-loss drill: replicas ran again after {recovered:.1f} s > {max_recovery_s} s")
    if result["failed_pct"] > max_failed_pct:
        problems.append(f"node-loss drill: {result['failed']} of {result['requests']} requests failed "
                        f"({result['failed_pct']:.3f}% > {max_failed_pct}%)")
    if not moved.ok:
        problems += [f"node-loss drill: rebalance: {p}" for p in moved.problems]
    return {"node": host, "replicas_on_node": lost, "desired": want, "rate": rate, "connections": connections,
            "recovery_s": None if recovered is None else round(recovered, 1),
            "marked_down_s": None if marked_down is None else round(marked_down, 1),
            "heartbeat_s": _heartbeat_s(client),
            "node_back_after_s": None if returned is None else round(returned, 1),
            **result, "rebalance": {"before": before, "after": after, "ok": moved.ok},
            "limits": {"max_recovery_s": max_recovery_s, "max_failed_pct": max_failed_pct},
            "ok": not problems, "problems": problems}


def _heartbeat_s(client):
    """How often nodes report to the managers: Swarm marks a silent node down after a few periods."""
    period = ((engine.swarm_spec(client) or {}).get("Dispatcher") or {}).get("HeartbeatPeriod")
    return period / 1e9 if period else None


def _node_state(client, node_id):
    return next((n["Status"]["State"] for n in engine.nodes(client) if n["ID"] == node_id), None)


def _per_node(client, name):
    svc = engine.service(client, name)
    return placements.placement(svc, engine.tasks(client, [svc["ID"]], desired_running=True),
                                engine.nodes(client)).per_node
