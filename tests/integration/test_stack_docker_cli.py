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


def test_files_merge_like_repeated_dash_c(tmp_path):
    (tmp_path / "app.cfg").write_text("x\n")
    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    a.write_text(textwrap.dedent("""
        version: "3.8"
        services:
          web:
            image: nginx:1
            command: ["a", "b"]
            cap_add: [NET_ADMIN]
            dns: [1.1.1.1]
            volumes: ["data:/data", "/etc/a:/a:ro"]
            secrets: [{source: s2, target: two}]
            ports: ["8080:80"]
            networks: {front: {aliases: [one]}}
            logging: {driver: json-file, options: {max-size: 1m}}
            environment: {A: "1", B: "1"}
            deploy: {replicas: 2, placement: {constraints: [node.role == worker]}, labels: {x: "1"}}
        networks: {front: {driver: overlay, labels: {a: "1"}}}
        volumes: {data: {}}
        secrets: {s1: {file: ./app.cfg}, s2: {file: ./app.cfg}}
    """))
    b.write_text(textwrap.dedent("""
        version: "3.8"
        services:
          web:
            command: ["c"]
            cap_add: [SYS_TIME]
            dns: [8.8.8.8]
            volumes: [{type: volume, source: data, target: /data, read_only: true}]
            secrets: [s1, {source: s2, target: deux}]
            ports: [{target: 8000, published: 8080}]
            networks: {front: {aliases: [two]}}
            logging: {options: {max-file: "3"}}
            environment: {B: "2"}
            deploy: {replicas: 0, placement: {constraints: [node.labels.zone == a]}, labels: {y: "2"}}
        networks: {front: {driver: overlay, attachable: true}}
    """))
    done = subprocess.run(["docker", "stack", "config", "-c", str(a), "-c", str(b)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    theirs = yaml.safe_load(done.stdout)
    ours = load([str(a), str(b)], name="t", environ={}).config
    assert ours["networks"] == theirs["networks"] and ours["secrets"] == theirs["secrets"]
    mine, cli = ours["services"]["web"], theirs["services"]["web"]
    for key in ("image", "command", "cap_add", "dns", "volumes", "secrets", "networks", "logging", "environment",
                "deploy"):
        assert mine[key] == cli[key], key
    assert [(p["target"], p.get("published")) for p in mine["ports"]] == [
        (p["target"], p.get("published")) for p in cli["ports"]]


def test_bind_sources_like_docker_stack_config(tmp_path):
    # Absolute sources are kept as written (trailing slash too); relative ones are joined and cleaned.
    f = tmp_path / "binds.yml"
    f.write_text(textwrap.dedent("""
        version: "3.8"
        services:
          a:
            image: x
            volumes:
              - /var/lib/docker/:/var/lib/docker:ro
              - {type: bind, source: /srv/data/, target: /data}
              - ./a/../b/:/b
    """))
    done = subprocess.run(["docker", "stack", "config", "-c", str(f)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    theirs = yaml.safe_load(done.stdout)["services"]["a"]["volumes"]
    ours = load([str(f)], name="t", environ={}).config["services"]["a"]["volumes"]
    assert [v["source"] for v in ours] == [v["source"] for v in theirs]
    assert ours[0]["source"] == "/var/lib/docker/"
