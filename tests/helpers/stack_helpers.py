"""Deploying the project's stack in integration tests, under a name and port of the test's own."""
import paths
import json
import os
import subprocess
import sys
import time

import requests
from click.testing import CliRunner

from swarmml.cli import cli
from swarmml.stack.model import Healthcheck, RestartPolicy, Stack, UpdateConfig, UpdatePolicy

ROOT = paths.ROOT
STACK_FILE = os.path.join(ROOT, "docker-stack.yml")
ROW = [5.1, 3.5, 1.4, 0.2]
BODY = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]})


def swarmml(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "swarmml", *args], capture_output=True, text=True, env=env,
                          cwd=cwd)


def environ(port, **extra):
    """The gateway on `port`, Prometheus on port + 1000: host-mode ports of two stacks must not meet."""
    env = dict(os.environ, GATEWAY_PORT=str(port), PROMETHEUS_PORT=str(port + 1000))
    return dict(env, **{k: str(v) for k, v in extra.items()})


def wait_answering(url, replicas=1, timeout=60):
    """Until the gateway answers from `replicas` distinct replicas (it needs a moment to find new ones)."""
    seen = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = requests.post(url + "/v2/models/iris-rf/infer", data=BODY, timeout=5)
            if r.status_code == 200:
                seen.add(r.headers.get("x-replica"))
                if len(seen) >= replicas:
                    return seen
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"gateway at {url} answered from {len(seen)} of {replicas} replicas within {timeout} s")


def deployed_ml_stack(client, stack, port):
    """The project's stack under the test's own name and gateway port, answering from 2 replicas; yields
    the gateway's URL and removes the stack after (for module-scoped fixtures)."""
    from swarmml.ops import deploy, services
    deploy.deploy([STACK_FILE], name=stack, environ=environ(port), client=client, show_progress=False,
                  timeout=240)
    url = services.url(client, "gateway", stack)
    wait_answering(url, replicas=2)
    yield url
    deploy.remove_stack(client, stack)


def one_line_error(done, *needles):
    """A CLI run that failed as a user mistake must: non-zero, one line, no traceback, naming each needle."""
    assert done.returncode != 0, done.stdout
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for n in needles:
        assert n in done.stderr, done.stderr
    return done.stderr.strip()


def full_stack(tmp_path) -> str:
    """full.yml in tmp_path: every setting of the Python stack API once (and the secret's token.txt)."""
    s = Stack("full")
    s.network("net", labels={"a": 1}, driver_opts={"encrypted": ""})
    s.secret("token", file="token.txt")
    s.config("cfg", external=True)
    s.volume("cache", labels={"keep": "yes"})
    (tmp_path / "token.txt").write_text("t")
    s.service("api", image="example.org/api:1", mode="replicated", replicas=0, command=["serve"],
              entrypoint=["python", "-m", "api"], environment={"N": 1}, user="1000", working_dir="/srv",
              hostname="api", init=True, cap_add=["NET_ADMIN"], cap_drop=["MKNOD"], extra_hosts=["db:10.0.0.2"],
              logging={"driver": "json-file", "options": {"max-size": "1m"}}, labels={"tier": "api"},
              deploy_labels={"team": "ml"}, networks=["net"], volumes=["cache:/cache"],
              secrets=[("token", "api-token")], configs=[{"source": "cfg", "target": "/etc/cfg", "mode": 0o440}],
              cpus=0.5, memory="256M", cpus_reserved=0.1, memory_reserved="64M",
              constraints=["node.role == worker"], spread=["node.labels.zone"], max_replicas_per_node=2,
              restart=RestartPolicy("on-failure", delay="1s", max_attempts=3, window="10s"),
              update=UpdateConfig(2, delay="2s", order="start-first", failure_action="rollback", monitor="5s",
                                  max_failure_ratio=0.2),
              rollback=UpdatePolicy(1, order="stop-first", failure_action="pause"),
              healthcheck=Healthcheck("curl -f localhost"), stop_grace_period="20s", read_only=True)
    s.service("agent", "example.org/agent:1", mode="global", replicas=None)
    path = tmp_path / "full.yml"
    path.write_text(s.to_yaml())
    return str(path)


# Each stack the project ships, with the files its header deploys it with: an override file goes with its base.
DEPLOYMENTS = {
    "ml": ["docker-stack.yml"],
    "upstream": ["docker-stack.yml", "stacks/prometheus-upstream.yml"],
    "autoscale": ["docker-stack.yml", "stacks/autoscale.yml", "stacks/autoscaler-service.yml"],
    "mesh": ["stacks/ingress-mesh.yml"],
    "models": ["stacks/two-models.yml"],
    "canary": ["stacks/canary.yml"],
    "fidelity": ["stacks/fidelity.yml"],
}


def paths(files):
    return [os.path.join(ROOT, f) for f in files]


def generated_files(directory, *options):
    """`swarmml generate` with its defaults, and with every image given."""
    made = []
    for i, args in enumerate((list(options), ["--registry", "registry.example.com/team", "--tag", "2",
                                              "--prometheus-image", "prom/prometheus:v2.53.0", *options])):
        out = os.path.join(directory, f"generated-{i}.yml")
        done = CliRunner().invoke(cli, ["generate", "-o", out, *args])
        assert done.exit_code == 0, done.output
        made.append(out)
    return made
