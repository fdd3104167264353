"""The predictor image on the real engine: non-root, read-only root filesystem, healthcheck, replica header."""
import time

import pytest
import requests

from model_service_helpers import infer_body

pytestmark = pytest.mark.integration


def test_image_runs_read_only_as_non_root_and_turns_healthy(host_engine, pushed_images):
    image = host_engine.images.get("swarmml/predictor:latest")
    assert image.attrs["Config"]["User"] not in ("", "0", "root")
    assert image.attrs["Config"]["Healthcheck"]["Test"][0] == "CMD"
    started = time.monotonic()
    c = host_engine.containers.run("swarmml/predictor:latest", detach=True, read_only=True,
                                   ports={"8080/tcp": ("127.0.0.1", None)}, labels={"io.swarmml.test": "1"})
    try:
        c.reload()
        port = c.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}"
        ready_s = None
        while time.monotonic() - started < 60:
            try:
                if requests.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                    ready_s = time.monotonic() - started
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        assert ready_s is not None, c.logs()[-2000:]
        print(f"ready {ready_s:.2f} s after docker run")
        r = requests.post(url + "/v2/models/iris-rf/infer", json=infer_body(), timeout=5)
        assert r.status_code == 200 and r.headers["x-replica"] == c.attrs["Config"]["Hostname"]
        assert c.exec_run("id -u").output.strip() != b"0"
        assert c.exec_run("touch /app/x").exit_code != 0  # read-only root filesystem
        while time.monotonic() - started < 60:
            c.reload()
            if c.attrs["State"]["Health"]["Status"] == "healthy":
                break
            time.sleep(0.5)
        assert c.attrs["State"]["Health"]["Status"] == "healthy"
        c.stop(timeout=10)
        c.reload()
        assert c.attrs["State"]["ExitCode"] in (0, 143)  # drained and stopped on SIGTERM, not killed
    finally:
        c.remove(force=True)
