"""The autoscaler in the cluster, under a step load through the gateway (the issue's "done when").

On the real 3-node cluster: the ML stack with stacks/autoscale.yml and the controller as a stack service
(its image built from this checkout), iris-rf at 0.25 CPU per replica, micro-batching off. A step load
20 -> 150 -> 20 requests/s must lose no request; the replicas must reach their peak within 30 s of the
step up and p99 come back under target within 45 s; the scale-down must wait for its window; at most 4
scale changes. Then `swarmml deploy` of the stack while the autoscaler holds 6 replicas must leave 6.
The measures are printed (pytest -s) as lines starting with `autoscale`.
"""
import importlib.util
import os
import time

import pytest
from stack_helpers import ROOT, environ, wait_answering

from swarmml import deploy, ops, services
from swarmml.autoscale import timeline
from swarmml.autoscale.install import build_and_push
from swarmml.engine import swarm as engine

pytestmark = pytest.mark.integration
STACK, PORT = "ml", 8080  # the bench's stack name: stacks/autoscaler-service.yml joins its network
PREDICTOR, CONTROLLER = f"{STACK}_predictor", f"{STACK}_autoscaler"
DOWN_WINDOW_S = 30
P99_TARGET_MS = 250.0
# The step is 20 -> 150 -> 20; SWARMML_AUTOSCALE_PEAK lowers the peak on a machine whose cores are
# shared (at load average 20, even 6 static replicas did not keep up with 150 req/s there).
PEAK = float(os.environ.get("SWARMML_AUTOSCALE_PEAK", "150"))
PROFILE = [(20 if PEAK >= 100 else 10, 20), (PEAK, 60), (20 if PEAK >= 100 else 10, 60)]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_autoscale", os.path.join(ROOT, "scripts",
                                                                                  "bench_autoscale.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def stack(cluster, pushed_images):
    build_and_push(cluster=cluster.name)
    bench = _bench()
    env = environ(PORT, PREDICTOR_CPUS="0.25", AUTOSCALE_MIN=2, AUTOSCALE_MAX=6, AUTOSCALE_TARGET_INFLIGHT=1.5,
                  AUTOSCALE_DOWN_WINDOW=f"{DOWN_WINDOW_S}s")
    bench.deploy_stack(env)
    url = services.url(cluster.client, "gateway", STACK)
    wait_answering(url, replicas=2)
    yield bench, url, env
    deploy.remove_stack(cluster.client, STACK)


def test_replicas_follow_a_step_load_with_no_request_lost(cluster, stack):
    bench, url, _ = stack
    client = cluster.client
    ops.scale(client, {PREDICTOR: 2}, show=False)
    time.sleep(6)  # the controller's first looks
    records, samples, duration = bench.run_profile(client, f"{url}/v2/models/iris-rf/infer", PROFILE)
    rows = timeline.seconds(records, samples, duration)
    s = timeline.summarize("autoscale", rows, P99_TARGET_MS, step_up_s=PROFILE[0][1],
                           step_down_s=PROFILE[0][1] + PROFILE[1][1])
    print(f"autoscale: {s.requests} requests, {s.failed} failed, peak {s.peak_replicas} replicas after "
          f"{s.reach_peak_s} s, p99 back under {P99_TARGET_MS:g} ms after {s.p99_recovered_s} s, first scale-down "
          f"{s.first_scale_down_s} s after the step down, {s.scale_changes} scale changes, replica-seconds "
          f"{s.replica_seconds:.0f}; failures per second: "
          f"{[(r.t, r.failed, r.replicas) for r in rows if r.failed]}")
    assert s.failed == 0
    assert s.peak_replicas > 2 and s.reach_peak_s is not None and s.reach_peak_s <= 30
    assert s.p99_recovered_s is not None and s.p99_recovered_s <= 45
    # The window runs from the last high recommendation, which can come a few seconds before the load drops
    # (the added replicas catch up with the queue): a scale-down 25 s after the step down still waited 30 s.
    assert s.first_scale_down_s is None or s.first_scale_down_s >= DOWN_WINDOW_S - 5
    assert s.scale_changes <= 4


def _wait_gone(client, name, timeout=60):
    """Until no task of the service runs: a scale to 0 returns while the old task still drains."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        svc = engine.service(client, name)
        if not [t for t in engine.tasks(client, svc["ID"]) if t["Status"]["State"] in ("running", "starting")]:
            return
        time.sleep(0.5)


def test_a_deploy_leaves_the_autoscalers_count(cluster, stack):
    bench, _, env = stack
    client = cluster.client
    # The count the autoscaler holds, set while it pauses so that it does not move during the deploy.
    ops.scale(client, {CONTROLLER: 0}, show=False)
    _wait_gone(client, CONTROLLER)
    try:
        ops.scale(client, {PREDICTOR: 6}, show=False, timeout=180)
        bench.deploy_stack(env)
        svc = engine.service(client, PREDICTOR)
        running = [t for t in engine.tasks(client, svc["ID"], desired_running=True)
                   if t["Status"]["State"] == "running"]
        print(f"autoscale deploy: spec {svc['Spec']['Mode']['Replicated']['Replicas']}, running {len(running)}")
        assert svc["Spec"]["Mode"]["Replicated"]["Replicas"] == 6 and len(running) == 6
    finally:
        ops.scale(client, {CONTROLLER: 1}, show=False)
