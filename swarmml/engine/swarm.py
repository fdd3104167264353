"""Engine I/O for Swarm objects: services, tasks, nodes, networks, secrets and configs.

The only module that deploy, ops and verify use to read and change a swarm.
Specs go in and come out as the Engine API's JSON, as plain dicts; engine
errors keep their kind (swarmml.engine.errors); transient ones are retried there.
"""
import base64
import os

import docker
import docker.auth
import docker.errors
import requests

from swarmml import labels
from swarmml.engine import errors, explain, node_socket, resolve_target
from swarmml.engine.errors import Conflict, NotFound, OutOfSequence
from swarmml.errors import SwarmmlError

NAMESPACE_LABEL = labels.STACK_NAMESPACE


def _call(what, fn, *args, **kwargs):
    return errors.call(what, fn, *args, **kwargs)


class RegistryLookupFailed(SwarmmlError):
    def __init__(self, image, reason):
        super().__init__(f"image {image} can't be resolved in its registry: {reason}")
        self.image, self.reason = image, reason


def require_manager(client):
    info = _call("engine info", client.info)["Swarm"]
    if info.get("LocalNodeState") != "active":
        raise SwarmmlError("this engine is not part of a swarm; `swarmml cluster up`, "
                           "or point DOCKER_HOST at a manager")
    if not info.get("ControlAvailable"):
        raise SwarmmlError("this engine is a swarm worker; point DOCKER_HOST at a manager")


# --- reading ---------------------------------------------------------------------

def stack_objects(client, namespace):
    """Everything labelled with this stack, as the plan's `current` dict."""
    f = {"label": f"{NAMESPACE_LABEL}={namespace}"}
    what = f"reading stack {namespace}"
    api = client.api
    return {
        "services": {s["Spec"]["Name"]: {"ID": s["ID"], "Version": s["Version"]["Index"], "Spec": s["Spec"],
                                          "PreviousSpec": s.get("PreviousSpec"), "UpdateStatus": s.get("UpdateStatus")}
                     for s in _call(what, api.services, filters=f)},
        "networks": {n["Name"]: {"ID": n["Id"], "Labels": n.get("Labels") or {}}
                     for n in _call(what, api.networks, filters=f)},
        "secrets": {s["Spec"]["Name"]: {"ID": s["ID"], "Labels": s["Spec"].get("Labels") or {}}
                    for s in _call(what, api.secrets, filters=f)},
        "configs": {c["Spec"]["Name"]: {"ID": c["ID"], "Labels": c["Spec"].get("Labels") or {}}
                    for c in _call(what, api.configs, filters=f)},
    }


def stacks(client):
    """namespace -> number of services, for every stack on the swarm (ours or docker/cli's)."""
    out = {}
    for s in _call("listing stacks", client.api.services, filters={"label": NAMESPACE_LABEL}):
        ns = s["Spec"]["Labels"][NAMESPACE_LABEL]
        out[ns] = out.get(ns, 0) + 1
    return out


def services(client, label=None):
    """Every service, or those carrying label (KEY or KEY=VALUE)."""
    return _call("listing services", client.api.services, filters={"label": label} if label else None)


def service(client, name_or_id):
    return _call(f"service {name_or_id}", client.api.inspect_service, name_or_id)


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
    return _call("listing tasks", client.api.tasks, filters=filters)


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


def nodes(client):
    return _call("listing nodes", client.api.nodes)


def own_node_id(client):
    """The swarm node id of the engine we talk to (a manager)."""
    return (_call("engine info", client.info).get("Swarm") or {}).get("NodeID")


def network_names(client, services=()):
    """network id -> name, to read Targets back as names.

    services: specs whose Targets must all be named. A service on the host network targets the
    swarm's own `host` network, whose ID the engine's network list (its local networks) lacks;
    inspected by ID, it answers.
    """
    names = {n["Id"]: n["Name"] for n in _call("listing networks", client.api.networks)}
    for svc in services:
        for net in (svc.get("Spec") or svc).get("TaskTemplate", {}).get("Networks") or []:
            target = net.get("Target")
            if target and target not in names:
                try:
                    names[target] = _call(f"network {target}", client.api.inspect_network, target)["Name"]
                except NotFound:
                    pass
    return names


def network_exists(client, name):
    return any(n["Name"] == name for n in _call(f"network {name}", client.api.networks, names=[name]))


def secret_ids(client, names):
    return {s["Spec"]["Name"]: s["ID"] for s in _call("listing secrets", client.api.secrets)
            if s["Spec"]["Name"] in names}


def config_ids(client, names):
    return {c["Spec"]["Name"]: c["ID"] for c in _call("listing configs", client.api.configs)
            if c["Spec"]["Name"] in names}


def distribution(client, image):
    """(digest, platforms) of image:tag in its registry; platforms as Placement.Platforms entries."""
    try:
        found = client.api.inspect_distribution(image)
    except docker.errors.APIError as exc:
        raise RegistryLookupFailed(image, explain(exc)) from None
    except requests.exceptions.RequestException as exc:
        raise RegistryLookupFailed(image, str(exc).splitlines()[0]) from None
    # As the docker client does: "arm" manifests would never match nodes that report "armv7l",
    # so their architecture is left out of the placement (docker/swarmkit#2294).
    platforms = [{"Architecture": "" if p.get("architecture", "").lower() == "arm" else p.get("architecture", ""),
                  "OS": p.get("os", "")}
                 for p in found.get("Platforms") or []]
    return found["Descriptor"]["digest"], platforms


def info(client):
    """GET /info: the engine's facts, its swarm membership (Swarm.NodeID, ControlAvailable) and clock."""
    return _call("engine info", client.info)


def swarm_spec(client):
    """The swarm's own settings (Dispatcher.HeartbeatPeriod, ...), or None where this engine can't tell."""
    try:
        return _call("swarm settings", client.api.inspect_swarm).get("Spec")
    except SwarmmlError:
        return None


def now(client):
    """The manager's clock, its RFC 3339 SystemTime: task timestamps are written by the engines, not by us."""
    return _call("engine info", client.info).get("SystemTime", "")


def secret_names(client):
    return {s["Spec"]["Name"] for s in _call("listing secrets", client.api.secrets)}


def labelled_configs(client, label):
    """[(id, name, labels, created_at)] for configs carrying label (KEY or KEY=VALUE)."""
    return [(c["ID"], c["Spec"]["Name"], c["Spec"].get("Labels") or {}, c.get("CreatedAt", ""))
            for c in _call("listing configs", client.api.configs, filters={"label": label})]


def config_data(client, config_id):
    return base64.b64decode(_call(f"config {config_id}", client.api.inspect_config, config_id)["Spec"]["Data"])


# --- writing ---------------------------------------------------------------------

def create_network(client, spec):
    _call(f"creating network {spec['Name']}", client.api.create_network, spec["Name"], driver=spec["Driver"],
          options=spec.get("Options") or None, ipam=spec.get("IPAM"), internal=spec.get("Internal", False),
          labels=spec.get("Labels"), attachable=spec.get("Attachable", False), scope="swarm", retry=())


def create_secret(client, spec):
    return _call(f"creating secret {spec['Name']}", client.api.create_secret, spec["Name"],
                 base64.b64decode(spec["Data"]), labels=spec.get("Labels"), retry=())["ID"]


def create_config(client, spec):
    kwargs = {}
    if spec.get("Templating"):
        kwargs["templating"] = spec["Templating"]
    return _call(f"creating config {spec['Name']}", client.api.create_config, spec["Name"],
                 base64.b64decode(spec["Data"]), labels=spec.get("Labels"), retry=(), **kwargs)["ID"]


def registry_of(image):
    """The registry part of an image reference, as the docker config keys its logins (docker.io for Hub)."""
    registry, _ = docker.auth.resolve_repository_name(image.split("@", 1)[0])
    return registry


def registry_login(registry):
    """The login the docker config holds for registry (auths, credsStore or credHelpers), or None.

    Read afresh each time, not from the client's copy: a `docker login` made since it was created counts.
    """
    found = docker.auth.resolve_authconfig(docker.auth.load_config(), registry)
    return dict(found) if found else None


def registry_auth(client, image):
    """The X-Registry-Auth value for image's registry from the local docker config (None without credentials)."""
    login = registry_login(registry_of(image))
    return docker.auth.encode_header(login).decode() if login else None


def _post_spec(client, path, spec, params=None, auth=None):
    # The spec is posted as it is, like the docker CLI does, rather than through the SDK's
    # create_service/update_service: those add fields of their own and always send the local
    # registry credentials, which the CLI only sends (and stores in the swarm) when asked to.
    api = client.api
    headers = {"X-Registry-Auth": auth} if auth else {}
    resp = api._post_json(api._url(path), data=spec, params=params or {}, headers=headers)
    return api._result(resp, json=True) or {}


def create_service(client, spec, auth=None):
    """Create a service from a ServiceSpec dict; auth: X-Registry-Auth to store with it. Returns (ID, warnings)."""
    # Not retried: a create whose answer was lost may have happened, and a second one would be refused.
    done = _call(f"creating service {spec['Name']}", _post_spec, client, "/services/create", spec, auth=auth,
                 retry=())
    return done["ID"], done.get("Warnings") or []


def update_service(client, current, spec, rollback=False, auth=None):
    """Replace a service's spec. current: the service as read (ID, Version, Spec). Returns the engine's warnings.

    Without auth the engine keeps the credentials stored with the service. rollback=True asks
    Swarm for its own rollback to PreviousSpec (what `docker service rollback` sends), so that
    it applies the service's RollbackConfig and reports rollback states.

    A version conflict is retried with the version read again, but only while the service's
    spec is still the one the change was made from: Swarm bumps the version itself when it
    records an update's status, and that must not fail a change; a person's change in between
    must not be overwritten (Conflict).
    """
    what = f"{'rolling back' if rollback else 'updating'} service {spec['Name']}"
    sent = {"version": current["Version"]["Index"] if isinstance(current["Version"], dict) else current["Version"]}

    def attempt():
        params = {"version": sent["version"]}
        if rollback:
            params["rollback"] = "previous"
        try:
            return _call(what, _post_spec, client, f"/services/{current['ID']}/update", spec, params=params,
                         auth=auth)
        except OutOfSequence:
            again = service(client, current["ID"])
            if again["Spec"] != current["Spec"]:
                raise Conflict(f"{what}: the service was changed by someone else since it was read; "
                               "nothing was changed (run the command again)") from None
            sent["version"] = again["Version"]["Index"]
            raise

    done = errors.retrying((OutOfSequence,))(attempt)
    return done.get("Warnings") or []


def remove_service(client, service_id):
    _call(f"removing service {service_id}", client.api.remove_service, service_id)


def remove_network(client, network_id):
    _call(f"removing network {network_id}", client.api.remove_network, network_id)


def remove_secret(client, secret_id):
    _call(f"removing secret {secret_id}", client.api.remove_secret, secret_id)


def remove_config(client, config_id):
    _call(f"removing config {config_id}", client.api.remove_config, config_id)


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
