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


def swarmml(*args, env=None):
    return subprocess.run([sys.executable, "-m", "swarmml", *args], capture_output=True, text=True, env=env)


def environ(port, **extra):
    return dict(os.environ, GATEWAY_PORT=str(port), **{k: str(v) for k, v in extra.items()})


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
