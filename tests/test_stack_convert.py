"""Conversion to Swarm specs with docker/cli's semantics. No daemon."""
import base64
import textwrap

import pytest

from swarmml.stack import convert, load
from swarmml.stack.plan import canonical, plan
from swarmml.stack.units import duration_ns, size_bytes


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
    assert s["Labels"] == {"team": "ml", "com.docker.stack.namespace": "st", "com.docker.stack.image": "registry:5000/app:1"}
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
    from swarmml.errors import UsageError
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
    assert cs["Secrets"] == [{"File": {"Name": "token", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretName": secret_name}]
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


def _engine_view(spec):
    """What the engine hands back for a spec it stored: defaults filled, networks as IDs, digest pinned."""
    import copy
    out = copy.deepcopy(spec)
    out["TaskTemplate"]["ContainerSpec"]["Isolation"] = "default"
    out["TaskTemplate"]["ContainerSpec"]["Image"] += "@sha256:" + "a" * 64
    out["TaskTemplate"]["ForceUpdate"] = 3
    out["TaskTemplate"]["Runtime"] = "container"
    out["EndpointSpec"].setdefault("Mode", "vip")
    for n in out["TaskTemplate"]["Networks"]:
        n["Target"] = "id-" + n["Target"]
    if "RestartPolicy" in out["TaskTemplate"]:
        out["TaskTemplate"]["RestartPolicy"].setdefault("MaxAttempts", 0)
    return out


def test_plan_unchanged_update_and_prune(tmp_path):
    d = desired(tmp_path, "services:\n  web:\n    image: x:1\n  db:\n    image: pg:16\n")
    ids = {"id-st_default": "st_default"}
    current = {"services": {name: {"ID": name, "Version": 1, "Spec": _engine_view(spec)}
                            for name, spec in d.services.items()},
               "networks": {"st_default": {"ID": "id-st_default", "Labels": {}}}}
    p = plan(d, current, ids)
    assert [(a.name, a.action) for a in p.actions] == [("st_default", "unchanged"), ("st_db", "unchanged"),
                                                      ("st_web", "unchanged")]
    assert not p.changes_anything

    d2 = desired(tmp_path, "services:\n  web:\n    image: x:2\n    environment: {A: '1'}\n")
    p2 = plan(d2, current, ids, prune=True)
    web = next(a for a in p2.actions if a.name == "st_web")
    assert web.action == "update"
    assert ("TaskTemplate.ContainerSpec.Image", "x:1", "x:2") in web.changes
    assert ("TaskTemplate.ContainerSpec.Env", None, ["A=1"]) in web.changes
    assert next(a for a in p2.actions if a.name == "st_db").action == "remove"
    without_prune = plan(d2, current, ids, prune=False)
    assert all(a.action != "remove" for a in without_prune.actions)


def test_canonical_drops_engine_defaults_only():
    spec = {"TaskTemplate": {"ContainerSpec": {"Isolation": "default", "Image": "a:1@sha256:ff"}, "ForceUpdate": 2,
                             "Runtime": "container"}, "EndpointSpec": {"Mode": "vip"}}
    assert canonical(spec) == {"TaskTemplate": {"ContainerSpec": {"Image": "a:1"}}}
    assert canonical(spec, pin_digests=True)["TaskTemplate"]["ContainerSpec"]["Image"] == "a:1@sha256:ff"
    assert canonical({"EndpointSpec": {"Mode": "dnsrr"}}) == {"EndpointSpec": {"Mode": "dnsrr"}}
