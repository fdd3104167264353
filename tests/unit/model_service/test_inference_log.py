"""The inference log: its pure parts, and the real server writing it through load, rotation and a SIGTERM drain."""
import concurrent.futures
import json
import os
import random
import signal
import socket
import time

import pytest
import requests

from model_service_helpers import ROW, Server, infer_body
from swarmml_model_service import inference_log as il
from swarmml_model_service.train import train


def test_each_replica_writes_its_own_file():
    assert il.replica_path("/var/log/swarmml/inference.jsonl", "3f2a") == "/var/log/swarmml/inference.3f2a.jsonl"
    assert il.replica_path("/logs/inference", "r1") == "/logs/inference.r1"
    assert il.replica_path("/logs/.hidden", "r1") == "/logs/.hidden.r1"


def test_rotation_renames_oldest_first_and_keeps_keep_files():
    assert il.rotation_moves("f", 3) == [("f.2", "f.3"), ("f.1", "f.2"), ("f", "f.1")]
    assert il.rotation_moves("f", 1) == [("f", "f.1")]
    assert il.rotation_moves("f", 0) == []
    # only the rotated files there are move: a big keep costs nothing
    assert il.rotation_moves("f", 1000, present=1) == [("f.1", "f.2"), ("f", "f.1")]
    assert il.rotation_moves("f", 3, present=7) == [("f.2", "f.3"), ("f.1", "f.2"), ("f", "f.1")]


@pytest.mark.parametrize("size,incoming,limit,rotate", [
    (0, 10, 5, False),  # a chunk bigger than the limit goes whole into an empty file
    (5, 5, 10, False),
    (6, 5, 10, True),
    (10, 1, 10, True),
])
def test_rotate_only_when_the_chunk_would_pass_the_limit(size, incoming, limit, rotate):
    assert il.should_rotate(size, incoming, limit) is rotate


def test_a_batch_is_cut_where_each_file_would_pass_the_limit():
    assert il.split_for_rotation([4, 4, 4], 0, 10) == [2]
    assert il.split_for_rotation([4, 4, 4], 8, 10) == [0, 2]
    assert il.split_for_rotation([20, 1], 0, 10) == [1]
    assert il.split_for_rotation([], 50, 10) == []


def test_sampling_is_the_fraction_of_draws():
    assert not il.sampled(0.0, 0.0) and il.sampled(1.0, 0.999999)
    rng = random.Random(16)
    hits = sum(il.sampled(0.1, rng.random()) for _ in range(20000))
    assert 1800 < hits < 2200


def test_record_shape_with_and_without_a_sample():
    entry = (1764633600.25, None, 7, "iris-rf", "2", 0.0123456, 200, None)
    assert il.record(entry, "abc") == {"id": "abc-7", "time": "2025-12-02T00:00:00.250000Z", "model": "iris-rf",
                                       "version": "2", "replica": "abc", "latency_ms": 12.346, "status": 200}
    body = json.dumps(infer_body(id="req-1")).encode()
    sample = (body, b'{"model_name":"iris-rf","outputs":[{"name":"predict","data":[0]}]}')
    rec = il.record((1.0, "req-1", 8, "iris-rf", "2", 0.001, 200, sample), "abc")
    assert rec["id"] == "req-1"
    assert rec["inputs"][0]["data"] == [ROW] and rec["outputs"] == [{"name": "predict", "data": [0]}]
    bad = il.record((1.0, None, 9, "iris-rf", "2", 0.001, 400, (b"{not json", None)), "abc")
    assert bad["inputs"] is None and "outputs" not in bad


def test_sample_out_of_range_is_refused(tmp_path):
    with pytest.raises(ValueError, match="SAMPLE"):
        il.InferenceLog(str(tmp_path / "i.jsonl"), "r", sample=1.5)


def test_a_partial_last_line_is_ended_before_new_lines(tmp_path):
    path = tmp_path / "i.r.jsonl"
    path.write_bytes(b'{"id": "whole"}\n{"id": "tor')
    log = il.InferenceLog(str(tmp_path / "i.jsonl"), "r")
    log.put("next", "m", "1", 0.001, 200)
    log.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[1] == b'{"id": "tor' and json.loads(lines[2])["id"] == "next"


def test_close_writes_everything_queued_and_rotation_keeps_every_line(tmp_path):
    log = il.InferenceLog(str(tmp_path / "i.jsonl"), "r", max_bytes=4000, keep=1000)
    for i in range(3000):
        log.put(f"id-{i}", "m", "1", 0.001, 200)
    log.close()
    files = sorted(os.listdir(tmp_path))
    assert len(files) > 10, files  # it did rotate
    ids = [json.loads(line)["id"] for f in files for line in (tmp_path / f).read_text().splitlines()]
    assert sorted(ids) == sorted(f"id-{i}" for i in range(3000))
    assert all((tmp_path / f).stat().st_size <= 4000 for f in files)


def test_a_batch_that_finds_the_file_full_starts_a_new_one(tmp_path):
    # The writer's batches are whatever queued meanwhile: one can start right at a rotation.
    (tmp_path / "i.r.jsonl").write_bytes(b"x" * 999 + b"\n")
    log = il.InferenceLog(str(tmp_path / "i.jsonl"), "r", max_bytes=1000, keep=5)
    log.put("after", "m", "1", 0.001, 200)
    log.close()
    assert (tmp_path / "i.r.jsonl.1").stat().st_size == 1000
    assert json.loads((tmp_path / "i.r.jsonl").read_text())["id"] == "after"


def test_rotation_drops_the_oldest_past_keep(tmp_path):
    log = il.InferenceLog(str(tmp_path / "i.jsonl"), "r", max_bytes=500, keep=2)
    for i in range(200):
        log.put(f"id-{i}", "m", "1", 0.001, 200)
    log.close()
    assert sorted(os.listdir(tmp_path)) == ["i.r.jsonl", "i.r.jsonl.1", "i.r.jsonl.2"]
    newest = [json.loads(x)["id"] for x in (tmp_path / "i.r.jsonl").read_text().splitlines()]
    assert newest[-1] == "id-199"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    train(str(out), version="7")
    return out


def read_log(directory):
    """Every line of every file in directory, each parsed (a torn line fails the test here)."""
    return [json.loads(line) for f in sorted(os.listdir(directory))
            for line in (directory / f).read_text().splitlines()]


def test_server_logs_each_request_with_sampled_bodies(models_dir, tmp_path):
    s = Server(models_dir, SWARMML_INFERENCE_LOG=str(tmp_path / "inference.jsonl"),
               SWARMML_INFERENCE_LOG_SAMPLE="1").wait_ready()
    try:
        assert requests.post(s.url + "/v2/models/iris-rf/infer", json=infer_body(id="a1"), timeout=10).ok
        assert requests.post(s.url + "/v2/models/iris-logreg/infer", json={"id": "b1", "inputs": []},
                             timeout=10).status_code == 400
        assert requests.post(s.url + "/v2/models/iris-logreg/infer", json={"id": 7, "inputs": []},
                             timeout=10).status_code == 400
    finally:
        s.terminate()
    ok, bad, bad_id = read_log(tmp_path)
    assert (ok["id"], ok["model"], ok["version"], ok["status"]) == ("a1", "iris-rf", "7", 200)
    assert ok["inputs"][0]["data"] == [ROW] and ok["outputs"][0]["data"] == [0]
    assert ok["latency_ms"] > 0 and ok["time"].endswith("Z") and ok["replica"] == socket.gethostname()
    assert (bad["id"], bad["model"], bad["status"], bad["inputs"]) == ("b1", "iris-logreg", 400, [])
    assert bad_id["id"].startswith(socket.gethostname() + "-")  # not a string: the replica names it
    assert "outputs" not in bad


def test_no_line_lost_or_torn_across_a_sigterm_drain(models_dir, tmp_path):
    # Small files: the drain also crosses rotations. Requests keep coming while SIGTERM arrives; every one
    # that got a 200 has exactly one line, and every line parses.
    s = Server(models_dir, SWARMML_INFERENCE_LOG=str(tmp_path / "inference.jsonl"),
               SWARMML_INFERENCE_LOG_SAMPLE="0.5", SWARMML_INFERENCE_LOG_MAX_BYTES="8000",
               SWARMML_INFERENCE_LOG_KEEP="100000").wait_ready()
    answered, stop_at = [], time.monotonic() + 60

    def client(n):
        with requests.Session() as http:
            i = 0
            while True:
                rid = f"c{n}-{i}"
                try:
                    r = http.post(s.url + "/v2/models/iris-rf/infer", json=infer_body(id=rid), timeout=30)
                except requests.ConnectionError:
                    return
                if r.status_code == 200:
                    answered.append(rid)
                i += 1
                if time.monotonic() > stop_at:
                    return

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(client, n) for n in range(8)]
        # SIGTERM once enough has been answered to cross several rotations, however slow this machine is
        while len(answered) < 300:
            assert time.monotonic() < stop_at, f"only {len(answered)} answers in 60 s"
            time.sleep(0.05)
        s.proc.send_signal(signal.SIGTERM)
        for j in jobs:
            j.result()
    assert s.terminate() in (0, -signal.SIGTERM)
    lines = read_log(tmp_path)
    # it rotated under load, and no file grew past the limit
    assert len(os.listdir(tmp_path)) > 1 and all((tmp_path / f).stat().st_size <= 8000 for f in os.listdir(tmp_path))
    ok = sorted(r["id"] for r in lines if r["status"] == 200)
    assert ok == sorted(answered)


def test_metrics_off_counts_nothing_and_serves_the_same(models_dir):
    # SWARMML_METRICS=off is the bench's "without": the same answers, no counters.
    s = Server(models_dir, SWARMML_METRICS="off").wait_ready()
    try:
        r = requests.post(s.url + "/v2/models/iris-rf/infer", json=infer_body(), timeout=10)
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [0]
        assert requests.post(s.url + "/v2/models/iris-rf/infer", json={"inputs": []}, timeout=10).status_code == 400
        text = requests.get(s.url + "/metrics", timeout=10).text
    finally:
        s.terminate()
    # the families are declared, but no model's series exists
    assert "swarmml_infer_success_total{" not in text and "swarmml_infer_request_seconds_count{" not in text
