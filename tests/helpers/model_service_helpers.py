"""Running the real model server on the host for tests: trained models, a free port, a subprocess."""
import os
import signal
import socket
import subprocess
import sys
import time

import requests

from swarmml.build import context as predictor_image

# The operator's list as the image gets it (package data), for the server run on the host.
TRUSTED_TYPES_FILE = str(predictor_image.DATA / "trusted-types.txt")

ROW = [5.1, 3.5, 1.4, 0.2]


def infer_body(rows=None, **extra):
    rows = rows or [ROW]
    body = {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]}
    body.update(extra)
    return body


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The server as a child process, as in its container (python -m swarmml_model_service)."""

    def __init__(self, models_dir, **env):
        self.port = free_port()
        self.health_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.health_url = f"http://127.0.0.1:{self.health_port}"
        environ = dict(os.environ, SWARMML_MODELS_DIR=str(models_dir), SWARMML_PORT=str(self.port),
                       SWARMML_HEALTH_PORT=str(self.health_port),
                       SWARMML_HOST="127.0.0.1", SWARMML_TRUSTED_TYPES_FILE=TRUSTED_TYPES_FILE)
        environ.update({k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen([sys.executable, "-m", "swarmml_model_service"], env=environ,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.proc.stdout.read().decode()[-2000:]}")
            try:
                if requests.get(self.url + "/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server not ready in time")

    def terminate(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
