"""The autoscaler in the cluster, under a step load through the gateway (the issue's "done when").

On the real 3-node cluster: the ML stack with stacks/autoscale.yml and the controller as a stack service
(its image built from this checkout), iris-rf at 0.25 CPU per replica, micro-batching off. An open-loop
step 10 -> 40 -> 10 requests/s, with a policy of 10 requests/s per replica, so that the peak needs 4
replicas where 2 run: no request may fail; the running replicas must reach 4 within 30 s of the step up;
the scale-down must wait for its window; at most 4 scale changes. Then `swarmml deploy` of the stack while
the autoscaler holds 6 replicas must leave 6.

The rate suits 2 shared cores: 2 replicas carry 40 requests/s here while the new ones start (60 did not:
starting 4 replicas on the same cores left the 2 serving ones so little CPU that requests waited over
10 s). The target is a request rate, so the count the load needs does not depend on how busy the machine
is. The measures are printed (pytest -s) as lines starting with `autoscale`.
"""
import importlib.util
import json
import math
import os
import tempfile
import time

import pytest
from stack_helpers import ROOT, environ, swarmml, wait_answering

from swarmml import ops
from swarmml.ops import deploy, services
from swarmml.autoscale import timeline
from swarmml.build.autoscaler import build_and_push
from swarmml.engine import services as engine_services
from swarmml.engine import tasks as engine_tasks

pytestmark = pytest.mark.integration
STACK, PORT = "ml", 8080  # the bench's stack name: stacks/autoscaler-service.yml joins its network
PREDICTOR, CONTROLLER = f"{STACK}_predictor", f"{STACK}_autoscaler"
DOWN_WINDOW_S = 30
TARGET_RPS = 10.0
P99_TARGET_MS = 250.0
PEAK = float(os.environ.get("SWARMML_AUTOSCALE_PEAK", "40"))
PROFILE = [(10.0, 20), (PEAK, 60), (10.0, 60)]
NEEDED = math.ceil(PEAK / TARGET_RPS)
# The policy's request rate per replica, and only it: the stack's in-flight target stays for the bench.
RPS_POLICY = f"""version: "3.8"
services:
  predictor:
    deploy:
      labels:
        io.swarmml.autoscale.target-rps: "{TARGET_RPS:g}"
        io.swarmml.autoscale.metric: "rps"
"""


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
    env = environ(PORT, PREDICTOR_CPUS="0.25", AUTOSCALE_MIN=2, AUTOSCALE_MAX=6,
                  AUTOSCALE_DOWN_WINDOW=f"{DOWN_WINDOW_S}s")
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write(RPS_POLICY)
    try:
        bench.deploy_stack(env, [f.name])
        url = services.url(cluster.client, "gateway", STACK)
        # Every node pulls the image once before the load: a first scale-up onto a node that lacks it pulls and
        # unpacks ~500 MB there, which on 2 shared cores starved the serving replicas (21 of 3,200 requests
        # timed out at 40 req/s, all in the 5 s after the step). That is the cost of a first deploy, not of
        # scaling, and the controller is paused meanwhile so that it does not count it as load.
        ops.scale(cluster.client, {CONTROLLER: 0}, show=False)
        ops.scale(cluster.client, {PREDICTOR: 6}, show=False, timeout=240)
        ops.scale(cluster.client, {PREDICTOR: 2}, show=False)
        ops.scale(cluster.client, {CONTROLLER: 1}, show=False)
        wait_answering(url, replicas=2)
        yield bench, url, lambda: bench.deploy_stack(env, [f.name])
        deploy.remove_stack(cluster.client, STACK)
    finally:
        os.unlink(f.name)


def test_replicas_follow_a_step_load_with_no_request_lost(cluster, stack):
    bench, url, _ = stack
    client = cluster.client
    ops.scale(client, {PREDICTOR: 2}, show=False)
    time.sleep(6)  # the controller's first looks: a rate needs two scrapes
    records, samples, duration = bench.run_profile(client, f"{url}/v2/models/iris-rf/infer", PROFILE)
    rows = timeline.seconds(records, samples, duration)
    step_up, step_down = PROFILE[0][1], PROFILE[0][1] + PROFILE[1][1]
    s = timeline.summarize("autoscale", rows, P99_TARGET_MS, step_up_s=step_up, step_down_s=step_down)
    reached = next((r.t - step_up for r in rows if step_up <= r.t < step_down and r.replicas >= NEEDED), None)
    errors = {}
    for r in records:
        if r.error:
            errors[r.error] = errors.get(r.error, 0) + 1
    print(f"autoscale: {s.requests} requests, {s.failed} failed {errors}, {NEEDED} replicas needed, reached after "
          f"{reached} s, peak {s.peak_replicas}, p99 back under {P99_TARGET_MS:g} ms after {s.p99_recovered_s} s, "
          f"first scale-down {s.first_scale_down_s} s after the step down, {s.scale_changes} scale changes, "
          f"replica-seconds {s.replica_seconds:.0f}, load average {os.getloadavg()[0]:.1f}; per second (t, sent, "
          f"failed, p99, running, desired): {[(r.t, r.sent, r.failed, r.p99_ms, r.replicas, r.desired) for r in rows]}")
    assert s.failed == 0, errors
    assert reached is not None and reached <= 30
    assert s.p99_recovered_s is not None and s.p99_recovered_s <= 45
    # The down-window holds what the high load needed: the first drop below NEEDED after the step down waits
    # for it. The window runs from the last high recommendation, which can come a few seconds before the load
    # drops (a rate is measured over the last scrapes). A drop from an overshoot (5) to the need (4) may come
    # sooner, rightly, once the last 5 has left the window: in CI it came 24 s after the step down.
    below = next((r.t - step_down for r in rows if r.t >= step_down and r.desired < NEEDED), None)
    assert s.first_scale_down_s is not None and below is not None and below >= DOWN_WINDOW_S - 5, below
    assert s.scale_changes <= 4


def test_status_and_top_show_the_running_controller(cluster, stack):
    """After the step load: `autoscale status -o json` and `top --once -o json`, through the CLI, read the
    same lease: a running controller, the policy of the stack file, its last decision."""
    status = swarmml("autoscale", "status", "predictor", "--stack", STACK, "-o", "json", env=cluster.env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["controller"]["state"] == "running"
    (row,) = report["services"]
    assert row["service"] == PREDICTOR and row["policy"]["min"] == 2 and row["policy"]["max"] == 6
    assert row["policy"]["targets"] == {"rps": TARGET_RPS}
    # The lease keeps the last few decisions: after the step load's scale-down, holds at 2.
    assert row["decisions"] and row["decision"]["current"] == row["replicas"] == 2 and row["why"]
    top = swarmml("top", STACK, "--once", "-o", "json", "--interval", "1", env=cluster.env)
    assert top.returncode == 0, top.stderr
    pred = next(s for s in json.loads(top.stdout)["services"] if s["name"] == "predictor")
    assert pred["autoscale"]["controller"] == "running" and pred["autoscale"]["policy"] == row["policy"]
    print(f"autoscale status: {row['why']}; top: {pred['autoscale']['why']}")


def _wait_gone(client, name, timeout=60):
    """Until no task of the service runs: a scale to 0 returns while the old task still drains."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        svc = engine_services.service(client, name)
        if not [t for t in engine_tasks.tasks(client, svc["ID"]) if t["Status"]["State"] in ("running", "starting")]:
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} still runs a task after {timeout} s")


def test_a_deploy_leaves_the_autoscalers_count(cluster, stack):
    _, _, redeploy = stack
    client = cluster.client
    # The count the autoscaler holds, set while it pauses so that it does not move during the deploy.
    ops.scale(client, {CONTROLLER: 0}, show=False)
    _wait_gone(client, CONTROLLER)
    try:
        ops.scale(client, {PREDICTOR: 6}, show=False, timeout=180)
        redeploy()
        svc = engine_services.service(client, PREDICTOR)
        running = [t for t in engine_tasks.tasks(client, svc["ID"], desired_running=True)
                   if t["Status"]["State"] == "running"]
        print(f"autoscale deploy: spec {svc['Spec']['Mode']['Replicated']['Replicas']}, running {len(running)}")
        assert svc["Spec"]["Mode"]["Replicated"]["Replicas"] == 6 and len(running) == 6
    finally:
        ops.scale(client, {CONTROLLER: 1}, show=False)
