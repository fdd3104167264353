"""Finding services by the names people use, what their tasks do, and where their published ports answer."""
from dataclasses import dataclass, field

from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import swarm as engine_swarm
from swarmml.engine import tasks as engine_tasks
from swarmml.errors import NotFound, UsageError
from swarmml.ops.placement import FAILED, Placement, hostnames, is_running, placement
from swarmml.stack.convert import NAMESPACE_LABEL


def stack_of(service):
    """Pure: the stack a service belongs to (its namespace label), or None."""
    return (service["Spec"].get("Labels") or {}).get(NAMESPACE_LABEL)


def short_name(service):
    """Pure: the service's name relative to its stack (`predictor` for `ml_predictor` of stack ml)."""
    full, ns = service["Spec"]["Name"], stack_of(service)
    return full[len(ns) + 1:] if ns and full.startswith(ns + "_") else full


def match(services, name, stack=None):
    """Pure: the one service called `name` (short, relative to its stack, or full). Raises for 0 or many."""
    found = [s for s in services if (stack is None or stack_of(s) == stack)
             and name in (s["Spec"]["Name"], short_name(s))]
    if not found:
        where = f" in stack {stack!r}" if stack else ""
        known = sorted(s["Spec"]["Name"] for s in services if stack is None or stack_of(s) == stack)
        raise NotFound(f"no service {name!r}{where}" + (f" (services: {', '.join(known)})" if known else
                                                        " (no services)"))
    if len(found) > 1:
        stacks = sorted(stack_of(s) or "-" for s in found)
        raise UsageError(f"service name {name!r} is in several stacks ({', '.join(stacks)}); add --stack")
    return found[0]


def of_stack(services, stack):
    """Pure: the services of a stack, by full name; NotFound if it has none."""
    found = [s for s in services if stack_of(s) == stack]
    if not found:
        raise NotFound(f"no stack named {stack!r} (no service carries {NAMESPACE_LABEL}={stack})")
    return sorted(found, key=lambda s: s["Spec"]["Name"])


def find(client, name, stack=None):
    return match(engine_services.services(client), name, stack)


def floating_ip(service, stack_services):
    """Pure: the virtual IP that a service of the same stack floats in front of service's host-mode port.

    That is the stack's VRRP service (docker-stack.yml's vip): it has SWARMML_VIP set, and it
    checks this service's published port (SWARMML_VIP_CHECK_PORT). None when there is none.
    """
    ports = [p.get("PublishedPort") for p in service["Spec"].get("EndpointSpec", {}).get("Ports") or []]
    for other in stack_services:
        if stack_of(other) != stack_of(service) or other["Spec"]["Name"] == service["Spec"]["Name"]:
            continue
        env = dict(e.split("=", 1) for e in other["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []
                   if "=" in e)
        if env.get("SWARMML_VIP") and int(env.get("SWARMML_VIP_CHECK_PORT") or 0) in ports:
            return env["SWARMML_VIP"].split("/", 1)[0]
    return None


def url_for(service, tasks, nodes, scheme="http", vip=None):
    """Pure: the base URL of the service's first published port, as reached from outside the swarm.

    vip: the floating address in front of a host-mode port (floating_ip), which no node's loss moves away.
    """
    ports = (service.get("Endpoint") or {}).get("Ports") or service["Spec"].get("EndpointSpec", {}).get("Ports") or []
    published = [p for p in ports if p.get("PublishedPort")]
    name = service["Spec"]["Name"]
    if not published:
        raise UsageError(f"service {name} publishes no port")
    port = published[0]
    addrs = {n["ID"]: n["Status"].get("Addr") for n in nodes if n["Status"].get("State") == "ready"}
    if port.get("PublishMode") == "host":
        if vip:
            return f"{scheme}://{vip}:{port['PublishedPort']}"
        for t in filter(is_running, tasks):
            if addrs.get(t.get("NodeID")):
                return f"{scheme}://{addrs[t['NodeID']]}:{port['PublishedPort']}"
        raise NotFound(f"service {name} has no running task, so its host-mode port answers nowhere yet")
    if not addrs:
        raise NotFound("no ready node")
    return f"{scheme}://{sorted(addrs.values())[0]}:{port['PublishedPort']}"


def url(client, name, stack=None):
    services = engine_services.services(client)
    svc = match(services, name, stack)
    return url_for(svc, engine_tasks.tasks(client, [svc["ID"]]), engine_nodes.nodes(client),
                   vip=floating_ip(svc, services))


@dataclass
class StackStatus:
    """What `swarmml ps STACK` shows: the tasks that run or failed, and each service's placement."""
    stack: str
    tasks: list[dict] = field(default_factory=list)  # task, node, desired, state, error
    placements: list[Placement] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"tasks": self.tasks, "placement": [p.to_dict() for p in self.placements]}


def status(client, stack: str) -> StackStatus:
    current = engine_swarm.stack_objects(client, stack)
    if not current["services"]:
        raise NotFound(f"no stack named {stack!r}")
    nodes = engine_nodes.nodes(client)
    names = hostnames(nodes)
    result = StackStatus(stack)
    for sname, s in sorted(current["services"].items()):
        svc = engine_services.service(client, s["ID"])
        tasks = engine_tasks.tasks(client, [s["ID"]])
        result.placements.append(placement(svc, tasks, nodes))
        for t in sorted(tasks, key=lambda t: (t.get("Slot") or 0, t["CreatedAt"])):
            if t.get("DesiredState") != "running" and t["Status"]["State"] not in FAILED:
                continue
            result.tasks.append({"task": f"{sname}.{t.get('Slot') or t['NodeID'][:6]}",
                                 "node": names.get(t.get("NodeID"), "-"), "desired": t.get("DesiredState"),
                                 "state": t["Status"]["State"], "error": t["Status"].get("Err", "")})
    return result
