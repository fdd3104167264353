"""Scale, roll, roll back and rebalance the predictor while a load generator runs through the gateway.

On the real 3-node cluster with the project's stack. Every step under load
must end with 0 failed requests and the desired state reached; the counts
and durations are printed (pytest -s) as lines starting with `ops-load`.
"""
import json
import time

import docker
import pytest
import requests

from stack_helpers import BODY, STACK_FILE, deployed_ml_stack, environ, swarmml, wait_answering
from swarmml.cluster import local as clusters
from swarmml import ops
from swarmml.ops import deploy, services
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import tasks as engine_tasks
from swarmml.verify.loadgen import Background
from swarmml.ops import state
from swarmml.ops.rebalance import measure

pytestmark = pytest.mark.integration
STACK, PORT = "it-ops", 8092
PREDICTOR = f"{STACK}_predictor"
RATE = 80  # requests/s, open loop over 8 connections: steady traffic through every step


@pytest.fixture(scope="module")
def stack(cluster, pushed_images):
    yield from deployed_ml_stack(cluster.client, STACK, PORT)


def under_load(url, name, action):
    """Run action() while requests flow through the gateway; the load starts before and stops after it."""
    with Background(url + "/v2/models/iris-rf/infer", BODY, connections=8, rate=RATE) as load:
        time.sleep(1.0)
        started = time.monotonic()
        outcome = action()
        took = time.monotonic() - started
        time.sleep(1.0)
    result = load.result
    print(f"\nops-load {name}: {result.requests} requests, {result.errors} failed {dict(result.error_kinds)}, "
          f"p99 {result.percentile(99) or 0:.1f} ms, action {took:.1f} s, replicas answering {len(result.replicas)}")
    return outcome, result, took


def now(client, name=PREDICTOR):
    svc = engine_services.service(client, name)
    return svc, state.placement(svc, engine_tasks.tasks(client, svc["ID"]), engine_nodes.nodes(client))


def image_of(client):
    return engine_services.service(client, PREDICTOR)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def model_versions(url, n=20):
    return {requests.post(url + "/v2/models/iris-rf/infer", data=BODY, timeout=5).json()["model_version"]
            for _ in range(n)}


def test_a_scale_2_to_10_to_3(cluster, stack):
    def action():
        up = ops.scale(cluster.client, {"predictor": 10}, stack=STACK, show=False)
        # Down through the CLI: the same API, its JSON on stdout.
        down = swarmml("scale", "predictor", "3", "--stack", STACK, "-o", "json", env=cluster.env)
        return up, down
    (up, down), load, took = under_load(stack, "a scale 2->10->3", action)
    assert up.ok, up.problems
    assert up.changes == [ops.Change(PREDICTOR, "replicas", 2, 10)]
    assert sorted(up.placement[PREDICTOR].values()) == [3, 3, 4], up.placement  # all 3 nodes, evenly
    assert down.returncode == 0, down.stderr
    result = json.loads(down.stdout)
    assert result["ok"] and result["changes"] == [{"service": PREDICTOR, "field": "replicas", "old": 10, "new": 3}]
    assert sorted(result["placement"][0]["per_node"].values()) == [1, 1, 1]  # removed from the fullest nodes
    print(f"ops-load a: up {up.duration_s:.1f} s, down {result['duration_s']:.1f} s")
    assert now(cluster.client)[1].running == 3
    assert load.requests > 100 and load.errors == 0, load.error_kinds


def test_b_roll_to_a_new_model_version(cluster, stack, extra_images):
    assert model_versions(stack) == {"1"}
    result, load, took = under_load(stack, "b rolling update to model v2", lambda: ops.update(
        cluster.client, "predictor", stack=STACK, image=extra_images["v2"], show=False))
    assert result.ok, result.problems
    assert [c.field for c in result.changes if c.field.endswith("Image")] == ["TaskTemplate.ContainerSpec.Image"]
    # Pinned by digest, as the manager resolved it in the registry.
    assert image_of(cluster.client).startswith(extra_images["v2"] + "@sha256:")
    # One batch per task (parallelism 1), each only once its new task was healthy.
    assert [b.updated for b in result.batches] == [1, 2, 3], result.batches
    print("ops-load b: batches at " + ", ".join(f"{b.at_s:.1f} s" for b in result.batches) +
          f"; done in {result.duration_s:.1f} s")
    assert model_versions(stack) == {"2"}
    assert now(cluster.client)[1].running == 3
    assert load.errors == 0, load.error_kinds


def test_c1_an_image_that_cannot_start_rolls_back_by_itself(cluster, stack, extra_images):
    before = image_of(cluster.client)
    result, load, took = under_load(stack, "c1 image that can't start", lambda: ops.update(
        cluster.client, "predictor", stack=STACK, image=extra_images["broken"], show=False))
    assert not result.ok and result.rolled_back
    # The cause names the task's error and what the container said last.
    assert "non-zero exit (1)" in result.cause and "this image cannot start" in result.cause, result.cause
    assert "rolled it back" in result.problems[0] and result.cause in result.problems[0]
    svc, p = now(cluster.client)
    assert image_of(cluster.client) == before and svc["UpdateStatus"]["State"] == "rollback_completed"
    assert p.running == 3 and p.images == [before]
    print(f"ops-load c1: rolled back in {result.duration_s:.1f} s; {result.cause}")
    assert load.errors == 0, load.error_kinds


def test_c2_a_failing_healthcheck_rolls_back_by_itself(cluster, stack):
    # The server listens on another port, so the service's healthcheck (and the gateway's) fail.
    before = engine_services.service(cluster.client, PREDICTOR)["Spec"]
    result, load, took = under_load(stack, "c2 healthcheck that fails", lambda: ops.update(
        cluster.client, "predictor", stack=STACK, env=["SWARMML_PORT=9090"], show=False))
    assert not result.ok and result.rolled_back
    assert "healthcheck failed" in result.cause and "Connection refused" in result.cause, result.cause
    svc, p = now(cluster.client)
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == before["TaskTemplate"]["ContainerSpec"]["Env"]
    assert p.running == 3
    print(f"ops-load c2: rolled back in {result.duration_s:.1f} s; {result.cause}")
    assert load.errors == 0, load.error_kinds


def test_c3_the_cli_says_what_failed_in_one_line(cluster, stack, extra_images):
    done = swarmml("update", "predictor", "--stack", STACK, "--image", extra_images["broken"], "-o", "json",
                   env=cluster.env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "rolled it back" in done.stderr and "this image cannot start" in done.stderr
    result = json.loads(done.stdout)
    assert result["rolled_back"] and not result["ok"]


def test_d_node_loss_then_rebalance(cluster, stack):
    assert ops.scale(cluster.client, {"predictor": 6}, stack=STACK, show=False).ok
    victim = _worker_without_the_gateway(cluster.client, cluster.name)
    host = victim["Description"]["Hostname"]

    def lose_node():
        clusters.stop_node(cluster.name, host)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 90:
            _, p = now(cluster.client)
            if p.running == 6 and host not in p.per_node:
                return time.monotonic() - t0
            time.sleep(0.5)
        return None
    try:
        recovered, lost, _ = under_load(stack, "d node loss", lose_node)
    finally:
        clusters.start_node(cluster.name, host)
    svc, _ = now(cluster.client)
    before = measure(svc, engine_tasks.tasks(cluster.client, svc["ID"]), engine_nodes.nodes(cluster.client))
    reb, load, took = under_load(stack, "d rebalance after the node returned", lambda: ops.rebalance(
        cluster.client, "predictor", stack=STACK, show=False))
    print(f"ops-load d: rescheduled in {recovered} s; before rebalance {before.per_node} (spread {before.spread}); "
          f"rebalanced in {reb.duration_s:.1f} s to {reb.placement}")
    assert recovered is not None, "the replicas of the stopped node were not rescheduled within 90 s"
    # Losing a node is verify's drill, whose bound is 0.1% of requests; moving replicas back drops none.
    assert lost.errors <= lost.requests // 1000, lost.error_kinds
    assert before.spread >= 1 and host not in before.per_node  # the node came back empty
    assert reb.ok, reb.problems
    assert reb.moved == [PREDICTOR] and reb.after[0].spread == 0
    _, p = now(cluster.client)
    assert p.running == 6 and sorted(p.per_node.values()) == [2, 2, 2], p.per_node
    assert load.errors == 0, load.error_kinds


def test_d2_rebalance_by_forced_update_after_a_drain(cluster, stack):
    """The forced start-first update (docker service update --force) drops no request either.

    Its spread is reported, not asserted even: new tasks land by count with
    the old ones still counted, so ties can leave it uneven (the reason
    "scale" is the default).
    """
    assert ops.scale(cluster.client, {"predictor": 6}, stack=STACK, show=False).ok
    node = _worker_without_the_gateway(cluster.client, cluster.name)  # its host-mode port is the load's way in
    host = node["Description"]["Hostname"]
    _set_availability(cluster.client, node["ID"], "drain")
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            _, p = now(cluster.client)
            if p.running == 6 and host not in p.per_node:
                break
            time.sleep(0.5)
    finally:
        _set_availability(cluster.client, node["ID"], "active")
    reb, load, took = under_load(stack, "d2 forced-update rebalance", lambda: ops.rebalance(
        cluster.client, "predictor", stack=STACK, strategy="force", show=False))
    print(f"ops-load d2: before {reb.before[0].per_node} -> after {reb.after[0].per_node if reb.after else '-'} "
          f"in {reb.duration_s:.1f} s; {reb.problems}")
    assert reb.moved == [PREDICTOR] and reb.before[0].spread >= 1
    assert reb.after[0].spread <= reb.before[0].spread
    svc, p = now(cluster.client)
    assert p.running == 6 and svc["Spec"]["UpdateConfig"]["Order"] == "start-first"
    assert load.errors == 0, load.error_kinds


def _worker_without_the_gateway(client, cluster_name):
    """A node that neither leads the swarm nor holds the gateway's floating IP (the load's way in)."""
    from swarmml.verify import drill
    node_id = drill.pick(client, PREDICTOR, f"{STACK}_gateway", cluster_name, "worker", clusters.vip_holder)[0]
    return next(n for n in engine_nodes.nodes(client) if n["ID"] == node_id)


def _set_availability(client, node_id, availability):
    n = client.api.inspect_node(node_id)
    client.api.update_node(node_id, n["Version"]["Index"], dict(n["Spec"], Availability=availability))


def test_e_tasks_no_node_can_take_are_reported_with_the_reason(cluster, stack):
    """A service whose reservation no node has: scale reports the pending task and the scheduler's reason."""
    image = engine_services.service(cluster.client, PREDICTOR)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    svc = cluster.client.services.create(image, name="it-ops-toobig",
                                         mode=docker.types.ServiceMode("replicated", replicas=0),
                                         resources=docker.types.Resources(mem_reservation=1 << 50))
    try:
        result = ops.scale(cluster.client, {"it-ops-toobig": 1}, show=False, timeout=120)
        assert not result.ok
        assert "0 of 1 replicas run; 1 can't be placed: no suitable node (insufficient resources" \
            in result.problems[0], result.problems
        assert result.placements[0].unplaceable and result.duration_s < 60  # stopped waiting: it can't happen
        # max_replicas_per_node is checked before anything changes.
        svc.reload()  # scale changed the service: update from its current version
        svc.update(maxreplicas=1)
        # The spec, not Version.Index: Swarm bumps the version itself while it records the update's status.
        before = engine_services.service(cluster.client, "it-ops-toobig")["Spec"]
        done = swarmml("scale", "it-ops-toobig=4", env=cluster.env)
        assert done.returncode == 2 and "max_replicas_per_node is 1 and 3 nodes are eligible" in done.stderr
        assert engine_services.service(cluster.client, "it-ops-toobig")["Spec"] == before
    finally:
        svc.remove()


def test_f_service_rollback_returns_to_the_previous_spec(cluster, stack):
    before = engine_services.service(cluster.client, PREDICTOR)["Spec"]
    assert ops.update(cluster.client, "predictor", stack=STACK, env=["SWARMML_MAX_BATCH_SIZE=32"], show=False).ok
    result = ops.rollback(cluster.client, "predictor", stack=STACK, show=False)
    assert result.ok, result.problems
    assert [c.field for c in result.changes] == ["TaskTemplate.ContainerSpec.Env"]
    after = engine_services.service(cluster.client, PREDICTOR)
    assert after["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == before["TaskTemplate"]["ContainerSpec"]["Env"]
    assert after["UpdateStatus"]["State"] == "rollback_completed"


def test_g_stack_rollback_to_a_recorded_revision(cluster, stack, extra_images):
    deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT), client=cluster.client, show_progress=False)
    first = image_of(cluster.client)
    second = deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT, SWARMML_TAG="2"), client=cluster.client,
                           show_progress=False)
    assert second.revision is not None and second.convergence.ok
    assert ":2@sha256:" in image_of(cluster.client)
    listed = swarmml("rollback", "--stack", STACK, "--list", "-o", "json", env=cluster.env)
    revisions = json.loads(listed.stdout)
    assert revisions[-1]["revision"] == second.revision and len(revisions) >= 2
    done = swarmml("rollback", "--stack", STACK, "-o", "json", env=cluster.env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["revision"] == revisions[-2]["revision"] and result["recorded"] == second.revision + 1
    assert image_of(cluster.client) == first
    # The gateway was rolled back too, and its host-mode port may now answer on another node.
    url = services.url(cluster.client, "gateway", STACK)
    wait_answering(url)
    assert model_versions(url, 10) == {"1"}


def test_h_bad_input_changes_nothing(cluster, stack):
    version = engine_services.service(cluster.client, PREDICTOR)["Version"]["Index"]
    cases = [
        (["scale", "predictor", "-1", "--stack", STACK], "non-negative integer"),
        (["scale", "predictor", "2.5", "--stack", STACK], "non-negative integer"),
        (["scale", "nosuch=2", "--stack", STACK], "no service 'nosuch' in stack"),
        # the gateway's HAProxy routes to 128 replicas: a 129th would run and get no request
        (["scale", "predictor", "129", "--stack", STACK], "server-template ... 128 tasks.predictor) routes to at most"),
        (["update", "nosuch", "--env", "A=1"], "no service 'nosuch'"),
        (["update", "predictor", "--stack", STACK, "--image", "registry:5000/swarmml/predictor:nope"],
         "not found in its registry"),
        (["update", "predictor", "--stack", STACK, "--replicas", "-3"], "--replicas"),
        (["rollback", "--stack", "nostack"], "no recorded revisions"),
        (["rebalance", "nosuch"], "no service 'nosuch'"),
    ]
    for args, fragment in cases:
        done = swarmml(*args, env=cluster.env)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
        assert fragment in done.stderr, (args, done.stderr)
    assert engine_services.service(cluster.client, PREDICTOR)["Version"]["Index"] == version
