"""Placement, health and golden-prediction checks: pure functions over plain data.

Placement follows Swarm's own rules for which nodes may run a task (state,
availability, constraints, platforms, reservations, max replicas per node),
so that when replicas can't spread, the check says which rule prevents it.
"""
import json
from dataclasses import asdict, dataclass

from swarmml.ops.placement import constraint_holds


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    data: dict

    def to_dict(self):
        return asdict(self)


# --- which nodes may run a task ------------------------------------------------------

# Nodes report the kernel's machine name; image platforms name Go's architecture.
_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm", "i386": "386"}


def _arch(name):
    return _ARCH.get((name or "").lower(), (name or "").lower())


def node_exclusions(nodes, placement_spec=None, reservations=None):
    """{hostname: why no task of this service may run there}, for engine node dicts; unlisted nodes are eligible."""
    placement_spec = placement_spec or {}
    reservations = reservations or {}
    why = {}
    for n in nodes:
        desc, spec = n.get("Description") or {}, n.get("Spec") or {}
        have = desc.get("Platform") or {}
        res = desc.get("Resources") or {}
        reasons = []
        if n["Status"]["State"] != "ready":
            reasons.append(f"node is {n['Status']['State']}")
        if spec.get("Availability") != "active":
            reasons.append(f"availability is {spec.get('Availability')}")
        reasons += [f"constraint {c} excludes it" for c in placement_spec.get("Constraints") or []
                    if not constraint_holds(c, n)]
        platforms = placement_spec.get("Platforms") or []
        if platforms and not any((not p.get("OS") or p["OS"].lower() == (have.get("OS") or "").lower()) and
                                 (not p.get("Architecture")
                                  or _arch(p["Architecture"]) == _arch(have.get("Architecture")))
                                 for p in platforms):
            reasons.append(f"the image has no {have.get('OS')}/{have.get('Architecture')} variant")
        cpus, mem = reservations.get("NanoCPUs"), reservations.get("MemoryBytes")
        if cpus and res.get("NanoCPUs") and cpus > res["NanoCPUs"]:
            reasons.append(f"a replica reserves {cpus / 1e9:g} CPU, the node has {res['NanoCPUs'] / 1e9:g}")
        if mem and res.get("MemoryBytes") and mem > res["MemoryBytes"]:
            reasons.append(f"a replica reserves {mem >> 20} MiB, the node has {res['MemoryBytes'] >> 20}")
        if reasons:
            why[desc.get("Hostname") or n["ID"][:12]] = "; ".join(reasons)
    return why


def placement_check(place, nodes, placement_spec=None, reservations=None):
    """Every desired replica runs, on min(replicas, eligible nodes) nodes, per-node counts within one.

    place: swarmml.ops.placement.Placement; nodes: engine node dicts; placement_spec:
    the service's TaskTemplate.Placement; reservations: its Resources.Reservations.
    """
    placement_spec = placement_spec or {}
    excluded = node_exclusions(nodes, placement_spec, reservations)
    hosts = [(n.get("Description") or {}).get("Hostname") or n["ID"][:12] for n in nodes]
    eligible = sorted(h for h in hosts if h not in excluded)
    want = place.desired if place.desired is not None else len(eligible)
    counts = {n: place.per_node.get(n, 0) for n in eligible}
    used = sorted(n for n, c in place.per_node.items() if c)
    problems, causes = [], []
    if place.running != want:
        problems.append(f"{place.running} of {want} replicas running")
    need = min(want, len(eligible))
    if len(used) < need:
        problems.append(f"replicas on {len(used)} nodes, {need} possible")
    if counts and max(counts.values()) - min(counts.values()) > 1:
        problems.append("per-node counts " + ", ".join(f"{n}:{c}" for n, c in counts.items())
                        + " differ by more than one")
    max_per_node = placement_spec.get("MaxReplicas")
    if problems:
        if not eligible:
            causes.append("no node may run it")
        if max_per_node and want > max_per_node * len(eligible):
            causes.append(f"max_replicas_per_node {max_per_node} x {len(eligible)} eligible nodes "
                          f"= {max_per_node * len(eligible)} < {want}")
        prefs = [p.get("Spread", {}).get("SpreadDescriptor") for p in placement_spec.get("Preferences") or []]
        prefs = [p for p in prefs if p and p.lower() != "node.id"]
        if prefs:
            causes.append(f"placement preferences spread over {', '.join(prefs)}: Swarm balances across their "
                          "values, not across nodes")
        causes += (place.unplaceable + place.pending)[:2]
        if not causes and place.running == want:
            causes.append("Swarm does not move running tasks when nodes join or come back: `swarmml rebalance` "
                          "evens the spread")
    detail = "; ".join(problems) if problems else \
        f"{want} replicas on {len(used)} nodes: " + ", ".join(f"{n}:{c}" for n, c in place.per_node.items())
    if excluded:
        detail += "; not eligible: " + "; ".join(f"{h} ({r})" for h, r in sorted(excluded.items()))
    if causes:
        detail += "; why: " + "; ".join(causes)
    return Check("placement", not problems, detail,
                 {"desired": want, "running": place.running, "per_node": place.per_node, "eligible_nodes": eligible,
                  "excluded_nodes": excluded})


# --- answers through the gateway ------------------------------------------------------

def answer_check(seen_replicas, running_containers):
    """Every running replica answered through the gateway (identities from the x-replica header).

    The model service names itself by its hostname, which Swarm sets to the
    container's short (12 hex) ID.
    """
    seen = set(seen_replicas)
    expected = {c[:12] for c in running_containers}
    missing = sorted(expected - seen)
    strangers = sorted(seen - expected)
    ok = not missing and bool(expected)
    detail = (f"all {len(expected)} replicas answered" if ok else
              "no replica is running" if not expected else
              f"{len(missing)} of {len(expected)} replicas never answered: {', '.join(missing)}")
    if strangers:
        detail += f"; answers also came from replicas not running any more: {', '.join(strangers)}"
    return Check("every_replica_answers", ok, detail,
                 {"expected": len(expected), "seen": len(seen & expected), "missing": missing})


def golden_check(bodies, running_containers):
    """Every running replica gives the same outputs for the golden inputs. bodies: {replica: response body}.

    Answers from replicas that are no longer running (a previous spec's tasks still draining behind the gateway)
    are left out: they may serve an older model, and they are not the replicas being verified.
    """
    expected = {c[:12] for c in running_containers}
    outputs = {}
    for replica, body in bodies.items():
        if replica not in expected:
            continue
        try:
            outs = json.loads(body)["outputs"]
            outputs[replica] = json.dumps(sorted((o["name"], o["data"]) for o in outs))
        except (ValueError, KeyError, TypeError):
            outputs[replica] = f"unparseable: {body[:80]!r}"
    groups = {}
    for replica, answer in sorted(outputs.items()):
        groups.setdefault(answer, []).append(replica)
    ok = len(groups) == 1 and len(outputs) >= len(expected) and not next(iter(groups)).startswith("unparseable")
    if len(groups) > 1:
        detail = f"replicas disagree: {len(groups)} different answers (" + \
            "; ".join(", ".join(r) for r in groups.values()) + ")"
    elif not ok and outputs:
        detail = (f"golden answers from {len(outputs)} of {len(expected)} replicas"
                  if len(outputs) < len(expected) else f"answers are not inference responses: {next(iter(groups))}")
    elif not outputs:
        detail = "no golden answer came back"
    else:
        detail = f"{len(outputs)} replicas gave identical predictions"
    return Check("golden_predictions", ok, detail, {"replicas": len(outputs), "distinct_answers": len(groups)})
