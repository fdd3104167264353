"""The real server over real HTTP: every endpoint, errors, metrics, batching, graceful shutdown."""
import concurrent.futures
import json
import select
import signal
import socket
import time

import pytest
import requests

from model_service_helpers import ROW, Server, infer_body
from swarmml_model_service.train import train


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    train(str(out), version="7")
    return out


@pytest.fixture(scope="module")
def server(models_dir):
    s = Server(models_dir, SWARMML_MAX_BODY_BYTES=65536).wait_ready()
    yield s
    s.terminate()


def test_server_and_health_endpoints(server):
    meta = requests.get(server.url + "/v2").json()
    assert meta["name"] == "swarmml-model-service" and meta["models"] == ["iris-logreg", "iris-rf"]
    assert requests.get(server.url + "/v2/health/live").json() == {"live": True}
    assert requests.get(server.url + "/v2/health/ready").json() == {"ready": True}


@pytest.mark.parametrize("prefix", ["/v2/models/iris-rf", "/v2/models/iris-rf/versions/7"])
def test_model_endpoints_with_and_without_version(server, prefix):
    meta = requests.get(server.url + prefix).json()
    assert meta["name"] == "iris-rf" and meta["versions"] == ["7"] and meta["platform"] == "sklearn"
    assert meta["inputs"][0]["shape"] == [-1, 4]
    assert requests.get(server.url + prefix + "/ready").json() == {"name": "iris-rf", "ready": True}
    r = requests.post(server.url + prefix + "/infer", json=infer_body(id="req-1"))
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "req-1" and body["model_name"] == "iris-rf" and body["model_version"] == "7"
    assert body["outputs"] == [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [0]}]
    assert r.headers["x-replica"] == socket.gethostname()


def test_predict_proba_on_request(server):
    r = requests.post(server.url + "/v2/models/iris-logreg/infer",
                      json=infer_body([ROW, [6.7, 3.0, 5.2, 2.3]],
                                      outputs=[{"name": "predict"}, {"name": "predict_proba"}]))
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert outs["predict"]["data"] == [0, 2]
    assert outs["predict_proba"]["shape"] == [2, 3]
    assert abs(sum(outs["predict_proba"]["data"][:3]) - 1) < 1e-9


@pytest.mark.parametrize("path,code", [
    ("/v2/models/nope", 404), ("/v2/models/nope/ready", 404), ("/v2/models/iris-rf/versions/9", 404),
    ("/v2/nothing", 404),
])
def test_unknown_models_and_routes_are_404_json(server, path, code):
    r = requests.get(server.url + path)
    assert r.status_code == code and "error" in r.json()


@pytest.mark.parametrize("data,code,fragment", [
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, NaN, 3, 4]}]}', 400,
     "malformed JSON"),
    (b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 1e999, 3, 4]}]}', 400, None),
    (b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}', 400, "4 features"),
    (b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "STR", "data": [1, 2, 3, 4]}]}', 400, "unknown datatype"),
    (b'{"inputs": []}', 400, "non-empty"),
])
def test_bad_input_is_a_4xx_and_the_server_stays_up(server, data, code, fragment):
    r = requests.post(server.url + "/v2/models/iris-rf/infer", data=data)
    assert r.status_code == code
    if fragment:
        assert fragment in r.json()["error"]
    assert requests.get(server.url + "/v2/health/live").status_code == 200


def test_unknown_model_infer_is_404(server):
    assert requests.post(server.url + "/v2/models/nope/infer", json=infer_body()).status_code == 404


def test_body_over_the_limit_is_413(server):
    rows = [ROW] * 3000  # well over the 64 KiB limit this server was given
    r = requests.post(server.url + "/v2/models/iris-rf/infer", json=infer_body(rows))
    assert r.status_code == 413 and "over the limit" in r.json()["error"]


def test_metrics_count_successes_failures_and_batches(server):
    requests.post(server.url + "/v2/models/iris-logreg/infer", json=infer_body())
    requests.post(server.url + "/v2/models/iris-logreg/infer", data=b"{bad")
    text = requests.get(server.url + "/metrics").text
    assert 'swarmml_infer_success_total{model="iris-logreg",version="7"}' in text
    assert 'swarmml_infer_failure_total{code="400",model="iris-logreg",version="7"}' in text
    for name in ("swarmml_infer_request_seconds_bucket", "swarmml_infer_queue_seconds_bucket",
                 "swarmml_infer_compute_seconds_bucket", "swarmml_infer_batch_rows_bucket", "swarmml_infer_in_flight"):
        assert name in text


def _metric(text, name, model):
    for line in text.splitlines():
        if line.startswith(name) and f'model="{model}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_concurrent_requests_share_predict_calls(models_dir):
    s = Server(models_dir, SWARMML_MAX_BATCH_WAIT_MS=20).wait_ready()
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda i: requests.post(s.url + "/v2/models/iris-rf/infer",
                                                            json=infer_body([ROW] * (1 + i % 3))), range(64)))
        assert all(r.status_code == 200 for r in results)
        # each answer has exactly its own rows
        assert [len(r.json()["outputs"][0]["data"]) for r in results] == [1 + i % 3 for i in range(64)]
        text = requests.get(s.url + "/metrics").text
        calls = _metric(text, "swarmml_infer_batch_rows_count", "iris-rf") - 1  # minus nothing: warm-up is not counted
        rows = _metric(text, "swarmml_infer_batch_rows_sum", "iris-rf")
        assert rows == sum(1 + i % 3 for i in range(64))
        assert calls < 64, f"{calls + 1} predict calls for 64 concurrent requests: no batching happened"
    finally:
        s.terminate()


def test_sigterm_finishes_in_flight_requests(models_dir):
    # Three requests whose headers the server has read, each still missing its body's last byte:
    # in flight for sure when SIGTERM arrives, however slowly this machine runs.
    s = Server(models_dir, SWARMML_BATCHING="off").wait_ready()
    body = json.dumps(infer_body([ROW] * 20000)).encode()
    head = (f"POST /v2/models/iris-rf/infer HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    conns = [socket.create_connection(("127.0.0.1", s.port), timeout=60) for _ in range(3)]
    for c in conns:
        c.sendall(head + body[:-1])
    deadline = time.monotonic() + 30
    while in_flight(s) < 3:
        assert time.monotonic() < deadline, "the server never had the 3 requests in flight"
        time.sleep(0.05)
    assert requests.get(s.health_url + "/v2/health/ready", timeout=5).status_code == 200
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    # Draining: the health port says so at once, so the gateway's check takes the replica out of service.
    r = requests.get(s.health_url + "/v2/health/ready", timeout=5)
    assert (r.status_code, r.json()) == (503, {"ready": False, "draining": True})
    for c in conns:
        c.sendall(body[-1:])
    answers = [read_http_response(c) for c in conns]
    assert [status for status, _ in answers] == [200, 200, 200]
    assert all(len(json.loads(payload)["outputs"][0]["data"]) == 20000 for _, payload in answers)
    # uvicorn drains, then re-raises SIGTERM so the exit status says why it stopped.
    assert s.terminate() in (0, -signal.SIGTERM)


def test_the_health_port_answers_while_the_loop_computes(models_dir):
    # Twelve requests of 20,000 rows keep the loop computing one after the other. A health request on the
    # serving port would wait behind all of them; the health port answers while some are still unanswered.
    s = Server(models_dir, SWARMML_BATCHING="off").wait_ready()
    try:
        body = json.dumps(infer_body([ROW] * 20000)).encode()
        head = (f"POST /v2/models/iris-rf/infer HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        conns = [socket.create_connection(("127.0.0.1", s.port), timeout=60) for _ in range(12)]
        for c in conns:
            c.sendall(head + body)
        r = requests.get(s.health_url + "/v2/health/ready", timeout=30)
        unanswered = len(conns) - len(select.select(conns, [], [], 0)[0])
        assert (r.status_code, r.json()) == (200, {"ready": True})
        assert unanswered > 0, "the health port answered only after the loop had answered every request"
        assert [status for status, _ in (read_http_response(c) for c in conns)] == [200] * len(conns)
        assert requests.get(s.health_url + "/v2/health/live", timeout=5).json() == {"live": True}
    finally:
        s.terminate()


def in_flight(server):
    text = requests.get(server.url + "/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("swarmml_infer_in_flight{"))


def read_http_response(conn):
    """(status, body) of an HTTP/1.1 answer on a connection the server closes after it."""
    chunks = []
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    conn.close()
    head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), payload


def test_not_ready_until_models_load_and_bad_models_fail_startup(tmp_path):
    s = Server(tmp_path / "empty-dir-that-does-not-exist")
    with pytest.raises(RuntimeError, match="does not exist"):
        s.wait_ready(timeout=20)
