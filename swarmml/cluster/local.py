"""A real multi-node Swarm on one machine: Docker-in-Docker nodes and a registry.

Every object a cluster makes carries the io.swarmml.cluster label, so `down`
removes exactly those. Each node's engine is reached through a unix socket in
a root-only directory (/run/swarmml/<cluster>/), never through a TCP port.
"""
import os
import re
import shutil
import time
from dataclasses import dataclass, field

from swarmml.cluster import change as changes
from swarmml import engine, labels
from swarmml.cluster import images
from swarmml.cluster import registry as registries
from swarmml.cluster import expose as exposing
from swarmml.cluster.bootstrap import ensure_engine
from swarmml.cluster.vip import network_name
from swarmml.console import progress
from swarmml.engine import endpoint
from swarmml.engine import containers as engine_containers
from swarmml.engine import networks as engine_networks
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import swarm as engine_swarm
from swarmml.engine import tasks as engine_tasks
from swarmml.errors import NotFound, SwarmmlError, UsageError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
MAX_NODES = 9


@dataclass
class UpResult:
    name: str
    created: list = field(default_factory=list)  # container names made or started by this call
    recreated: list = field(default_factory=list)  # containers run again with --expose or --registry-auth
    already_up: bool = False
    status: dict = field(default_factory=dict)
    duration_s: float = 0.0


# --- names (pure) --------------------------------------------------------------

def validate(name, nodes=1, managers=1):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UsageError(f"--name: expected lowercase letters, digits and dashes (at most 31), got {name!r}")
    if not isinstance(nodes, int) or isinstance(nodes, bool) or not 1 <= nodes <= MAX_NODES:
        raise UsageError(f"--nodes: expected an integer from 1 to {MAX_NODES}, got {nodes!r}")
    if not isinstance(managers, int) or isinstance(managers, bool) or not 1 <= managers <= nodes:
        raise UsageError(f"--managers: expected an integer from 1 to --nodes ({nodes}), got {managers!r}")


def node_container(name, i):
    return f"swarmml-{name}-node{i}"


def registry_container(name):
    return f"swarmml-{name}-registry"


def socket_dir(name, i):
    return os.path.dirname(engine.node_socket(name, f"node{i}"))


def node_index(name, node):
    """node may be 'node2', '2' or the container name; returns 2."""
    m = re.fullmatch(rf"(?:swarmml-{re.escape(name)}-)?(?:node)?(\d+)", str(node))
    if not m:
        raise UsageError(f"node: expected a node name like node2, got {node!r}")
    return int(m.group(1))


def summarize(nodes, tasks, containers):
    """Pure: one row per swarm node, with the tasks running on it and its container state."""
    per_node = {}
    for t in tasks:
        per_node[t["node"]] = per_node.get(t["node"], 0) + 1
    rows = []
    for n in sorted(nodes, key=lambda n: n["hostname"]):
        rows.append({
            "node": n["hostname"],
            "state": n["state"],
            "role": n["role"] + (" (leader)" if n.get("leader") else ""),
            "availability": n["availability"],
            "engine": n["engine"],
            "addr": n["addr"],
            "tasks": per_node.get(n["id"], 0),
            "container": containers.get(n["hostname"], "-"),
        })
    return rows


# --- verbs -----------------------------------------------------------------------

def default_managers(nodes: int) -> int:
    """Pure: 3 managers when there are 3 nodes or more, the smallest quorum that survives the loss of one;
    else 1 (2 managers survive nothing that 1 does not, and lose quorum with either)."""
    return 3 if nodes >= 3 else 1


def up(name="local", nodes=3, managers=None, image_mode="auto", expose=(), registry_auth=False,
       show_progress=False):
    """Bring the cluster to at least `nodes` nodes; a running cluster is reported and left alone, unless
    asked for what it lacks of expose and registry_auth, which it then gets in place (_change_running).

    expose: ("ssh", "tls") or part of it: the manager also answers over SSH and mutual TLS (see swarmml.cluster.expose).
    registry_auth: the registry asks for a login, over TLS (see swarmml.cluster.registry).
    """
    managers = default_managers(nodes) if managers is None else managers
    validate(name, nodes, managers)
    expose = exposing.parse_kinds(expose)
    started = time.monotonic()
    client = ensure_engine()
    result = UpResult(name)

    existing = {c["name"]: c for c in engine_containers.cluster_containers(client, name)}
    # A running cluster gets what it lacks in place, after it is up as it runs (so nodes added now
    # trust its registry as it is, and are exposed with the other managers).
    has_manager, has_registry = node_container(name, 1) in existing, registry_container(name) in existing
    change = changes.plan_change(exposing.load_record(expose_record_path(name)).get("kinds", []),
                                 expose if has_manager else (), _registry_asks_login(name),
                                 registry_auth and has_registry)
    if change.expose:
        _refuse_unexposable(name, client)
    expose = () if has_manager else expose
    registry_auth = _registry_asks_login(name) if has_registry else registry_auth
    wanted = [node_container(name, i) for i in range(1, nodes + 1)] + [registry_container(name)]
    if not change and all(n in existing and existing[n]["status"] == "running" for n in wanted):
        st = status(name, client=client)
        if sum(1 for r in st["nodes"] if r["state"] == "ready") >= nodes:
            result.already_up, result.status = True, st
            result.duration_s = time.monotonic() - started
            return result

    chosen = images.image_set(client, image_mode)
    if expose and chosen.mode != "local":
        raise UsageError("--expose needs swarmml's own node image (it has sshd and iproute2); add --images local")
    net = network_name(name)
    engine_networks.ensure_network(client, net, name)
    os.makedirs(os.path.join(engine.SOCKET_ROOT, name), mode=0o700, exist_ok=True)
    os.chmod(engine.SOCKET_ROOT, 0o700)
    os.chmod(os.path.join(engine.SOCKET_ROOT, name), 0o700)

    reg = registry_container(name)
    login_dir = registries.material_dir(os.path.join(engine.SOCKET_ROOT, name)) if registry_auth else None
    if reg not in existing:
        engine_containers.ensure_volume(client, reg, name, "registry")
        if login_dir:
            registries.prepare(login_dir)
        reg_id = engine_containers.run_registry(client, cluster=name, container_name=reg, image=chosen.registry,
                                                network=net, volume=reg, data_path=chosen.registry_data,
                                                **registries.container_options(login_dir))
        if login_dir:
            _secure_registry(name, client, reg_id, login_dir)
        result.created.append(reg)
    elif existing[reg]["status"] != "running":
        engine_containers.start_container(client, existing[reg]["id"])
        result.created.append(reg)
    trusted = registries.read_address(login_dir) if login_dir else None

    authority = None
    for i in range(1, nodes + 1):
        cname = node_container(name, i)
        role = "manager" if i <= managers else "worker"
        if cname in existing:
            if existing[cname]["status"] != "running":
                engine_containers.start_container(client, existing[cname]["id"])
                result.created.append(cname)
            continue
        os.makedirs(socket_dir(name, i), mode=0o700, exist_ok=True)
        engine_containers.ensure_volume(client, cname, name, "node")
        # Every manager of a new cluster is exposed, node1 also on this host's 127.0.0.1. Managers
        # added to a running one are not: its CA's key was not kept.
        exposed = expose if role == "manager" and (i == 1 or authority is not None) else ()
        engine_containers.run_node(client, cluster=name, container_name=cname, hostname=f"node{i}", image=chosen.node,
                                   network=net, volume=cname, socket_dir=socket_dir(name, i),
                                   insecure_registry=None if trusted else f"registry:{registries.PORT}", role=role,
                                   entry_script=exposing.NODE_SCRIPT if exposed else None,
                                   publish=_published(exposed) if i == 1 else ())
        if trusted:
            engine_containers.put_file(client, cname, registries.trust_path(trusted), registries.ca_pem(login_dir))
        if exposed:
            if i == 1:
                authority = exposing.authority(name, exposed)
                exposing.write_client(authority, client_dir(name))
                exposing.save_record(expose_record_path(name), {"kinds": list(exposed)})
            ip = engine_containers.node_ip(client, cname, net)
            exposing.write_manager(name, authority, os.path.join(socket_dir(name, i), "expose"),
                                   [ip, "127.0.0.1", "localhost", cname, f"node{i}"])
        result.created.append(cname)

    _form_swarm(client, name, nodes, managers)
    link = engine.cluster_socket(name)
    if not os.path.islink(link):
        os.symlink(os.path.join(socket_dir(name, 1), "docker.sock"), link)
    _wait_ready(name, nodes)
    if change:
        result.recreated = _change_running(name, client, change, show_progress)
    if exposing.load_record(expose_record_path(name)).get("kinds"):
        exposure(name, client)
    result.status = status(name, client=client)
    result.duration_s = time.monotonic() - started
    return result


def _secure_registry(name, client, reg_id, login_dir):
    """Certificates for the registry's bridge address (known only now that it runs), then trust them here."""
    address = f"{engine_containers.container_ip(client, reg_id, network_name(name))}:{registries.PORT}"
    registries.write_material(name, login_dir, address, ["registry", "localhost", "127.0.0.1"])
    registries.trust_on_host(address, registries.ca_pem(login_dir))


def _registry_asks_login(name):
    return registries.read_address(registries.material_dir(os.path.join(engine.SOCKET_ROOT, name))) is not None


# --- a running cluster, changed in place ---------------------------------------------------------

NODE_STOP_S = 30  # a node's dockerd gives its containers 15 s to stop, then leaves the swarm cleanly
REJOIN_S = 180  # a recreated manager's engine starting, and an election (14-22 s here) when it led
TASKS_S = 60  # how long to wait for tasks to run elsewhere (drained) or again (back): past it, go on


def _refuse_unexposable(name, client):
    """Before anything changes: nodes run again keep their image, and only swarmml's own has sshd."""
    facts = engine_containers.container_facts(client, node_container(name, 1), network_name(name))
    if facts["labels"].get(labels.IMAGE) != "node":
        raise UsageError(f"cluster {name!r} runs {facts['image']} nodes, which have no sshd, and --expose keeps "
                         f"their image: `swarmml cluster down --name {name}`, then `swarmml cluster up --name {name} "
                         "--images local --expose ...`")


def _change_running(name, client, change, show=False):
    """Give a running cluster what it lacks of --expose and --registry-auth, keeping its stacks, its
    registry's images and its swarm; returns the containers run again.

    Docker can't publish ports on, or change the command of, a container that exists: the managers
    are recreated one at a time with the same name, address, data volume and flags (the swarm keeps
    its state in the volume, and knows each manager at its address). Starting the listeners with
    `docker exec` instead could not add the TLS port to a running dockerd, nor survive the node's
    next restart.
    """
    plan = _expose_plan(name, client) if change.expose else []  # refuses before anything changes
    recreated = []
    if change.registry_auth:
        recreated.append(_secure_running_registry(name, client))
    if change.expose:
        recreated += _expose_running(name, client, change.expose, plan, show)
    return recreated


def _expose_plan(name, client):
    """The nodes to run again, in order, each as it runs now (its container's facts, its swarm node's id and
    whether to drain it first); refuses where one would not come back where the swarm knows it."""
    net = network_name(name)
    network = engine_networks.network_addresses(client, net)
    rows = engine_nodes.swarm_nodes(manager_client(name))
    by_host = {r["hostname"]: r for r in rows}
    plan = []
    for host in changes.recreate_order(rows):
        facts = engine_containers.container_facts(client, node_container(name, node_index(name, host)), net)
        if facts["volumes"].get(facts["name"]) != "/var/lib/docker" or not facts["ip"]:
            raise SwarmmlError(f"{facts['name']} does not run as `swarmml cluster up` made it (its volume at "
                               "/var/lib/docker, on the cluster's network): it can't be run again in place")
        if not changes.keeps_address(network, facts["ip"]):
            raise SwarmmlError(f"{host} of cluster {name!r} would not get its address {facts['ip']} back when run "
                               f"again (a lower one is free on {net}), and the swarm knows it there: "
                               f"`swarmml cluster down --name {name}`, then up again with the flags")
        plan.append(dict(facts, node_id=by_host[host]["id"], drain=changes.drains(host, rows)))
    return plan


def _secure_running_registry(name, client):
    """The registry asks for a login from now on: run again from its image and storage volume (its images
    stay), with its TLS and htpasswd material; every node trusts its CA from then on (no restart: an engine
    reads certs.d at each pull)."""
    net, reg = network_name(name), registry_container(name)
    facts = engine_containers.container_facts(client, reg, net)
    data_path = facts["volumes"].get(reg)
    if not data_path:
        raise SwarmmlError(f"{reg} keeps its images outside its volume {reg}: it can't be run again in place")
    login_dir = registries.material_dir(os.path.join(engine.SOCKET_ROOT, name))
    registries.prepare(login_dir)
    engine_containers.remove_container(client, facts["id"])
    reg_id = engine_containers.run_registry(client, cluster=name, container_name=reg, image=facts["image"], network=net,
                                            volume=reg, data_path=data_path, **registries.container_options(login_dir))
    _secure_registry(name, client, reg_id, login_dir)
    address, ca = registries.read_address(login_dir), registries.ca_pem(login_dir)
    for c in engine_containers.cluster_containers(client, name):
        if c["labels"].get(engine.ROLE_LABEL) in ("manager", "worker"):
            engine_containers.put_file(client, c["id"], registries.trust_path(address), ca)
    return reg


def _expose_running(name, client, kinds, plan, show):
    """Every manager answers over kinds: run again one at a time, the swarm settled between two."""
    authority = exposing.authority(name, kinds)  # a new CA and keys: the old CA's key was not kept
    exposing.write_client(authority, client_dir(name))
    trusted = registries.read_address(registries.material_dir(os.path.join(engine.SOCKET_ROOT, name)))
    nodes = len(engine_nodes.swarm_nodes(manager_client(name)))
    before = engine_tasks.task_containers(_node_sockets(name))
    with progress(transient=True, show=show) as bars:
        ids = {f["name"]: bars.add_task(f["name"], total=1, status="waiting its turn") for f in plan}
        for facts in plan:
            def status(text, done=False, task=ids[facts["name"]]):
                bars.update(task, status=text, completed=1 if done else 0)

            def recreate(facts=facts, status=status):
                _recreate_node(name, client, facts, kinds, authority, trusted, status)
            _run_again(name, facts, nodes, before, recreate, status)
    exposing.save_record(expose_record_path(name), {"kinds": list(kinds)})
    return [f["name"] for f in plan]


def _run_again(name, facts, nodes, before, recreate, status):
    """One node out of the swarm's work while recreate() runs it again.

    Drained first (facts["drain"]), so that its tasks start on the other nodes while it still runs:
    a node that just stops leaves them down until the swarm notices it gone, or until it is back.
    Made active again once it is back in the swarm, which then has settled; the next node waits
    until the tasks the swarm wants run, and as many containers run per service as before.
    """
    own = os.path.join(socket_dir(name, node_index(name, facts["name"])), "docker.sock")
    if facts["drain"]:
        status("draining: its tasks start on the other nodes")
        _set_availability(name, facts["node_id"], "drain")
        _until(lambda: not engine_tasks.task_containers([own])
               and not engine_tasks.unfinished_tasks(manager_client(name)), TASKS_S)
    try:
        recreate()
        _wait_rejoined(name, facts["name"], nodes, status)
    except BaseException:
        if facts["drain"]:  # tried for a while, quietly: the error that got here is the one to tell
            _until(lambda: _set_availability(name, facts["node_id"], "active"), 10)
        raise
    if facts["drain"]:
        _set_availability(name, facts["node_id"], "active")
    status("waiting for the services' tasks")
    _until(lambda: not engine_tasks.unfinished_tasks(manager_client(name))
           and changes.tasks_back(before, engine_tasks.task_containers(_node_sockets(name))), TASKS_S)
    status("done", done=True)


def _set_availability(name, node_id, availability):
    engine_nodes.update_node(manager_client(name), node_id, availability=availability)
    return True


def _until(done, timeout):
    """Ask done() every second until it says True, or timeout s pass; an engine error counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if done():
                return True
        except SwarmmlError:
            pass
        time.sleep(1)
    return False


def _recreate_node(name, client, facts, kinds, authority, trusted, status):
    """One node container, removed and run again as it was (name, address, volume, image, flags), now
    through the expose entry script; node1 also publishes the ports on 127.0.0.1."""
    i, net, cname = node_index(name, facts["name"]), network_name(name), facts["name"]
    # Written first: the new container's entry script waits for it, and the address is the old one.
    exposing.write_manager(name, authority, os.path.join(socket_dir(name, i), "expose"),
                           [facts["ip"], "127.0.0.1", "localhost", cname, f"node{i}"])
    status("stopping: its engine stops its tasks and leaves cleanly")
    engine_containers.remove_container(client, facts["id"], stop_timeout=NODE_STOP_S)
    status("starting")
    engine_containers.run_node(client, cluster=name, container_name=cname, hostname=f"node{i}", image=facts["image"],
                               network=net, volume=cname, socket_dir=socket_dir(name, i),
                               insecure_registry=None if trusted else f"registry:{registries.PORT}",
                               role=facts["labels"].get(engine.ROLE_LABEL, "manager"),
                               entry_script=exposing.NODE_SCRIPT, publish=_published(kinds) if i == 1 else ())
    got = engine_containers.node_ip(client, cname, net)
    if got != facts["ip"]:
        raise SwarmmlError(f"{cname} came back at {got}, not at {facts['ip']} where the swarm knows it (another "
                           f"container took the address meanwhile); `swarmml cluster down --name {name}`, then up "
                           "again with the flags")
    if trusted:
        engine_containers.put_file(client, cname, registries.trust_path(trusted),
                                   registries.ca_pem(registries.material_dir(os.path.join(engine.SOCKET_ROOT, name))))


def _wait_rejoined(name, cname, nodes, status):
    """Until the node run again is back in the swarm, and the swarm has settled: a leader, every node
    ready, every manager reachable (asked first of the node itself: a manager that answers is back)."""
    i = node_index(name, cname)
    own = os.path.join(socket_dir(name, i), "docker.sock")
    asked = [own] + [p for p in _node_sockets(name) if p != own]
    status("waiting for its engine")
    engine_nodes.wait_node_engine(own, timeout=REJOIN_S)
    status("rejoining the swarm")

    def back():
        member, rows = engine_swarm.node_membership(own), engine_swarm.swarm_view(asked)
        return bool(member and member["state"] == "active" and rows and changes.settled(rows, nodes))
    if not _until(back, REJOIN_S):
        raise SwarmmlError(f"node{i} of cluster {name!r} did not rejoin the swarm within {REJOIN_S} s after it "
                           f"was run again; see `swarmml cluster status --name {name}`")


def _node_sockets(name):
    paths, i = [], 1
    while os.path.isdir(socket_dir(name, i)):
        paths.append(os.path.join(socket_dir(name, i), "docker.sock"))
        i += 1
    return paths


def _published(kinds):
    """The node ports node1 publishes on 127.0.0.1 for these kinds."""
    return [{"tls": exposing.TLS_PORT, "ssh": exposing.SSH_PORT}[k] for k in kinds]


def _form_swarm(client, name, nodes, managers):
    net = network_name(name)
    addrs, engines = {}, {}
    for i in range(1, nodes + 1):
        addrs[i] = engine_containers.node_ip(client, node_container(name, i), net)
        engines[i] = engine_nodes.wait_node_engine(os.path.join(socket_dir(name, i), "docker.sock"))
    state, _ = engine_swarm.swarm_state(engines[1])
    if state == "inactive":
        engine_swarm.swarm_init(engines[1], addrs[1])
    tokens = engine_swarm.join_tokens(engines[1])
    for i in range(2, nodes + 1):
        state, _ = engine_swarm.swarm_state(engines[i])
        if state == "inactive":
            token = tokens["Manager"] if i <= managers else tokens["Worker"]
            engine_swarm.swarm_join(engines[i], addrs[1], token, addrs[i])


def _wait_ready(name, nodes, timeout=90):
    manager = manager_client(name)
    deadline = time.monotonic() + timeout
    while True:
        listed = engine_nodes.swarm_nodes(manager)
        ready = [n for n in listed if n["state"] == "ready"]
        if len(ready) >= nodes:
            return
        if time.monotonic() > deadline:
            raise SwarmmlError(f"only {len(ready)} of {nodes} nodes became ready within {timeout} s; "
                               f"see `swarmml cluster status --name {name}`")
        time.sleep(0.5)


def manager_client(name):
    sock = engine.cluster_socket(name)
    if not os.path.lexists(sock):
        raise NotFound(f"no running swarmml cluster named '{name}'; start it with `swarmml cluster up --name {name}`")
    return engine.connect(f"unix://{sock}")


def exists(name, client=None):
    client = client or engine.host_client()
    return name in engine_containers.all_cluster_names(client)


def _require(name, client):
    if not NAME_RE.match(str(name)) or not exists(name, client):
        known = engine_containers.all_cluster_names(client)
        hint = f" (clusters here: {', '.join(known)})" if known else " (none exists; `swarmml cluster up`)"
        raise NotFound(f"unknown cluster {name!r}{hint}")


def env(name="local", via=None):
    """The shell line(s) that point the docker CLI at this cluster's manager (via: its unix socket, ssh or tls)."""
    client = engine.host_client()
    _require(name, client)
    sock = engine.cluster_socket(name)
    if not os.path.exists(sock):
        raise SwarmmlError(f"cluster {name!r} exists but its manager is not running; "
                           f"`swarmml cluster up --name {name}`")
    if via:
        return "\n".join(exposing.env_lines(name, via, exposure(name, client)))
    return f"export DOCKER_HOST=unix://{sock}"


def client_dir(name):
    """Where a cluster's client keys and certificates are: a DOCKER_CERT_PATH, and the ssh identity."""
    return os.path.join(engine.SOCKET_ROOT, name, "client")


def expose_record_path(name):
    return os.path.join(engine.SOCKET_ROOT, name, "expose.json")


def exposure(name, client=None):
    """What the manager exposes and on which host ports, read afresh (ports change when node1 restarts).

    Refreshes expose.json and, for ssh, the ~/.ssh/config block and host key.
    """
    rec = exposing.load_record(expose_record_path(name))
    kinds = rec.get("kinds") or []
    if not kinds:
        return rec
    client = client or engine.host_client()
    manager = node_container(name, 1)
    ports = {k: engine_containers.published_port(client, manager, f"{p}/tcp") for k, p in
             (("tls", exposing.TLS_PORT), ("ssh", exposing.SSH_PORT)) if k in kinds}
    if None in ports.values():
        raise SwarmmlError(f"the manager of cluster {name!r} is not running; "
                           f"`swarmml cluster start-node --name {name} node1`")
    rec = exposing.record(name, kinds, ports, client_dir(name))
    exposing.save_record(expose_record_path(name), rec)
    if "ssh" in kinds:
        exposing.install_ssh(_home(), name, ports["ssh"], client_dir(name), _exposed_managers(name, client))
    return rec


def _exposed_managers(name, client):
    """The bridge addresses of the running nodes that answer over ssh and TLS (each has its material)."""
    found = []
    running = {c["name"] for c in engine_containers.cluster_containers(client, name) if c["status"] == "running"}
    i = 1
    while os.path.isdir(socket_dir(name, i)):
        if node_container(name, i) in running and os.path.exists(os.path.join(socket_dir(name, i), "expose", "ready")):
            found.append(engine_containers.node_ip(client, node_container(name, i), network_name(name)))
        i += 1
    return sorted(ip for ip in found if ip)


def context(name="local", via="tls"):
    """Write docker context swarmml-<name> for this cluster's manager; returns the context's name."""
    client = engine.host_client()
    _require(name, client)
    return exposing.write_context(endpoint.config_dir(os.environ), name, via, exposure(name, client))


def _home():
    return os.environ.get("HOME") or os.path.expanduser("~")


def status(name="local", client=None):
    client = client or engine.host_client()
    _require(name, client)
    containers = {c["name"]: c for c in engine_containers.cluster_containers(client, name)}
    by_host = {}
    for cname, c in containers.items():
        m = re.fullmatch(rf"swarmml-{re.escape(name)}-(node\d+)", cname)
        if m:
            by_host[m.group(1)] = c["status"]
    try:
        manager = manager_client(name)
        nodes, tasks = engine_nodes.swarm_nodes(manager), engine_tasks.running_tasks(manager)
    except SwarmmlError:
        nodes, tasks = [], []
    return {
        "cluster": name,
        "docker_host": f"unix://{engine.cluster_socket(name)}",
        "registry": _registry_status(name, client, containers.get(registry_container(name))),
        "nodes": summarize(nodes, tasks, by_host),
    }


def _registry_status(name, client, reg):
    running = reg is not None and reg["status"] == "running"
    login_dir = registries.material_dir(os.path.join(engine.SOCKET_ROOT, name))
    if _registry_asks_login(name):
        address = registries.read_address(login_dir) if running else None
        return {"container": reg["status"] if reg else "missing", "push_prefix": address, "pull_prefix": address,
                "login": {"user": registries.USER, "password_file": os.path.join(login_dir, "password"),
                          "ca": os.path.join(login_dir, "ca.pem")}}
    port = engine_containers.published_port(client, reg["id"]) if running else None
    return {"container": reg["status"] if reg else "missing", "push_prefix": f"127.0.0.1:{port}" if port else None,
            "pull_prefix": f"registry:{registries.PORT}", "login": None}


def registry(name="local") -> registries.Target:
    st = status(name)
    if not st["registry"]["push_prefix"]:
        raise SwarmmlError(f"the registry of cluster {name!r} is not running; `swarmml cluster up --name {name}`")
    return registries.cluster_target(st["registry"]["push_prefix"], login=st["registry"]["login"] is not None)


def down(name="local"):
    client = engine.host_client()
    _require(name, client)
    removed = engine_containers.remove_cluster_objects(client, name)
    trusted = registries.read_address(registries.material_dir(os.path.join(engine.SOCKET_ROOT, name)))
    if trusted:
        registries.untrust_on_host(trusted)
    if exposing.load_record(expose_record_path(name)).get("kinds"):
        exposing.remove_ssh(_home(), name)
        exposing.remove_context(endpoint.config_dir(os.environ), name)
    root = os.path.join(engine.SOCKET_ROOT, name)
    if os.path.isdir(root):
        shutil.rmtree(root, ignore_errors=True)
    return removed


def stop_node(name, node):
    client = engine.host_client()
    _require(name, client)
    c = _node(client, name, node)
    engine_containers.stop_container(client, c["id"], timeout=10)
    return c["name"]


def node_running(name, node):
    """Whether a node's container runs (as this machine's engine says: no swarm call, which may fail now)."""
    client = engine.host_client()
    return _node(client, name, node)["status"] == "running"


def kill_node(name, node):
    """Lose a node as a machine is lost: its container is killed, with no clean shutdown."""
    client = engine.host_client()
    _require(name, client)
    c = _node(client, name, node)
    engine_containers.kill_container(client, c["id"])
    return c["name"]


# A partition: the node's link to the cluster's network goes down (ARP included, so it can't
# claim the gateway's address either), while its engine, tasks and swarm state stay up.
CUT = ["ip", "link", "set", "eth0", "down"]


def cut_node(name, node):
    """Partition a node from the others; returns the default route to restore (mend_node)."""
    client = engine.host_client()
    _require(name, client)
    c = _node(client, name, node)
    _, route = engine_containers.exec_in(client, c["id"], ["ip", "-4", "route", "show", "default"])
    code, out = engine_containers.exec_in(client, c["id"], CUT)
    if code:
        raise SwarmmlError(f"cutting {c['name']} off failed: {out.strip()}")
    return route.split()[2] if route.startswith("default via") else None


def mend_node(name, node, gateway=None):
    """End a partition: the link comes up again, with its default route (the link's going down dropped it)."""
    client = engine.host_client()
    _require(name, client)
    c = _node(client, name, node)
    code, out = engine_containers.exec_in(client, c["id"], ["ip", "link", "set", "eth0", "up"])
    if code:
        raise SwarmmlError(f"reconnecting {c['name']} failed: {out.strip()}")
    if gateway:
        engine_containers.exec_in(client, c["id"], ["ip", "route", "replace", "default", "via", gateway])
    return c["name"]


def vip_holder(name, vip):
    """The hostname of the node whose interface holds the virtual IP vip (an address), or None."""
    client = engine.host_client()
    for c in engine_containers.cluster_containers(client, name):
        if c["labels"].get(engine.ROLE_LABEL) in ("manager", "worker") and c["status"] == "running":
            code, out = engine_containers.exec_in(client, c["id"], ["ip", "-4", "-o", "addr", "show"])
            if code == 0 and any(part.split("/")[0] == vip for part in out.split()):
                return c["name"].rsplit("-", 1)[-1]
    return None


def running_containers(name, service):
    """How many containers of a swarm service run on the cluster's nodes, as their own engines say.

    Not the managers' task list: after a partition, a node may still run tasks the managers have
    already replaced elsewhere.
    """
    root = os.path.join(engine.SOCKET_ROOT, name)
    return sum(engine_tasks.running_service_containers(os.path.join(root, d, "docker.sock"), service)
               for d in sorted(os.listdir(root)) if os.path.exists(os.path.join(root, d, "docker.sock")))


def start_node(name, node, wait=True):
    client = engine.host_client()
    _require(name, client)
    i = node_index(name, node)
    c = _node(client, name, node)
    engine_containers.start_container(client, c["id"])
    if wait:
        engine_nodes.wait_node_engine(os.path.join(socket_dir(name, i), "docker.sock"))
        manager = manager_client(name)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if any(n["hostname"] == f"node{i}" and n["state"] == "ready"
                       for n in engine_nodes.swarm_nodes(manager)):
                    break
            except SwarmmlError:
                pass  # no leader for a moment (the node may be a manager rejoining): ask again
            time.sleep(0.5)
        else:
            raise SwarmmlError(f"node{i} started but did not become ready within 60 s")
        if i == 1 and exposing.load_record(expose_record_path(name)).get("kinds"):
            exposure(name, client)
    return c["name"]


def _node(client, name, node):
    i = node_index(name, node)
    cname = node_container(name, i)
    for c in engine_containers.cluster_containers(client, name):
        if c["name"] == cname:
            return c
    raise NotFound(f"cluster {name!r} has no node {node!r}")
