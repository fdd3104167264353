"""`cluster up --expose ssh,tls` and `--registry-auth` on a cluster that runs: in place, nothing lost (issue 23).

A 3-node cluster of the module's own (3 managers, so the swarm keeps its quorum while each one is
drained and run again) starts plain, with an image pushed to its registry and a service of 3 replicas from it.
Then `up` is asked for --expose, and then for --registry-auth. Checked: the service kept running
throughout (its containers counted on the nodes' own engines twice a second), the swarm kept its
nodes and services, the registry its image, and the managers answer over SSH and mutual TLS.
"""
import os
import threading
import time

import docker
import pytest
import requests

import tiny_image
from swarmml.cluster import local as clusters
from swarmml.engine import CLUSTER_LABEL, SOCKET_ROOT, connect, endpoint

pytestmark = pytest.mark.integration
NAME = "expo"
SERVICE = "expo-sleeper"
REPLICAS = 3


@pytest.fixture(scope="module")
def plain(host_engine, session_home):
    """The cluster, without --expose or --registry-auth, and the service running on it."""
    if clusters.exists(NAME, host_engine):
        clusters.down(NAME)  # left by an earlier run that was stopped: this module needs it plain
    clusters.up(NAME, nodes=3)
    manager = clusters.manager_client(NAME)
    tag_ref = tiny_image.build_and_push(host_engine, NAME)
    digest = manager.api.inspect_distribution(tag_ref)["Descriptor"]["digest"]
    service = manager.services.create(f"{tag_ref}@{digest}", name=SERVICE, mode={"Replicated": {"Replicas": REPLICAS}},
                                      stop_grace_period=1_000_000_000)
    wait_running(REPLICAS)
    yield {"service_id": service.id, "nodes": node_ids()}
    if os.environ.get("SWARMML_KEEP_CLUSTER") == "1":
        return
    trusted = clusters.status(NAME)["registry"]["login"] and clusters.status(NAME)["registry"]["push_prefix"]
    clusters.down(NAME)
    assert not clusters.exists(NAME, host_engine)
    assert host_engine.containers.list(all=True, filters={"label": f"{CLUSTER_LABEL}={NAME}"}) == []
    assert not os.path.exists(os.path.join(SOCKET_ROOT, NAME))
    for f in ("config", "known_hosts"):
        path = session_home / ".ssh" / f
        assert not path.exists() or f"swarmml-{NAME}" not in path.read_text()
    assert not trusted or not os.path.exists(f"/etc/docker/certs.d/{trusted}")


def node_ids():
    return sorted((n["ID"], n["Description"]["Hostname"], n["Spec"]["Role"])
                  for n in clusters.manager_client(NAME).api.nodes())


def wait_running(n, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if clusters.running_containers(NAME, SERVICE) >= n:
            return
        time.sleep(1)
    raise AssertionError(f"{SERVICE}: fewer than {n} containers running after {timeout} s")


class Watch:
    """The service's running containers, as the nodes' own engines count them, twice a second."""

    def __init__(self):
        self.counts, self._stop = [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.counts.append((time.monotonic(), clusters.running_containers(NAME, SERVICE)))
            except (docker.errors.DockerException, requests.RequestException, OSError):
                pass  # a node's engine too busy to answer in time: no sample, rather than a wrong 0
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def changes(self):
        """(seconds from the start, count) each time the count changed."""
        t0, out = self.counts[0][0], []
        for t, c in self.counts:
            if not out or out[-1][1] != c:
                out.append((round(t - t0, 1), c))
        return out

    def below(self, n):
        """Seconds during which fewer than n containers ran."""
        return sum(b[0] - a[0] for a, b in zip(self.counts, self.counts[1:]) if a[1] < n)


def test_expose_on_a_running_cluster_keeps_its_swarm_and_service_running(plain):
    started = time.monotonic()
    with Watch() as watch:
        result = clusters.up(NAME, nodes=3, expose=("ssh", "tls"))
    took = time.monotonic() - started
    assert sorted(result.recreated) == [f"swarmml-{NAME}-node{i}" for i in (1, 2, 3)] and not result.already_up
    low = min(c for _, c in watch.counts)
    print(f"\nexpose in place: {took:.1f} s; {SERVICE} ran {low}..{REPLICAS} containers throughout, "
          f"fewer than {REPLICAS} for {watch.below(REPLICAS):.1f} s; (s, running): {watch.changes()}")
    assert low >= 1, watch.changes()  # never all down: at most one node at a time is run again
    # Each node is drained first, so its tasks start elsewhere while it still runs: the service is short
    # only while they start (a node that only restarts leaves them down until it is back: 40-50 s of 50 here).
    assert watch.below(REPLICAS) < took / 2, watch.changes()
    # The swarm is the same one: its nodes (identities, roles) and the service.
    assert node_ids() == plain["nodes"]
    assert clusters.manager_client(NAME).api.inspect_service(SERVICE)["ID"] == plain["service_id"]
    wait_running(REPLICAS)


@pytest.mark.parametrize("via", ["tls", "ssh"])
def test_the_manager_now_answers_over_ssh_and_tls(plain, via):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_") or k == "DOCKER_CONFIG"}
    for line in clusters.env(NAME, via).splitlines():
        if line.startswith("export "):
            key, value = line[len("export "):].split("=", 1)
            env[key] = value
    ep = endpoint.resolve(env)
    client = connect(ep.host, tls=ep.tls)
    assert client.api.inspect_service(SERVICE)["ID"] == plain["service_id"]
    assert len(client.api.nodes()) == 3


def test_every_manager_answers_mutual_tls_on_its_bridge_address(plain, host_engine):
    rec = clusters.exposure(NAME)
    cert = rec["client_dir"]
    tls = docker.tls.TLSConfig(client_cert=(f"{cert}/cert.pem", f"{cert}/key.pem"), ca_cert=f"{cert}/ca.pem",
                               verify=f"{cert}/ca.pem")
    for i in (1, 2, 3):
        ip = host_engine.api.inspect_container(f"swarmml-{NAME}-node{i}")["NetworkSettings"]["Networks"][
            f"swarmml-{NAME}"]["IPAddress"]
        node = docker.DockerClient(base_url=f"tcp://{ip}:2376", tls=tls, timeout=10,
                                   version=docker.constants.MINIMUM_DOCKER_API_VERSION)
        node.api.trust_env = False  # else REQUESTS_CA_BUNDLE, where set, replaces the cluster's CA
        assert node.info()["Name"] == f"node{i}"


def catalog_plain():
    port = clusters.status(NAME)["registry"]["push_prefix"].rsplit(":", 1)[1]
    return requests.get(f"http://127.0.0.1:{port}/v2/_catalog", timeout=10).json()["repositories"]


def test_registry_auth_on_a_running_cluster_keeps_its_images(plain, host_engine):
    assert "swarmml/tiny" in catalog_plain()
    started = time.monotonic()
    with Watch() as watch:
        result = clusters.up(NAME, nodes=3, registry_auth=True)
    print(f"\nregistry auth in place: {time.monotonic() - started:.1f} s")
    assert result.recreated == [f"swarmml-{NAME}-registry"]
    # No node was run again for it: the service never lost a container.
    assert min(c for _, c in watch.counts) == REPLICAS, watch.counts
    reg = clusters.status(NAME)["registry"]
    address, login = reg["push_prefix"], reg["login"]
    assert login and address.endswith(":5000") and not address.startswith("127.")
    assert requests.get(f"https://{address}/v2/", verify=login["ca"], timeout=10).status_code == 401
    with open(login["password_file"]) as f:
        password = f.read().strip()
    listed = requests.get(f"https://{address}/v2/_catalog", auth=("swarmml", password), verify=login["ca"],
                          timeout=10)
    assert "swarmml/tiny" in listed.json()["repositories"]  # the image pushed before, kept
    for i in (1, 2, 3):
        node = host_engine.containers.get(f"swarmml-{NAME}-node{i}")
        assert node.exec_run(["cat", f"/etc/docker/certs.d/{address}/ca.crt"]).exit_code == 0
    assert node_ids() == plain["nodes"] and clusters.running_containers(NAME, SERVICE) == REPLICAS


def test_a_second_up_with_both_flags_changes_nothing(plain):
    result = clusters.up(NAME, nodes=3, expose=("ssh", "tls"), registry_auth=True)
    assert result.already_up and result.recreated == [] and result.created == []
