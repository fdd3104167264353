"""Engine I/O for Swarm nodes: the node list, our own node, a node's spec, and each node's own engine.

Nodes come out as the Engine API's JSON, or as plain rows (swarm_nodes). A
node's own engine is reached through the unix socket a local cluster's node
exposes in the cluster's root-only directory; on a remote swarm only the
manager's own node is reached.
"""
import os
import time

import docker
import docker.errors
import requests

from swarmml.engine import SOCKET_ROOT, connect, errors
from swarmml.errors import SwarmmlError


def nodes(client):
    return errors.call("listing nodes", client.api.nodes)


def own_node_id(client):
    """The swarm node id of the engine we talk to (a manager)."""
    return (errors.call("engine info", client.info).get("Swarm") or {}).get("NodeID")


def swarm_nodes(manager_client):
    """Nodes as plain dicts: hostname, id, role, state, availability, addr, engine, leader."""
    rows = []
    for n in errors.call("listing the swarm's nodes", manager_client.api.nodes):
        rows.append({
            "id": n["ID"],
            "hostname": n["Description"]["Hostname"],
            "role": n["Spec"].get("Role"),
            "availability": n["Spec"].get("Availability"),
            "state": n["Status"].get("State"),
            "addr": n["Status"].get("Addr"),
            "engine": n["Description"].get("Engine", {}).get("EngineVersion"),
            "leader": bool(n.get("ManagerStatus", {}).get("Leader")),
            "reachable": n.get("ManagerStatus", {}).get("Reachability") == "reachable",
        })
    return rows


def update_node(manager_client, node_id, labels=None, remove=(), role=None, availability=None):
    """Set labels, take out the keys in remove, and set the role and availability (active, pause, drain);
    False when nothing had to change."""
    node = errors.call("reading a node", manager_client.api.inspect_node, node_id)
    spec = dict(node["Spec"])
    new = {k: v for k, v in {**(spec.get("Labels") or {}), **(labels or {})}.items() if k not in remove}
    if new == (spec.get("Labels") or {}) and (role is None or spec.get("Role") == role) \
            and (availability is None or spec.get("Availability") == availability):
        return False
    spec["Labels"] = new
    if role:
        spec["Role"] = role
    if availability:
        spec["Availability"] = availability
    errors.call("updating a node", manager_client.api.update_node, node_id, node["Version"]["Index"], spec)
    return True


def remove_node(manager_client, node_id):
    manager_client.api.remove_node(node_id, force=True)


# --- each node's own engine -----------------------------------------------------

def node_engine(base_url, node_id):
    """A client for the engine at base_url if it answers and is swarm node `node_id`, else None."""
    try:
        c = docker.DockerClient(base_url=base_url, version="auto", timeout=10)
        if (c.info().get("Swarm") or {}).get("NodeID") == node_id:
            return c
        c.close()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        pass
    return None


def node_engines(client, cluster: str | None, nodes: list[dict]) -> dict[str, object]:
    """node id -> a client for that node's engine, for every node we can reach (the manager itself at least).

    A local swarmml cluster keeps a socket per node; elsewhere only the
    manager's own node is reached, and the other nodes' containers go unmeasured.
    """
    found = {}
    own = own_node_id(client)
    if own:
        found[own] = client
    if cluster:
        for n in nodes:
            host = n["Description"]["Hostname"]
            sock = os.path.join(SOCKET_ROOT, cluster, host, "docker.sock")
            if n["ID"] not in found and os.path.exists(sock):
                c = node_engine(f"unix://{sock}", n["ID"])
                if c is not None:
                    found[n["ID"]] = c
    return found


def wait_node_engine(socket_path, timeout=60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if os.path.exists(socket_path):
            try:
                return connect(f"unix://{socket_path}", timeout=30)
            except SwarmmlError as exc:
                last = exc
        time.sleep(0.3)
    raise SwarmmlError(f"the node engine at {socket_path} did not answer within {timeout} s ({last})")
