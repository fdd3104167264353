"""The project's stack on the real 3-node cluster: deploy, plan, idempotence, prune, url, docker CLI interop."""
import os
import subprocess
import textwrap

import pytest
import requests

from stack_helpers import BODY, ROOT, STACK_FILE, environ, swarmml, wait_answering
from swarmml import deploy, services
from swarmml.engine import swarm as engine
from swarmml.stack.plan import canonical, diff

pytestmark = pytest.mark.integration
STACK, PORT = "it-stack", 8091


@pytest.fixture(scope="module")
def stack(cluster, pushed_images):
    result = deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT), client=cluster.client,
                           show_progress=False, timeout=240)
    yield result
    deploy.remove_stack(cluster.client, STACK)


def versions(client):
    return {n: s["Version"] for n, s in engine.stack_objects(client, STACK)["services"].items()}


def test_deploy_creates_everything_and_converges(stack, cluster):
    assert sorted((a.kind, a.action) for a in stack.plan.actions) == [
        ("config", "create"), ("network", "create"), ("service", "create"), ("service", "create")]
    assert stack.convergence.ok, stack.convergence.problems
    placed = {p.service: p for p in stack.convergence.placements}
    assert placed[f"{STACK}_predictor"].running == 2 and placed[f"{STACK}_gateway"].running == 1
    assert all("@sha256:" in i for p in placed.values() for i in p.images)
    assert stack.revision == 1


def test_inference_through_the_gateway_url(stack, cluster):
    done = swarmml("url", "gateway", "--stack", STACK, env=cluster.env)
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip().splitlines()[-1]
    assert url.startswith("http://") and url.endswith(f":{PORT}")
    replicas = wait_answering(url, replicas=2)
    r = requests.post(url + "/v2/models/iris-logreg/infer", data=BODY, timeout=5)
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [0]
    assert len(replicas) == 2


def test_unchanged_redeploy_updates_nothing(stack, cluster):
    before = versions(cluster.client)
    again = deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT), client=cluster.client, show_progress=False)
    assert not again.plan.changes_anything
    assert {a.action for a in again.plan.actions} == {"unchanged"}
    assert versions(cluster.client) == before
    print(f"unchanged redeploy: {again.duration_s:.2f} s")


def test_dry_run_shows_the_change_and_changes_nothing(stack, cluster):
    before = versions(cluster.client)
    dry = deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT, PREDICTOR_REPLICAS=3), client=cluster.client,
                        dry_run=True, show_progress=False)
    (update,) = dry.plan.of("update")
    assert update.name == f"{STACK}_predictor"
    assert update.changes == [("Mode.Replicated.Replicas", 2, 3)]
    assert versions(cluster.client) == before


def test_prune_removes_services_dropped_from_the_files(stack, cluster, tmp_path):
    extra = tmp_path / "extra.yml"
    extra.write_text(textwrap.dedent("""
        version: "3.8"
        services:
          sidecar:
            image: ${SWARMML_REGISTRY:-registry:5000}/swarmml/predictor:${SWARMML_TAG:-latest}
            deploy: {replicas: 0}
    """))
    # The extra file is merged after the project's, as with repeated -c; its paths resolve from the first file.
    deploy.deploy([STACK_FILE, str(extra)], name=STACK, environ=environ(PORT), client=cluster.client,
                  show_progress=False)
    assert f"{STACK}_sidecar" in versions(cluster.client)
    kept = deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT), client=cluster.client, show_progress=False)
    assert f"{STACK}_sidecar" in versions(cluster.client) and not kept.plan.of("remove", "service")
    pruned = deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT), client=cluster.client, prune=True,
                           show_progress=False)
    assert [a.name for a in pruned.plan.of("remove", "service")] == [f"{STACK}_sidecar"]
    assert f"{STACK}_sidecar" not in versions(cluster.client)


def test_docker_cli_sees_swarmml_stacks(stack, cluster):
    out = subprocess.run(["docker", "stack", "ls", "--format", "{{.Name}} {{.Services}}"], env=cluster.env,
                         capture_output=True, text=True, check=True).stdout
    assert f"{STACK} 2" in out.splitlines()
    ps = subprocess.run(["docker", "stack", "ps", STACK, "--format", "{{.Name}} {{.CurrentState}}",
                         "--filter", "desired-state=running"], env=cluster.env, capture_output=True, text=True,
                        check=True).stdout
    assert sum(1 for line in ps.splitlines() if line.startswith(f"{STACK}_predictor.") and "Running" in line) == 2


def test_swarmml_works_on_a_stack_the_cli_made(cluster, pushed_images):
    name = "it-clistack"
    subprocess.run(["docker", "stack", "deploy", "-c", os.path.join(ROOT, "stacks", "fidelity.yml"), name],
                   env=cluster.env, capture_output=True, text=True, check=True)
    try:
        ls = swarmml("ls", "-o", "json", env=cluster.env)
        assert {"name": name, "services": 3} in __import__("json").loads(ls.stdout)
        ps = swarmml("ps", name, env=cluster.env)
        assert ps.returncode == 0 and f"{name}_api" in ps.stdout
    finally:
        rm = swarmml("rm", name, env=cluster.env)
    assert rm.returncode == 0, rm.stderr
    assert name not in engine.stacks(cluster.client)
    assert not [n for n in cluster.client.networks.list() if n.name.startswith(f"{name}_")]


def test_fidelity_with_docker_stack_deploy(cluster, pushed_images):
    """The same file through the docker CLI and through swarmml gives the same service specs.

    Deliberate difference: swarmml names secrets and configs with a content hash
    (`<stack>_<name>-<10 hex>`), so changed content rolls services instead of failing.
    """
    fid = os.path.join(ROOT, "stacks", "fidelity.yml")
    subprocess.run(["docker", "stack", "deploy", "-c", fid, "it-fidcli"], env=cluster.env, capture_output=True,
                   check=True)
    cli = engine.stack_objects(cluster.client, "it-fidcli")
    names = engine.network_names(cluster.client)
    subprocess.run(["docker", "stack", "rm", "it-fidcli"], env=cluster.env, capture_output=True, check=True)
    # Wait for the CLI's ports and networks to be released before deploying the same file again.
    _wait_gone(cluster.client, "it-fidcli")
    deploy.deploy([fid], name="it-fidml", client=cluster.client, show_progress=False, timeout=120)
    try:
        names.update(engine.network_names(cluster.client))
        ours = engine.stack_objects(cluster.client, "it-fidml")
        assert sorted(cli["services"]) == sorted(n.replace("it-fidml", "it-fidcli") for n in ours["services"])

        def norm(spec, stack):
            text = __import__("json").dumps(spec).replace(stack, "STACK")
            mapped = {k: v.replace(stack, "STACK") for k, v in names.items()}
            return canonical(__import__("json").loads(text), mapped, pin_digests=True)

        for name in cli["services"]:
            a = norm(cli["services"][name]["Spec"], "it-fidcli")
            b = norm(ours["services"][name.replace("it-fidcli", "it-fidml")]["Spec"], "it-fidml")
            for kind, key in (("Configs", "ConfigName"), ("Secrets", "SecretName")):
                for ref in b["TaskTemplate"]["ContainerSpec"].get(kind, []):
                    base, _, digest = ref[key].rpartition("-")
                    assert len(digest) == 10, ref[key]
                    ref[key] = base
            assert diff(a, b) == [], name
    finally:
        deploy.remove_stack(cluster.client, "it-fidml")


def _wait_gone(client, stack, timeout=30):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(engine.stack_objects(client, stack).values()):
            return
        time.sleep(0.5)


@pytest.mark.parametrize("content,fragment", [
    ("services:\n  predictor:\n    image: x\n    deploy:\n      replicas: ten\n",
     'services.predictor.deploy.replicas: expected an integer, got "ten"'),
    ("services:\n  predictor:\n    image: [x\n", "invalid YAML"),
    ("services:\n  predictor:\n    image: x\n    networks: [missing]\n", "undefined network"),
])
def test_bad_stack_file_is_one_line_and_deploys_nothing(cluster, tmp_path, content, fragment):
    f = tmp_path / "bad.yml"
    f.write_text(content)
    done = swarmml("deploy", str(f), "--name", "it-bad", env=cluster.env)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and fragment in done.stderr and "Traceback" not in done.stderr
    assert "it-bad" not in engine.stacks(cluster.client)
    assert not any(engine.stack_objects(cluster.client, "it-bad").values())
