"""The plan against what a real engine stores: no phantom changes, on stacks made by swarmml or by the docker CLI."""
import subprocess
import textwrap

import pytest

from swarmml.ops import deploy
from swarmml.engine import networks, swarm
from swarmml.stack import convert, load, logical_name
from swarmml.stack.plan import plan

pytestmark = pytest.mark.integration

# Every section the engine fills with defaults when it stores a spec, with replicas 0 so nothing runs.
DEFAULTS_HEAVY = """
    version: "3.8"
    services:
      web:
        image: registry:5000/swarmml/predictor:latest
        ports: [{target: 80, published: 18097}, "18098:81/udp"]
        healthcheck: {test: ["CMD", "true"]}
        volumes: [/anonymous, {type: tmpfs, target: /t}]
        deploy:
          replicas: 0
          update_config: {parallelism: 2}
          rollback_config: {delay: 1s}
          restart_policy: {delay: 1s}
          resources: {limits: {}, reservations: {memory: 16M}}
      job:
        image: registry:5000/swarmml/predictor:latest
        deploy: {mode: replicated-job, replicas: 0}
      agent:
        image: registry:5000/swarmml/predictor:latest
        restart: on-failure:2
        deploy: {mode: global, placement: {constraints: [node.labels.swarmml.never == true]}}
"""


def test_redeploying_what_the_engine_stored_plans_no_change(cluster, tmp_path):
    f = tmp_path / "defaults.yml"
    f.write_text(textwrap.dedent(DEFAULTS_HEAVY))
    name = "it-plandefaults"
    first = deploy.deploy([str(f)], name=name, client=cluster.client, detach=True, show_progress=False)
    try:
        assert {a.action for a in first.plan.actions} == {"create"}
        current, names = swarm.stack_objects(cluster.client, name), networks.network_names(cluster.client)
        by_tag = plan(convert(load([str(f)], name=name, environ={})), current, names)
        assert [(a.name, a.changes) for a in by_tag.actions if a.action != "unchanged"] == []
        # And as a deploy plans it: images resolved to digests and compared pinned.
        by_digest = deploy.deploy([str(f)], name=name, client=cluster.client, dry_run=True, show_progress=False).plan
        assert [(a.name, a.changes) for a in by_digest.actions if a.action != "unchanged"] == []
    finally:
        deploy.remove_stack(cluster.client, name)


# Most keys docker/cli converts, several in their short syntax; replicas 0 or no eligible node, so nothing runs.
RICH = """
    version: "3.9"
    services:
      api:
        image: registry:5000/swarmml/predictor:latest
        entrypoint: python -m swarmml_model_service
        command: ["--unused"]
        environment: [B=2, A=1, EMPTY=]
        labels: [tier=api]
        hostname: "{{.Service.Name}}-{{.Task.Slot}}"
        user: "10001"
        working_dir: /app
        read_only: true
        init: true
        tty: true
        stdin_open: true
        stop_grace_period: 1m30s
        stop_signal: SIGINT
        cap_add: [net_admin, CAP_SYS_TIME]
        cap_drop: [mknod, sys_time]
        extra_hosts: {db.internal: 10.1.2.3}
        dns: 10.0.0.53
        dns_search: [svc.local]
        sysctls: {net.core.somaxconn: 1024}
        ulimits: {nofile: {soft: 4096, hard: 8192}, nproc: 512}
        logging: {driver: json-file, options: {max-size: 10m}}
        healthcheck: {test: "true", interval: 5s, timeout: 2s, retries: 4, start_period: 7s}
        volumes:
          - data:/var/lib/data:ro,nocopy
          - /etc/hostname:/host-hostname:ro
          - ./here:/here
          - /anonymous
          - {type: tmpfs, target: /scratch, tmpfs: {size: 1048576}}
        ports: ["18180:8080", "18190-18191:9090-9091/udp", {target: 8443, published: 18443, mode: host}]
        networks:
          front: {aliases: [api-alias]}
          back:
        configs: [app_cfg, {source: other_cfg, target: /etc/other.cfg, mode: 0440}]
        secrets: [{source: token, uid: "10001", gid: "10001", mode: 0400}]
        deploy:
          replicas: 0
          endpoint_mode: vip
          labels: {owner: ml-team}
          resources:
            limits: {cpus: "0.5", memory: 256M, pids: 64}
            reservations: {cpus: "0.1", memory: 32M}
          restart_policy: {condition: on-failure, delay: 3s, max_attempts: 4, window: 20s}
          placement:
            constraints: [node.role == worker]
            preferences: [{spread: node.id}]
            max_replicas_per_node: 3
          update_config: {parallelism: 2, delay: 4s, failure_action: rollback, monitor: 15s, max_failure_ratio: 0.1,
                          order: start-first}
          rollback_config: {parallelism: 0, failure_action: continue}
      worker:
        image: registry:5000/swarmml/predictor:latest
        command: sleep infinity
        restart: unless-stopped
        deploy:
          mode: global
          endpoint_mode: dnsrr
          placement: {constraints: [node.labels.swarmml.never == true]}
      job:
        image: registry:5000/swarmml/predictor:latest
        deploy: {mode: replicated-job, replicas: 0}
    networks:
      front: {attachable: true, labels: {purpose: front}}
      back: {internal: true, driver_opts: {encrypted: ""}}
    volumes:
      data: {labels: {kept: "yes"}}
    configs:
      app_cfg: {file: ./app.cfg}
      other_cfg: {file: ./app.cfg, labels: {k: v}}
    secrets:
      token: {file: ./token}
"""


def test_a_stack_the_docker_cli_made_differs_only_by_hashed_names(cluster, tmp_path):
    f, name = tmp_path / "rich.yml", "it-plancli"
    f.write_text(textwrap.dedent(RICH))
    (tmp_path / "app.cfg").write_text("a = 1\n")
    (tmp_path / "token").write_text("s3cret")
    done = subprocess.run(["docker", "stack", "deploy", "-c", str(f), name], env=cluster.env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    try:
        current, names = swarm.stack_objects(cluster.client, name), networks.network_names(cluster.client)
        desired = convert(load([str(f)], name=name, environ={}))
        the_plan = plan(desired, current, names)
        services = {a.name: a for a in the_plan.actions if a.kind == "service"}
        assert set(services) == set(current["services"]) == {f"{name}_api", f"{name}_worker", f"{name}_job"}
        for a in services.values():
            for path, old, new in a.changes:
                # The deliberate difference: content-hashed secret and config names, docker/cli's name plus a hash.
                assert path.endswith(("SecretName", "ConfigName")) and logical_name(new) == old, (a.name, path)
        assert len(services[f"{name}_api"].changes) == 3
        assert {a.action for a in the_plan.actions if a.kind == "network"} == {"unchanged"}
    finally:
        deploy.remove_stack(cluster.client, name)
