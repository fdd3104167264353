"""The project's stack on the real 3-node cluster: deploy, plan, idempotence, prune, url, docker CLI interop."""
import os
import re
import subprocess
import textwrap

import pytest
import requests

from stack_helpers import BODY, ROOT, STACK_FILE, environ, swarmml, wait_answering
from swarmml.ops import deploy
from swarmml.engine import networks, services, swarm, tasks
from swarmml.stack.plan import diff

pytestmark = pytest.mark.integration
STACK, PORT = "it-stack", 8091


@pytest.fixture(scope="module")
def stack(cluster, pushed_images):
    result = deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT), client=cluster.client,
                           show_progress=False, timeout=240)
    yield result
    deploy.remove_stack(cluster.client, STACK)


def versions(client):
    return {n: s["Version"] for n, s in swarm.stack_objects(client, STACK)["services"].items()}


def test_deploy_creates_everything_and_converges(stack, cluster):
    # The predictor, the gateway, Prometheus and the floating IP's service, and the configs of the gateway and
    # Prometheus; the host network is the engine's, not created; the volumes are made by each node as its
    # tasks need them.
    assert sorted((a.kind, a.action) for a in stack.plan.actions) == [
        ("config", "create"), ("config", "create"), ("config", "create"), ("network", "create"),
        ("service", "create"), ("service", "create"), ("service", "create"), ("service", "create")]
    assert stack.convergence.ok, stack.convergence.problems
    placed = {p.service: p for p in stack.convergence.placements}
    nodes = len(cluster.node_names())
    assert placed[f"{STACK}_predictor"].running == 2
    assert placed[f"{STACK}_gateway"].running == placed[f"{STACK}_vip"].running == nodes  # one per node
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
    assert f"{STACK} 4" in out.splitlines()  # predictor, gateway, prometheus, vip
    ps = subprocess.run(["docker", "stack", "ps", STACK, "--format", "{{.Name}} {{.CurrentState}}",
                         "--filter", "desired-state=running"], env=cluster.env, capture_output=True, text=True,
                        check=True).stdout
    assert sum(1 for line in ps.splitlines() if line.startswith(f"{STACK}_predictor.") and "Running" in line) == 2


@pytest.fixture
def fidelity_env(cluster):
    """The environment for stacks/fidelity.yml, with the external network it declares made first."""
    name = "it-fid-outside"
    ext = cluster.client.api.create_network(name, driver="overlay", attachable=True, scope="swarm")["Id"]
    yield dict(cluster.env, FIDELITY_EXTERNAL_NETWORK=name)
    cluster.client.api.remove_network(ext)


def test_swarmml_works_on_a_stack_the_cli_made(cluster, pushed_images, fidelity_env):
    name = "it-clistack"
    subprocess.run(["docker", "stack", "deploy", "-c", os.path.join(ROOT, "stacks", "fidelity.yml"), name],
                   env=fidelity_env, capture_output=True, text=True, check=True)
    try:
        ls = swarmml("ls", "-o", "json", env=cluster.env)
        assert {"name": name, "services": 4} in __import__("json").loads(ls.stdout)
        ps = swarmml("ps", name, env=cluster.env)
        assert ps.returncode == 0 and f"{name}_api" in ps.stdout
    finally:
        rm = swarmml("rm", name, env=cluster.env)
    assert rm.returncode == 0, rm.stderr
    assert name not in swarm.stacks(cluster.client)
    assert not [n for n in cluster.client.networks.list() if n.name.startswith(f"{name}_")]


# What the engine assigns by itself, which differs between any two deploys, even two by the docker CLI.
ENGINE_ASSIGNED = {"ID", "Id", "Version", "CreatedAt", "UpdatedAt", "Created", "VirtualIPs", "Peers", "Containers",
                   "SecretID", "ConfigID", "JobIteration", "LastExecution"}
# Deliberate differences (README, "Stacks"): secrets and configs made from files get a content hash in their
# name (`<stack>_<name>-<10 hex>`), and two labels saying which logical object they version.
SWARMML_LABELS = {"io.swarmml.logical-name", "io.swarmml.content-hash"}
HASHED_NAME = re.compile(r"^(STACK_[A-Za-z0-9_.-]+?)-[0-9a-f]{10}$")


def snapshot(client, stack, timeout=30):
    """The stack's services, networks, secrets and configs as the engine reports them.

    `docker stack deploy` returns before Swarm's allocator has filled each service's Endpoint (its Spec's
    Mode, its Ports): wait for it, or the comparison races the allocator. Until then the engine shows an
    empty Endpoint.Spec (CI once compared a job's {} with {"Mode": "vip"}).
    """
    import time

    def unallocated(s):
        endpoint = s.get("Endpoint") or {}
        return "Mode" not in (endpoint.get("Spec") or {}) or bool(
            (s["Spec"].get("EndpointSpec") or {}).get("Ports") and not endpoint.get("Ports"))
    f = {"label": f"com.docker.stack.namespace={stack}"}
    deadline = time.monotonic() + timeout
    while any(map(unallocated, client.api.services(filters=f))) and time.monotonic() < deadline:
        time.sleep(0.2)
    return {"services": client.api.services(filters=f),
            "networks": [client.api.inspect_network(n["Id"]) for n in client.api.networks(filters=f)],
            "secrets": client.api.secrets(filters=f),
            "configs": [client.api.inspect_config(c["ID"]) for c in client.api.configs(filters=f)]}


def comparable(snap, stack, network_names):
    """snap with the stack's name as STACK, network IDs as names, engine-assigned values and the
    documented swarmml differences taken out; everything else is kept exactly as the engine has it."""
    def walk(v, key=None):
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if k in ENGINE_ASSIGNED or k in SWARMML_LABELS:
                    continue
                if k == "com.docker.network.driver.overlay.vxlanid_list" or (key == "IPAM" and k == "Config"):
                    continue  # VXLAN ids and subnets are allocated by the engine
                out[k] = walk(x, k)
            if key == "Networks" and "Target" in out:
                out["Target"] = network_names.get(out["Target"], out["Target"])
            return out
        if isinstance(v, list):
            return [walk(x, key) for x in v]
        if isinstance(v, str):
            v = v.replace(stack, "STACK")
            m = HASHED_NAME.match(v)
            return m.group(1) if m and key in ("Name", "SecretName", "ConfigName") else v
        return v
    named = {kind: {walk(o["Spec"]["Name"] if "Spec" in o else o["Name"], "Name"): walk(o) for o in objs}
             for kind, objs in snap.items()}
    return named


def test_fidelity_with_docker_stack_deploy(cluster, pushed_images, fidelity_env):
    """The same file through `docker stack deploy` and through swarmml: the same objects, field by field.

    stacks/fidelity.yml uses most keys the converter handles (and an external network, a templated
    config, an image without a tag). Only engine-assigned values and the documented, deliberate
    differences (SWARMML_LABELS, HASHED_NAME) are set aside; defaults and empty values are compared too.
    """
    fid = os.path.join(ROOT, "stacks", "fidelity.yml")
    env = fidelity_env
    try:
        subprocess.run(["docker", "stack", "deploy", "-c", fid, "it-fidcli"], env=env, capture_output=True,
                       check=True)
        cli = snapshot(cluster.client, "it-fidcli")
        names = networks.network_names(cluster.client)
        # swarmml on the stack the CLI made: nothing to do but move secrets/configs to hashed names.
        onto = deploy.deploy([fid], name="it-fidcli", environ=env, client=cluster.client, dry_run=True,
                             show_progress=False)
        for a in onto.plan.actions:
            if a.kind == "service" and a.action == "update":
                assert all(re.search(r"\.(Secrets|Configs)\[\d+\]\.(SecretName|ConfigName)$", path)
                           for path, _, _ in a.changes), (a.name, a.changes)
            elif a.kind in ("service", "network"):
                assert a.action == "unchanged", (a.name, a.action)
        assert {a.name.replace("it-fidcli_", "") for a in onto.plan.of("update")} == {"api", "sweep"}
        subprocess.run(["docker", "stack", "rm", "it-fidcli"], env=env, capture_output=True, check=True)
        # The CLI's ingress ports must be released before the same file publishes them again.
        _wait_gone(cluster.client, "it-fidcli")

        mine = deploy.deploy([fid], name="it-fidml", environ=env, client=cluster.client, show_progress=False,
                             timeout=120)
        assert mine.convergence.ok, mine.convergence.problems
        ours = snapshot(cluster.client, "it-fidml")
        names.update(networks.network_names(cluster.client))
        again = deploy.deploy([fid], name="it-fidml", environ=env, client=cluster.client, show_progress=False)
        assert {a.action for a in again.plan.actions} == {"unchanged"}
        assert versions_of(cluster.client, "it-fidml") == {s["Spec"]["Name"]: s["Version"]["Index"]
                                                          for s in ours["services"]}

        a = comparable(cli, "it-fidcli", {k: v.replace("it-fidcli", "STACK") for k, v in names.items()})
        b = comparable(ours, "it-fidml", {k: v.replace("it-fidml", "STACK") for k, v in names.items()})
        assert {k: sorted(v) for k, v in a.items()} == {k: sorted(v) for k, v in b.items()}
        assert sorted(a["services"]) == ["STACK_api", "STACK_job", "STACK_sweep", "STACK_worker"]
        for kind in a:
            for name in a[kind]:
                assert diff(a[kind][name], b[kind][name]) == [], (kind, name)
        # The deliberate difference is really there.
        assert all(HASHED_NAME.match(s["Spec"]["Name"].replace("it-fidml", "STACK")) for s in ours["secrets"])
    finally:
        if any(swarm.stack_objects(cluster.client, "it-fidml").values()):
            deploy.remove_stack(cluster.client, "it-fidml")
        subprocess.run(["docker", "stack", "rm", "it-fidcli"], env=env, capture_output=True)
        _wait_gone(cluster.client, "it-fidcli")


def versions_of(client, stack):
    return {n: s["Version"] for n, s in swarm.stack_objects(client, stack)["services"].items()}


def _wait_gone(client, stack, timeout=30):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(swarm.stack_objects(client, stack).values()):
            return
        time.sleep(0.5)


def test_new_config_content_rolls_the_service_and_prune_drops_its_network(cluster, pushed_images, tmp_path):
    """Swarm can't change a config's data: with content-hashed names a change is a new config and a
    rolling update (docker/cli fails here), and the old config goes once unused."""
    (tmp_path / "app.cfg").write_text("answer = 41\n")
    stack_file = tmp_path / "cfg.yml"
    body = textwrap.dedent(f"""
        version: "3.8"
        services:
          app:
            image: {pushed_images["predictor"]}
            configs: [{{source: app_cfg, target: /etc/app.cfg}}]
            networks: [NETS]
            deploy: {{replicas: 1}}
        networks:
          back: {{driver: overlay}}
          side: {{driver: overlay}}
        configs:
          app_cfg: {{file: ./app.cfg}}
    """)
    stack_file.write_text(body.replace("NETS", "back, side"))
    name = "it-cfg"
    try:
        first = deploy.deploy([str(stack_file)], name=name, client=cluster.client, show_progress=False,
                              timeout=180)
        assert first.convergence.ok, first.convergence.problems
        (old_cfg,) = swarm.stack_objects(cluster.client, name)["configs"]
        (tmp_path / "app.cfg").write_text("answer = 42\n")
        stack_file.write_text(body.replace("NETS", "back"))
        second = deploy.deploy([str(stack_file)], name=name, client=cluster.client, prune=True,
                               show_progress=False, timeout=180)
        assert second.convergence.ok, second.convergence.problems
        actions = {(a.kind, a.action) for a in second.plan.actions if a.action != "unchanged"}
        assert actions == {("config", "create"), ("config", "remove"), ("service", "update"), ("network", "remove")}
        have = swarm.stack_objects(cluster.client, name)
        (new_cfg,) = have["configs"]
        assert new_cfg != old_cfg and new_cfg.startswith(f"{name}_app_cfg-")
        assert sorted(have["networks"]) == [f"{name}_back"]
        svc = services.service(cluster.client, f"{name}_app")
        assert [c["ConfigName"] for c in svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"]] == [new_cfg]
        running = [t for t in tasks.tasks(cluster.client, [svc["ID"]]) if t["Status"]["State"] == "running"]
        assert [c["ConfigName"] for t in running for c in t["Spec"]["ContainerSpec"]["Configs"]] == [new_cfg]
    finally:
        deploy.remove_stack(cluster.client, name)


def test_resolve_image_modes_on_the_engine(cluster, pushed_images, tmp_path):
    """--resolve-image as docker stack deploy: never sends the tag, always pins, changed keeps the pin."""
    repo = pushed_images["predictor"].rsplit(":", 1)[0]  # registry:5000/swarmml/predictor
    f = tmp_path / "zero.yml"
    f.write_text(f'version: "3.8"\nservices:\n  idle:\n    image: {repo}\n    deploy: {{replicas: 0}}\n')
    name = "it-resolve"

    def spec():
        return services.service(cluster.client, f"{name}_idle")["Spec"]

    try:
        deploy.deploy([str(f)], name=name, client=cluster.client, resolve_image="never", show_progress=False)
        assert spec()["TaskTemplate"]["ContainerSpec"]["Image"] == f"{repo}:latest"  # tagged like the client does
        assert "Platforms" not in spec()["TaskTemplate"].get("Placement", {})
        pinned = deploy.deploy([str(f)], name=name, client=cluster.client, resolve_image="always",
                               show_progress=False)
        (update,) = pinned.plan.of("update")
        paths = {p for p, _, _ in update.changes}
        assert "TaskTemplate.ContainerSpec.Image" in paths
        assert paths - {"TaskTemplate.ContainerSpec.Image"} <= {"TaskTemplate.Placement",
                                                                "TaskTemplate.Placement.Platforms"}
        image = spec()["TaskTemplate"]["ContainerSpec"]["Image"]
        assert image.startswith(f"{repo}:latest@sha256:")
        assert spec()["TaskTemplate"]["Placement"]["Platforms"] == [{"Architecture": "amd64", "OS": "linux"}]
        version = services.service(cluster.client, f"{name}_idle")["Version"]["Index"]
        for mode in ("changed", "never"):
            again = deploy.deploy([str(f)], name=name, client=cluster.client, resolve_image=mode,
                                  show_progress=False)
            assert not again.plan.changes_anything, mode
        assert services.service(cluster.client, f"{name}_idle")["Version"]["Index"] == version
        assert spec()["TaskTemplate"]["ContainerSpec"]["Image"] == image
    finally:
        deploy.remove_stack(cluster.client, name)


def test_a_deploy_whose_tasks_cannot_start_fails_with_their_error(cluster, pushed_images, tmp_path):
    f = tmp_path / "crash.yml"
    f.write_text(textwrap.dedent(f"""
        version: "3.8"
        services:
          crash:
            image: {pushed_images["predictor"]}
            entrypoint: ["python", "-c", "raise SystemExit('model file missing: /models/x.skops')"]
            deploy:
              replicas: 2
              restart_policy: {{delay: 1s}}
    """))
    done = swarmml("deploy", str(f), "--name", "it-crash", "--timeout", "180", env=cluster.env)
    try:
        assert done.returncode == 1, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        # Swarm would retry forever: the deploy stops at the third failure of a replica, with its reason.
        assert "it-crash_crash." in last and "failed 3 times: task: non-zero exit (1)" in last, last
        assert "it printed: model file missing: /models/x.skops" in last and "not converged" not in last
        assert "Traceback" not in done.stderr
    finally:
        deploy.remove_stack(cluster.client, "it-crash")


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
    assert "it-bad" not in swarm.stacks(cluster.client)
    assert not any(swarm.stack_objects(cluster.client, "it-bad").values())
