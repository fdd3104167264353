"""Engine I/O for Swarm tasks: the tasks of services, their log tails, and their containers.

Tasks come out as the Engine API's JSON (plain dicts), or as the few fields a
local cluster's checks need. Why a task's container stopped is asked of the
engine of the node that ran it (nodes.py reaches it). A task's full log
stream is in logs.py.
"""
import os

import docker
import docker.errors
import requests

from swarmml.engine import errors, node_socket, resolve_target
from swarmml.engine.nodes import node_engine, own_node_id
from swarmml.errors import SwarmmlError


def tasks(client, service_ids=None, desired_running=False, up_to_date=False):
    """The tasks Swarm keeps (running, pending and recent history) of one service id, several, or all.

    up_to_date: only those the manager finds up to date with their service's spec (the filter
    docker/cli's progress uses; see swarmml.ops.rollout for the rule).
    """
    filters = {}
    if up_to_date:
        filters["_up-to-date"] = "true"
    if service_ids:
        filters["service"] = [service_ids] if isinstance(service_ids, str) else list(service_ids)
    if desired_running:
        filters["desired-state"] = "running"
    return errors.call("listing tasks", client.api.tasks, filters=filters)


def task_log_tail(client, task_id, lines=5):
    """The last lines a task's container wrote (stdout and stderr); [] when the engine has none to give."""
    api = client.api
    try:
        resp = api._get(api._url("/tasks/{0}/logs", task_id),
                        params={"stdout": 1, "stderr": 1, "tail": str(lines)}, stream=True)
        api._raise_for_status(resp)
        data = b"".join(api._multiplexed_response_stream_helper(resp))
    except (docker.errors.APIError, OSError, ValueError):
        return []
    return [line for line in data.decode(errors="replace").splitlines() if line.strip()][-lines:]


def running_tasks(manager_client):
    """Running tasks as plain dicts: node id and service id."""
    return [{"node": t.get("NodeID"), "service": t.get("ServiceID")}
            for t in manager_client.api.tasks(filters={"desired-state": "running"})
            if t.get("Status", {}).get("State") == "running"]


def unfinished_tasks(manager_client):
    """Tasks the swarm wants running that do not run (yet), as plain dicts: service id, node id, state."""
    tasks = errors.call("listing tasks", manager_client.api.tasks, filters={"desired-state": "running"})
    return [{"service": t.get("ServiceID"), "node": t.get("NodeID"), "state": t["Status"]["State"]}
            for t in tasks if t["Status"]["State"] != "running"]


def task_containers(socket_paths, timeout=5):
    """The swarm tasks' containers that run, as the nodes' own engines say (rows: node socket, service id).
    The managers' task list can still call a task running whose node has just gone."""
    rows = []
    for path in socket_paths:
        try:
            client = docker.DockerClient(base_url=f"unix://{path}", version="auto", timeout=timeout)
        except (docker.errors.DockerException, requests.RequestException, OSError):
            continue
        try:
            found = client.api.containers(filters={"label": "com.docker.swarm.service.id", "status": "running"})
        except (docker.errors.DockerException, requests.RequestException, OSError):
            found = []
        finally:
            client.close()
        rows += [{"node": path, "service": c["Labels"]["com.docker.swarm.service.id"]} for c in found]
    return rows


def running_service_containers(node_socket_path, service):
    """How many containers of a swarm service run on one node's engine (0 when it does not answer)."""
    try:
        client = docker.DockerClient(base_url=f"unix://{node_socket_path}", version="auto", timeout=10)
    except (docker.errors.DockerException, OSError):
        return 0
    try:
        return len(client.api.containers(filters={"label": f"com.docker.swarm.service.name={service}",
                                                  "status": "running"}))
    finally:
        client.close()


# --- containers behind failed tasks ----------------------------------------------

def task_container_facts(client, task, hostname):
    """container_facts() of a task's container, asked of the engine of the node that ran it; None where
    that engine can't be reached (a remote swarm's workers, a node gone) or has no such container.

    hostname: the node's. On a local swarmml cluster each node's engine has a socket on this machine.
    """
    cid = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
    node_id = task.get("NodeID")
    if not cid or not node_id:
        return None
    if node_id == own_node_id(client):
        return container_facts(client, cid)
    try:
        cluster = resolve_target().cluster
    except SwarmmlError:
        cluster = None
    if not cluster or not hostname or not os.path.exists(node_socket(cluster, hostname)):
        return None
    node_client = node_engine(f"unix://{node_socket(cluster, hostname)}", node_id)
    if node_client is None:
        return None
    try:
        return container_facts(node_client, cid)
    finally:
        node_client.close()


def container_facts(client, container_id, log_lines=5):
    """What a task's container says about why it stopped: health probes, exit code, last log lines.

    client: the engine of the node that ran the task. None when that engine no
    longer has the container.
    """
    try:
        info = client.api.inspect_container(container_id)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return None
    try:
        logs = client.api.logs(container_id, stdout=True, stderr=True, tail=log_lines).decode(errors="replace")
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        logs = ""
    st = info.get("State") or {}
    return {"exit_code": st.get("ExitCode"), "error": st.get("Error") or "", "oom_killed": bool(st.get("OOMKilled")),
            "health": st.get("Health"), "log_tail": [line for line in logs.splitlines() if line.strip()]}
