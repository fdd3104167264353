"""Prometheus in the stack and the inference logs on the volume, on the real cluster.

- Every request that the gateway answered 200 has exactly one line in the inference logs, read back with
  `swarmml logs --inference`, through a replica's container stopped (SIGTERM, Swarm starts another) and a
  rolling update under load: the lines of replicas that are gone are still on their node's volume.
- Prometheus finds every running replica and gateway task by DNS and has per-replica series for each,
  recorded ones included, and keeps them across a redeploy of the stack (its data is on the volume).
"""
import collections
import json
import re
import threading
import time

import pytest
import requests

from stack_helpers import ROW, STACK_FILE, environ, wait_answering
from stack_helpers import swarmml as run_swarmml
from swarmml.ops import deploy, services
from swarmml.engine import containers as engine_containers
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import tasks as engine_tasks
from swarmml.observe.topview import plain_task

pytestmark = pytest.mark.integration
STACK, PORT = "it-observe", 8137
PREDICTOR = f"{STACK}_predictor"
NETWORK = f"{STACK}_inference"
LOAD_ID = re.compile(r"t\d+-\d+")


def stack_env(cluster):
    # Prometheus pinned to the manager we talk to: its volume is that node's, on a swarm of any size.
    manager = next(n["Description"]["Hostname"] for n in engine_nodes.nodes(cluster.client)
                   if n["ID"] == engine_nodes.own_node_id(cluster.client))
    return environ(PORT, PROMETHEUS_PLACEMENT=f"node.hostname == {manager}", SWARMML_INFERENCE_LOG_SAMPLE="0.2")


def deploy_stack(cluster):
    deploy.deploy([STACK_FILE], name=STACK, environ=stack_env(cluster), client=cluster.client, show_progress=False,
                  timeout=240)
    url = services.url(cluster.client, "gateway", STACK)
    wait_answering(url, replicas=2)
    return url


@pytest.fixture(scope="module")
def stack(cluster, pushed_images):
    url = deploy_stack(cluster)
    yield url
    deploy.remove_stack(cluster.client, STACK)
    _remove_volumes(cluster)


def _remove_volumes(cluster):
    """The stack's volumes on every node (a stack's removal leaves them, as docker stack rm does)."""
    deadline = time.monotonic() + 60
    for c in engine_nodes.node_engines(cluster.client, cluster.name, engine_nodes.nodes(cluster.client)).values():
        for name in (f"{STACK}_inference_log", f"{STACK}_prometheus_data"):
            while True:
                try:
                    c.api.remove_volume(name)
                    break
                except Exception as exc:  # in use until the stack's containers are gone
                    if "no such volume" in str(exc).lower() or time.monotonic() > deadline:
                        break
                    time.sleep(1)


class Load:
    """Requests with ids of their own through the gateway, from a few threads; remembers each answer."""

    def __init__(self, url, threads=4):
        self.url, self.stop, self.answers = url, threading.Event(), collections.Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def __enter__(self):
        [t.start() for t in self.threads]
        return self

    def __exit__(self, *exc):
        self.stop.set()
        [t.join(60) for t in self.threads]

    def _run(self, n):
        with requests.Session() as http:
            i = 0
            while not self.stop.is_set():
                rid = f"t{n}-{i}"
                body = {"id": rid, "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
                try:
                    r = http.post(self.url + "/v2/models/iris-rf/infer", json=body, timeout=30)
                    status = r.status_code
                except requests.RequestException:
                    status = 0
                with self.lock:
                    self.answers[(rid, status)] += 1
                i += 1
                time.sleep(0.01)

    def ok_ids(self):
        return sorted(rid for (rid, status) in self.answers if status == 200)


def running(cluster):
    tasks = engine_tasks.tasks(cluster.client, engine_services.service(cluster.client, PREDICTOR)["ID"])
    return [t for t in tasks if t["Status"]["State"] == "running" and t.get("DesiredState") == "running"]


def wait_running(cluster, n, timeout=120):
    deadline = time.monotonic() + timeout
    while len(running(cluster)) != n:
        assert time.monotonic() < deadline, f"{PREDICTOR} did not get back to {n} running replicas"
        time.sleep(1)


def inference_log(cluster, *args):
    done = run_swarmml("logs", "--inference", "predictor", "--stack", STACK, "-o", "json", *args, env=cluster.env)
    assert done.returncode == 0, done.stderr
    return [json.loads(x) for x in done.stdout.splitlines()], done.stderr


def test_one_line_per_answered_request_through_a_restart_and_a_rolling_update(cluster, stack):
    before = running(cluster)
    first_replicas = {t["Status"]["ContainerStatus"]["ContainerID"][:12] for t in before}
    with Load(stack) as load:
        time.sleep(3)
        # A container stopped as Swarm stops one (SIGTERM, then its drain): Swarm starts another in its place.
        victim = before[0]
        engines = engine_nodes.node_engines(cluster.client, cluster.name, engine_nodes.nodes(cluster.client))
        node_client = engines[victim["NodeID"]]
        engine_containers.stop_container(node_client, victim["Status"]["ContainerStatus"]["ContainerID"], timeout=30)
        time.sleep(2)
        wait_running(cluster, 2)
        updated = run_swarmml("update", "predictor", "--stack", STACK, "--env", "SWARMML_MAX_BATCH_WAIT_MS=0.6",
                              env=cluster.env)
        assert updated.returncode == 0, updated.stderr
        time.sleep(3)
    ok = load.ok_ids()
    assert len(ok) > 200, load.answers.most_common(3)
    # Lines are written by a thread off the request path: give the last ones a moment.
    time.sleep(2)
    records, notes = inference_log(cluster)
    # The load's own requests (the deploy's readiness probes carry no id: the replica names those)
    logged = collections.Counter(r["id"] for r in records if r["status"] == 200 and LOAD_ID.fullmatch(r["id"]))
    twice = [rid for rid, n in logged.items() if n > 1]
    missing = sorted(set(ok) - set(logged))
    extra = sorted(set(logged) - set(ok))
    assert not twice and not missing and not extra, (twice[:5], missing[:5], extra[:5], notes)
    # The replicas that were stopped and replaced left their lines on the volume: read back through others.
    replicas = {r["replica"] for r in records}
    assert first_replicas <= replicas and len(replicas) >= 5, replicas
    assert {"id", "time", "model", "version", "latency_ms", "status", "replica", "node"} <= set(records[0])
    sampled = [r for r in records if "inputs" in r]
    assert 0.1 < len(sampled) / len(records) < 0.3 and sampled[0]["outputs"]
    # --tail and --status select on the merged records
    tail, _ = inference_log(cluster, "--tail", "5", "--status", "ok")
    assert [r["id"] for r in tail] == [r["id"] for r in sorted(records, key=lambda r: (r["time"], r["id"]))
                                       if r["status"] == 200][-5:]


def prometheus_query(url, query, at=None):
    params = {"query": query} if at is None else {"query": query, "time": f"{at:.3f}"}
    r = requests.get(url + "/api/v1/query", params=params, timeout=10)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def task_ips(cluster, service):
    svc = engine_services.service(cluster.client, f"{STACK}_{service}")
    return {plain_task(t, NETWORK)["ip"] for t in engine_tasks.tasks(cluster.client, svc["ID"])
            if t["Status"]["State"] == "running" and t.get("DesiredState") == "running"}


def wait_series(url, query, want, timeout=90):
    """Until the query has a series for every address in want (instance = "<ip>:<port>")."""
    deadline = time.monotonic() + timeout
    while True:
        got = {r["metric"].get("instance", "").rsplit(":", 1)[0] for r in prometheus_query(url, query)}
        if want <= got:
            return got
        assert time.monotonic() < deadline, f"{query}: series for {sorted(got)}, running replicas {sorted(want)}"
        time.sleep(2)


def test_prometheus_has_series_for_every_running_replica_and_keeps_them_across_a_redeploy(cluster, stack):
    url = run_swarmml("url", "prometheus", "--stack", STACK, env=cluster.env)
    assert url.returncode == 0, url.stderr
    prom = url.stdout.strip()
    assert prom.endswith(f":{PORT + 1000}")
    with Load(stack, threads=2):
        replicas, gateways = task_ips(cluster, "predictor"), task_ips(cluster, "gateway")
        assert len(replicas) == 2 and len(gateways) == len(cluster.node_names())
        wait_series(prom, 'up{job="predictor"} == 1', replicas)
        wait_series(prom, 'up{job="gateway"} == 1', gateways)
        wait_series(prom, "swarmml_infer_success_total", replicas)
        wait_series(prom, "swarmml:replica_requests_per_second:rate30s > 0", replicas)
        wait_series(prom, "swarmml:gateway_requests_per_second:rate30s", gateways)
        service_rate = prometheus_query(prom, "swarmml:service_requests_per_second:rate30s")
        assert service_rate and float(service_rate[0]["value"][1]) > 0
    seen_at = time.time()
    # A redeploy from scratch: the stack removed (its volumes stay), then deployed again.
    deploy.remove_stack(cluster.client, STACK)
    deploy_stack(cluster)
    prom = services.url(cluster.client, "prometheus", STACK)
    deadline = time.monotonic() + 90
    while True:
        try:
            if requests.get(prom + "/-/ready", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "Prometheus not ready after the redeploy"
        time.sleep(1)
    # The series of the replicas from before the redeploy, at a time before it: only on the volume.
    old = {r["metric"]["instance"].rsplit(":", 1)[0] for r in prometheus_query(prom, 'up{job="predictor"}', seen_at)}
    assert replicas <= old, (replicas, old)
