"""The example stacks on the real cluster: the gateway routes each model to its service; a canary takes its share."""
import collections
import os
import time

import pytest
import requests

from stack_helpers import BODY, ROOT, environ, swarmml
from swarmml.ops import deploy

pytestmark = pytest.mark.integration


def _gateway_url(cluster, stack):
    done = swarmml("url", "gateway", "--stack", stack, env=cluster.env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _answers(url, model, n, timeout=90):
    """x-replica headers (the replica's hostname, `<service>-<slot>` in the examples) and model versions
    of n successful answers; waits for the gateway to find the replicas first."""
    replicas, versions = collections.Counter(), collections.Counter()
    deadline = time.monotonic() + timeout
    while sum(replicas.values()) < n:
        assert time.monotonic() < deadline, f"{url}: {sum(replicas.values())} of {n} answers for {model}"
        try:
            r = requests.post(f"{url}/v2/models/{model}/infer", data=BODY, timeout=5)
        except requests.RequestException:
            time.sleep(0.2)
            continue
        if r.status_code != 200:
            time.sleep(0.2)
            continue
        replicas[r.headers["x-replica"]] += 1
        versions[r.json()["model_version"]] += 1
    return replicas, versions


@pytest.fixture
def deployed(cluster, pushed_images):
    made = []

    def _deploy(filename, stack, port, **env):
        result = deploy.deploy([os.path.join(ROOT, "stacks", filename)], name=stack, environ=environ(port, **env),
                               client=cluster.client, show_progress=False, timeout=240)
        made.append(stack)
        assert result.convergence.ok, result.convergence.problems
        return _gateway_url(cluster, stack)

    yield _deploy
    for stack in made:
        deploy.remove_stack(cluster.client, stack)


def _until_replicas(url, model, k, timeout=90):
    """Until k distinct replicas have answered: the gateway admits new replicas after a health check."""
    seen = set()
    deadline = time.monotonic() + timeout
    while len(seen) < k:
        assert time.monotonic() < deadline, f"{url}: {len(seen)} of {k} replicas answered for {model}"
        seen |= set(_answers(url, model, 4)[0])
    return seen


def test_two_models_side_by_side_are_routed_by_path(deployed):
    url = deployed("two-models.yml", "it-models", 8094)
    _until_replicas(url, "iris-rf", 2)
    logreg, _ = _answers(url, "iris-logreg", 10)
    rf, _ = _answers(url, "iris-rf", 20)
    # Each model's requests reach its own service (each serves only its model), and the rf service's
    # two replicas share them.
    assert {h.rsplit("-", 1)[0] for h in logreg} == {"it-models_predictor-logreg"}
    assert {h.rsplit("-", 1)[0] for h in rf} == {"it-models_predictor-rf"} and len(rf) == 2


def test_canary_takes_its_share_of_the_traffic(deployed, extra_images):
    url = deployed("canary.yml", "it-canary", 8095, CANARY_TAG="2", STABLE_REPLICAS=3, CANARY_REPLICAS=1)
    _until_replicas(url, "iris-rf", 4)
    replicas, versions = _answers(url, "iris-rf", 80)
    services = collections.Counter()
    for host, count in replicas.items():
        services[host.rsplit("-", 1)[0]] += count
    assert set(services) == {"it-canary_predictor", "it-canary_predictor-canary"}
    assert len(replicas) == 4, replicas
    # Round robin over 3 stable + 1 canary replicas: about a quarter of the answers come from the canary.
    share = services["it-canary_predictor-canary"] / sum(services.values())
    assert 0.15 <= share <= 0.35, (share, replicas)
    assert versions["2"] == services["it-canary_predictor-canary"], versions
