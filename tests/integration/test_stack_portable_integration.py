"""Every stack file the project ships or generates is deployable by `docker stack deploy` too: each deployed
with the real docker CLI on the cluster (tests/unit/stack/test_stack_portable.py checks the files without one).
"""
import glob
import os
import subprocess
import time

import docker
import pytest

from stack_helpers import DEPLOYMENTS, generated_files, paths
from swarmml.engine import SOCKET_ROOT
from swarmml.engine import services, swarm
from swarmml.stack import load

def stack_containers(cluster_name, stack):
    """The stack's containers on every node of the local cluster, as the nodes' own engines list them."""
    found = []
    root = os.path.join(SOCKET_ROOT, cluster_name)
    for sock in glob.glob(os.path.join(root, "*", "docker.sock")):
        client = docker.DockerClient(base_url=f"unix://{sock}", version="auto", timeout=10)
        try:
            found += client.api.containers(all=True, filters={"label": f"com.docker.stack.namespace={stack}"})
        finally:
            client.close()
    return found


def wait_removed(cluster, stacks, timeout=120):
    """Until the stacks' objects and their tasks' containers are gone: no host port is left held."""
    deadline = time.monotonic() + timeout
    left = stacks
    while time.monotonic() < deadline:
        left = [s for s in stacks if any(swarm.stack_objects(cluster.client, s).values())
                or stack_containers(cluster.name, s)]
        if not left:
            return
        time.sleep(1)
    raise AssertionError(f"still there after {timeout} s: {', '.join(left)}")


@pytest.mark.integration
def test_docker_stack_deploy_takes_every_shipped_and_generated_stack(cluster, pushed_images, tmp_path):
    outside = "pt-outside"
    cluster.client.api.create_network(outside, driver="overlay", attachable=True, scope="swarm")
    deployments = {f"pt-{k}": paths(files) for k, files in DEPLOYMENTS.items()}
    deployments["pt-generated"] = generated_files(str(tmp_path), "--replicas", "0")[:1]
    started = time.monotonic()
    try:
        for i, (stack, files) in enumerate(deployments.items()):
            # Ports of the stack's own (host-mode ports of two stacks must not meet), no predictor replicas
            # where a variable says how many (the services need not run: the CLI must take the file), and the
            # project's Prometheus image for the upstream override (this machine can't pull).
            env = dict(cluster.env, GATEWAY_PORT=str(18100 + i), PROMETHEUS_PORT=str(18200 + i),
                       PREDICTOR_PORT=str(18300 + i), PREDICTOR_REPLICAS="0", STABLE_REPLICAS="0",
                       CANARY_REPLICAS="0", FIDELITY_EXTERNAL_NETWORK=outside,
                       PROMETHEUS_IMAGE=pushed_images["prometheus"])
            done = subprocess.run(["docker", "stack", "deploy", *[a for f in files for a in ("-c", f)], stack],
                                  env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{files}: {done.stderr}"
            want = {f"{stack}_{name}" for name in load(files, name="t", environ=env).config["services"]}
            made = services.services(cluster.client, f"com.docker.stack.namespace={stack}")
            assert {s["Spec"]["Name"] for s in made} == want, files
        deployed = time.monotonic()
    finally:
        subprocess.run(["docker", "stack", "rm", *deployments], env=cluster.env, capture_output=True)
        wait_removed(cluster, list(deployments))
        cluster.client.api.remove_network(outside)
    print(f"docker stack deploy of {len(deployments)} stacks: {deployed - started:.1f} s; "
          f"removed in {time.monotonic() - deployed:.1f} s")
