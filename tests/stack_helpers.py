"""Deploying the project's stack in integration tests, under a name and port of the test's own."""
import json
import os
import subprocess
import sys
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
    from swarmml import deploy, services
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
