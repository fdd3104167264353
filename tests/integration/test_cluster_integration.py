"""The local cluster on the real engine: nodes, registry, spread, idempotent up, down."""
import subprocess
import sys
import time

import pytest

from swarmml.cluster import local as clusters
from swarmml.engine import CLUSTER_LABEL

pytestmark = pytest.mark.integration


def swarmml(*args, env=None):
    return subprocess.run([sys.executable, "-m", "swarmml", *args], capture_output=True, text=True, env=env)


def test_docker_cli_sees_three_ready_nodes(cluster):
    out = subprocess.run(["docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}"],
                         capture_output=True, text=True, env=cluster.env, check=True).stdout
    assert sorted(out.split("\n")[:-1]) == ["node1 Ready", "node2 Ready", "node3 Ready"]


def test_env_prints_a_unix_socket_in_a_root_only_dir(cluster):
    import os
    import stat
    done = swarmml("cluster", "env", "--name", cluster.name)
    assert done.returncode == 0
    line = done.stdout.strip()
    assert line.startswith("export DOCKER_HOST=unix:///")
    sock_dir = os.path.dirname(os.path.dirname(os.path.realpath(line.split("unix://", 1)[1])))
    assert stat.S_IMODE(os.stat(sock_dir).st_mode) == 0o700


def test_second_up_changes_nothing(cluster, host_engine):
    before = {c.name: c.attrs["State"]["StartedAt"] for c in host_engine.containers.list(
        all=True, filters={"label": f"{CLUSTER_LABEL}={cluster.name}"})}
    started = time.monotonic()
    result = clusters.up(cluster.name, nodes=3)
    elapsed = time.monotonic() - started
    after = {c.name: c.attrs["State"]["StartedAt"] for c in host_engine.containers.list(
        all=True, filters={"label": f"{CLUSTER_LABEL}={cluster.name}"})}
    assert result.already_up and result.created == []
    assert before == after
    print(f"second up: {elapsed:.2f} s")


def test_pushed_image_runs_six_replicas_on_all_three_nodes(cluster, host_engine):
    ref = f"{cluster.registry.push_prefix}/swarmml/spread-probe:1"
    host_engine.images.get("swarmml/base:bookworm").tag(ref)
    for line in host_engine.api.push(ref, stream=True, decode=True):
        assert "error" not in line, line
    tag_ref = f"{cluster.registry.pull_prefix}/swarmml/spread-probe:1"
    # Pin the digest the way `docker service create` does: the manager resolves it in the cluster registry.
    digest = cluster.client.api.inspect_distribution(tag_ref)["Descriptor"]["digest"]
    pull_ref = f"{tag_ref}@{digest}"
    svc = cluster.client.services.create(pull_ref, command=["sleep", "infinity"], name="spread-probe",
                                         mode={"Replicated": {"Replicas": 6}},
                                         stop_grace_period=1_000_000_000)
    try:
        deadline = time.monotonic() + 120
        running = []
        while time.monotonic() < deadline:
            running = [t for t in svc.tasks(filters={"desired-state": "running"})
                       if t["Status"]["State"] == "running"]
            if len(running) == 6:
                break
            time.sleep(1)
        assert len(running) == 6, [t["Status"] for t in svc.tasks()]
        per_node = {}
        for t in running:
            per_node[t["NodeID"]] = per_node.get(t["NodeID"], 0) + 1
        assert sorted(per_node.values()) == [2, 2, 2]
        # Every node pulled the same pinned image from the cluster registry.
        images = {t["Spec"]["ContainerSpec"]["Image"] for t in running}
        assert images == {pull_ref}
    finally:
        svc.remove()


def test_down_removes_everything_labelled_and_nothing_else(host_engine):
    name = "downprobe"
    bystander = host_engine.volumes.create("swarmml-downprobe-bystander")  # same prefix, no label
    try:
        clusters.up(name, nodes=1)
        assert clusters.exists(name, host_engine)
        grown = clusters.up(name, nodes=2)  # up with more nodes adds them
        assert grown.created == [f"swarmml-{name}-node2"] and not grown.already_up
        assert [n["state"] for n in grown.status["nodes"]] == ["ready", "ready"]
        removed = clusters.down(name)
        assert removed["containers"] == 3 and removed["networks"] == 1 and removed["volumes"] == 3
        label = {"label": f"{CLUSTER_LABEL}={name}"}
        assert host_engine.containers.list(all=True, filters=label) == []
        assert host_engine.networks.list(filters=label) == []
        assert host_engine.volumes.list(filters=label) == []
        host_engine.volumes.get(bystander.name)  # still there
    finally:
        bystander.remove(force=True)
        if clusters.exists(name, host_engine):
            clusters.down(name)


@pytest.mark.parametrize("args", [
    ["cluster", "up", "--nodes", "0"],
    ["cluster", "up", "--nodes", "abc"],
    ["cluster", "down", "--name", "no-such-cluster"],
    ["cluster", "env", "--name", "no-such-cluster"],
])
def test_bad_input_is_one_line_exit_2(args, host_engine):
    done = swarmml(*args)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout == ""
