"""Scale, roll, roll back and rebalance the predictor while a load generator runs through the gateway.

Every step must end with 0 failed requests and the desired state reached.
"""
import time

import pytest
import requests

from stack_helpers import BODY, STACK_FILE, environ, swarmml, wait_answering
from swarmml import cluster as clusters
from swarmml import deploy, ops, placement, services
from swarmml.engine import swarm as engine
from swarmml.loadgen import Background

pytestmark = pytest.mark.integration
STACK, PORT = "it-ops", 8092
PREDICTOR = f"{STACK}_predictor"


@pytest.fixture(scope="module")
def stack(cluster, pushed_images):
    deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT), client=cluster.client, show_progress=False,
                  timeout=240)
    url = services.url(cluster.client, "gateway", STACK)
    wait_answering(url, replicas=2)
    yield url
    deploy.remove_stack(cluster.client, STACK)


def under_load(url, action, rate=60):
    with Background(url + "/v2/models/iris-rf/infer", BODY, connections=8, rate=rate) as load:
        time.sleep(1.0)
        started = time.monotonic()
        outcome = action()
        took = time.monotonic() - started
        time.sleep(1.0)
    result = load.result
    print(f"{result.requests} requests, {result.errors} failed {dict(result.error_kinds)}, action {took:.1f} s")
    return outcome, result, took


def running(client):
    svc = engine.service(client, PREDICTOR)
    return placement.placement(svc, engine.tasks(client, [svc["ID"]]), engine.nodes(client))


def test_a_scale_2_to_10_to_3(cluster, stack):
    def action():
        up = ops.scale(cluster.client, {"predictor": 10}, stack=STACK, show=False)
        down = ops.scale(cluster.client, {"predictor": 3}, stack=STACK, show=False)
        return up, down
    (up, down), load, took = under_load(stack, action)
    assert up.ok and down.ok, up.problems + down.problems
    assert up.placements[0].running == 10 and len(up.placements[0].per_node) == 3
    assert running(cluster.client).running == 3
    assert load.requests > 100 and load.errors == 0, load.error_kinds


def test_b_roll_to_a_new_model_version(cluster, stack, extra_images):
    result, load, took = under_load(stack, lambda: ops.update(cluster.client, "predictor", stack=STACK,
                                                               image=extra_images["v2"], show=False))
    assert result.ok, result.problems
    assert any(f.endswith("Image") for _, f, _, _ in result.changes)
    versions = {requests.post(stack + "/v2/models/iris-rf/infer", data=BODY, timeout=5).json()["model_version"]
                for _ in range(20)}
    assert versions == {"2"}
    assert running(cluster.client).running == 3
    assert load.errors == 0, load.error_kinds


def test_c_a_failing_image_rolls_back_by_itself(cluster, stack, extra_images):
    before = engine.service(cluster.client, PREDICTOR)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    replicas = running(cluster.client).desired
    result, load, took = under_load(stack, lambda: ops.update(cluster.client, "predictor", stack=STACK,
                                                               image=extra_images["broken"], show=False))
    assert not result.ok
    assert "rolled back" in result.problems[0] and "cause:" in result.problems[0], result.problems
    svc = engine.service(cluster.client, PREDICTOR)
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == before
    assert svc["UpdateStatus"]["State"] == "rollback_completed"
    assert running(cluster.client).running == replicas
    assert load.errors == 0, load.error_kinds


def test_c_cli_reports_the_failed_update_in_one_line(cluster, stack, extra_images):
    done = swarmml("update", "predictor", "--stack", STACK, "--image", extra_images["broken"], "-o", "json",
                   env=cluster.env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "rolled back" in done.stderr and "Traceback" not in done.stderr


def test_d_node_loss_then_rebalance(cluster, stack):
    ops.scale(cluster.client, {"predictor": 6}, stack=STACK, show=False)
    gw = services.find(cluster.client, "gateway", STACK)
    gw_nodes = {t["NodeID"] for t in engine.tasks(cluster.client, [gw["ID"]], desired_running=True)}
    nodes = engine.nodes(cluster.client)
    victim = next(n for n in nodes if n["Spec"]["Role"] == "worker" and n["ID"] not in gw_nodes)
    host = victim["Description"]["Hostname"]

    def action():
        clusters.stop_node(cluster.name, host)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 90:
            p = running(cluster.client)
            svc = engine.service(cluster.client, PREDICTOR)
            alive = [t for t in engine.tasks(cluster.client, [svc["ID"]], desired_running=True)
                     if t["Status"]["State"] == "running" and t["NodeID"] != victim["ID"]]
            if len(alive) >= 6:
                break
            time.sleep(0.5)
        recovered = time.monotonic() - t0
        clusters.start_node(cluster.name, host)
        before = ops.measure_imbalance(engine.service(cluster.client, PREDICTOR),
                                       engine.tasks(cluster.client, [svc["ID"]], desired_running=True),
                                       engine.nodes(cluster.client))
        reb = ops.rebalance(cluster.client, "predictor", stack=STACK, show=False)
        return recovered, before, reb
    try:
        (recovered, before, reb), load, took = under_load(stack, action)
    finally:
        clusters.start_node(cluster.name, host)
    print(f"recovered in {recovered:.1f} s; imbalance before rebalance {before.spread} {before.per_node}")
    assert recovered < 60
    assert before.spread >= 1  # the returned node was empty
    assert reb.ok, reb.problems
    after = running(cluster.client)
    assert after.running == 6 and sorted(after.per_node.values()) == [2, 2, 2], after.per_node
    assert load.errors == 0, load.error_kinds


def test_e_stack_rollback_to_a_recorded_revision(cluster, stack, extra_images):
    # Revision: the stack as deployed now (tag latest), then tag 2 deployed from the same file.
    deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT), client=cluster.client, show_progress=False)
    first = engine.service(cluster.client, PREDICTOR)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    second = deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT, SWARMML_TAG="2"), client=cluster.client,
                           show_progress=False)
    assert second.revision is not None and second.convergence.ok
    now = engine.service(cluster.client, PREDICTOR)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert ":2@sha256:" in now
    done = swarmml("rollback", "--stack", STACK, "-o", "json", env=cluster.env)
    assert done.returncode == 0, done.stderr
    back = engine.service(cluster.client, PREDICTOR)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert back == first
    # The gateway was rolled back too, and its host-mode port may now be on another node.
    url = services.url(cluster.client, "gateway", STACK)
    wait_answering(url)
    versions = {requests.post(url + "/v2/models/iris-rf/infer", data=BODY, timeout=5).json()["model_version"]
                for _ in range(10)}
    assert versions == {"1"}


def test_f_service_rollback_returns_to_the_previous_spec(cluster, stack):
    before = engine.service(cluster.client, PREDICTOR)["Spec"]
    ops.update(cluster.client, "predictor", stack=STACK, env=["SWARMML_MAX_BATCH_SIZE=32"], show=False)
    result = ops.rollback(cluster.client, "predictor", stack=STACK, show=False)
    assert result.ok, result.problems
    after = engine.service(cluster.client, PREDICTOR)["Spec"]
    assert after["TaskTemplate"]["ContainerSpec"]["Env"] == before["TaskTemplate"]["ContainerSpec"]["Env"]


def test_g_bad_input_changes_nothing(cluster, stack):
    version = engine.service(cluster.client, PREDICTOR)["Version"]["Index"]
    for args in (["scale", "predictor", "-1"], ["scale", "predictor", "ten"], ["scale", "nosuch=2"],
                 ["update", "predictor", "--stack", STACK, "--image", "registry:5000/swarmml/predictor:nope"],
                 ["scale", "gateway=two"]):
        done = swarmml(*args, "--stack", STACK, env=cluster.env) if args[0] == "scale" else swarmml(*args, env=cluster.env)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert engine.service(cluster.client, PREDICTOR)["Version"]["Index"] == version
