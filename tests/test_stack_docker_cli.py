"""swarmml reads stack files the way the docker CLI does: checked against `docker stack config` itself."""
import os
import shutil
import subprocess
import textwrap

import pytest
import yaml

from swarmml.stack import load

pytestmark = pytest.mark.integration

# Scalars where YAML 1.1 (PyYAML's default) and YAML 1.2 (docker/cli's yaml.v3) disagree, numbers docker/cli
# prints its own way, and interpolation.
TRICKY = """
    version: "3.8"
    services:
      a:
        image: x:${TAG:-1}
        environment:
          YES_WORD: yes
          ON_WORD: on
          PORTS: 22:22
          OCTAL: 017
          NOT_OCTAL: 08
          HEX: 0x1F
          NEW_OCTAL: 0o17
          UNDERSCORE: 1_000
          FLOAT_INT: 2.0
          BIG: 1234567.0
          EXP: 1e8
          SMALL: 0.00001
          DOLLAR: $$HOME
          DEFAULTED: ${UNSET_VAR:-fallback}
          EMPTY_DEFAULT: ${EMPTY_VAR-kept-empty}
        labels:
          ratio: 0.5
          count: 3
        ports: ["8080:80", "9000-9001:9000-9001/udp"]
"""


def test_values_read_like_docker_stack_config(tmp_path):
    assert shutil.which("docker"), "the docker CLI is needed to compare"
    f = tmp_path / "tricky.yml"
    f.write_text(textwrap.dedent(TRICKY))
    env = {k: v for k, v in os.environ.items() if k not in ("TAG", "UNSET_VAR")}
    env.update(TAG="7", EMPTY_VAR="")
    done = subprocess.run(["docker", "stack", "config", "-c", str(f)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    theirs = yaml.safe_load(done.stdout)["services"]["a"]
    ours = load([str(f)], name="t", environ=env).config["services"]["a"]
    assert ours["environment"] == theirs["environment"]
    assert ours["labels"] == theirs["labels"]
    assert ours["image"] == theirs["image"] == "x:7"
    assert [(p["target"], p["published"], p["protocol"]) for p in ours["ports"]] == [
        (p["target"], p["published"], p["protocol"]) for p in theirs["ports"]]
