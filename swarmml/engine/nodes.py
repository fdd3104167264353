"""Engine I/O for local clusters: images, node containers, networks and volumes on the host engine.

Swarm-level calls (swarm init/join, node list) go to each node's own engine
through the unix socket it exposes in the cluster's root-only directory.
"""
import io
import os
import subprocess
import tarfile
import time

import docker
import docker.errors
import requests

from swarmml.engine import CLUSTER_LABEL, ROLE_LABEL, connect, errors, explain
from swarmml.errors import SwarmmlError

# Flags that let Docker-in-Docker run without --privileged, which fails on
# hosts missing CAP_SYS_RESOURCE. The cgroup mount is what nested containers need.
NODE_RUN_OPTIONS = dict(
    cap_add=["ALL"],
    cap_drop=["SYS_RESOURCE"],
    security_opt=["seccomp=unconfined", "apparmor=unconfined"],
    device_cgroup_rules=["a *:* rwm"],
    tmpfs={"/run": ""},
)
NODE_SOCKET_DIR = "/swarmml-run"  # where a node's dockerd puts the socket we reach it by


# --- images -------------------------------------------------------------------

def image_exists(client, ref):
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def try_pull(client, ref):
    """Pull ref; False (quickly) when no registry can be reached."""
    try:
        client.images.pull(ref)
        return True
    except (docker.errors.APIError, docker.errors.DockerException):
        return False


def build_image(client, context, ref, buildargs=None, labels=None, on_line=None):
    """Build a Dockerfile context; calls on_line(str) for each line of build output."""
    try:
        for chunk in client.api.build(path=context, tag=ref, buildargs=buildargs or {}, labels=labels or {},
                                      rm=True, forcerm=True, decode=True):
            if "error" in chunk:
                raise SwarmmlError(f"building {ref} failed: {chunk['error'].strip()}")
            if on_line and chunk.get("stream", "").strip():
                on_line(chunk["stream"].rstrip())
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"building {ref} failed: {explain(exc)}") from None


def import_rootfs(client, rootfs_dir, ref, changes):
    """docker import of a directory tree (a debootstrap root) as image ref."""
    tar = subprocess.Popen(["tar", "-C", rootfs_dir, "-c", "."], stdout=subprocess.PIPE)
    try:
        client.api.import_image(src=iter(lambda: tar.stdout.read(1 << 20), b""), repository=ref,
                                changes=changes, stream_src=True)
    finally:
        tar.stdout.close()
        tar.wait()


def push_image(client, ref, login=None):
    """Push ref with login (a docker config entry, or None); errors.PushFailed carries the engine's text."""
    try:
        for chunk in client.api.push(ref, stream=True, decode=True, auth_config=login or {}):
            if "error" in chunk:
                raise errors.PushFailed(chunk["error"])
    except docker.errors.APIError as exc:
        raise errors.PushFailed(explain(exc), exc.status_code) from None


# --- cluster objects on the host engine ----------------------------------------

def labels_for(cluster, role):
    return {CLUSTER_LABEL: cluster, ROLE_LABEL: role}


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


def ensure_volume(client, name, cluster, role):
    try:
        client.volumes.get(name)
    except docker.errors.NotFound:
        client.volumes.create(name, labels=labels_for(cluster, role))


def _container(c):
    return {"id": c.id, "name": c.name, "status": c.status, "labels": dict(c.labels)}


def cluster_containers(client, cluster):
    """The cluster's containers as plain dicts: id, name, status (running, exited, ...), labels."""
    return [_container(c) for c in client.containers.list(all=True, filters={"label": f"{CLUSTER_LABEL}={cluster}"})]


def stop_container(client, container_id, timeout=10):
    try:
        client.api.stop(container_id, timeout=timeout)
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"stopping container {container_id[:12]} failed: {explain(exc)}") from None


def kill_container(client, container_id):
    """SIGKILL: what losing a machine looks like to the rest of the swarm (no clean shutdown)."""
    try:
        client.api.kill(container_id)
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"killing container {container_id[:12]} failed: {explain(exc)}") from None


def exec_in(client, container_id, cmd):
    """Run cmd (a list) in a running container; returns (exit code, output text)."""
    try:
        done = client.api.exec_create(container_id, cmd)
        out = client.api.exec_start(done["Id"])
        return client.api.exec_inspect(done["Id"])["ExitCode"], out.decode("utf-8", "replace")
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"running {' '.join(cmd)} in {container_id[:12]} failed: {explain(exc)}") from None


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


def container_facts(client, container, network):
    """What recreating a container needs to know of it, as plain data: id, image, labels (its image's too),
    its address on network, its named volumes (name -> where mounted) and whether it runs."""
    try:
        info = client.api.inspect_container(container)
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"reading container {container} failed: {explain(exc)}") from None
    return {"id": info["Id"], "name": info["Name"].lstrip("/"), "image": info["Config"]["Image"],
            "labels": info["Config"].get("Labels") or {},
            "ip": ((info["NetworkSettings"].get("Networks") or {}).get(network) or {}).get("IPAddress") or None,
            "volumes": {m["Name"]: m["Destination"] for m in info.get("Mounts") or [] if m.get("Type") == "volume"},
            "running": bool(info["State"].get("Running"))}


def remove_container(client, container_id, stop_timeout=10):
    """Stop a container, giving its main process stop_timeout s to end cleanly, then remove it.
    Its named volumes stay (a node's /var/lib/docker, the registry's images)."""
    try:
        client.api.stop(container_id, timeout=stop_timeout)
        client.api.remove_container(container_id, v=False)
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"removing container {container_id[:12]} failed: {explain(exc)}") from None


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


def start_container(client, container_id):
    try:
        client.api.start(container_id)
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"starting container {container_id[:12]} failed: {explain(exc)}") from None


def all_cluster_names(client):
    """Every cluster name that labels a container, network or volume on this engine."""
    labelled = [c.labels for c in client.containers.list(all=True, filters={"label": CLUSTER_LABEL})]
    labelled += [n.attrs.get("Labels") or {} for n in client.networks.list(filters={"label": CLUSTER_LABEL})]
    labelled += [v.attrs.get("Labels") or {} for v in client.volumes.list(filters={"label": CLUSTER_LABEL})]
    return sorted({labels[CLUSTER_LABEL] for labels in labelled if labels.get(CLUSTER_LABEL)})


def run_node(client, *, cluster, container_name, hostname, image, network, volume, socket_dir,
             insecure_registry, role, entry_script=None, publish=()):
    """Start a node container. entry_script: a sh script run instead of dockerd (it gets dockerd's
    arguments and ends by exec'ing it); publish: container ports published on 127.0.0.1 only."""
    args = [
        "-H", "unix:///var/run/docker.sock",
        "-H", f"unix://{NODE_SOCKET_DIR}/docker.sock",
    ] + (["--insecure-registry", insecure_registry] if insecure_registry else [])
    api = client.api
    host_config = api.create_host_config(
        binds={volume: {"bind": "/var/lib/docker", "mode": "rw"},
               "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
               socket_dir: {"bind": NODE_SOCKET_DIR, "mode": "rw"}},
        network_mode=network,
        restart_policy={"Name": "no"},
        port_bindings={p: ("127.0.0.1", None) for p in publish} or None,
        **NODE_RUN_OPTIONS,
    )
    # What `--security-opt systempaths=unconfined` means to the CLI: nothing
    # masked or read-only under /proc and /sys, which a nested dockerd needs.
    host_config["MaskedPaths"] = []
    host_config["ReadonlyPaths"] = []
    try:
        created = api.create_container(
            image, (["swarmml-node"] + args) if entry_script else args,
            entrypoint=["/bin/sh", "-c", entry_script] if entry_script else ["dockerd"],
            ports=list(publish) or None, name=container_name, hostname=hostname,
            labels=labels_for(cluster, role), host_config=host_config, detach=True,
            networking_config=api.create_networking_config({network: api.create_endpoint_config()}),
        )
        api.start(created["Id"])
        return created["Id"]
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"starting node {container_name} failed: {explain(exc)}") from None


def run_registry(client, *, cluster, container_name, image, network, volume, data_path, read_only=None,
                 wrapper=None, environment=None):
    """Start the cluster's registry. read_only: {host dir: container path} mounted read-only; wrapper: a shell
    script run before the image's own entry point and command (passed to it as "$@"), e.g. to wait for a
    certificate that names the address the registry gets here."""
    volumes = {volume: {"bind": data_path, "mode": "rw"}}
    volumes.update({src: {"bind": dst, "mode": "ro"} for src, dst in (read_only or {}).items()})
    extra: dict = {"environment": environment} if environment else {}
    if wrapper:
        found = client.api.inspect_image(image)["Config"]
        extra.update(entrypoint=["/bin/sh", "-c", wrapper, "registry"],
                     command=(found.get("Entrypoint") or []) + (found.get("Cmd") or []))
    try:
        container = client.containers.run(
            image, name=container_name, hostname="registry", detach=True, network=network,
            labels=labels_for(cluster, "registry"), volumes=volumes,
            # Loopback only: a plain registry has no auth (one with a login is reached at its bridge address).
            ports={"5000/tcp": ("127.0.0.1", None)},
            restart_policy={"Name": "no"}, **extra,
        )
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"starting the registry failed: {explain(exc)}") from None
    # Nodes find it as registry:5000 whatever the container is called.
    client.networks.get(network).disconnect(container)
    client.networks.get(network).connect(container, aliases=["registry"])
    return container.id


def put_file(client, container, path, data, mode=0o644):
    """Write one file into a container (running or not), making its directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))
    try:
        client.api.put_archive(container, "/", buf.getvalue())
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"writing {path} in {container} failed: {explain(exc)}") from None


def published_port(client, container_id, port="5000/tcp"):
    """The host port a container's `port` is published on, or None."""
    settings = client.api.inspect_container(container_id)["NetworkSettings"]
    bindings = (settings["Ports"] or {}).get(port) or []
    return int(bindings[0]["HostPort"]) if bindings else None


def container_ip(client, container_id, network):
    settings = client.api.inspect_container(container_id)["NetworkSettings"]
    return settings["Networks"].get(network, {}).get("IPAddress") or None


def remove_cluster_objects(client, cluster):
    """Remove containers, then networks and volumes labelled with this cluster. Returns counts."""
    removed = {"containers": 0, "networks": 0, "volumes": 0}
    for c in cluster_containers(client, cluster):
        client.api.remove_container(c["id"], force=True, v=True)
        removed["containers"] += 1
    for n in client.networks.list(filters={"label": f"{CLUSTER_LABEL}={cluster}"}):
        n.remove()
        removed["networks"] += 1
    for v in client.volumes.list(filters={"label": f"{CLUSTER_LABEL}={cluster}"}):
        v.remove(force=True)
        removed["volumes"] += 1
    return removed


# --- the swarm inside the nodes --------------------------------------------------

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


def join_tokens(manager_client):
    manager_client.swarm.reload()
    return manager_client.swarm.attrs["JoinTokens"]


def swarm_join(node_client, manager_addr, token, addr):
    try:
        node_client.swarm.join(remote_addrs=[f"{manager_addr}:2377"], join_token=token,
                               advertise_addr=addr, listen_addr="0.0.0.0:2377")
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"joining the swarm at {manager_addr} failed: {explain(exc)}") from None


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


def running_tasks(manager_client):
    """Running tasks as plain dicts: node id and service id."""
    return [{"node": t.get("NodeID"), "service": t.get("ServiceID")}
            for t in manager_client.api.tasks(filters={"desired-state": "running"})
            if t.get("Status", {}).get("State") == "running"]


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


def unfinished_tasks(manager_client):
    """Tasks the swarm wants running that do not run (yet), as plain dicts: service id, node id, state."""
    tasks = errors.call("listing tasks", manager_client.api.tasks, filters={"desired-state": "running"})
    return [{"service": t.get("ServiceID"), "node": t.get("NodeID"), "state": t["Status"]["State"]}
            for t in tasks if t["Status"]["State"] != "running"]


def remove_node(manager_client, node_id):
    manager_client.api.remove_node(node_id, force=True)


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


def node_ip(client, container_name, network):
    return container_ip(client, container_name, network)


def tag_image(client, ref, new_ref):
    repo, tag = new_ref.rsplit(":", 1)
    client.images.get(ref).tag(repo, tag)
