"""Engine I/O for Swarm objects: services, tasks, nodes, networks, secrets and configs.

Specs go in and come out as the Engine API's JSON, as plain dicts.
"""
import docker.errors

from swarmml.engine import explain
from swarmml.errors import NotFound, SwarmmlError

NAMESPACE_LABEL = "com.docker.stack.namespace"


def _call(what, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except docker.errors.NotFound as exc:
        raise NotFound(f"{what}: {explain(exc)}") from None
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"{what}: {explain(exc)}") from None


def require_manager(client):
    info = client.info()["Swarm"]
    if info.get("LocalNodeState") != "active":
        raise SwarmmlError("this engine is not part of a swarm; `swarmml cluster up`, or point DOCKER_HOST at a manager")
    if not info.get("ControlAvailable"):
        raise SwarmmlError("this engine is a swarm worker; point DOCKER_HOST at a manager")


# --- reading ---------------------------------------------------------------------

def stack_objects(client, namespace):
    """Everything labelled with this stack, as the plan's `current` dict."""
    f = {"label": f"{NAMESPACE_LABEL}={namespace}"}
    return {
        "services": {s["Spec"]["Name"]: {"ID": s["ID"], "Version": s["Version"]["Index"], "Spec": s["Spec"],
                                          "PreviousSpec": s.get("PreviousSpec"), "UpdateStatus": s.get("UpdateStatus")}
                     for s in client.api.services(filters=f)},
        "networks": {n["Name"]: {"ID": n["Id"], "Labels": n.get("Labels") or {}}
                     for n in client.api.networks(filters=f)},
        "secrets": {s["Spec"]["Name"]: {"ID": s["ID"], "Labels": s["Spec"].get("Labels") or {}}
                    for s in client.api.secrets(filters=f)},
        "configs": {c["Spec"]["Name"]: {"ID": c["ID"], "Labels": c["Spec"].get("Labels") or {}}
                    for c in client.api.configs(filters=f)},
    }


def stacks(client):
    """namespace -> number of services, for every stack on the swarm (ours or docker/cli's)."""
    out = {}
    for s in client.api.services(filters={"label": NAMESPACE_LABEL}):
        ns = s["Spec"]["Labels"][NAMESPACE_LABEL]
        out[ns] = out.get(ns, 0) + 1
    return out


def services(client, filters=None):
    return client.api.services(filters=filters or {})


def service(client, name_or_id):
    return _call(f"service {name_or_id}", client.api.inspect_service, name_or_id)


def tasks(client, service_ids=None, desired_running=False):
    filters = {}
    if service_ids:
        filters["service"] = list(service_ids)
    if desired_running:
        filters["desired-state"] = "running"
    return client.api.tasks(filters=filters)


def nodes(client):
    return client.api.nodes()


def network_names(client):
    """network id -> name, to read Targets back as names."""
    return {n["Id"]: n["Name"] for n in client.api.networks()}


def network_exists(client, name):
    return any(n["Name"] == name for n in client.api.networks(names=[name]))


def secret_ids(client, names):
    return {s["Spec"]["Name"]: s["ID"] for s in client.api.secrets() if s["Spec"]["Name"] in names}


def config_ids(client, names):
    return {c["Spec"]["Name"]: c["ID"] for c in client.api.configs() if c["Spec"]["Name"] in names}


def image_digest(client, image):
    """The registry digest of image:tag, resolved by the manager (as docker service create does)."""
    return distribution(client, image)[0]


def distribution(client, image):
    """(digest, platforms) of image:tag in its registry; platforms as Placement.Platforms entries."""
    try:
        found = client.api.inspect_distribution(image)
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"image {image} can't be resolved in its registry: {explain(exc)}") from None
    platforms = [{"Architecture": p.get("architecture", ""), "OS": p.get("os", "")}
                 for p in found.get("Platforms") or []]
    return found["Descriptor"]["digest"], platforms


# --- writing ---------------------------------------------------------------------

def create_network(client, spec):
    _call(f"creating network {spec['Name']}", client.api.create_network, spec["Name"], driver=spec["Driver"],
          options=spec.get("Options") or None, ipam=spec.get("IPAM"), internal=spec.get("Internal", False),
          labels=spec.get("Labels"), attachable=spec.get("Attachable", False), scope="swarm")


def create_secret(client, spec):
    import base64
    return _call(f"creating secret {spec['Name']}", client.api.create_secret, spec["Name"],
                 base64.b64decode(spec["Data"]), labels=spec.get("Labels"))["ID"]


def create_config(client, spec):
    import base64
    kwargs = {}
    if spec.get("Templating"):
        kwargs["templating"] = spec["Templating"]
    return _call(f"creating config {spec['Name']}", client.api.create_config, spec["Name"],
                 base64.b64decode(spec["Data"]), labels=spec.get("Labels"), **kwargs)["ID"]


def _service_kwargs(spec):
    return dict(task_template=spec["TaskTemplate"], name=spec["Name"], labels=spec.get("Labels"),
                mode=spec.get("Mode"), update_config=spec.get("UpdateConfig"),
                rollback_config=spec.get("RollbackConfig"), endpoint_spec=spec.get("EndpointSpec"))


def create_service(client, spec):
    return _call(f"creating service {spec['Name']}", client.api.create_service, **_service_kwargs(spec))["ID"]


def update_service(client, service_id, version, spec, rollback=False):
    kwargs = _service_kwargs(spec)
    if rollback:
        return _call(f"rolling back service {spec['Name']}", _rollback, client, service_id, version, spec)
    return _call(f"updating service {spec['Name']}", client.api.update_service, service_id, version, **kwargs)


def _rollback(client, service_id, version, spec):
    # The SDK has no `rollback=previous` (what `docker service rollback` sends), so post it through the
    # SDK's own request helpers: Swarm then uses the service's RollbackConfig and reports rollback states.
    api = client.api
    resp = api._post_json(api._url("/services/{0}/update", service_id), data=spec,
                          params={"version": version, "rollback": "previous"})
    api._raise_for_status(resp)
    return resp.json()


def remove_service(client, service_id):
    _call(f"removing service {service_id}", client.api.remove_service, service_id)


def remove_network(client, network_id):
    _call(f"removing network {network_id}", client.api.remove_network, network_id)


def remove_secret(client, secret_id):
    _call(f"removing secret {secret_id}", client.api.remove_secret, secret_id)


def remove_config(client, config_id):
    _call(f"removing config {config_id}", client.api.remove_config, config_id)


def configs_labelled(client, label):
    """[(config id, labels)] for configs carrying label (KEY or KEY=VALUE)."""
    return [(c["ID"], c["Spec"].get("Labels") or {}) for c in client.api.configs(filters={"label": label})]


def create_raw_config(client, name, data, labels):
    return _call(f"creating config {name}", client.api.create_config, name, data, labels=labels)["ID"]


def config_data(client, config_id):
    import base64
    return base64.b64decode(_call(f"config {config_id}", client.api.inspect_config, config_id)["Spec"]["Data"])
