"""What `cluster up --expose` and `--registry-auth` must change on a running local cluster: pure decisions.

Docker can't add published ports or change the entrypoint of a container that
exists, so exposing a running cluster recreates its managers' node containers
(swarmml/cluster/local.py does the I/O), one at a time and the leader last, each
with the same name, address, data volume and flags. These functions decide
what to recreate, in which order, whether to drain a node first, whether it
will get its address back, and when the swarm has settled enough to go on to
the next node.
"""
from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass

from swarmml.cluster import expose as exposing


@dataclass(frozen=True)
class Change:
    """expose: the kinds every manager answers on once changed (empty: it stays as it is);
    registry_auth: the registry starts asking for a login."""

    expose: tuple = ()
    registry_auth: bool = False

    def __bool__(self) -> bool:
        return bool(self.expose) or self.registry_auth


def plan_change(exposed, wanted, asks_login: bool, wants_login: bool) -> Change:
    """What a running cluster lacks of what `up` was asked for.

    Both flags only add: a cluster exposed over ssh and asked for tls answers over both
    afterwards, and `up` without the flags takes nothing away (as a second `up` changes nothing).
    """
    kinds = set(exposed) | set(wanted)
    grown = tuple(k for k in exposing.KINDS if k in kinds) if set(wanted) - set(exposed) else ()
    return Change(grown, bool(wants_login and not asks_login))


def recreate_order(rows) -> list[str]:
    """The hostnames to recreate for --expose: every manager and node1 (where the host publishes the
    ports), the leader last, so that the swarm elects a new leader at most once."""
    chosen = [r for r in rows if r["role"] == "manager" or r["hostname"] == "node1"]
    return [r["hostname"] for r in sorted(chosen, key=lambda r: (bool(r.get("leader")), _node_number(r)))]


def drains(host: str, rows) -> bool:
    """Whether host is drained before it is run again: when it takes tasks now, and another ready,
    active node can take them (a lone node's tasks would have nowhere to go, and only wait)."""
    me = next(r for r in rows if r["hostname"] == host)
    return me["availability"] == "active" and any(
        r["hostname"] != host and r["state"] == "ready" and r["availability"] == "active" for r in rows)


def _node_number(row) -> int:
    digits = "".join(ch for ch in row["hostname"] if ch.isdigit())
    return int(digits) if digits else 0


def lowest_free(subnet: str, taken) -> str | None:
    """The address a bridge network gives the next container: its lowest free host address.

    Measured on dockerd 20.10: a freed address is handed out again at once (not the next one in
    turn), and a network made without --subnet refuses a chosen one (`--ip`), so this is the only
    way a recreated container gets its old address back.
    """
    taken = {ipaddress.ip_address(a) for a in taken if a}
    for host in ipaddress.ip_network(subnet).hosts():
        if host not in taken:
            return str(host)
    return None


def keeps_address(network: dict, address: str) -> bool:
    """Whether a container that holds address on network gets it back when it is removed and another
    one connects (network: nodes.network_addresses' answer)."""
    others = {a for a in network["held"].values() if a != address}
    return lowest_free(network["subnet"], others | {network["gateway"]}) == address


def settled(rows, nodes: int) -> bool:
    """The swarm has a leader, at least `nodes` nodes are ready, and every manager is reachable."""
    ready = [r for r in rows if r["state"] == "ready"]
    managers = [r for r in rows if r["role"] == "manager"]
    return (any(r.get("leader") for r in rows) and len(ready) >= nodes
            and all(r.get("reachable") for r in managers))


def tasks_back(before, now) -> bool:
    """Every service runs at least as many tasks as it did before the change (rows with a "service")."""
    had, has = Counter(t["service"] for t in before), Counter(t["service"] for t in now)
    return all(has[s] >= n for s, n in had.items())
