"""Generating stacks from Python; every shipped or generated file is accepted by the docker CLI."""
import os


from stack_helpers import ROOT, STACK_FILE, full_stack, swarmml
from swarmml.stack import convert, load
from swarmml.stack import examples
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
    s = ml_stack("canary", replicas=5, cpus=0.25, models=("iris-rf",), gateway=False, prometheus=False)
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


def test_shipped_examples_are_the_python_apis_output():
    for filename, (build, header) in examples.EXAMPLES.items():
        with open(os.path.join(ROOT, "stacks", filename)) as f:
            assert f.read() == build().to_yaml(header=header), "regenerate with python -m swarmml.stack.examples"


def test_examples_load_and_convert():
    models = convert(load([os.path.join(ROOT, "stacks", "two-models.yml")], environ={}))
    assert sorted(models.services) == ["models_gateway", "models_predictor-logreg", "models_predictor-rf",
                                       "models_vip"]
    # The floating IP's service runs on each node's own network and checks the gateway's port there.
    vip = models.services["models_vip"]
    assert vip["Mode"] == {"Global": {}} and models.services["models_gateway"]["Mode"] == {"Global": {}}
    assert vip["TaskTemplate"]["ContainerSpec"]["CapabilityAdd"] == ["CAP_NET_ADMIN", "CAP_NET_RAW"]
    assert "SWARMML_VIP_CHECK_PORT=8080" in vip["TaskTemplate"]["ContainerSpec"]["Env"]
    env = models.services["models_predictor-rf"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "SWARMML_MODELS=iris-rf" in env
    canary = convert(load([os.path.join(ROOT, "stacks", "canary.yml")],
                          environ={"CANARY_TAG": "2", "CANARY_REPLICAS": "2"}))
    spec = canary.services["canary_predictor-canary"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == "registry:5000/swarmml/predictor:2"
    assert spec["Mode"] == {"Replicated": {"Replicas": 2}} and spec["Labels"]["swarmml.track"] == "canary"
    assert canary.services["canary_predictor"]["Mode"] == {"Replicated": {"Replicas": 3}}


def test_generate_image_and_output_errors(tmp_path):
    out = tmp_path / "g.yml"
    done = swarmml("generate", "--image", "example.org/team/model:7", "--no-gateway", "-o", str(out))
    assert done.returncode == 0, done.stderr
    d = convert(load([str(out)], environ={}))
    assert d.services["ml_predictor"]["TaskTemplate"]["ContainerSpec"]["Image"] == "example.org/team/model:7"
    bad = swarmml("generate", "--memory", "lots")
    assert bad.returncode == 2 and bad.stderr.strip() == ("swarmml: error: --memory: "
                                                          "expected a size like 512M, got 'lots'")
    nowhere = swarmml("generate", "-o", str(tmp_path / "no" / "such" / "dir.yml"))
    assert nowhere.returncode == 2 and len(nowhere.stderr.strip().splitlines()) == 1


def test_python_api_round_trip_of_every_setting(tmp_path):
    d = convert(load([full_stack(tmp_path)], environ={}))
    api = d.services["full_api"]
    cs, task = api["TaskTemplate"]["ContainerSpec"], api["TaskTemplate"]
    assert (cs["Command"], cs["Args"], cs["Env"], cs["User"], cs["Dir"], cs["Hostname"], cs["Init"]) == (
        ["python", "-m", "api"], ["serve"], ["N=1"], "1000", "/srv", "api", True)
    assert cs["CapabilityAdd"] == ["CAP_NET_ADMIN"] and cs["Hosts"] == ["10.0.0.2 db"]
    assert cs["Healthcheck"]["Test"] == ["CMD-SHELL", "curl -f localhost"] and cs["ReadOnly"] is True
    assert cs["Secrets"][0]["File"]["Name"] == "api-token" and cs["Configs"][0]["ConfigName"] == "cfg"
    assert cs["Mounts"][0]["Source"] == "full_cache"
    assert task["Resources"] == {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 256 * 2**20},
                                 "Reservations": {"NanoCPUs": 100_000_000, "MemoryBytes": 64 * 2**20}}
    assert task["Placement"]["Preferences"] == [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]
    assert task["RestartPolicy"]["MaxAttempts"] == 3 and api["Mode"] == {"Replicated": {"Replicas": 0}}
    assert api["UpdateConfig"]["MaxFailureRatio"] == 0.2 and api["RollbackConfig"]["Order"] == "stop-first"
    assert api["Labels"]["team"] == "ml" and task["LogDriver"]["Name"] == "json-file"
    assert d.networks["full_net"]["Options"] == {"encrypted": ""} and d.external_configs == ["cfg"]
    assert d.services["full_agent"]["Mode"] == {"Global": {}}
