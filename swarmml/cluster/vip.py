"""A local cluster's network and the gateway's virtual IP on it: what `deploy` fills in for a stack there.

Apart from the rest of the cluster code so that deploy (and the autoscaler's image, which runs it) needs
only the engine for it, not the certificates and images of cluster setup.
"""
import ipaddress
import zlib

from swarmml.engine import host_client
from swarmml.engine import networks
from swarmml.errors import SwarmmlError


def network_name(name: str) -> str:
    return f"swarmml-{name}"


def vip_for(subnet: str, stack: str) -> tuple[str, int]:
    """Pure: the gateway's virtual IP (with its prefix) and VRRP router id for a stack on the cluster's network.

    Taken from the top of the subnet, which Docker fills from the bottom, and keyed on the stack's
    name, so that each stack on one cluster has its own address and router id (one in 250 pairs
    of stacks would share one: deploy them with SWARMML_VIP and SWARMML_VIP_ROUTER_ID set).
    """
    net = ipaddress.ip_network(subnet)
    key = zlib.crc32(stack.encode())
    address = net.broadcast_address - 2 - key % 250
    if address not in net or address <= net.network_address + 8:
        raise SwarmmlError(f"the cluster's network {subnet} is too small for a virtual IP; set SWARMML_VIP")
    return f"{address}/{net.prefixlen}", 1 + key % 255


def stack_defaults(name: str, stack: str, client=None) -> dict[str, str]:
    """What `deploy` fills in for a stack on this local cluster when the environment does not say."""
    client = client or host_client()
    subnet = networks.network_subnet(client, network_name(name))
    if not subnet:
        return {}
    vip, router_id = vip_for(subnet, stack)
    return {"SWARMML_VIP": vip, "SWARMML_VIP_ROUTER_ID": str(router_id)}
