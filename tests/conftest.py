"""Shared fixtures: one real 3-node swarmml cluster for the whole integration session.

The cluster is named by SWARMML_TEST_CLUSTER (default "test"). If the session
creates it, the session removes it at the end (SWARMML_KEEP_CLUSTER=1 keeps it
for the next run); a cluster that was already up is reused and left up. Tests
remove the stacks and services they create.

An engine that can't be started is an error, never a skip: integration tests always run.
"""
import os
from dataclasses import dataclass, field

import pytest

import cluster_helpers

CLUSTER_NAME = os.environ.get("SWARMML_TEST_CLUSTER", "test")
# Fewer nodes spare a small machine's cores when only some tests run (the node-loss drills need 3).
CLUSTER_NODES = int(os.environ.get("SWARMML_TEST_NODES", "3"))


# Fixtures that start or reach a Docker engine: a test that uses one (directly or through another fixture) is an
# integration test, so that `pytest -m "not integration"` never starts an engine or a cluster.
ENGINE_FIXTURES = {"host_engine", "cluster", "pushed_images", "extra_images"}


def pytest_addoption(parser):
    parser.addoption("--reverse-modules", action="store_true",
                     help="run the test modules in reversed order (each module's tests keep theirs): a check that "
                          "no module depends on what an earlier one left")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reverse-modules"):
        order = {m: i for i, m in enumerate(dict.fromkeys(i.nodeid.split("::")[0] for i in items))}
        items.sort(key=lambda i: -order[i.nodeid.split("::")[0]])
    unmarked = [i.nodeid for i in items
                if ENGINE_FIXTURES & set(getattr(i, "fixturenames", ())) and not i.get_closest_marker("integration")]
    if unmarked:
        raise pytest.UsageError(f"{len(unmarked)} tests use the engine without @pytest.mark.integration, e.g. "
                                f"{unmarked[0]}")
    # The folders say which is which: tests/integration/ holds exactly the marked tests.
    misplaced = [i.nodeid for i in items
                 if bool(i.get_closest_marker("integration")) != i.nodeid.startswith("tests/integration/")]
    if misplaced:
        raise pytest.UsageError(f"{len(misplaced)} tests are marked integration outside tests/integration/, or "
                                f"unmarked inside it, e.g. {misplaced[0]}")


@dataclass
class Cluster:
    name: str
    client: object  # docker.DockerClient for the manager
    env: dict = field(default_factory=dict)  # os.environ + DOCKER_HOST/SWARMML_CLUSTER for subprocesses
    registry: object = None  # swarmml.cluster.registry.Target

    def node_names(self):
        return sorted(n["Description"]["Hostname"] for n in self.client.api.nodes())


@pytest.fixture(scope="session")
def host_engine():
    from swarmml.cluster.bootstrap import ensure_engine
    return ensure_engine()


@pytest.fixture(scope="session")
def session_home(tmp_path_factory):
    """HOME and DOCKER_CONFIG of the session's own: exposing the cluster (below) writes ~/.ssh, and
    contexts go to the docker config, which must not be the machine's."""
    d = tmp_path_factory.mktemp("session-home")
    (d / ".docker").mkdir()
    saved = {k: os.environ.get(k) for k in ("HOME", "DOCKER_CONFIG")}
    os.environ.update(HOME=str(d), DOCKER_CONFIG=str(d / ".docker"))
    yield d
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


_SESSION: dict = {}  # the cluster, once a test has asked for it


@pytest.fixture(scope="module", autouse=True)
def cluster_whole_after_module():
    """Every module leaves the swarm whole for the next: a leader, every node ready. A module whose drill
    killed, stopped or cut off a node must bring it back; this proves it did (waiting out the rejoin and a
    leader election), or fails that module, not the next one."""
    yield
    if "cluster" in _SESSION:
        cluster_helpers.settled(_SESSION["cluster"].client)


@pytest.fixture(scope="session")
def cluster(host_engine, session_home):
    from swarmml.cluster import local as clusters
    from swarmml.engine import cluster_socket

    existed = clusters.exists(CLUSTER_NAME, host_engine)
    # Exposed over ssh and mutual TLS from the start, whichever test needs the cluster first:
    # tests/integration/test_remote_integration.py reaches this same cluster through both.
    clusters.up(CLUSTER_NAME, nodes=CLUSTER_NODES, expose=("ssh", "tls"))  # 3 managers: the default
    env = dict(os.environ, DOCKER_HOST=f"unix://{cluster_socket(CLUSTER_NAME)}", SWARMML_CLUSTER=CLUSTER_NAME)
    # In-process API calls that resolve their target pick the test cluster too.
    old = os.environ.get("SWARMML_CLUSTER")
    os.environ["SWARMML_CLUSTER"] = CLUSTER_NAME
    _SESSION["cluster"] = Cluster(CLUSTER_NAME, clusters.manager_client(CLUSTER_NAME), env,
                                  clusters.registry(CLUSTER_NAME))
    yield _SESSION["cluster"]
    _SESSION.pop("cluster")
    if old is None:
        os.environ.pop("SWARMML_CLUSTER", None)
    else:
        os.environ["SWARMML_CLUSTER"] = old
    if not existed and os.environ.get("SWARMML_KEEP_CLUSTER") != "1":
        clusters.down(CLUSTER_NAME)


@pytest.fixture(scope="session")
def pushed_images(cluster):
    """The predictor and gateway images, built once and pushed to the cluster registry.

    Returns {"predictor": ref, "gateway": ref}: the references the nodes pull.
    """
    from swarmml.build import predictor as build
    return build.build(push=True, cluster=cluster.name).pushed


@pytest.fixture(scope="session")
def extra_images(cluster, pushed_images, host_engine):
    """A second model version (tag 2) and an image that can't start (it exits at once), pushed.

    Returns {"v2": ref, "broken": ref}: references the nodes pull.
    """
    import io
    from swarmml.build import predictor as build
    v2 = build.build(tag="2", model_version="2", push=True, cluster=cluster.name).pushed
    # The stack sets SWARMML_MODELS, so breaking the image's environment would not break the task.
    dockerfile = (b"FROM swarmml/predictor:latest\n"
                  b'ENTRYPOINT ["python", "-c", "raise SystemExit(\'this image cannot start\')"]\n')
    host_engine.images.build(fileobj=io.BytesIO(dockerfile), tag="swarmml/predictor:broken", rm=True)
    broken = build.push_to_cluster(host_engine, {"predictor": "swarmml/predictor:broken"}, cluster.name)
    return {"v2": v2["predictor"], "broken": broken["predictor"]}
