"""Every stack file the project ships or generates is deployable by `docker stack deploy` too, and `swarmml
deploy` warns about the interpolation forms swarmml reads but docker/cli's template parser does not.

No daemon is needed (the docker CLI renders stack files by itself);
tests/integration/test_stack_portable_integration.py deploys each stack with the real `docker stack deploy`.
"""
import glob
import os
import shutil
import subprocess
import textwrap

import pytest
import yaml
from click.testing import CliRunner

from stack_helpers import DEPLOYMENTS, ROOT, generated_files, paths
from swarmml.ops import deploy
from swarmml.stack import imageref
from swarmml.cli import cli
from swarmml.stack import load
from swarmml.stack.interpolate import unsupported_by_docker_cli
from swarmml.stack.loader import read_yaml

# How each such warning ends: what docker stack deploy would do with the file.
REFUSED = "docker stack deploy would refuse"

# The variables the README and the stacks' headers deploy them with (and none at all).
README_ENVS = [
    {},
    {"SWARMML_REGISTRY": "registry.example.com/team", "SWARMML_TAG": "2"},
    {"PROMETHEUS_IMAGE": "prom/prometheus:v2.53.0", "CANARY_TAG": "2",
     "PROMETHEUS_PLACEMENT": "node.hostname == node1"},
]


def shipped_files():
    return [os.path.join(ROOT, "docker-stack.yml")] + sorted(glob.glob(os.path.join(ROOT, "stacks", "*.yml")))


# --- finding what docker/cli's template lacks (pure) -----------------------------------

@pytest.mark.parametrize("text,found", [
    ("${A:-${B}}", ["nested default ${A:-${B}}"]),
    ("${A:-x}/${B-$C}:${D:-$$}", ["nested default ${B-$C}", "nested default ${D:-$$}"]),
    ("${P:-${R:-registry:5000}/swarmml/prometheus:${T:-latest}}",
     ["nested default ${P:-${R:-registry:5000}/swarmml/prometheus:${T:-latest}}"]),
    ("${A:+on}-${B+on}", ["alternative value ${A:+on}", "alternative value ${B+on}"]),
    ("${A:?set ${B}}", ["nested variable ${A:?set ${B}}"]),
    # Both read these alike.
    ("${A?err} ${B:?set B} ${C-d} ${D:-registry:5000}/x $E $$F", []),
    ("cost $$5, {braces}", []),
])
def test_forms_docker_cli_lacks_are_found_in_a_string(text, found):
    lines = unsupported_by_docker_cli({"k": text}, "s.yml")
    assert [line.split(" — ")[0] for line in lines] == [f"s.yml: k: {f}" for f in found]
    assert all(line.endswith(REFUSED + " this file") or line.endswith(REFUSED + " or misread this file")
               for line in lines)


def test_a_files_findings_come_with_its_warnings_naming_file_and_key(tmp_path):
    f = tmp_path / "stack.yml"
    f.write_text(textwrap.dedent("""
        version: "3.8"
        services:
          web:
            image: ${IMAGE:-${REGISTRY:-registry:5000}/web:1}
            environment:
              MODE: ${MODE:+debug}
              PLAIN: ${PLAIN:-fine}
            command: ["serve", "--name=${NAME:-${HOSTNAME:-web}}"]
    """))
    assert unsupported_by_docker_cli(read_yaml(str(f)), str(f)) == [
        f"{f}: services.web.image: nested default ${{IMAGE:-${{REGISTRY:-registry:5000}}/web:1}} — {REFUSED} "
        "or misread this file",
        f"{f}: services.web.environment.MODE: alternative value ${{MODE:+debug}} — {REFUSED} this file",
        f"{f}: services.web.command[1]: nested default ${{NAME:-${{HOSTNAME:-web}}}} — {REFUSED} or misread "
        "this file"]
    loaded = load([str(f)], name="t", environ={})
    assert loaded.config["services"]["web"]["image"] == "registry:5000/web:1"  # swarmml still reads them
    assert [w for w in loaded.warnings if REFUSED in w] == unsupported_by_docker_cli(read_yaml(str(f)), str(f))


def test_every_shipped_deployment_is_listed():
    listed = {os.path.join(ROOT, f) for files in DEPLOYMENTS.values() for f in files}
    assert listed == set(shipped_files())


def test_no_shipped_or_generated_file_uses_them(tmp_path):
    files = shipped_files() + generated_files(str(tmp_path))
    for f in files:
        assert unsupported_by_docker_cli(read_yaml(f), f) == [], f
    for files in DEPLOYMENTS.values():
        assert not [w for w in load(paths(files), name="t", environ={}).warnings if REFUSED in w], files


# --- the warning at deploy -----------------------------------------------------------------

class EmptySwarm:
    """A swarm manager with nothing deployed yet: all that a dry run asks of the engine."""

    def info(self):
        return {"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}}

    class api:
        services = networks = secrets = configs = staticmethod(lambda *a, **kw: [])


def test_deploy_warns_once_in_one_line(tmp_path, monkeypatch):
    f = tmp_path / "stack.yml"
    f.write_text(textwrap.dedent("""
        version: "3.8"
        services:
          prometheus:
            image: ${PROMETHEUS_IMAGE:-${SWARMML_REGISTRY:-registry:5000}/swarmml/prometheus:${SWARMML_TAG:-latest}}
    """))
    monkeypatch.setattr(deploy, "target_client", EmptySwarm)
    done = CliRunner().invoke(cli, ["deploy", str(f), "--name", "ml", "--dry-run", "--resolve-image", "never"],
                              env={"PROMETHEUS_IMAGE": None, "SWARMML_REGISTRY": None, "SWARMML_TAG": None})
    assert done.exit_code == 0, done.output
    warned = [line for line in done.stderr.splitlines() if REFUSED in line]
    assert warned == [f"warning: {f}: services.prometheus.image: nested default ${{PROMETHEUS_IMAGE:-${{SWARMML_"
                      "REGISTRY:-registry:5000}/swarmml/prometheus:${SWARMML_TAG:-latest}} — docker stack deploy "
                      "would refuse or misread this file"]


# --- the real docker CLI, no engine ------------------------------------------------------

def docker_config(files, env, home):
    """`docker stack config` (it renders in the client; no daemon is asked) -> the rendered stack."""
    run_env = dict(env, PATH=os.environ.get("PATH", ""), HOME=str(home), DOCKER_HOST="tcp://127.0.0.1:9")
    done = subprocess.run(["docker", "stack", "config", *[a for f in files for a in ("-c", f)]],
                          capture_output=True, text=True, env=run_env, timeout=60)
    assert done.returncode == 0, f"{files}: {done.stderr}"
    return done.stdout


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI (not an engine)")
def test_the_docker_cli_renders_each_stack_as_swarmml_reads_it(tmp_path):
    deployments = [paths(files) for files in DEPLOYMENTS.values()] + [[f] for f in generated_files(str(tmp_path))]
    for files in deployments:
        for env in README_ENVS:
            rendered = docker_config(files, env, tmp_path)
            assert "${" not in rendered, (files, env)
            theirs = yaml.safe_load(rendered)["services"]
            ours = load(files, name="t", environ=env).config["services"]
            for name, svc in theirs.items():
                # `docker stack deploy` refuses a stack whose image is not a valid reference (config does not).
                assert imageref.parse(svc["image"]) is not None, (files, env, name, svc["image"])
                assert svc["image"] == ours[name]["image"], (files, env, name)
