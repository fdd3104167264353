"""The service's own lines on stderr (what `swarmml logs` shows): startup, ready, errors, drain.

The formatter and the repeat limiter are checked alone; the rest runs the real
server process, as in its container, and reads what it wrote.
"""
import io
import json
import logging
import re
import shutil
import signal
import socket
import time

import pytest
import requests

from model_service_helpers import Server, infer_body
from pipelines import write_pipeline_model
from swarmml_model_service import service_log
from swarmml_model_service.train import train

LINE = re.compile(r"level=(debug|info|warning|error|critical) event=\S+( \w+=(\"([^\"\\]|\\.)*\"|\S+))*")
PAIR = re.compile(r"(\w+)=(\"(?:[^\"\\]|\\.)*\"|\S+)")


def parse(line):
    """A logfmt line -> {key: value}, quoted values decoded."""
    assert LINE.fullmatch(line), f"not a logfmt line: {line!r}"
    return {k: json.loads(v) if v.startswith('"') else v for k, v in PAIR.findall(line)}


def events(output, name=None):
    """Every line of the output parsed (each must be a logfmt line); only those of event `name` if given."""
    parsed = [parse(line) for line in output.splitlines() if line]
    return [e for e in parsed if name is None or e["event"] == name]


def stopped_output(server):
    """SIGTERM, wait for the exit, and what the process wrote."""
    server.terminate()
    return server.proc.stdout.read().decode()


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    train(str(out), version="7")
    return out


# --- the format and the limiter, alone ---------------------------------------------------------------------

def test_values_with_spaces_quotes_or_newlines_are_json_strings_on_one_line():
    stream = io.StringIO()
    logger = logging.getLogger("test-model-service-logging")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(service_log.LogfmtFormatter())
    logger.addHandler(handler)
    try:
        logger.error("e", extra={"fields": {"model": "iris-rf", "reason": 'a "b"\nc=d', "empty": "", "skip": None}})
        logger.warning("Invalid HTTP request received.")
    finally:
        logger.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert first == r'level=error event=e model=iris-rf reason="a \"b\"\nc=d" empty=""'
    assert parse(first)["reason"] == 'a "b"\nc=d'
    assert second == 'level=warning event=test-model-service-logging msg="Invalid HTTP request received."'


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_repeats_log_a_kind_once_per_window_with_the_count_it_stands_for(caplog):
    clock = Clock()
    repeats = service_log.Repeats("infer-failed", every_s=60, clock=clock)
    caplog.set_level(logging.INFO, logger="swarmml_model_service")

    def lines():
        return [(r.fields["model"], r.fields["reason"], r.fields["count"]) for r in caplog.records]

    for i in range(5):
        repeats.report(("a", "ValueError"), model="a", reason=f"bad {i}")
        clock.t += 1
    repeats.report(("b", "KeyError"), model="b", reason="other kind")
    assert lines() == [("a", "bad 0", 1), ("b", "other kind", 1)]
    repeats.flush()
    assert len(caplog.records) == 2, "a flush within the window logs nothing"
    clock.t += 60
    repeats.flush()
    assert lines()[2:] == [("a", "bad 4", 4)], "the timer's flush says how many it stands for"
    repeats.report(("a", "ValueError"), model="a", reason="bad 5")
    repeats.flush(force=True)
    assert lines()[3:] == [("a", "bad 5", 1)], "the drain's flush logs what is left"
    clock.t += 61
    repeats.report(("a", "ValueError"), model="a", reason="bad 6")
    assert lines()[4:] == [("a", "bad 6", 1)], "after a quiet window the next failure is logged at once"


# --- the real server ---------------------------------------------------------------------------------------

def test_startup_says_what_each_model_is_and_ready_names_the_port(models_dir):
    import sklearn
    s = Server(models_dir, SWARMML_BATCHING="auto").wait_ready()
    for _ in range(3):
        assert requests.post(s.url + "/v2/models/iris-rf/infer", json=infer_body()).status_code == 200
    out = stopped_output(s)
    loaded = {e["model"]: e for e in events(out, "model-loaded")}
    assert loaded["iris-rf"] == {"level": "info", "event": "model-loaded", "model": "iris-rf", "version": "7",
                                 "sklearn": sklearn.__version__, "batching": "on", "inputs": "4", "outputs": "2",
                                 "file": str(models_dir / "iris-rf" / "model.skops")}
    assert loaded["iris-logreg"]["outputs"] == "3"  # predict, predict_proba, decision_function
    [ready] = events(out, "ready")
    assert ready == {"level": "info", "event": "ready", "port": str(s.port), "health_port": str(s.health_port),
                     "models": "2"}
    # No access log: the requests above left no line of their own (events() also checked every line's shape).
    assert "/v2/models" not in out and "HTTP/1.1" not in out


@pytest.mark.parametrize("damage,file,reason", [
    (lambda d: (d / "model.skops.sha256").write_text("0" * 64 + "  model.skops\n"), "model.skops",
     r"sha256 is [0-9a-f]{12}…, model.skops.sha256 says 000000000000…"),
    (lambda d: (d / "meta.json").write_text("{not json"), "meta.json", r"JSONDecodeError: .*"),
])
def test_a_model_that_fails_to_load_gives_one_line_naming_its_file_and_why(models_dir, tmp_path, damage, file,
                                                                           reason):
    shutil.copytree(models_dir, tmp_path, dirs_exist_ok=True)
    damage(tmp_path / "iris-rf")
    s = Server(tmp_path)
    assert s.proc.wait(timeout=60) == 3, "the service still refuses to start with a broken model"
    out = s.proc.stdout.read().decode()
    [failed] = events(out, "model-load-failed")
    assert (failed["level"], failed["model"], failed["file"]) == ("error", "iris-rf", str(tmp_path / "iris-rf" / file))
    assert re.fullmatch(reason, failed["reason"]), failed["reason"]
    assert [e["model"] for e in events(out, "model-loaded")] == ["iris-logreg"], "the others are still tried"
    assert not events(out, "ready")


# One iris flower as the pipeline's columns (tests/helpers/pipelines.py): name -> (datatype, value).
FLOWER = {"sepal_length": ("FP64", 5.1), "sepal_width": ("FP64", 3.5), "petal_length": ("FP64", 1.4),
          "petal_width_mm": ("INT64", 2), "size": ("BYTES", "low"), "wide_sepal": ("BOOL", True)}


def flower_body(**values):
    return {"inputs": [{"name": name, "shape": [1], "datatype": datatype, "data": [values.get(name, value)]}
                       for name, (datatype, value) in FLOWER.items()]}


def test_a_repeated_serving_error_is_logged_once_not_per_request(tmp_path):
    write_pipeline_model(tmp_path, "iris-pipeline")
    s = Server(tmp_path).wait_ready()
    assert requests.post(s.url + "/v2/models/iris-pipeline/infer", json=flower_body()).status_code == 200
    for i in range(20):  # 20 failures of one kind (a category the encoder never saw), each with its own message
        r = requests.post(s.url + "/v2/models/iris-pipeline/infer", json=flower_body(size=f"huge-{i}"))
        assert r.status_code == 500, r.text
    out = stopped_output(s)
    first, last = events(out, "infer-failed")  # one line at once; the drain's says how many more there were
    assert (first["level"], first["model"], first["version"], first["status"], first["error"], first["count"]) == (
        "error", "iris-pipeline", "1", "500", "ValueError", "1")
    assert "huge-0" in first["reason"]
    assert (last["count"], "huge-19" in last["reason"]) == ("19", True)


def in_flight(server):
    text = requests.get(server.url + "/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("swarmml_infer_in_flight{"))


def test_sigterm_says_how_many_requests_it_drains_then_that_it_stopped(models_dir):
    s = Server(models_dir, SWARMML_DRAIN_TIMEOUT_S=20).wait_ready()
    # A request whose headers the server has read, its body's last byte still to come: in flight at SIGTERM.
    body = json.dumps(infer_body()).encode()
    head = (f"POST /v2/models/iris-rf/infer HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    conn = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    conn.sendall(head + body[:-1])
    deadline = time.monotonic() + 30
    while in_flight(s) < 1:
        assert time.monotonic() < deadline, "the request was never in flight"
        time.sleep(0.05)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    conn.sendall(body[-1:])
    assert conn.recv(64).startswith(b"HTTP/1.1 200")
    conn.close()
    assert s.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    out = s.proc.stdout.read().decode()
    [draining] = events(out, "draining")
    assert draining == {"level": "info", "event": "draining", "signal": "SIGTERM", "in_flight": "1",
                        "timeout_s": "20"}
    [stopped] = events(out, "stopped")
    assert float(stopped["drain_s"]) >= 0.2
    assert out.splitlines()[-1].startswith("level=info event=stopped "), "stopped is the last line"
