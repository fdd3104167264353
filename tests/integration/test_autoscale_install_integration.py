"""The autoscaler's first minute: `swarmml autoscale install`, then at once a burst, as a newcomer does it.

On the real cluster: the project's stack with stacks/autoscale.yml (min 1, max 6, 2 in flight per replica,
counted by the gateway), the controller installed through the CLI. install returns only once the controller
runs and has looked at the services; a burst of 24 connections right after must scale the predictor up
within 30 s with no failed request, and the controller's log must say what it decided and why.
"""
import re
import threading
import time

import pytest
from stack_helpers import ROOT, STACK_FILE, environ, swarmml, wait_answering

from swarmml import ops
from swarmml.ops import deploy, services
from swarmml.verify import loadgen
from swarmml.autoscale.install import SERVICE
from swarmml.engine import services as engine_services
from swarmml.verify.run import ONE_ROW, infer_body

pytestmark = pytest.mark.integration
STACK, PORT = "it-asinstall", 8141
PREDICTOR = f"{STACK}_predictor"
BURST_S = 40


@pytest.fixture(scope="module")
def stack(cluster, pushed_images):
    env = environ(PORT, AUTOSCALE_MIN=1, AUTOSCALE_MAX=6, AUTOSCALE_TARGET_INFLIGHT=2, PREDICTOR_REPLICAS=2)
    deploy.deploy([STACK_FILE, f"{ROOT}/stacks/autoscale.yml"], name=STACK, environ=env, client=cluster.client,
                  show_progress=False, timeout=240)
    url = services.url(cluster.client, "gateway", STACK)
    # Every node holds the predictor's image before the burst: a first pull there is the cost of a first
    # deploy, not of autoscaling (tests/integration/test_autoscale_integration.py measured it).
    ops.scale(cluster.client, {PREDICTOR: 6}, show=False, timeout=240)
    ops.scale(cluster.client, {PREDICTOR: 2}, show=False)
    wait_answering(url, replicas=2)
    yield url
    swarmml("autoscale", "uninstall", env=cluster.env)
    deploy.remove_stack(cluster.client, STACK)
    assert not [s for s in engine_services.services(cluster.client) if s["Spec"]["Name"] in (SERVICE, PREDICTOR)]


def test_a_burst_right_after_install_scales_up_and_the_log_says_why(cluster, stack):
    done = swarmml("autoscale", "install", env=cluster.env)
    assert done.returncode == 0, done.stderr[-2000:]
    # install came back only once the controller had looked: its status is there to read at once
    status = swarmml("autoscale", "status", PREDICTOR, "-o", "json", env=cluster.env)
    assert status.returncode == 0, status.stderr
    assert '"state": "running"' in status.stdout, status.stdout

    started = time.monotonic()
    replicas_at = {}

    def watch():
        while time.monotonic() - started < BURST_S:
            spec = engine_services.service(cluster.client, PREDICTOR)["Spec"]
            replicas_at.setdefault(spec["Mode"]["Replicated"]["Replicas"], round(time.monotonic() - started, 1))
            time.sleep(1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    load = loadgen.run(f"{stack}/v2/models/iris-rf/infer", infer_body([ONE_ROW]), connections=24, duration=BURST_S)
    watcher.join()
    summary = load.summary()
    print(f"autoscale install burst: replicas first seen at {replicas_at}; {summary['errors']} of "
          f"{summary['requests']} failed, p99 {summary['p99_ms']} ms")
    assert summary["errors"] == 0, summary["error_kinds"]
    more = [at for n, at in replicas_at.items() if n > 2]
    assert more and min(more) <= 30, replicas_at

    logs = swarmml("logs", SERVICE, env=cluster.env)
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert any("started" in line for line in lines), logs.stdout[-2000:]
    ups = [line for line in lines if re.search(rf"{PREDICTOR} up +2 -> \d+ +scale up to \d+: inflight", line)]
    assert ups, logs.stdout[-3000:]
    # and a reason to hold (the words of `autoscale status`), not one line per tick
    holds = [line for line in lines if f"{PREDICTOR} hold" in line]
    assert holds and len(holds) < BURST_S / 2, holds


def test_installing_again_updates_the_running_controller(cluster, stack):
    # The update path: the service exists, so install replaces its spec (and waits for the new controller's look).
    done = swarmml("autoscale", "install", env=cluster.env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"updated service {SERVICE}" in done.stderr, done.stderr
    (svc,) = [s for s in engine_services.services(cluster.client) if s["Spec"]["Name"] == SERVICE]
    assert "PreviousSpec" in svc  # the same service, updated, not a second one
