"""Engine I/O for the swarm itself: whether we talk to a manager, its settings and clock, init, join and leave.

Also the stacks on it (the objects a stack's namespace label marks, read as
the plan's `current`), and views of the swarm through several of a local
cluster's node sockets, for when a manager is lost. Plain data out; engine
errors keep their kind (swarmml.engine.errors).
"""
import os

import docker
import docker.errors
import requests

from swarmml import labels
from swarmml.engine import errors, explain
from swarmml.engine.nodes import swarm_nodes
from swarmml.errors import SwarmmlError

NAMESPACE_LABEL = labels.STACK_NAMESPACE


def require_manager(client):
    info = errors.call("engine info", client.info)["Swarm"]
    if info.get("LocalNodeState") != "active":
        raise SwarmmlError("this engine is not part of a swarm; `swarmml cluster up`, "
                           "or point DOCKER_HOST at a manager")
    if not info.get("ControlAvailable"):
        raise SwarmmlError("this engine is a swarm worker; point DOCKER_HOST at a manager")


def info(client):
    """GET /info: the engine's facts, its swarm membership (Swarm.NodeID, ControlAvailable) and clock."""
    return errors.call("engine info", client.info)


def swarm_spec(client):
    """The swarm's own settings (Dispatcher.HeartbeatPeriod, ...), or None where this engine can't tell."""
    try:
        return errors.call("swarm settings", client.api.inspect_swarm).get("Spec")
    except SwarmmlError:
        return None


def now(client):
    """The manager's clock, its RFC 3339 SystemTime: task timestamps are written by the engines, not by us."""
    return errors.call("engine info", client.info).get("SystemTime", "")


def engine_facts(client):
    """What doctor needs to know about an engine, as plain data."""
    info = client.info()
    version = client.version()
    return {
        "server_version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "swarm_state": info["Swarm"].get("LocalNodeState"),
        "swarm_control": bool(info["Swarm"].get("ControlAvailable")),
        "swarm_nodes": info["Swarm"].get("Nodes"),
        "swarm_managers": info["Swarm"].get("Managers"),
        "docker_root": info.get("DockerRootDir"),
        "name": info.get("Name"),
    }


# --- stacks ------------------------------------------------------------------------

def stack_objects(client, namespace):
    """Everything labelled with this stack, as the plan's `current` dict."""
    f = {"label": f"{NAMESPACE_LABEL}={namespace}"}
    what = f"reading stack {namespace}"
    api = client.api
    return {
        "services": {s["Spec"]["Name"]: {"ID": s["ID"], "Version": s["Version"]["Index"], "Spec": s["Spec"],
                                          "PreviousSpec": s.get("PreviousSpec"), "UpdateStatus": s.get("UpdateStatus")}
                     for s in errors.call(what, api.services, filters=f)},
        "networks": {n["Name"]: {"ID": n["Id"], "Labels": n.get("Labels") or {}}
                     for n in errors.call(what, api.networks, filters=f)},
        "secrets": {s["Spec"]["Name"]: {"ID": s["ID"], "Labels": s["Spec"].get("Labels") or {}}
                    for s in errors.call(what, api.secrets, filters=f)},
        "configs": {c["Spec"]["Name"]: {"ID": c["ID"], "Labels": c["Spec"].get("Labels") or {}}
                    for c in errors.call(what, api.configs, filters=f)},
    }


def stacks(client):
    """namespace -> number of services, for every stack on the swarm (ours or docker/cli's)."""
    out = {}
    for s in errors.call("listing stacks", client.api.services, filters={"label": NAMESPACE_LABEL}):
        ns = s["Spec"]["Labels"][NAMESPACE_LABEL]
        out[ns] = out.get(ns, 0) + 1
    return out


# --- membership: init, join, leave -----------------------------------------------

def swarm_state(node_client):
    info = node_client.info()["Swarm"]
    return info.get("LocalNodeState"), bool(info.get("ControlAvailable"))


# How fast a local cluster notices a lost node: nodes report every 2 s, not Swarm's 5 s (a WAN
# default; these nodes share one bridge). Raft's election timing can't be set here: a manager's
# raft runs with its daemon's ticks (10 ticks of 1 s on dockerd 20.10, which has no flag or
# config key to change them), and the swarm spec's ElectionTick, shown by `docker info`, is not
# applied. Measured here, the followers of a killed leader elected a new one after 14-22 s.
DISPATCHER_HEARTBEAT_S = 2  # a lost node is marked down after a few of these


def swarm_init(node_client, addr, local=True):
    """local: a cluster on one bridge, with the fast failure detection above; else Swarm's own defaults,
    made for machines that may be far apart."""
    tuning = dict(dispatcher_heartbeat_period=DISPATCHER_HEARTBEAT_S * 10**9) if local else {}
    try:
        node_client.swarm.init(advertise_addr=addr, listen_addr="0.0.0.0:2377", **tuning)
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"swarm init at {addr} failed: {explain(exc)}") from None


def swarm_membership(node_client):
    """This engine in a swarm, as plain data: state, cluster_id (managers only), node_id, manager."""
    info = node_client.info()["Swarm"]
    return {"state": info.get("LocalNodeState") or "inactive",
            "cluster_id": (info.get("Cluster") or {}).get("ID") or None,
            "node_id": info.get("NodeID") or None, "manager": bool(info.get("ControlAvailable"))}


# dockerd gives its node 15 s to stop on leave and then answers "context deadline exceeded"
# without clearing its swarm state; a worker still stopping its tasks' containers can take
# longer. Asking again waits another 15 s for the same shutdown, as `docker swarm leave` run twice.
LEAVE_ATTEMPTS = 3


def swarm_leave(node_client, force=False):
    for attempt in range(1, LEAVE_ATTEMPTS + 1):
        try:
            node_client.swarm.leave(force=force)
            return
        except docker.errors.APIError as exc:
            slow = "deadline exceeded" in explain(exc)
            if slow and _left(node_client):
                return
            if not slow or attempt == LEAVE_ATTEMPTS:
                raise SwarmmlError(f"leaving the swarm failed: {explain(exc)}") from None


def _left(node_client):
    """Whether the engine reads as in no swarm; False when it doesn't answer (then leave is asked again)."""
    try:
        return swarm_membership(node_client)["state"] == "inactive"
    except (docker.errors.DockerException, OSError):
        return False


def join_tokens(manager_client):
    manager_client.swarm.reload()
    return manager_client.swarm.attrs["JoinTokens"]


def swarm_join(node_client, manager_addr, token, addr):
    try:
        node_client.swarm.join(remote_addrs=[f"{manager_addr}:2377"], join_token=token,
                               advertise_addr=addr, listen_addr="0.0.0.0:2377")
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"joining the swarm at {manager_addr} failed: {explain(exc)}") from None


# --- the swarm through several node sockets ----------------------------------------

def swarm_view(socket_paths, timeout=5):
    """The swarm's nodes (swarm_nodes rows) as the first of these node engines that can say: a manager
    with a leader. None when none can, as while a leader is elected or a manager restarts."""
    for path in socket_paths:
        if not os.path.exists(path):
            continue
        try:
            client = docker.DockerClient(base_url=f"unix://{path}", version="auto", timeout=timeout)
        except (docker.errors.DockerException, requests.RequestException, OSError):
            continue
        try:
            return swarm_nodes(client)
        except (SwarmmlError, docker.errors.DockerException, requests.RequestException, OSError):
            continue
        finally:
            client.close()
    return None


def node_membership(socket_path, timeout=5):
    """swarm_membership of one node's engine, or None while it does not answer."""
    try:
        client = docker.DockerClient(base_url=f"unix://{socket_path}", version="auto", timeout=timeout)
    except (docker.errors.DockerException, requests.RequestException, OSError):
        return None
    try:
        return swarm_membership(client)
    except (docker.errors.DockerException, requests.RequestException, OSError):
        return None
    finally:
        client.close()
