"""Engine I/O for networks: a swarm's networks, and a local cluster's bridge on the host engine.

Plain data out: names, IDs, subnets and the addresses containers hold.
"""
import docker.errors

from swarmml.engine import errors, explain
from swarmml.engine.containers import labels_for
from swarmml.engine.errors import NotFound
from swarmml.errors import SwarmmlError


def network_names(client, services=()):
    """network id -> name, to read Targets back as names.

    services: specs whose Targets must all be named. A service on the host network targets the
    swarm's own `host` network, whose ID the engine's network list (its local networks) lacks;
    inspected by ID, it answers.
    """
    names = {n["Id"]: n["Name"] for n in errors.call("listing networks", client.api.networks)}
    for svc in services:
        for net in (svc.get("Spec") or svc).get("TaskTemplate", {}).get("Networks") or []:
            target = net.get("Target")
            if target and target not in names:
                try:
                    names[target] = errors.call(f"network {target}", client.api.inspect_network, target)["Name"]
                except NotFound:
                    pass
    return names


def network_exists(client, name):
    return any(n["Name"] == name for n in errors.call(f"network {name}", client.api.networks, names=[name]))


def create_network(client, spec):
    errors.call(f"creating network {spec['Name']}", client.api.create_network, spec["Name"], driver=spec["Driver"],
                options=spec.get("Options") or None, ipam=spec.get("IPAM"), internal=spec.get("Internal", False),
                labels=spec.get("Labels"), attachable=spec.get("Attachable", False), scope="swarm", retry=())


def remove_network(client, network_id):
    errors.call(f"removing network {network_id}", client.api.remove_network, network_id)


# --- a local cluster's network on the host engine ---------------------------------

def ensure_network(client, name, cluster):
    if any(n.name == name for n in client.networks.list(names=[name])):
        return
    client.networks.create(name, driver="bridge", labels=labels_for(cluster, "network"))


def network_subnet(client, name):
    """The first IPv4 subnet of a network on this engine, or None."""
    try:
        configs = (client.api.inspect_network(name).get("IPAM") or {}).get("Config") or []
    except docker.errors.NotFound:
        return None
    return next((c["Subnet"] for c in configs if c.get("Subnet") and ":" not in c["Subnet"]), None)


def network_addresses(client, network):
    """A network's IPv4 subnet and gateway, and the addresses its connected containers hold (name -> address)."""
    try:
        info = client.api.inspect_network(network)
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"reading network {network} failed: {explain(exc)}") from None
    config = next((c for c in (info.get("IPAM") or {}).get("Config") or [] if ":" not in c.get("Subnet", ":")), {})
    held = {c["Name"]: c["IPv4Address"].split("/")[0] for c in (info.get("Containers") or {}).values()
            if c.get("IPv4Address")}
    return {"subnet": config.get("Subnet"), "gateway": config.get("Gateway"), "held": held}
