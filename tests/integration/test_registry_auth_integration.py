"""Any registry: push with the docker config's login, deploy --with-registry-auth, and every node pulls.

A 2-node cluster of the module's own runs its registry with `--registry-auth` (htpasswd over
TLS, its CA trusted by each engine through certs.d). The login is made by the real docker CLI
into the session's docker config, as a user would.
"""
import base64
import json
import os
import subprocess
import time

import pytest
import requests

import tiny_image
from conftest import CLUSTER_NAME
from stack_helpers import swarmml

pytestmark = pytest.mark.integration

NAME = f"{CLUSTER_NAME}-reg"


@pytest.fixture(scope="module")
def authed(host_engine, session_home):
    from swarmml.cluster import local as clusters
    from swarmml.engine import cluster_socket

    existed = clusters.exists(NAME, host_engine)
    clusters.up(NAME, nodes=2, managers=1, registry_auth=True)
    reg = clusters.status(NAME)["registry"]
    env = dict(os.environ, DOCKER_HOST=f"unix://{cluster_socket(NAME)}", SWARMML_CLUSTER=NAME)
    yield {"address": reg["push_prefix"], "login": reg["login"], "env": env}
    if not existed and os.environ.get("SWARMML_KEEP_CLUSTER") != "1":
        clusters.down(NAME)


def docker_config():
    return os.path.join(os.environ["DOCKER_CONFIG"], "config.json")


def login(address, password_file):
    """`docker login` as a user types it; the session's DOCKER_CONFIG keeps the login."""
    with open(password_file) as f:
        return subprocess.run(["docker", "login", address, "-u", "swarmml", "--password-stdin"], stdin=f,
                              capture_output=True, text=True)


def catalog(authed):
    with open(authed["login"]["password_file"]) as f:
        password = f.read().strip()
    r = requests.get(f"https://{authed['address']}/v2/_catalog", auth=("swarmml", password),
                     verify=authed["login"]["ca"], timeout=10)
    r.raise_for_status()
    return r.json()["repositories"]


def tasks(authed, service):
    from swarmml.cluster import local as clusters
    return clusters.manager_client(NAME).api.tasks(filters={"service": service})


def test_the_registry_asks_for_a_login_over_tls_at_one_address(authed):
    addr = authed["address"]
    assert addr.endswith(":5000") and not addr.startswith("127.")
    r = requests.get(f"https://{addr}/v2/", verify=authed["login"]["ca"], timeout=10)
    assert r.status_code == 401 and "Basic" in r.headers.get("WWW-Authenticate", "")
    # Every node trusts the registry's CA through certs.d, not through --insecure-registry.
    from swarmml.engine import host_client
    for node in ("node1", "node2"):
        c = host_client().containers.get(f"swarmml-{NAME}-{node}")
        assert c.exec_run(["cat", f"/etc/docker/certs.d/{addr}/ca.crt"]).exit_code == 0
        assert "--insecure-registry" not in " ".join(c.attrs["Args"])


def test_push_needs_the_login_and_a_wrong_one_says_so(authed, host_engine):
    from swarmml.build import predictor as build
    from swarmml.cluster import registry
    from swarmml.errors import SwarmmlError

    ref = tiny_image.build(host_engine)
    target = registry.parse_target(authed["address"])
    if os.path.exists(docker_config()):
        os.remove(docker_config())
    with pytest.raises(SwarmmlError) as err:
        build.push_images(host_engine, {"tiny": ref}, target)
    assert str(err.value) == (f"registry {authed['address']} asks for a login and the docker config has none for "
                              f"it: run `docker login {authed['address']}`")
    # A login the registry no longer takes (a changed password) is told apart from none at all.
    with open(docker_config(), "w") as f:
        json.dump({"auths": {authed["address"]: {"auth": base64.b64encode(b"swarmml:old").decode()}}}, f)
    with pytest.raises(SwarmmlError) as err:
        build.push_images(host_engine, {"tiny": ref}, target)
    assert str(err.value) == (f"registry {authed['address']} refused the login of 'swarmml' kept in the docker "
                              f"config: run `docker login {authed['address']}` again")
    assert "swarmml/tiny" not in catalog(authed)


def test_build_pushes_to_a_registry_with_a_prefix_using_docker_login(authed):
    done = login(authed["address"], authed["login"]["password_file"])
    assert done.returncode == 0, done.stderr
    r = swarmml("build", "--push", f"{authed['address']}/team", "--only", "gateway", env=authed["env"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"{authed['address']}/team/swarmml/gateway:latest"
    assert "team/swarmml/gateway" in catalog(authed)


def test_nodes_pull_only_with_registry_auth_and_then_run_on_every_node(authed, host_engine, tmp_path):
    from swarmml.build import predictor as build
    from swarmml.cluster import registry

    assert login(authed["address"], authed["login"]["password_file"]).returncode == 0
    pulled = build.push_images(host_engine, {"tiny": tiny_image.build(host_engine)},
                               registry.parse_target(authed["address"]))["tiny"]
    stack = tmp_path / "stack.yml"
    stack.write_text(f"version: '3.8'\nservices:\n  sleeper:\n    image: {pulled}\n    deploy:\n      mode: global\n")
    try:
        # Without the flag the swarm has no credentials: each node is refused the image.
        r = swarmml("deploy", str(stack), "--name", "regauth", "--detach", env=authed["env"])
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 60
        refused = set()
        while time.monotonic() < deadline and len(refused) < 2:
            refused = {t["NodeID"] for t in tasks(authed, "regauth_sleeper")
                       if t["Status"]["State"] == "rejected" and "No such image" in t["Status"].get("Err", "")}
            time.sleep(1)
        assert len(refused) == 2, tasks(authed, "regauth_sleeper")
        # With it, the same stack file deploys, and a task runs on each of the two nodes.
        r = swarmml("deploy", str(stack), "--name", "regauth", "--with-registry-auth", "--timeout", "120",
                    "-o", "json", env=authed["env"])
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert [a["action"] for a in out["plan"] if a["kind"] == "service"] == ["update"]
        running = {t["NodeID"] for t in tasks(authed, "regauth_sleeper") if t["Status"]["State"] == "running"}
        assert running == refused
    finally:
        swarmml("rm", "regauth", env=authed["env"])
