"""The node-loss drill: lose a node under load (any role), time the recovery, bring it back, rebalance.

A node is lost by killing its container, as a machine is lost, or by cutting its network
(a partition: it keeps running, and may keep its tasks, until it comes back). The drill
times what a user sees: failed requests per phase, when the entry point answers again,
when a new leader is elected and swarmml's commands work, when the desired replicas run.

The load runs open loop for the whole drill, so a failed request is counted
whenever it happens: while the node is gone, while Swarm reschedules, while
the node returns and the replicas move back.
"""
import time
from collections import Counter

from swarmml.ops import placement as placements
from swarmml.ops import rollout, services
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import swarm as engine_swarm
from swarmml.engine import tasks as engine_tasks
from swarmml.errors import SwarmmlError, UsageError
from swarmml.verify.loadgen import Background

POLL_S = 0.5
RECOVERY_TIMEOUT_S = 120


ROLES = ("leader", "gateway", "worker")
HOW = ("stop", "partition")


def roles_of(nodes, holder):
    """Pure: node id -> what it is to the drill: leader (of Swarm's raft), gateway (holds the entry point)."""
    out = {}
    for n in nodes:
        r = []
        if (n.get("ManagerStatus") or {}).get("Leader"):
            r.append("leader")
        if n["ID"] == holder:
            r.append("gateway")
        out[n["ID"]] = r
    return out


def choose_node(which, tasks, nodes, holder):
    """Pure: the node the drill loses. which: a hostname, or leader, gateway or worker.

    holder: the node id that holds the entry point (the floating IP, or the gateway task whose
    address clients use). A worker is a ready node that is neither: a Swarm worker first, then
    the one running the most replicas. Returns (node id, hostname, replicas on it, its roles).
    """
    by_node = {}
    for t in tasks:
        if rollout.is_live(t):
            by_node[t["NodeID"]] = by_node.get(t["NodeID"], 0) + 1
    ready = {n["ID"]: n for n in nodes if n["Status"]["State"] == "ready"}
    roles = roles_of(nodes, holder)
    names = {n["ID"]: n["Description"]["Hostname"] for n in nodes}
    if which in ("leader", "gateway"):
        found = [nid for nid in ready if which in roles[nid]]
        if not found:
            raise UsageError(f"--node {which}: no ready node is the {which}"
                             + (" (no node holds the gateway's address)" if which == "gateway" else ""))
        victim = found[0]
    elif which == "worker":
        candidates = [nid for nid in ready if not roles[nid] and by_node.get(nid)]
        if not candidates:
            raise UsageError("--node worker: no ready node runs replicas without being the leader or holding the "
                             "gateway's address; scale the service so that replicas spread over the nodes")
        victim = max(candidates, key=lambda nid: (ready[nid]["Spec"].get("Role") == "worker", by_node[nid],
                                                  names[nid]))
    else:
        found = [nid for nid, host in names.items() if host == which]
        if not found:
            raise UsageError(f"--node: expected a node's hostname or {', '.join(ROLES)}, got {which!r} "
                             f"(nodes: {', '.join(sorted(names.values()))})")
        victim = found[0]
    return victim, names[victim], by_node.get(victim, 0), roles[victim]


def quorum_problem(nodes, victim):
    """Pure: why losing `victim` would leave the swarm without a quorum of managers, or None."""
    managers = [n for n in nodes if n["Spec"].get("Role") == "manager"]
    if not any(n["ID"] == victim for n in managers):
        return None
    left = sum(1 for n in managers if n["ID"] != victim and n["Status"]["State"] == "ready")
    if left * 2 <= len(managers):
        return (f"losing it leaves {left} of {len(managers)} managers, no quorum: Swarm could not reschedule "
                "anything; run 3 managers (`swarmml cluster up` does by default)")
    return None


def answers_again_s(records, t_stop, t_end=None):
    """Pure: the longest time after the loss in which no request got an answer: how long the entry point was gone.

    Measured between answers, not from the loss: a node dies a moment after its container is
    killed, and the entry point moving to another node shows as requests that hang, then all
    answer at once. None when nothing answered after the loss.
    """
    done = sorted(r.at_s + r.latency_ms / 1000 for r in records if not r.error)
    done = [t for t in done if t >= t_stop and (t_end is None or t <= t_end)]
    if not done:
        return None
    points = [t_stop] + done + ([t_end] if t_end is not None else [])  # silent until the end counts too
    return round(max(b - a for a, b in zip(points, points[1:])), 2)


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
    return sum(1 for t in engine_tasks.tasks(client, [service_id], desired_running=True)
               if rollout.is_live(t) and t["NodeID"] != victim)


def node_loss(client, name, gateway_name, infer_url, body, cluster, rebalance, stop_node, start_node, node_running,
              rate=100.0, connections=16, max_recovery_s=30.0, max_failed_pct=0.1, on_phase=None, node="worker",
              how="stop", cut_node=None, mend_node=None, vip_holder=None, running_containers=None):
    """Run the drill on service `name` and return its result as plain data.

    node: a hostname, or leader, gateway or worker (choose_node); how: stop (the node's container
    is killed, as a machine is lost) or partition (its network is cut, then mended).
    rebalance(client, name), stop_node(cluster, hostname), start_node(cluster, hostname),
    node_running(cluster, hostname), cut_node(cluster, hostname) -> route, mend_node(cluster,
    hostname, route), vip_holder(cluster, address) -> hostname, running_containers(cluster,
    service) -> count: the operations used (swarmml.ops and swarmml.cluster.local); on_phase(text): progress.
    """
    if not cluster:
        raise UsageError("--drill node-loss stops a node's container: it needs a local swarmml cluster "
                         "(`swarmml --cluster NAME verify ...`)")
    if how not in HOW:
        raise UsageError(f"--how: expected stop or partition, got {how!r}")
    say = on_phase or (lambda text: None)
    svc = engine_services.service(client, name)
    want = placements.desired_replicas(svc["Spec"])
    victim, host, lost, roles, vip = pick(client, name, gateway_name, cluster, node, vip_holder)
    problems = []
    recovered = returned = marked_down = commands_back = leader_back = None
    was_leader = "leader" in roles
    lost_it = False
    route = None
    with Background(infer_url, body, connections=connections, rate=rate) as load:
        try:
            time.sleep(3)
            say(f"{'cutting off' if how == 'partition' else 'stopping'} {host} ({_describe(roles, lost, want)})")
            t_stop = load.elapsed()
            if how == "partition":
                route = cut_node(cluster, host)
            else:
                stop_node(cluster, host)
            lost_it = True
            while load.elapsed() - t_stop < RECOVERY_TIMEOUT_S:
                if how == "stop" and node_running(cluster, host):
                    # On a shared cluster something else (another `cluster up`) may start the node again.
                    problems.append(f"node-loss drill: {host} was started again by something else "
                                    f"{load.elapsed() - t_stop:.1f} s after the stop; the drill measured nothing")
                    break
                try:
                    now_nodes = engine_nodes.nodes(client)
                except SwarmmlError:
                    now_nodes = None  # no leader yet: swarmml's commands would fail now
                if now_nodes is not None:
                    if commands_back is None:
                        commands_back = load.elapsed() - t_stop
                    leader = next((n["ID"] for n in now_nodes if (n.get("ManagerStatus") or {}).get("Leader")), None)
                    if leader_back is None and leader and leader != victim:
                        leader_back = load.elapsed() - t_stop
                    if marked_down is None and _state(now_nodes, victim) in ("down", "unknown"):
                        marked_down = load.elapsed() - t_stop
                    if recovered is None and _running_elsewhere(client, svc["ID"], victim) >= want:
                        recovered = load.elapsed() - t_stop
                    if recovered is not None and (leader_back is not None or not was_leader):
                        break
                time.sleep(POLL_S)
            say(f"{want} replicas running again after {recovered:.1f} s" if recovered is not None
                else f"replicas not back after {RECOVERY_TIMEOUT_S} s")
            time.sleep(3)  # failures right after the recovery still count
            say(f"bringing {host} back")
            t_return = load.elapsed()
            if how == "partition":
                mend_node(cluster, host, route)
                _wait_ready(client, victim)
            else:
                start_node(cluster, host)
            lost_it = False
            returned = load.elapsed() - t_stop
            extra = _duplicates(cluster, name, want, running_containers, load) if running_containers else None
            say("rebalancing")
            before = _per_node(client, name)
            moved = rebalance(client, name)
            time.sleep(2)
            t_end = load.elapsed()
        finally:
            if lost_it:  # interrupted or failed with the node lost: never leave it so
                if how == "partition":
                    mend_node(cluster, host, route)
                else:
                    start_node(cluster, host)
    records = load.result.records
    result = summarize(records, t_stop, None if recovered is None else t_stop + recovered, t_return, t_end)
    after = _per_node(client, name)
    if recovered is None:
        # Not measured: either the replicas never came back, or the node was restarted under us (said above).
        if not problems:
            problems.append(f"node-loss drill: the {want} replicas did not run again within {RECOVERY_TIMEOUT_S} s")
    elif recovered > max_recovery_s:
        problems.append(f"node-loss drill: replicas ran again after {recovered:.1f} s > {max_recovery_s} s")
    if was_leader and leader_back is None:
        problems.append(f"node-loss drill: no new leader within {RECOVERY_TIMEOUT_S} s")
    if result["failed_pct"] > max_failed_pct:
        problems.append(f"node-loss drill: {result['failed']} of {result['requests']} requests failed "
                        f"({result['failed_pct']:.3f}% > {max_failed_pct}%)")
    if extra and extra["left"]:
        problems.append(f"node-loss drill: {extra['left']} replicas beyond the desired {want} still ran "
                        f"{extra['waited_s']} s after {host} came back")
    if not moved.ok:
        problems += [f"node-loss drill: rebalance: {p}" for p in moved.problems]
    return {"node": host, "roles": roles, "how": how, "replicas_on_node": lost, "desired": want, "rate": rate,
            "connections": connections, "entry_point": vip or infer_url,
            "answers_again_s": answers_again_s(records, t_stop, t_return),
            "commands_back_s": None if commands_back is None else round(commands_back, 1),
            "leader_elected_s": None if leader_back is None or not was_leader else round(leader_back, 1),
            "recovery_s": None if recovered is None else round(recovered, 1),
            "marked_down_s": None if marked_down is None else round(marked_down, 1),
            "heartbeat_s": _heartbeat_s(client),
            "node_back_after_s": None if returned is None else round(returned, 1),
            "duplicates": extra,
            **result, "rebalance": {"before": before, "after": after, "ok": moved.ok},
            "limits": {"max_recovery_s": max_recovery_s, "max_failed_pct": max_failed_pct},
            "ok": not problems, "problems": problems}


def pick(client, name, gateway_name, cluster, node, vip_holder=None):
    """The node to lose, read from the swarm: (node id, hostname, replicas on it, roles, floating IP or None).

    Raises UsageError when there is no such node, or when losing it would cost the swarm its quorum.
    """
    svc = engine_services.service(client, name)
    gw = engine_services.service(client, gateway_name)
    nodes = engine_nodes.nodes(client)
    tasks = engine_tasks.tasks(client, [svc["ID"]], desired_running=True)
    vip = services.floating_ip(gw, engine_services.services(client))
    victim, host, lost, roles = choose_node(node, tasks, nodes, _holder(client, gw, nodes, cluster, vip, vip_holder))
    why_not = quorum_problem(nodes, victim)
    if why_not:
        raise UsageError(f"--node {node}: {host} is a manager, and {why_not}")
    return victim, host, lost, roles, vip


def _describe(roles, lost, want):
    what = {"leader": "the leader", "gateway": "holds the entry point"}
    return ", ".join([what[r] for r in roles] + [f"{lost} of {want} replicas"])


def _holder(client, gw, nodes, cluster, vip, vip_holder):
    """The node id that holds the entry point: the floating IP's node, else the first running gateway task's."""
    if vip and vip_holder:
        host = vip_holder(cluster, vip)
        return next((n["ID"] for n in nodes if n["Description"]["Hostname"] == host), None)
    gw_tasks = [t for t in engine_tasks.tasks(client, [gw["ID"]], desired_running=True) if rollout.is_live(t)]
    return gw_tasks[0]["NodeID"] if gw_tasks else None


def _state(nodes, node_id):
    return next((n["Status"]["State"] for n in nodes if n["ID"] == node_id), None)


def _wait_ready(client, node_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _state(engine_nodes.nodes(client), node_id) == "ready":
                return
        except SwarmmlError:
            pass
        time.sleep(POLL_S)


def _duplicates(cluster, name, want, running_containers, load, timeout=60):
    """After a partition: replicas that ran on both sides, until Swarm stops the extra ones."""
    start = load.elapsed()
    most = running_containers(cluster, name)
    while load.elapsed() - start < timeout:
        count = running_containers(cluster, name)
        most = max(most, count)
        if count <= want:
            return {"most": most, "left": 0, "waited_s": round(load.elapsed() - start, 1)}
        time.sleep(POLL_S)
    return {"most": most, "left": running_containers(cluster, name) - want, "waited_s": round(timeout, 1)}


def _heartbeat_s(client):
    """How often nodes report to the managers: Swarm marks a silent node down after a few periods."""
    period = ((engine_swarm.swarm_spec(client) or {}).get("Dispatcher") or {}).get("HeartbeatPeriod")
    return period / 1e9 if period else None


def _per_node(client, name):
    svc = engine_services.service(client, name)
    return placements.placement(svc, engine_tasks.tasks(client, [svc["ID"]], desired_running=True),
                                engine_nodes.nodes(client)).per_node
