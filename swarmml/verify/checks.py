"""Placement, health and golden-prediction checks: pure functions over plain data."""
import json
from dataclasses import asdict, dataclass


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    data: dict

    def to_dict(self):
        return asdict(self)


def placement_check(place, eligible_nodes, constraints=(), max_per_node=None):
    """Every desired replica runs, on min(replicas, nodes) nodes, with per-node counts within one."""
    want = place.desired if place.desired is not None else len(eligible_nodes)
    counts = {n: place.per_node.get(n, 0) for n in eligible_nodes}
    used = [n for n, c in counts.items() if c]
    spread_ok = True
    detail = []
    if place.running != want:
        detail.append(f"{place.running} of {want} replicas running")
        if place.pending:
            detail.append("pending: " + place.pending[0])
    need_nodes = min(want, len(eligible_nodes))
    if len(used) < need_nodes:
        spread_ok = False
        detail.append(f"replicas on {len(used)} nodes, {need_nodes} possible")
    if counts and max(counts.values()) - min(counts.values()) > 1 and want >= len(eligible_nodes):
        spread_ok = False
        detail.append(f"per-node counts {counts} differ by more than one")
    if not spread_ok:
        reasons = []
        if constraints:
            reasons.append(f"placement constraints {list(constraints)} limit the eligible nodes")
        if max_per_node:
            reasons.append(f"max_replicas_per_node is {max_per_node}")
        reasons.append("Swarm does not move running tasks when nodes join or return: `swarmml rebalance`")
        detail.append("why: " + "; ".join(reasons))
    ok = place.running == want and spread_ok
    return Check("placement", ok, "; ".join(detail) or f"{want} replicas on {len(used)} nodes: {place.per_node}",
                 {"desired": want, "running": place.running, "per_node": place.per_node,
                  "eligible_nodes": list(eligible_nodes)})


def answer_check(seen_replicas, running_containers):
    """Every running replica answered through the gateway (identities from the x-replica header)."""
    seen = set(seen_replicas)
    expected = {c[:12] for c in running_containers}
    missing = sorted(expected - seen)
    strangers = sorted(seen - expected)
    ok = not missing
    detail = (f"all {len(expected)} replicas answered" if ok else
              f"{len(missing)} of {len(expected)} replicas never answered: {', '.join(missing)}")
    if strangers:
        detail += f"; answers also came from replicas no longer running: {', '.join(strangers)}"
    return Check("every_replica_answers", ok, detail,
                 {"expected": len(expected), "seen": len(seen & expected), "missing": missing})


def golden_check(bodies, expected_replicas):
    """Every replica gives the same outputs for the golden inputs."""
    outputs = {}
    for replica, body in bodies.items():
        try:
            outs = json.loads(body)["outputs"]
            outputs[replica] = json.dumps([(o["name"], o["data"]) for o in outs])
        except (ValueError, KeyError, TypeError):
            outputs[replica] = f"unparseable: {body[:80]!r}"
    distinct = set(outputs.values())
    ok = len(distinct) == 1 and len(outputs) >= expected_replicas
    if len(distinct) > 1:
        detail = f"replicas disagree: {len(distinct)} different answers"
    elif len(outputs) < expected_replicas:
        detail = f"golden answers from {len(outputs)} of {expected_replicas} replicas"
    else:
        detail = f"{len(outputs)} replicas gave identical predictions"
    return Check("golden_predictions", ok, detail, {"replicas": len(outputs), "distinct_answers": len(distinct)})
