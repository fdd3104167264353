"""Loading stack files: interpolation, .env, merge order, validation errors, warnings. No daemon."""
import os
import textwrap

import pytest

from swarmml.errors import UsageError
from swarmml.stack import load
from swarmml.stack.interpolate import interpolate_string


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


MINIMAL = """
    version: "3.8"
    services:
      web:
        image: nginx:1.25
"""


@pytest.mark.parametrize("text,env,expected", [
    ("${A}", {"A": "1"}, "1"),
    ("$A-x", {"A": "1"}, "1-x"),
    ("${A:-d}", {}, "d"),
    ("${A:-d}", {"A": ""}, "d"),
    ("${A-d}", {"A": ""}, ""),
    ("${A-d}", {}, "d"),
    ("${A:+set}", {"A": "v"}, "set"),
    ("${A:+set}", {}, ""),
    ("cost $$5", {}, "cost $5"),
])
def test_interpolation(text, env, expected):
    assert interpolate_string(text, env, "f") == expected


def test_required_variable_names_file_and_key(tmp_path):
    f = write(tmp_path, "s.yml", """
        services:
          web:
            image: "${IMAGE:?set IMAGE to the image to run}"
    """)
    with pytest.raises(UsageError, match=r"s.yml: services.web.image: required variable IMAGE is missing a value: set IMAGE"):
        load([f], name="t", environ={})


def test_lone_dollar_is_an_error(tmp_path):
    f = write(tmp_path, "s.yml", """
        services:
          web:
            image: nginx
            command: echo ${
    """)
    with pytest.raises(UsageError, match="services.web.command: invalid interpolation"):
        load([f], name="t", environ={})


def test_env_file_beside_the_stack_and_environment_wins(tmp_path):
    write(tmp_path, ".env", "TAG=from-file\nREPLICAS=3\n# comment\n")
    f = write(tmp_path, "s.yml", """
        services:
          web:
            image: nginx:${TAG}
            deploy:
              replicas: ${REPLICAS}
    """)
    s = load([f], name="t", environ={"TAG": "from-env"})
    assert s.config["services"]["web"]["image"] == "nginx:from-env"
    assert s.config["services"]["web"]["deploy"]["replicas"] == 3  # a string after interpolation, cast to int


def test_files_merge_in_order(tmp_path):
    a = write(tmp_path, "a.yml", """
        services:
          web:
            image: nginx:1
            environment: {A: "1", B: "1"}
            ports: ["80:80"]
            deploy: {replicas: 1, resources: {limits: {cpus: "0.5"}}}
    """)
    b = write(tmp_path, "b.yml", """
        services:
          web:
            image: nginx:2
            environment: {B: "2"}
            ports: ["443:443"]
            deploy: {replicas: 4}
    """)
    s = load([a, b], name="t", environ={})
    web = s.config["services"]["web"]
    assert web["image"] == "nginx:2"
    assert web["environment"] == {"A": "1", "B": "2"}
    assert web["ports"] == [{"target": 80, "published": 80, "protocol": "tcp", "mode": "ingress"},
                            {"target": 443, "published": 443, "protocol": "tcp", "mode": "ingress"}]
    assert web["deploy"] == {"replicas": 4, "resources": {"limits": {"cpus": "0.5"}}}


def test_stack_name_sources(tmp_path):
    f = write(tmp_path, "s.yml", MINIMAL)
    with pytest.raises(UsageError, match="no stack name"):
        load([f], environ={})
    assert load([f], name="given", environ={}).name == "given"
    g = write(tmp_path, "g.yml", MINIMAL + "    name: fromfile\n")
    assert load([g], environ={}).name == "fromfile"
    h = write(tmp_path, "h.yml", MINIMAL + "    x-swarmml: {stack: fromext}\n")
    assert load([h], environ={}).name == "fromext"
    with pytest.raises(UsageError, match="stack name 'Bad Name'"):
        load([f], name="Bad Name", environ={})


@pytest.mark.parametrize("snippet,message", [
    ("deploy: {replicas: ten}", 's.yml: services.web.deploy.replicas: expected an integer, got "ten"'),
    ("deploy: {replicas: -1}", "services.web.deploy.replicas: expected a non-negative integer, got -1"),
    ("deploy: {mode: everywhere}", "services.web.deploy.mode: expected one of replicated, global"),
    ("deploy: {update_config: {order: last}}", "services.web.deploy.update_config.order: expected one of start-first"),
    ("deploy: {resources: {limits: {cpus: lots}}}", 'services.web.deploy.resources.limits.cpus: expected a number, got "lots"'),
    ("deploy: {resources: {limits: {memory: much}}}", "services.web.deploy.resources.limits.memory: expected a size"),
    ("deploy: {restart_policy: {delay: soon}}", "services.web.deploy.restart_policy.delay: expected a duration"),
    ("stop_grace_period: forever", "services.web.stop_grace_period: expected a duration"),
    ("ports: [{published: 80}]", "services.web.ports[0].target: is required"),
    ("ports: ['eighty']", "services.web.ports[0]: expected a port"),
    ("healthcheck: {retries: many}", "services.web.healthcheck.retries: expected an integer"),
    ("environment: 5", "services.web.environment: expected a mapping or a list of KEY=VALUE"),
    ("read_only: maybe", 'services.web.read_only: expected true or false, got "maybe"'),
    ("colour: blue", "services.web.colour: unknown key"),
    ("networks: [nowhere]", "services.web.networks.nowhere: undefined network"),
    ("secrets: [nope]", "services.web.secrets[0]: undefined secret 'nope'"),
])
def test_validation_errors_name_file_key_and_expectation(tmp_path, snippet, message):
    f = write(tmp_path, "s.yml", MINIMAL + f"        {snippet}\n")
    with pytest.raises(UsageError) as err:
        load([f], name="t", environ={})
    assert message in str(err.value)
    assert str(err.value).startswith(os.path.basename(f) if not os.path.isabs(f) else f)


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    f = write(tmp_path, "s.yml", "services:\n  web:\n    image: [unclosed\n")
    with pytest.raises(UsageError, match=r"s.yml:\d+:\d+: invalid YAML"):
        load([f], name="t", environ={})


def test_missing_image_missing_file_unknown_top_level(tmp_path):
    f = write(tmp_path, "s.yml", "services:\n  web:\n    command: echo\n")
    with pytest.raises(UsageError, match="services.web.image: is required"):
        load([f], name="t", environ={})
    with pytest.raises(UsageError, match="no such file"):
        load([str(tmp_path / "nope.yml")], name="t", environ={})
    g = write(tmp_path, "g.yml", MINIMAL + "    extras: {}\n")
    with pytest.raises(UsageError, match="g.yml: extras: unknown key"):
        load([g], name="t", environ={})


def test_config_file_paths_resolve_from_the_stack_directory(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.cfg").write_text("x=1\n")
    f = write(tmp_path, "s.yml", MINIMAL + "        configs: [app]\n    configs:\n      app:\n        file: ./conf/app.cfg\n")
    s = load([f], name="t", environ={})
    assert s.config["configs"]["app"]["file"] == str(tmp_path / "conf" / "app.cfg")
    g = write(tmp_path, "g.yml", MINIMAL + "        configs: [app]\n    configs:\n      app:\n        file: ./missing.cfg\n")
    with pytest.raises(UsageError, match="configs.app.file: .*missing.cfg does not exist"):
        load([g], name="t", environ={})


def test_keys_swarm_ignores_are_warned_not_dropped_silently(tmp_path):
    f = write(tmp_path, "s.yml", MINIMAL + "        build: .\n        depends_on: [db]\n        container_name: x\n")
    s = load([f], name="t", environ={})
    keys = sorted(w.split(": ")[1] for w in s.warnings)
    assert keys == ["services.web.build", "services.web.container_name", "services.web.depends_on"]
    assert all("ignored by Swarm" in w for w in s.warnings)


def test_project_stack_files_load(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    s = load([os.path.join(root, "docker-stack.yml")], environ={})
    assert s.name == "ml" and set(s.config["services"]) == {"predictor", "gateway"}
