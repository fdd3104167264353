"""Loading stack files: interpolation, .env, merge order, validation errors, warnings. No daemon."""
import paths
import os
import re
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
    with pytest.raises(UsageError,
                       match=r"s.yml: services.web.image: required variable IMAGE is missing a value: set IMAGE"):
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
    ("deploy: {resources: {limits: {cpus: lots}}}",
     'services.web.deploy.resources.limits.cpus: expected a number, got "lots"'),
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
    f = write(tmp_path, "s.yml",
              MINIMAL + "        configs: [app]\n    configs:\n      app:\n        file: ./conf/app.cfg\n")
    s = load([f], name="t", environ={})
    assert s.config["configs"]["app"]["file"] == str(tmp_path / "conf" / "app.cfg")
    g = write(tmp_path, "g.yml",
              MINIMAL + "        configs: [app]\n    configs:\n      app:\n        file: ./missing.cfg\n")
    with pytest.raises(UsageError, match="configs.app.file: .*missing.cfg does not exist"):
        load([g], name="t", environ={})


def test_keys_swarm_ignores_are_warned_not_dropped_silently(tmp_path):
    f = write(tmp_path, "s.yml", MINIMAL + "        build: .\n        depends_on: [db]\n        container_name: x\n")
    s = load([f], name="t", environ={})
    keys = sorted(w.split(": ")[1] for w in s.warnings)
    assert keys == ["services.web.build", "services.web.container_name", "services.web.depends_on"]
    assert all("ignored by Swarm" in w for w in s.warnings)


def test_project_stack_files_load(tmp_path):
    root = paths.ROOT
    s = load([os.path.join(root, "docker-stack.yml")], environ={})
    assert s.name == "ml" and set(s.config["services"]) == {"predictor", "gateway", "prometheus", "vip"}


# --- interpolation -----------------------------------------------------------------

@pytest.mark.parametrize("text,env,expected", [
    ("${A:-${B:-x}}", {}, "x"),
    ("${A:-${B}}", {"B": "b"}, "b"),
    ("${A?needed}", {"A": ""}, ""),
    ("$$HOME and $${A}", {"A": "1"}, "$HOME and ${A}"),
    ("${A}${B}", {"A": "1", "B": "2"}, "12"),
    ("plain", {}, "plain"),
])
def test_more_interpolation(text, env, expected):
    assert interpolate_string(text, env, "f") == expected


@pytest.mark.parametrize("text,message", [
    ("${A:?}", "required variable A is missing a value"),
    ("${B?set B}", "required variable B is missing a value: set B"),
    ("${1A}", "invalid interpolation format"),
    ("${A:x}", "invalid interpolation format"),
    ("${A", "no closing"),
    ("cost $5", "write '$$' for a dollar"),
])
def test_interpolation_errors(text, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        interpolate_string(text, {"A": ""}, "f")


def test_env_file_option_and_bad_lines(tmp_path):
    f = write(tmp_path, "s.yml", "services:\n  web:\n    image: nginx:${TAG}\n")
    other = write(tmp_path, "other.env", "TAG=9\n")
    assert load([f], name="t", environ={}, env_file=other).config["services"]["web"]["image"] == "nginx:9"
    with pytest.raises(UsageError, match="--env-file: .*missing.env does not exist"):
        load([f], name="t", environ={}, env_file=str(tmp_path / "missing.env"))
    bad = write(tmp_path, "bad.env", "TAG=1\nnot a pair\n")
    with pytest.raises(UsageError, match=r"bad.env:2: expected KEY=VALUE"):
        load([f], name="t", environ={}, env_file=bad)


# --- merging like repeated -c ---------------------------------------------------------

def test_merge_keys_lists_like_docker_cli(tmp_path):
    a = write(tmp_path, "a.yml", """
        services:
          web:
            image: nginx:1
            command: ["a", "b"]
            cap_add: [NET_ADMIN]
            volumes: ["data:/data", "/etc/a:/a:ro"]
            secrets: [{source: s2, target: two}]
            networks: {front: {aliases: [one]}}
            logging: {driver: json-file, options: {max-size: 1m}}
            deploy: {placement: {constraints: [node.role == worker]}}
        networks: {front: {driver: overlay, labels: {a: "1"}}}
        volumes: {data: {}}
        secrets: {s1: {content: one}, s2: {content: two}}
    """)
    b = write(tmp_path, "b.yml", """
        services:
          web:
            command: ["c"]
            cap_add: [SYS_TIME]
            volumes: [{type: volume, source: data, target: /data, read_only: true}]
            secrets: [s1, {source: s2, target: deux}]
            networks: {front: {aliases: [two]}}
            logging: {options: {max-file: "3"}}
            deploy: {placement: {constraints: [node.labels.zone == a]}}
        networks: {front: {driver: overlay, attachable: true}}
    """)
    web = load([a, b], name="t", environ={}).config["services"]["web"]
    cfg = load([a, b], name="t", environ={}).config
    assert web["command"] == ["c"]  # replaced
    assert web["cap_add"] == ["NET_ADMIN", "SYS_TIME"]  # appended
    assert web["deploy"]["placement"]["constraints"] == ["node.role == worker", "node.labels.zone == a"]
    assert [(v["target"], v.get("read_only")) for v in web["volumes"]] == [("/a", True), ("/data", True)]
    assert web["secrets"] == [{"source": "s1"}, {"source": "s2", "target": "deux"}]  # keyed by source, sorted
    assert web["networks"] == {"front": {"aliases": ["two"]}}
    assert web["logging"] == {"driver": "json-file", "options": {"max-size": "1m", "max-file": "3"}}
    assert cfg["networks"]["front"] == {"driver": "overlay", "attachable": True}  # replaced whole


def test_logging_with_another_driver_replaces(tmp_path):
    a = write(tmp_path, "a.yml",
              "services:\n  web:\n    image: x\n    logging: {driver: json-file, options: {a: '1'}}\n")
    b = write(tmp_path, "b.yml", "services:\n  web:\n    logging: {driver: syslog}\n")
    assert load([a, b], name="t", environ={}).config["services"]["web"]["logging"] == {"driver": "syslog"}


def test_ports_merge_by_published_port(tmp_path):
    a = write(tmp_path, "a.yml", "services:\n  web:\n    image: x\n    ports: ['8080:80', '9000']\n")
    b = write(tmp_path, "b.yml", "services:\n  web:\n    ports: [{target: 8000, published: 8080}, '9001']\n")
    ports = load([a, b], name="t", environ={}).config["services"]["web"]["ports"]
    assert sorted((p["target"], p["published"]) for p in ports) == [(8000, 8080), (9000, 0), (9001, 0)]


def test_environment_takes_values_from_the_environment_and_env_files(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "web.env").write_text("# settings\nFROM_FILE=1\nQUOTED=\"kept\"\nBOTH=file\nPASS\n")
    a = write(tmp_path, "a.yml", """
        services:
          web:
            image: x
            env_file: ./conf/web.env
            environment: [BOTH=yaml, FROM_ENV, EMPTY=, UNSET]
    """)
    env = load([a], name="t", environ={"FROM_ENV": "e", "EMPTY": "filled", "PASS": "p"}).config["services"]["web"]
    assert env["environment"] == {"FROM_FILE": "1", "QUOTED": '"kept"', "BOTH": "yaml", "PASS": "p",
                                  "FROM_ENV": "e", "EMPTY": "filled", "UNSET": None}
    assert "env_file" not in env
    b = write(tmp_path, "b.yml", "services:\n  web:\n    image: x\n    env_file: missing.env\n")
    with pytest.raises(UsageError, match=r"services.web.env_file\[0\]: .*missing.env does not exist"):
        load([b], name="t", environ={})


def test_relative_paths_resolve_from_the_first_files_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "app.cfg").write_text("x")
    a = write(tmp_path, "a.yml", "services:\n  web:\n    image: x\n")
    b = write(tmp_path / "sub", "b.yml", """
        services:
          web:
            configs: [app]
            volumes: ["./data:/data", "~/cache:/cache"]
        configs: {app: {file: ./app.cfg}}
    """)
    cfg = load([a, b], name="t", environ={"HOME": "/home/u"}).config
    assert cfg["configs"]["app"]["file"] == str(tmp_path / "app.cfg")
    assert [v["source"] for v in cfg["services"]["web"]["volumes"]] == [str(tmp_path / "data"), "/home/u/cache"]


def test_files_must_agree_on_the_version(tmp_path):
    a = write(tmp_path, "a.yml", 'version: "3.8"\nservices:\n  web:\n    image: x\n')
    b = write(tmp_path, "b.yml", 'version: "3.9"\nservices:\n  web:\n    image: y\n')
    with pytest.raises(UsageError, match="declare different versions"):
        load([a, b], name="t", environ={})


# --- validation ----------------------------------------------------------------------

@pytest.mark.parametrize("snippet,message", [
    ("mem_limit: 1g", "services.web.mem_limit: not supported by docker stack deploy: set deploy.resources.limits"),
    ("extends: {service: x}", "services.web.extends: not supported by docker stack deploy"),
    ("deploy: {mode: global, replicas: 2}", "services.web.deploy.replicas: can only be used with replicated"),
    ("deploy: {mode: global-job, replicas: 2}", "services.web.deploy.replicas: can only be used with replicated"),
    ("deploy: {update_config: {max_failure_ratio: 2}}", "max_failure_ratio: expected a number from 0 to 1, got 2"),
    ("deploy: {rollback_config: {failure_action: rollback}}",
     "rollback_config.failure_action: expected one of continue"),
    ("deploy: {restart_policy: {condition: always}}",
     "restart_policy.condition: expected one of none, on-failure, any"),
    ("deploy: {resources: {limits: {cpus: '0.0000000001'}}}", "limits.cpus: expected a number of CPUs with at most 9"),
    ("deploy: {resources: {reservations: {pids: 3}}}", "reservations.pids: unknown key"),
    ("deploy: {placement: {preferences: [{pack: node.id}]}}", "preferences[0].pack: unknown key"),
    ("stop_grace_period: 10", 'services.web.stop_grace_period: expected a duration like "10s"'),
    ("healthcheck: {test: [NOPE, x]}", 'healthcheck.test[0]: expected one of "CMD", "CMD-SHELL", "NONE"'),
    ("healthcheck: {test: [CMD, x], disable: true}", "healthcheck: test and disable can't be set at the same time"),
    ("restart: sometimes", 'services.web.restart: expected one of "no", "always"'),
    ("ports: ['8080:80/quic']", "ports[0]: expected a protocol of tcp, udp or sctp"),
    ("ports: ['8000-8002:80-81']", "ports[0]: expected port ranges of the same length"),
    ("ports: [{target: 70000}]", "ports[0].target: expected a port number (0-65535), got 70000"),
    ("ports: [{target: 80, host_ip: 127.0.0.1}]", "ports[0].host_ip: unknown key"),
    ("volumes: ['data:/a:ro:x']", "volumes[0]: expected a volume like"),
    ("volumes: [{type: bind, target: /x}]", "volumes[0].source: is required for a bind mount"),
    ("volumes: [{type: tmpfs, source: x, target: /x}]", "volumes[0].source: must be empty for a tmpfs mount"),
    ("volumes: [{type: bind, source: /a, target: /x, tmpfs: {size: 1}}]", "volumes[0].tmpfs: does not apply to a bind"),
    ("volumes: [{type: volume, source: nowhere, target: /x}]", "services.web.volumes[0]: undefined volume 'nowhere'"),
    ("configs: [nope]", "services.web.configs[0]: undefined config 'nope'"),
    ("ulimits: {NOFILE: 3}", "services.web.ulimits.NOFILE: expected a limit name"),
    ("ulimits: {nofile: {soft: 1}}", "services.web.ulimits.nofile.hard: is required"),
    ("extra_hosts: [justahost]", 'services.web.extra_hosts[0]: expected a "host:ip" entry'),
    ("dns_opt: [ndots:2]", "services.web.dns_opt: unknown key"),
    ("command: 'echo \"unclosed'", "services.web.command: expected a command line"),
    ("environment: {DEBUG: true}", 'services.web.environment.DEBUG: expected a string, number or null (quote it'),
    ("labels: [a=1, 5]", "services.web.labels[1]: expected a string \"KEY=VALUE\", got 5"),
])
def test_more_validation_errors(tmp_path, snippet, message):
    f = write(tmp_path, "s.yml", MINIMAL + f"        {snippet}\n")
    with pytest.raises(UsageError) as err:
        load([f], name="t", environ={})
    assert message in str(err.value)
    assert str(err.value).startswith(f) and "\n" not in str(err.value)


@pytest.mark.parametrize("top,message", [
    ('version: "2.4"\n', 'version: expected "3.x"'),
    ("volumes: {v: {external: true, driver: local}}\n", "volumes.v.driver: can't be set on an external volume"),
    ("volumes: {v: {external: {name: a}, name: b}}\n", "volumes.v.external.name: conflicts with volumes.v.name"),
    ("secrets: {s: {file: ./a, content: b}}\n", "secrets.s: expected exactly one of file, content"),
    ("configs: {c: {}}\n", "configs.c: expected exactly one of file, content, environment or external"),
    ("configs: {c: {environment: NOT_SET}}\n", "configs.c.environment: variable NOT_SET is not set"),
    ("configs: {c: {driver: x}}\n", "configs.c.driver: unknown key"),
    ("networks: {'bad name': {}}\n", "networks.bad name: expected a network name"),
    ("networks: {n: {ipam: {config: [{subnet: 10.0.0.0/24, gateway: 10.0.0.1}]}}}\n",
     "networks.n.ipam.config[0].gateway: unknown key"),
])
def test_top_level_errors(tmp_path, top, message):
    f = write(tmp_path, "s.yml", MINIMAL.replace('    version: "3.8"\n', "") + textwrap.indent(top, "    "))
    with pytest.raises(UsageError) as err:
        load([f], name="t", environ={})
    assert message in str(err.value)


def test_service_and_stack_name_limits(tmp_path):
    f = write(tmp_path, "s.yml", MINIMAL)
    with pytest.raises(UsageError, match="longer than 63 characters"):
        load([f], name="s" * 60, environ={})
    assert load([f], name="Upper_Case-1", environ={}).name == "Upper_Case-1"  # as docker/cli allows


def test_warnings_for_keys_docker_accepts_and_ignores(tmp_path):
    f = write(tmp_path, "s.yml", """
        services:
          web:
            image: x
            expose: ["80"]
            privileged: true
            restart: always
            tmpfs: /run
            ports: ["127.0.0.1:8080:80"]
            networks: {n: {ipv4_address: 10.0.0.5}}
            volumes: [{type: bind, source: /a, target: /a, bind: {create_host_path: true}}]
            deploy: {restart_policy: {condition: any}}
        networks: {n: {}}
    """)
    s = load([f], name="t", environ={})
    paths = sorted(w.split(": ")[1] for w in s.warnings)
    assert paths == ["services.web.expose", "services.web.networks.n.ipv4_address", "services.web.ports[0]",
                     "services.web.privileged", "services.web.restart", "services.web.tmpfs",
                     "services.web.volumes[0].bind.create_host_path"]
    assert all(w.startswith(f + ": services.web.") and "ignored by Swarm (" in w for w in s.warnings)


def test_values_cast_after_interpolation(tmp_path):
    f = write(tmp_path, "s.yml", """
        services:
          web:
            image: x
            read_only: "${RO}"
            ports: [{target: "${PORT}", published: "${PUB:-}"}]
            deploy: {replicas: "${N}", resources: {limits: {cpus: "${CPUS}"}}}
    """)
    web = load([f], name="t", environ={"RO": "true", "PORT": "80", "N": "3", "CPUS": "0.5"}).config["services"]["web"]
    assert web["read_only"] is True and web["deploy"]["replicas"] == 3
    assert web["ports"] == [{"target": 80, "published": 0}]
    assert web["deploy"]["resources"]["limits"]["cpus"] == "0.5"


def test_short_volume_syntax(tmp_path):
    f = write(tmp_path, "s.yml", """
        services:
          web:
            image: x
            volumes: ["/anon", "data:/d:ro,nocopy", "/h:/b:rshared", "./rel:/r:z"]
        volumes: {data: {}}
    """)
    vols = load([f], name="t", environ={}).config["services"]["web"]["volumes"]
    assert vols == [
        {"type": "volume", "target": "/anon"},
        {"type": "volume", "source": "data", "target": "/d", "read_only": True, "volume": {"nocopy": True}},
        {"type": "bind", "source": "/h", "target": "/b", "bind": {"propagation": "rshared"}},
        {"type": "bind", "source": str(tmp_path / "rel"), "target": "/r"},
    ]


def test_bind_sources_absolute_as_written_relative_joined_and_cleaned(tmp_path):
    # docker/cli's absPath: "/var/lib/docker/" reaches the engine with its slash; "./a/../b/" becomes <dir>/b.
    f = write(tmp_path, "s.yml", """
        services:
          web:
            image: x
            volumes:
              - /var/lib/docker/:/var/lib/docker:ro
              - {type: bind, source: /srv/data/, target: /data}
              - ./a/../b/:/b
              - ~/cache/:/cache
    """)
    vols = load([f], name="t", environ={"HOME": "/home/u"}).config["services"]["web"]["volumes"]
    assert [v["source"] for v in vols] == ["/var/lib/docker/", "/srv/data/", str(tmp_path / "b"), "/home/u/cache/"]


@pytest.mark.parametrize("version,snippet,message", [
    ("3.8", "deploy: {resources: {limits: {pids: 9}}}",
     'services.web.deploy.resources.limits.pids: this key needs version "3.9" or later (the file declares "3.8"'),
    ("3.1", "ports: [{target: 80}]", 'services.web.ports[0]: the long port syntax needs version "3.2"'),
    ("3.6", "init: true", 'services.web.init: this key needs version "3.7"'),
    ("3.11", "healthcheck: {start_interval: 1s}",
     'services.web.healthcheck.start_interval: this key needs version "3.12"'),
])
def test_keys_newer_than_the_declared_version_are_errors_as_with_docker(tmp_path, version, snippet, message):
    f = write(tmp_path, "s.yml", MINIMAL.replace('"3.8"', f'"{version}"') + f"        {snippet}\n")
    with pytest.raises(UsageError, match=re.escape(message)):
        load([f], name="t", environ={})
    ok = write(tmp_path, "ok.yml", MINIMAL.replace('    version: "3.8"\n', "") + f"        {snippet}\n")
    assert load([ok], name="t", environ={})  # no version: the newest format, as docker/cli reads it
    short = write(tmp_path, "short.yml", MINIMAL.replace('"3.8"', '"3.0"') + "        ports: ['80']\n")
    assert load([short], name="t", environ={})


def test_a_key_given_twice_is_an_error_with_its_place(tmp_path):
    f = write(tmp_path, "s.yml", "services:\n  web:\n    image: x\n    image: y\n")
    with pytest.raises(UsageError, match=r"s.yml:4:5: invalid YAML: the key 'image' is given twice"):
        load([f], name="t", environ={})
    anchors = write(tmp_path, "a.yml", "x-base: &b {image: nginx}\nservices:\n  web:\n    <<: *b\n    user: '1'\n")
    assert load([anchors], name="t", environ={}).config["services"]["web"] == {"image": "nginx", "user": "1"}


def test_stack_file_from_stdin(monkeypatch, tmp_path):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("services:\n  web:\n    image: nginx\n    volumes: ['./d:/d']\n"))
    monkeypatch.chdir(tmp_path)
    s = load(["-"], name="t", environ={})
    assert s.config["services"]["web"]["volumes"][0]["source"] == str(tmp_path / "d")


@pytest.mark.parametrize("image,ok", [
    ("nginx", True), ("registry:5000/swarmml/predictor:latest", True), ("example.org/a/b-c_d.e:1.2-rc", True),
    ("nginx@sha256:" + "a" * 64, True), ("localhost:5000/x:y@sha256:" + "b" * 64, True),
    ("Not An Image", False), ("UPPER/case", False), ("a:b:c", False), ("x:" + "t" * 129, False),
])
def test_image_references(tmp_path, image, ok):
    f = write(tmp_path, "s.yml", f"services:\n  web:\n    image: '{image}'\n")
    if ok:
        assert load([f], name="t", environ={}).config["services"]["web"]["image"] == image
    else:
        with pytest.raises(UsageError, match='services.web.image: expected an image reference like'):
            load([f], name="t", environ={})


def test_yaml_is_read_as_docker_cli_reads_it(tmp_path):
    # Values as `docker stack config` (gopkg.in/yaml.v3, Go's number formatting) prints them;
    # tests/integration/test_stack_docker_cli.py checks them against the docker CLI itself.
    f = write(tmp_path, "s.yml", """
        services:
          web:
            image: x
            environment: {A: yes, B: "on", C: 22:22, D: 017, E: 08, F: 0x1F, G: 1_000, H: 2.0, I: 1234567.0,
                          J: 1e8, K: 0.00001, L: -0o7, M: 2024-01-01, N: ~, O: ""}
            tty: yes
    """)
    web = load([f], name="t", environ={}).config["services"]["web"]
    assert web["environment"] == {"A": "yes", "B": "on", "C": "22:22", "D": "15", "E": "8", "F": "31", "G": "1000",
                                  "H": "2", "I": "1.234567e+06", "J": "1e+08", "K": "1e-05", "L": "-7",
                                  "M": "2024-01-01", "N": None, "O": ""}
    assert web["tty"] is True  # a boolean key takes "yes" as docker/cli's type casting does


def test_prometheus_runs_debians_package_or_the_image_prometheus_image_names():
    """One command for both images: the stack's, the generator's and the Dockerfile's arguments agree, and
    the data volume sits where both keep their data."""
    import json as _json

    from swarmml.stack.model import PROMETHEUS_COMMAND, ml_stack
    root = paths.ROOT
    default = load([os.path.join(root, "docker-stack.yml")], environ={}).config["services"]["prometheus"]
    assert default["image"] == "registry:5000/swarmml/prometheus:latest"
    # The upstream image comes with an override file (docker stack deploy takes no nested default).
    upstream = load([os.path.join(root, "docker-stack.yml"), os.path.join(root, "stacks", "prometheus-upstream.yml")],
                    environ={"PROMETHEUS_IMAGE": "prom/prometheus:v2.53.0"}).config["services"]["prometheus"]
    assert upstream["image"] == "prom/prometheus:v2.53.0"
    for svc in (default, upstream, ml_stack().to_dict()["services"]["prometheus"]):
        assert svc["command"] == PROMETHEUS_COMMAND
    assert [v["target"] for v in default["volumes"]] == ["/prometheus"]
    with open(os.path.join(root, "swarmml", "data", "prometheus", "Dockerfile")) as f:
        cmd = f.read().split("\nCMD ", 1)[1].replace("\\\n", "")
    assert _json.loads(cmd.strip()) == PROMETHEUS_COMMAND
