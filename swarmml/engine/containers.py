"""Engine I/O for containers: a local cluster's node and registry containers (and volumes), and top's probe.

A local cluster's containers, networks and volumes on the host engine carry its
labels, so that `cluster down` removes exactly those. Containers come out as
plain dicts; a container's stats as the Engine API's JSON.
"""
import io
import json
import tarfile
import time

import docker.errors
import requests

from swarmml.engine import CLUSTER_LABEL, ROLE_LABEL, explain
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


# --- a local cluster's containers and volumes on the host engine ------------------

def labels_for(cluster, role):
    return {CLUSTER_LABEL: cluster, ROLE_LABEL: role}


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


def start_container(client, container_id):
    try:
        client.api.start(container_id)
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"starting container {container_id[:12]} failed: {explain(exc)}") from None


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


def remove_container(client, container_id, stop_timeout=10):
    """Stop a container, giving its main process stop_timeout s to end cleanly, then remove it.
    Its named volumes stay (a node's /var/lib/docker, the registry's images)."""
    try:
        client.api.stop(container_id, timeout=stop_timeout)
        client.api.remove_container(container_id, v=False)
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"removing container {container_id[:12]} failed: {explain(exc)}") from None


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


def node_ip(client, container_name, network):
    return container_ip(client, container_name, network)


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


# --- a container's CPU and memory -----------------------------------------------------

def container_stats(client, container_id: str) -> dict | None:
    """One reading of a container's CPU and memory counters (the Engine API's stats JSON), None if gone."""
    try:
        s = client.api.stats(container_id, stream=False, one_shot=True)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return None
    s["swarmml_read_at"] = time.time()
    return s


# --- top's probe -------------------------------------------------------------------
# The replicas' /metrics and the gateway's statistics answer only on the
# stack's overlay network, which the host can't reach. A probe container on
# the manager, attached to that (attachable) network, fetches them all in one
# exec per refresh: one engine we already reach, one python start per refresh
# whatever the number of replicas, and it works the same over ssh:// or tcp://.
# The probe is the predictor's own image (it has python), and it exits by
# itself 30 s after the last fetch, so a killed `top` leaves nothing behind that
# would keep `swarmml rm` from removing the network.

PROBE_LABEL = "io.swarmml.probe"
IDLE_S = 30
# Runs in the probe as its main process: wait while fetches keep coming.
_IDLE = (f"import os, time\nopen('/tmp/beat', 'w').close()\n"
         f"while time.time() - os.path.getmtime('/tmp/beat') < {IDLE_S}:\n    time.sleep(1)\n")
# Runs in the probe for each refresh: GET every url at once, print {key: {t, status, body} | {t, error}}.
_FETCH = """
import json, os, sys, threading, time, urllib.request
os.utime('/tmp/beat')
out = {}
def get(key, url):
    try:
        with urllib.request.urlopen(url, timeout=1.5) as r:
            body = r.read().decode(errors='replace')
        out[key] = {'t': time.time(), 'status': r.status, 'body': body}
    except Exception as exc:
        out[key] = {'t': time.time(), 'error': str(exc)[:200]}
ts = [threading.Thread(target=get, args=kv) for kv in json.loads(sys.argv[1]).items()]
[t.start() for t in ts]
[t.join() for t in ts]
sys.stdout.write(json.dumps(out))
"""


def start_probe(client, network: str, image: str) -> str:
    """The id of a running probe container attached to network (reused when one runs), started if needed."""
    name = f"swarmml-probe-{network}"
    try:
        c = client.api.inspect_container(name)
        if c["State"]["Running"]:
            return c["Id"]
        client.api.remove_container(c["Id"], force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"probe container {name}: {explain(exc)}") from None
    try:
        try:
            client.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            client.api.pull(image)
        host_config = client.api.create_host_config(network_mode=network, auto_remove=True, read_only=True,
                                                    tmpfs={"/tmp": "size=1m"}, mem_limit="64m", nano_cpus=500_000_000)
        cid = client.api.create_container(image, entrypoint=["python", "-c", _IDLE], name=name,
                                          labels={PROBE_LABEL: network}, host_config=host_config,
                                          healthcheck={"test": ["NONE"]})["Id"]  # not the image's server check
        client.api.start(cid)
        return cid
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"starting a probe on network {network}: {explain(exc)}") from None


def fetch(client, probe_id: str, urls: dict[str, str]) -> dict[str, dict]:
    """GET each url from inside the probe at once: {key: {"t", "status", "body"}} or {key: {"t", "error"}}."""
    if not urls:
        return {}
    try:
        exec_id = client.api.exec_create(probe_id, ["python", "-c", _FETCH, json.dumps(urls)], stderr=False)["Id"]
        raw = client.api.exec_start(exec_id)
    except docker.errors.APIError as exc:
        raise SwarmmlError(f"fetching metrics through the probe: {explain(exc)}") from None
    try:
        return json.loads(raw.decode(errors="replace"))
    except ValueError:
        raise SwarmmlError(f"the probe answered something that is not JSON: {raw[:120]!r}") from None


def stop_probe(client, probe_id: str) -> None:
    try:
        client.api.remove_container(probe_id, force=True)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        pass
