"""Engine I/O for day-2 operations (scale, update, rollback, rebalance, stack history).

Kept apart from swarm.py (deploy's Swarm object I/O) so that both can change
without stepping on each other. Everything in and out is the Engine API's
JSON as plain dicts; engine errors become one-line SwarmmlErrors.
"""
import base64

import docker
import docker.errors
import requests

from swarmml.engine import explain
from swarmml.errors import NotFound, SwarmmlError


def _call(what, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except docker.errors.NotFound as exc:
        raise NotFound(f"{what}: {explain(exc)}") from None
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"{what}: {explain(exc)}") from None


# --- reading ---------------------------------------------------------------------

def services(client, label=None):
    return _call("listing services", client.api.services, filters={"label": label} if label else None)


def service(client, name_or_id):
    return _call(f"service {name_or_id}", client.api.inspect_service, name_or_id)


def tasks(client, service_id):
    """Every task Swarm still keeps for the service (running, pending and recent history)."""
    return _call(f"tasks of {service_id}", client.api.tasks, filters={"service": service_id})


def nodes(client):
    return _call("listing nodes", client.api.nodes)


def own_node_id(client):
    """The swarm node id of the engine we talk to (a manager)."""
    return (client.info().get("Swarm") or {}).get("NodeID")


def engine_time(client):
    """The manager's clock, as its RFC 3339 SystemTime: task timestamps are written by the engines, not us."""
    return _call("engine info", client.info).get("SystemTime", "")


def image_digest(client, image):
    """The registry digest of image:tag as the manager resolves it, or SwarmmlError saying why not."""
    try:
        found = client.api.inspect_distribution(image)
    except docker.errors.APIError as exc:
        raise SwarmmlError(explain(exc)) from None
    except requests.exceptions.RequestException as exc:
        raise SwarmmlError(str(exc).splitlines()[0]) from None
    return found["Descriptor"]["digest"]


# --- writing ---------------------------------------------------------------------

def _service_kwargs(spec):
    return dict(task_template=spec["TaskTemplate"], name=spec["Name"], labels=spec.get("Labels"),
                mode=spec.get("Mode"), update_config=spec.get("UpdateConfig"),
                rollback_config=spec.get("RollbackConfig"), endpoint_spec=spec.get("EndpointSpec"))


def update_service(client, service_id, version, spec):
    """Replace the service's spec; `version` (Version.Index as read) makes a concurrent change fail, not merge."""
    return _call(f"updating service {spec['Name']}", client.api.update_service, service_id, version,
                 **_service_kwargs(spec))


def rollback_service(client, service_id, version, spec):
    """What `docker service rollback` sends: update with rollback=previous.

    Swarm then restores PreviousSpec with the service's RollbackConfig and
    reports rollback_started/rollback_completed. The SDK has no parameter for
    it, so the request goes through the SDK's own request helpers.
    """
    def post():
        api = client.api
        resp = api._post_json(api._url("/services/{0}/update", service_id), data=spec,
                              params={"version": version, "rollback": "previous"})
        api._raise_for_status(resp)
        return resp.json()
    return _call(f"rolling back service {spec['Name']}", post)


# --- containers behind failed tasks ----------------------------------------------

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


# --- stack history as labelled configs --------------------------------------------

def configs(client, label):
    """[(id, name, labels, created_at)] for configs carrying label (KEY or KEY=VALUE)."""
    return [(c["ID"], c["Spec"]["Name"], c["Spec"].get("Labels") or {}, c.get("CreatedAt", ""))
            for c in _call("listing configs", client.api.configs, filters={"label": label})]


def create_config(client, name, data, labels):
    return _call(f"creating config {name}", client.api.create_config, name, data, labels=labels)["ID"]


def config_data(client, config_id):
    return base64.b64decode(_call(f"config {config_id}", client.api.inspect_config, config_id)["Spec"]["Data"])


def remove_config(client, config_id):
    _call(f"removing config {config_id}", client.api.remove_config, config_id)


def secret_names(client):
    return {s["Spec"]["Name"] for s in _call("listing secrets", client.api.secrets)}
