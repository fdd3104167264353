"""Generating stacks from Python; every shipped or generated file is accepted by the docker CLI."""
import glob
import os
import shutil
import subprocess

import pytest

from stack_helpers import ROOT, STACK_FILE, swarmml
from swarmml.stack import convert, load
from swarmml.stack.model import Healthcheck, Port, Stack, UpdatePolicy, ml_stack
from swarmml.stack.plan import diff


def test_generated_ml_stack_is_the_projects_stack(tmp_path):
    out = tmp_path / "gen.yml"
    done = swarmml("generate", "-o", str(out))
    assert done.returncode == 0, done.stderr
    ours = convert(load([STACK_FILE], environ={}))
    generated = convert(load([str(out)], environ={}))
    assert generated.namespace == ours.namespace == "ml"
    for name, spec in ours.services.items():
        assert diff(spec, generated.services[name]) == [], name
    assert generated.networks == ours.networks and list(generated.configs) == list(ours.configs)


def test_generate_options(tmp_path):
    s = ml_stack("canary", replicas=5, cpus=0.25, models=("iris-rf",), gateway=False)
    d = convert(load([_write(tmp_path, s)], environ={}))
    spec = d.services["canary_predictor"]
    assert list(d.services) == ["canary_predictor"]
    assert spec["Mode"] == {"Replicated": {"Replicas": 5}}
    assert spec["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"] == 250_000_000
    assert "SWARMML_MODELS=iris-rf" in spec["TaskTemplate"]["ContainerSpec"]["Env"]
    bad = swarmml("generate", "--replicas", "-3")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def _write(tmp_path, stack):
    p = tmp_path / f"{stack.name}.yml"
    p.write_text(stack.to_yaml())
    return str(p)


def test_python_api_covers_deploy_settings(tmp_path):
    s = Stack("api")
    net = s.network("back", internal=True)
    s.volume("data")
    s.service("db", "postgres:16", mode="global", networks=[net], volumes=["data:/var/lib/postgresql/data"],
              constraints=["node.role == manager"])
    s.service("web", "nginx:1.25", replicas=3, networks=[net], ports=[Port(80, 8080, mode="host")],
              max_replicas_per_node=1, healthcheck=Healthcheck(["CMD", "true"]),
              update=UpdatePolicy(2, order="start-first", failure_action="rollback"))
    d = convert(load([_write(tmp_path, s)], environ={}))
    web = d.services["api_web"]
    assert web["TaskTemplate"]["Placement"]["MaxReplicas"] == 1
    assert web["EndpointSpec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host",
                                            "PublishedPort": 8080}]
    assert web["UpdateConfig"] == {"Parallelism": 2, "Order": "start-first", "FailureAction": "rollback"}
    assert d.services["api_db"]["Mode"] == {"Global": {}}
    assert d.networks["api_back"]["Internal"] is True


@pytest.mark.integration
def test_docker_cli_accepts_every_shipped_and_generated_file(cluster, tmp_path):
    assert shutil.which("docker"), "the docker CLI is needed to check compatibility"
    files = [STACK_FILE] + sorted(glob.glob(os.path.join(ROOT, "stacks", "*.yml")))
    gen = tmp_path / "gen.yml"
    assert swarmml("generate", "-o", str(gen), "--replicas", "4", "--no-gateway").returncode == 0
    files.append(str(gen))
    for f in files:
        done = subprocess.run(["docker", "stack", "config", "-c", f], env=cluster.env, capture_output=True, text=True)
        assert done.returncode == 0, f"{f}: {done.stderr}"
