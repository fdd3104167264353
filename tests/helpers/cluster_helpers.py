"""The test cluster as a whole: waiting until a drill's damage is undone."""
import time

from swarmml.engine import nodes as engine_nodes
from swarmml.errors import SwarmmlError


class NotSettled(AssertionError):
    pass


def settled(client, timeout=180):
    """Until the swarm has a leader and every node is ready: a node that was killed, stopped or cut off, and
    is back, first shows as down while it rejoins, and a leader election takes Swarm's 10-20 s (CI once
    started the partition drill while the swarm had no leader, and every later test failed with it)."""
    deadline = time.monotonic() + timeout
    nodes = []
    while True:
        try:
            nodes = engine_nodes.nodes(client)
            if (all(n["Status"]["State"] == "ready" for n in nodes)
                    and any((n.get("ManagerStatus") or {}).get("Leader") for n in nodes)):
                return nodes
        except SwarmmlError:
            pass  # no leader yet: the engine refuses to list nodes
        if time.monotonic() > deadline:
            states = {n["Description"]["Hostname"]: n["Status"]["State"] for n in nodes}
            raise NotSettled(f"the swarm did not settle (a leader, every node ready) within {timeout} s: {states}")
        time.sleep(1)
