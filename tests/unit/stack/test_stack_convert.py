"""Conversion to Swarm specs with docker/cli's semantics. No daemon."""
import base64
import hashlib
import textwrap

import pytest

from swarmml.errors import UsageError
from swarmml.stack import convert, load, logical_name
from swarmml.stack.units import duration_ns, nano_cpus, size_bytes


def desired(tmp_path, body, name="st"):
    f = tmp_path / "s.yml"
    f.write_text(textwrap.dedent(body))
    return convert(load([str(f)], name=name, environ={}))


def svc(tmp_path, service_body, extra=""):
    d = desired(tmp_path, "services:\n  web:\n" + textwrap.indent(textwrap.dedent(service_body), "    ") + extra)
    return d.services["st_web"]


def test_entrypoint_is_command_and_command_is_args(tmp_path):
    s = svc(tmp_path, """
        image: python:3.11
        entrypoint: python -m http.server
        command: ["8000", "--bind", "0.0.0.0"]
    """)
    cs = s["TaskTemplate"]["ContainerSpec"]
    assert cs["Command"] == ["python", "-m", "http.server"]
    assert cs["Args"] == ["8000", "--bind", "0.0.0.0"]


def test_environment_sorted_and_valueless_keys_kept(tmp_path):
    s = svc(tmp_path, """
        image: x
        environment: {ZED: "1", ALPHA: "2", BARE: null}
    """)
    assert s["TaskTemplate"]["ContainerSpec"]["Env"] == ["ALPHA=2", "BARE", "ZED=1"]


def test_labels_and_names_scoped_by_stack(tmp_path):
    s = svc(tmp_path, """
        image: registry:5000/app:1
        labels: {tier: web}
        deploy: {labels: {team: ml}}
    """)
    assert s["Name"] == "st_web"
    assert s["Labels"] == {"team": "ml", "com.docker.stack.namespace": "st",
                           "com.docker.stack.image": "registry:5000/app:1"}
    assert s["TaskTemplate"]["ContainerSpec"]["Labels"] == {"tier": "web", "com.docker.stack.namespace": "st"}


def test_default_network_with_service_alias(tmp_path):
    d = desired(tmp_path, "services:\n  web:\n    image: x\n")
    assert list(d.networks) == ["st_default"]
    net = d.networks["st_default"]
    assert net["Driver"] == "overlay" and net["Labels"] == {"com.docker.stack.namespace": "st"}
    assert d.services["st_web"]["TaskTemplate"]["Networks"] == [{"Target": "st_default", "Aliases": ["web"]}]


def test_named_networks_aliases_and_external(tmp_path):
    d = desired(tmp_path, """
        services:
          web:
            image: x
            networks:
              front: {aliases: [www]}
              shared: {}
        networks:
          front: {driver: overlay, attachable: true}
          shared: {external: true}
    """)
    assert set(d.networks) == {"st_front"} and d.networks["st_front"]["Attachable"] is True
    assert d.external_networks == ["shared"]
    assert d.services["st_web"]["TaskTemplate"]["Networks"] == [
        {"Target": "shared", "Aliases": ["web"]}, {"Target": "st_front", "Aliases": ["www", "web"]}]


def test_update_config_parallelism_defaults_to_one(tmp_path):
    s = svc(tmp_path, """
        image: x
        deploy:
          update_config: {order: start-first, delay: 2s, failure_action: rollback, monitor: 1m30s}
          rollback_config: {parallelism: 2}
    """)
    assert s["UpdateConfig"] == {"Parallelism": 1, "Delay": 2_000_000_000, "FailureAction": "rollback",
                                 "Monitor": 90_000_000_000, "Order": "start-first"}
    assert s["RollbackConfig"] == {"Parallelism": 2}


def test_modes(tmp_path):
    assert svc(tmp_path, "image: x\n")["Mode"] == {"Replicated": {"Replicas": 1}}
    assert svc(tmp_path, "image: x\ndeploy: {replicas: 0}\n")["Mode"] == {"Replicated": {"Replicas": 0}}
    assert svc(tmp_path, "image: x\ndeploy: {mode: global}\n")["Mode"] == {"Global": {}}
    assert svc(tmp_path, "image: x\ndeploy: {mode: replicated-job, replicas: 3}\n")["Mode"] == {
        "ReplicatedJob": {"MaxConcurrent": 3, "TotalCompletions": 3}}
    assert svc(tmp_path, "image: x\ndeploy: {mode: global-job}\n")["Mode"] == {"GlobalJob": {}}
    with pytest.raises(UsageError, match="replicas: can only be used"):
        svc(tmp_path, "image: x\ndeploy: {mode: global, replicas: 2}\n")


def test_resources_placement_restart_healthcheck(tmp_path):
    s = svc(tmp_path, """
        image: x
        healthcheck: {test: "curl -f localhost", interval: 2s, timeout: 1s, retries: 3, start_period: 10s}
        stop_grace_period: 30s
        deploy:
          endpoint_mode: dnsrr
          resources:
            limits: {cpus: "0.25", memory: 512M, pids: 100}
            reservations: {cpus: "0.1", memory: 64M}
          placement:
            constraints: [node.role == worker]
            preferences: [{spread: node.id}]
            max_replicas_per_node: 2
          restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 1m}
    """)
    t = s["TaskTemplate"]
    assert t["Resources"] == {"Limits": {"NanoCPUs": 250_000_000, "MemoryBytes": 512 * 2**20, "Pids": 100},
                              "Reservations": {"NanoCPUs": 100_000_000, "MemoryBytes": 64 * 2**20}}
    assert t["Placement"] == {"Constraints": ["node.role == worker"],
                              "Preferences": [{"Spread": {"SpreadDescriptor": "node.id"}}], "MaxReplicas": 2}
    assert t["RestartPolicy"] == {"Condition": "on-failure", "Delay": 5 * 10**9, "MaxAttempts": 3, "Window": 60 * 10**9}
    assert t["ContainerSpec"]["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 2 * 10**9,
                                                 "Timeout": 10**9, "StartPeriod": 10 * 10**9, "Retries": 3}
    assert t["ContainerSpec"]["StopGracePeriod"] == 30 * 10**9
    assert s["EndpointSpec"] == {"Mode": "dnsrr"}


def test_restart_key_is_used_without_restart_policy(tmp_path):
    assert svc(tmp_path, "image: x\nrestart: always\n")["TaskTemplate"]["RestartPolicy"] == {"Condition": "any"}


def test_ports_short_long_and_host_mode(tmp_path):
    s = svc(tmp_path, """
        image: x
        ports:
          - "9000-9001:80-81/udp"
          - {target: 8080, published: 8081, mode: host}
          - "53"
    """)
    assert s["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 53, "PublishMode": "ingress"},
        {"Protocol": "tcp", "TargetPort": 8080, "PublishMode": "host", "PublishedPort": 8081},
        {"Protocol": "udp", "TargetPort": 80, "PublishMode": "ingress", "PublishedPort": 9000},
        {"Protocol": "udp", "TargetPort": 81, "PublishMode": "ingress", "PublishedPort": 9001},
    ]


def test_volumes_secrets_configs_are_scoped_and_hashed(tmp_path):
    (tmp_path / "app.cfg").write_text("a=1\n")
    (tmp_path / "token").write_text("s3cret")
    d = desired(tmp_path, """
        services:
          web:
            image: x
            volumes: ["data:/var/lib/data", "/etc/hosts:/etc/hosts:ro", {type: tmpfs, target: /tmp, tmpfs: {size: 1M}}]
            secrets: [token]
            configs: [{source: app, target: /etc/app.cfg, mode: 0440}]
        volumes:
          data: {}
        secrets:
          token: {file: ./token}
        configs:
          app: {file: ./app.cfg}
    """)
    cs = d.services["st_web"]["TaskTemplate"]["ContainerSpec"]
    assert cs["Mounts"] == [
        {"Type": "volume", "Target": "/var/lib/data", "Source": "st_data",
         "VolumeOptions": {"Labels": {"com.docker.stack.namespace": "st"}}},
        {"Type": "bind", "Target": "/etc/hosts", "ReadOnly": True, "Source": "/etc/hosts"},
        {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 1024 * 1024}},
    ]
    (secret_name,) = d.secrets
    assert secret_name.startswith("st_token-") and len(secret_name) == len("st_token-") + 10
    assert base64.b64decode(d.secrets[secret_name]["Data"]) == b"s3cret"
    assert d.secrets[secret_name]["Labels"]["io.swarmml.logical-name"] == "token"
    assert cs["Secrets"] == [{"File": {"Name": "token", "UID": "0", "GID": "0", "Mode": 0o444},
                              "SecretName": secret_name}]
    (config_name,) = d.configs
    assert cs["Configs"] == [{"File": {"Name": "/etc/app.cfg", "UID": "0", "GID": "0", "Mode": 0o440},
                              "ConfigName": config_name}]
    # New content, new name: the services using it roll instead of the deploy failing.
    (tmp_path / "app.cfg").write_text("a=2\n")
    d2 = desired(tmp_path, (tmp_path / "s.yml").read_text())
    assert list(d2.configs) != [config_name]


def test_caps_ulimits_hosts_dns(tmp_path):
    cs = svc(tmp_path, """
        image: x
        cap_add: [net_admin]
        cap_drop: [ALL]
        ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 64}
        extra_hosts: ["db:10.0.0.5"]
        dns: 8.8.8.8
        dns_search: [example.com]
        user: "1000"
        working_dir: /app
        read_only: true
        init: true
    """)["TaskTemplate"]["ContainerSpec"]
    assert cs["CapabilityAdd"] == ["CAP_NET_ADMIN"] and cs["CapabilityDrop"] == ["ALL"]
    assert cs["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "nproc", "Soft": 64, "Hard": 64}]
    assert cs["Hosts"] == ["10.0.0.5 db"]
    assert cs["DNSConfig"] == {"Nameservers": ["8.8.8.8"], "Search": ["example.com"]}
    assert (cs["User"], cs["Dir"], cs["ReadOnly"], cs["Init"]) == ("1000", "/app", True, True)


def test_units():
    assert duration_ns("1h2m3s") == (3600 + 120 + 3) * 10**9
    assert duration_ns("250ms") == 250_000_000
    assert size_bytes("1G") == 2**30 and size_bytes("512m") == 512 * 2**20 and size_bytes(100) == 100


def test_config_and_secret_targets_default_to_the_source_name(tmp_path):
    d = desired(tmp_path, """
        services:
          web:
            image: x
            configs: [b_cfg, a_cfg]
            secrets: [{source: zz}, {source: aa, target: renamed, uid: "1", gid: "2", mode: 0400}]
        configs: {a_cfg: {content: a}, b_cfg: {content: b}}
        secrets: {zz: {content: z}, aa: {content: a}}
    """)
    cs = d.services["st_web"]["TaskTemplate"]["ContainerSpec"]
    # docker/cli: File.Name is the source (Swarm mounts configs at /<name>, secrets at /run/secrets/<name>),
    # and references are sorted by name.
    assert [(c["File"]["Name"], logical_name(c["ConfigName"])) for c in cs["Configs"]] == [
        ("a_cfg", "st_a_cfg"), ("b_cfg", "st_b_cfg")]
    assert [r["File"] for r in cs["Secrets"]] == [{"Name": "renamed", "UID": "1", "GID": "2", "Mode": 0o400},
                                                  {"Name": "zz", "UID": "0", "GID": "0", "Mode": 0o444}]


def test_hashed_names_follow_the_content(tmp_path):
    body = "services:\n  web:\n    image: x\n    configs: [c]\nconfigs:\n  c: {content: \"%s\"}\n"
    one, again, other = (desired(tmp_path, body % text) for text in ("v1", "v1", "v2"))
    assert list(one.configs) == list(again.configs) != list(other.configs)
    (name,) = one.configs
    spec = one.configs[name]
    assert name == "st_c-" + hashlib.sha256(b"v1").hexdigest()[:10] and logical_name(name) == "st_c"
    assert spec["Labels"] == {"com.docker.stack.namespace": "st", "io.swarmml.logical-name": "c",
                              "io.swarmml.content-hash": hashlib.sha256(b"v1").hexdigest()}
    assert base64.b64decode(spec["Data"]) == b"v1"


def test_explicit_external_driver_and_environment_secrets(tmp_path):
    f = tmp_path / "s.yml"
    f.write_text(textwrap.dedent("""
        services:
          web:
            image: x
            secrets: [fixed, ext, plugin, fromenv]
        secrets:
          fixed: {content: abc, name: my-fixed-name, template_driver: golang}
          ext: {external: {name: made-elsewhere}}
          plugin: {driver: vault, driver_opts: {path: a/b}}
          fromenv: {environment: TOKEN}
    """))
    d = convert(load([str(f)], name="st", environ={"TOKEN": "t0k"}))
    assert d.external_secrets == ["made-elsewhere"]
    fixed = d.secrets["my-fixed-name"]  # a chosen name is kept; the hash goes to a label only
    assert fixed["Templating"] == {"Name": "golang"} and "io.swarmml.content-hash" in fixed["Labels"]
    assert d.secrets["st_plugin"] == {"Name": "st_plugin", "Data": "",
                                      "Driver": {"Name": "vault", "Options": {"path": "a/b"}},
                                      "Labels": {"com.docker.stack.namespace": "st",
                                                 "io.swarmml.logical-name": "plugin"}}
    (env_name,) = [n for n in d.secrets if n.startswith("st_fromenv-")]
    assert base64.b64decode(d.secrets[env_name]["Data"]) == b"t0k"
    names = [r["SecretName"] for r in d.services["st_web"]["TaskTemplate"]["ContainerSpec"]["Secrets"]]
    assert names == ["made-elsewhere", "my-fixed-name", env_name, "st_plugin"]


def test_restart_key_variants(tmp_path):
    def policy(value):
        return svc(tmp_path, f"image: x\nrestart: {value}\n")["TaskTemplate"].get("RestartPolicy")
    assert policy('"no"') is None
    assert policy("unless-stopped") == {"Condition": "any"}
    assert policy("on-failure") == {"Condition": "on-failure", "MaxAttempts": 0}
    assert policy("on-failure:3") == {"Condition": "on-failure", "MaxAttempts": 3}
    both = svc(tmp_path, "image: x\nrestart: always\ndeploy: {restart_policy: {condition: none}}\n")
    assert both["TaskTemplate"]["RestartPolicy"] == {"Condition": "none"}


def test_job_modes_and_endpoint(tmp_path):
    assert svc(tmp_path, "image: x\ndeploy: {mode: replicated-job}\n")["Mode"] == {
        "ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    s = svc(tmp_path, "image: x\nports: ['80', {target: 81, published: 8081, protocol: udp}]\n"
                      "deploy: {endpoint_mode: DNSRR}\n")
    assert s["EndpointSpec"] == {"Mode": "dnsrr", "Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress"},
        {"Protocol": "udp", "TargetPort": 81, "PublishMode": "ingress", "PublishedPort": 8081}]}
    assert svc(tmp_path, "image: x\n")["EndpointSpec"] == {}


def test_healthcheck_variants(tmp_path):
    def hc(body):
        return svc(tmp_path, f"image: x\nhealthcheck: {body}\n")["TaskTemplate"]["ContainerSpec"].get("Healthcheck")
    assert hc("{disable: true}") == {"Test": ["NONE"]}
    assert hc("{test: [CMD, \"true\"], start_interval: 1s, retries: 0}") == {
        "Test": ["CMD", "true"], "StartInterval": 10**9, "Retries": 0}
    assert hc("{interval: 1m}") == {"Interval": 60 * 10**9}


def test_capabilities_like_docker_cli(tmp_path):
    def caps(add, drop):
        cs = svc(tmp_path, f"image: x\ncap_add: {add}\ncap_drop: {drop}\n")["TaskTemplate"]["ContainerSpec"]
        return cs.get("CapabilityAdd"), cs.get("CapabilityDrop")
    assert caps("[sys_time, CAP_NET_ADMIN, net_admin]", "[mknod, SYS_TIME]") == (
        ["CAP_NET_ADMIN", "CAP_SYS_TIME"], ["CAP_MKNOD"])  # adding wins over dropping
    assert caps("[all, chown]", "[all]") == (["ALL"], None)


def test_hosts_dns_and_other_container_fields(tmp_path):
    cs = svc(tmp_path, """
        image: x
        extra_hosts: {db: 10.0.0.5, v6: "[::1]"}
        dns_search: corp.local
        hostname: "{{.Node.Hostname}}"
        stop_signal: SIGTERM
        tty: true
        stdin_open: true
        isolation: process
        oom_score_adj: 100
        sysctls: [net.ipv4.tcp_syncookies=0]
        credential_spec: {file: spec.json}
        init: false
    """)["TaskTemplate"]["ContainerSpec"]
    assert cs["Hosts"] == ["10.0.0.5 db", "::1 v6"]
    assert cs["DNSConfig"] == {"Search": ["corp.local"]}
    assert (cs["Hostname"], cs["StopSignal"], cs["TTY"], cs["OpenStdin"], cs["Isolation"]) == (
        "{{.Node.Hostname}}", "SIGTERM", True, True, "process")
    assert cs["OomScoreAdj"] == 100 and cs["Sysctls"] == {"net.ipv4.tcp_syncookies": "0"} and cs["Init"] is False
    assert cs["Privileges"] == {"CredentialSpec": {"File": "spec.json"}, "SELinuxContext": None}
    lst = svc(tmp_path, "image: x\nextra_hosts: ['a=1.2.3.4', 'b:::1']\n")["TaskTemplate"]["ContainerSpec"]
    assert lst["Hosts"] == ["1.2.3.4 a", "::1 b"]


def test_mounts_of_every_kind(tmp_path):
    d = desired(tmp_path, """
        services:
          web:
            image: x
            volumes:
              - /anonymous
              - {type: volume, source: plain, target: /p, volume: {nocopy: true}}
              - {type: volume, source: ext, target: /e}
              - {type: volume, source: named, target: /n, consistency: cached}
              - {type: bind, source: ./here, target: /h, bind: {propagation: rslave}}
              - {type: tmpfs, target: /t}
        volumes:
          plain: {driver_opts: {type: nfs}}
          ext: {external: true, name: shared-data}
          named: {name: exactly-this, driver: local, labels: [k=v]}
    """)
    mounts = d.services["st_web"]["TaskTemplate"]["ContainerSpec"]["Mounts"]
    ns = {"com.docker.stack.namespace": "st"}
    assert mounts == [
        {"Type": "volume", "Target": "/anonymous"},
        {"Type": "volume", "Target": "/p", "Source": "st_plain",
         "VolumeOptions": {"NoCopy": True, "Labels": ns, "DriverConfig": {"Name": "", "Options": {"type": "nfs"}}}},
        {"Type": "volume", "Target": "/e", "Source": "shared-data", "VolumeOptions": {}},
        {"Type": "volume", "Target": "/n", "Consistency": "cached", "Source": "exactly-this",
         "VolumeOptions": {"Labels": {"k": "v", **ns}, "DriverConfig": {"Name": "local", "Options": {}}}},
        {"Type": "bind", "Target": "/h", "Source": str(tmp_path / "here"), "BindOptions": {"Propagation": "rslave"}},
        {"Type": "tmpfs", "Target": "/t"},
    ]


def test_networks_ipam_external_and_attachment_options(tmp_path):
    d = desired(tmp_path, """
        services:
          web:
            image: x
            networks:
              back: {driver_opts: {com.docker.network.endpoint.ifname: eth9}}
              outside:
              hostnet:
          other:
            image: x
        networks:
          back: {ipam: {driver: default, config: [{subnet: 10.9.0.0/24}]}, labels: {a: b}, name: fixed-back}
          outside: {external: {name: shared-overlay}}
          hostnet: {external: true, name: host}
    """)
    assert d.networks == {
        "fixed-back": {"Name": "fixed-back", "Labels": {"a": "b", "com.docker.stack.namespace": "st"},
                       "Driver": "overlay", "Options": {}, "Internal": False, "Attachable": False,
                       "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.9.0.0/24"}]}},
        "st_default": {"Name": "st_default", "Labels": {"com.docker.stack.namespace": "st"}, "Driver": "overlay",
                       "Options": {}, "Internal": False, "Attachable": False}}
    assert sorted(d.external_networks) == ["host", "shared-overlay"]
    assert d.services["st_web"]["TaskTemplate"]["Networks"] == [
        {"Target": "fixed-back", "Aliases": ["web"], "DriverOpts": {"com.docker.network.endpoint.ifname": "eth9"}},
        {"Target": "host", "Aliases": []},  # no alias on the host network
        {"Target": "shared-overlay", "Aliases": ["web"]}]
    assert d.services["st_other"]["TaskTemplate"]["Networks"] == [{"Target": "st_default", "Aliases": ["other"]}]


def test_generic_resources_logging_and_service_labels(tmp_path):
    s = svc(tmp_path, """
        image: x
        logging: {driver: gelf, options: {gelf-address: "udp://1.2.3.4:12201", tag: null}}
        deploy:
          labels: [team=ml]
          resources:
            limits: {memory: 1.5G}
            reservations: {generic_resources: [{discrete_resource_spec: {kind: gpu, value: 2}}]}
    """)
    t = s["TaskTemplate"]
    assert t["LogDriver"] == {"Name": "gelf", "Options": {"gelf-address": "udp://1.2.3.4:12201", "tag": None}}
    assert t["Resources"] == {"Limits": {"MemoryBytes": 1536 * 2**20},
                              "Reservations": {"GenericResources": [
                                  {"DiscreteResourceSpec": {"Kind": "gpu", "Value": 2}}]}}
    assert s["Labels"]["team"] == "ml"


def test_credential_spec_config_is_refused(tmp_path):
    with pytest.raises(UsageError, match="credential_spec.config: not supported"):
        desired(tmp_path, "services:\n  web:\n    image: x\n    credential_spec: {config: c}\n"
                          "configs:\n  c: {content: x}\n")


def test_more_units():
    assert duration_ns("0") == 0 and duration_ns("1.5s") == 1_500_000_000 and duration_ns("-2ms") == -2_000_000
    assert duration_ns("1h0.5m") == 3630 * 10**9
    assert size_bytes("1.5k") == 1536 and size_bytes("2GiB") == 2 * 2**30 and size_bytes("10b") == 10
    assert nano_cpus("0.000000001") == 1 and nano_cpus(2) == 2 * 10**9
    with pytest.raises(UsageError):
        nano_cpus("0.0000000001")
    with pytest.raises(UsageError):
        duration_ns("5 minutes")
