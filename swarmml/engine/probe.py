"""Engine I/O for `swarmml top`: what the replicas and the gateway say, and what the engines measure.

The replicas' /metrics and the gateway's statistics answer only on the
stack's overlay network, which the host can't reach. A probe container on
the manager, attached to that (attachable) network, fetches them all in one
exec per refresh: one engine we already reach, one python start per refresh
whatever the number of replicas, and it works the same over ssh:// or tcp://.
The probe is the predictor's own image (it has python), and it exits by
itself 30 s after the last fetch, so a killed `top` leaves nothing behind that
would keep `swarmml rm` from removing the network.
"""
import json
import os
import time

import docker.errors
import requests

from swarmml.engine import SOCKET_ROOT, explain
from swarmml.engine import swarm as engine
from swarmml.errors import SwarmmlError

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


def node_engines(client, cluster: str | None, nodes: list[dict]) -> dict[str, object]:
    """node id -> a client for that node's engine, for every node we can reach (the manager itself at least).

    A local swarmml cluster keeps a socket per node; elsewhere only the
    manager's own node is reached, and the other nodes' containers go unmeasured.
    """
    found = {}
    own = engine.own_node_id(client)
    if own:
        found[own] = client
    if cluster:
        for n in nodes:
            host = n["Description"]["Hostname"]
            sock = os.path.join(SOCKET_ROOT, cluster, host, "docker.sock")
            if n["ID"] not in found and os.path.exists(sock):
                c = engine.node_engine(f"unix://{sock}", n["ID"])
                if c is not None:
                    found[n["ID"]] = c
    return found


def container_stats(client, container_id: str) -> dict | None:
    """One reading of a container's CPU and memory counters (the Engine API's stats JSON), None if gone."""
    try:
        s = client.api.stats(container_id, stream=False, one_shot=True)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return None
    s["swarmml_read_at"] = time.time()
    return s
