"""`swarmml logs --follow` through a scale-up and `swarmml top --once -o json` under load, on the real cluster.

The predictor writes nothing on a normal start (access logs off, warnings only), so the test writes a
marker into each new replica's stdout (its PID 1's fd 1, which is what the engine logs) by an exec
on that replica's node: the lines must come back through `logs --follow`, named by replica and node.
"""
import json
import re
import subprocess
import sys
import threading
import time

import pytest

from stack_helpers import BODY, deployed_ml_stack, swarmml
from swarmml.engine import containers as engine_containers
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import tasks as engine_tasks
from swarmml.verify.loadgen import Background

pytestmark = pytest.mark.integration
STACK, PORT = "it-logs", 8131
PREDICTOR = f"{STACK}_predictor"
RATE = 60
# A replicated service's lines name the slot; a global one's (the gateway, the floating IP) the node.
PREFIX = re.compile(r"^((predictor|prometheus)\.\d+|(gateway|vip)\.node\d+)@node\d+ +\| ")


@pytest.fixture(scope="module")
def stack(cluster, pushed_images):
    yield from deployed_ml_stack(cluster.client, STACK, PORT)


def running_tasks(client):
    return [t for t in engine_tasks.tasks(client, engine_services.service(client, PREDICTOR)["ID"])
            if t["Status"]["State"] == "running"]


def container(cluster, task):
    """A replica's container, through its node's engine."""
    engines = engine_nodes.node_engines(cluster.client, cluster.name, engine_nodes.nodes(cluster.client))
    node_client = engines[task["NodeID"]]
    return node_client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])


def say(cluster, task, text):
    """Write a line into a replica's log from inside it."""
    code, out = container(cluster, task).exec_run(
        ["python", "-c", f"open('/proc/1/fd/1', 'w').write({text!r} + '\\n')"])
    assert code == 0, out


class Follower:
    """`swarmml logs STACK --follow -o json` in the background, its lines parsed as they come."""

    def __init__(self, env):
        self.proc = subprocess.Popen([sys.executable, "-m", "swarmml", "logs", STACK, "--follow", "-o", "json"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []
        threading.Thread(target=lambda: [self.lines.append(json.loads(x)) for x in self.proc.stdout],
                         daemon=True).start()

    def wait_for(self, messages, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(any(x["message"] == m for x in self.lines) for m in messages):
            time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def test_a_logs_follow_shows_replicas_started_by_a_scale(cluster, stack):
    before = {t["ID"] for t in running_tasks(cluster.client)}
    follower = Follower(cluster.env)
    lines = follower.lines
    try:
        time.sleep(3)
        scaled = swarmml("scale", "predictor", "6", "--stack", STACK, env=cluster.env)
        assert scaled.returncode == 0, scaled.stderr
        new = [t for t in running_tasks(cluster.client) if t["ID"] not in before]
        assert len(new) == 4
        for t in new:
            say(cluster, t, f"marker-{t['ID']}")
        follower.wait_for([f"marker-{t['ID']}" for t in new])
    finally:
        follower.stop()
    nodes = {n["ID"]: n["Description"]["Hostname"] for n in engine_nodes.nodes(cluster.client)}
    for t in new:
        got = [x for x in lines if x["message"] == f"marker-{t['ID']}"]
        assert got, f"no line from new replica {t['Slot']} ({t['ID']}); got {len(lines)} lines"
        assert got[0]["task"] == t["ID"] and got[0]["replica"] == str(t["Slot"])
        assert got[0]["node"] == nodes[t["NodeID"]] and got[0]["service"] == "predictor"
    assert all(x["replica"] and x["node"].startswith("node") for x in lines)
    times = [x["time"] for x in lines]
    print(f"\nlogs-follow: {len(lines)} lines, {len(new)} new replicas joined, "
          f"{sum(1 for x in lines if x['service'] == 'gateway')} from the gateway")
    assert len(times) == len(lines)

    # Without --follow: the same lines, merged in time order, each prefixed service.replica@node.
    text = swarmml("logs", STACK, "--tail", "50", env=cluster.env)
    assert text.returncode == 0, text.stderr
    out = text.stdout.splitlines()
    assert out and all(PREFIX.match(x) for x in out), out[:5]
    assert sum(1 for x in out if "marker-" in x) == 4
    as_json = [json.loads(x) for x in swarmml("logs", STACK, "-o", "json", env=cluster.env).stdout.splitlines()]
    assert [x["time"] for x in as_json] == sorted(x["time"] for x in as_json)
    grep = swarmml("logs", "predictor", "--stack", STACK, "--grep", "^marker-", env=cluster.env)
    assert len(grep.stdout.splitlines()) == 4


def test_b_top_once_json_rates_add_up_to_the_load(cluster, stack):
    with Background(stack + "/v2/models/iris-rf/infer", BODY, connections=8, rate=RATE) as load:
        time.sleep(3)
        top = swarmml("top", STACK, "--once", "-o", "json", "--interval", "5", env=cluster.env)
        time.sleep(0.5)
    assert top.returncode == 0, top.stderr
    snap = json.loads(top.stdout)
    pred = next(s for s in snap["services"] if s["name"] == "predictor")
    running = len(running_tasks(cluster.client))
    assert pred["running"] == running == len(pred["replicas"])
    assert all(r["requests_per_s"] is not None for r in pred["replicas"])
    total = sum(r["requests_per_s"] for r in pred["replicas"])
    print(f"\ntop: {len(pred['replicas'])} replicas sum {total:.1f} req/s; load {RATE} req/s asked, "
          f"{load.result.requests_per_s:.1f} done, {load.result.errors} errors; "
          f"p50 {pred['p50_ms']} p99 {pred['p99_ms']}")
    # The bar is the load generator's rate: what it achieved (open-loop, so it is RATE unless
    # the generator fell behind), not what it was asked for.
    done = load.result.requests_per_s
    assert abs(total - done) <= 0.1 * done
    assert all(r["cpu_cores"] is not None and r["memory_bytes"] for r in pred["replicas"])
    assert all(r["gateway"]["status"] == "UP" for r in pred["replicas"])
    # The predictor's replicas, a gateway and a floating-IP task on every node, and Prometheus.
    assert sum(n["tasks"] for n in snap["nodes"]) == running + 2 * len(snap["nodes"]) + 1
    # top removed its probe, so the stack's network can be removed.
    assert not cluster.client.api.containers(all=True, filters={"label": engine_containers.PROBE_LABEL})


def test_c_a_replica_that_stops_keeps_its_last_lines(cluster, stack):
    """A line written just before a replica is stopped reaches a follower, and `logs` still shows it once
    Swarm has replaced the replica (the stopped task's container is kept in the task history)."""
    victim = running_tasks(cluster.client)[0]
    words = f"last-words-{victim['ID']}"
    follower = Follower(cluster.env)
    try:
        time.sleep(3)
        say(cluster, victim, words)
        container(cluster, victim).stop(timeout=10)
        follower.wait_for([words])
    finally:
        follower.stop()
    got = [x for x in follower.lines if x["message"] == words]
    assert len(got) == 1 and got[0]["task"] == victim["ID"] and got[0]["replica"] == str(victim["Slot"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _state(cluster, victim) == "running":  # Swarm notices the exit
        time.sleep(0.5)
    assert _state(cluster, victim) != "running"
    again = swarmml("logs", "predictor", "--stack", STACK, "--grep", "^last-words-", "-o", "json", env=cluster.env)
    assert again.returncode == 0, again.stderr
    assert [(x["task"], x["message"]) for x in map(json.loads, again.stdout.splitlines())] == [(victim["ID"], words)]


def _state(cluster, task):
    return next(t for t in engine_tasks.tasks(cluster.client, task["ServiceID"])
                if t["ID"] == task["ID"])["Status"]["State"]
