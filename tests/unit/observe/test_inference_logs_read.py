"""Reading inference logs back (pure): which files, which records, in which order, how they look."""
import json
import re

import pytest

from swarmml.observe import inference_logs as il
from swarmml.errors import UsageError
from swarmml_model_service.inference_log import replica_path


def service(env):
    return {"Spec": {"Name": "ml_predictor", "TaskTemplate": {"ContainerSpec": {"Env": env}}}}


def test_the_setting_comes_from_the_service_spec():
    assert il.log_setting(service(["A=1", "SWARMML_INFERENCE_LOG=/var/log/swarmml/inference.jsonl"])) == \
        "/var/log/swarmml/inference.jsonl"
    assert il.log_setting(service(["SWARMML_INFERENCE_LOG="])) is None
    assert il.log_setting(service([])) is None


@pytest.mark.parametrize("setting", ["/var/log/swarmml/inference.jsonl", "/logs/requests"])
def test_the_pattern_matches_what_the_model_service_writes(setting):
    # The reader and the writer agree on names: the writer's own function names the file.
    pattern = il.file_pattern(setting)
    written = replica_path(setting, "0123abcd4567").rsplit("/", 1)[1]
    assert pattern.fullmatch(written) and pattern.fullmatch(written + ".3")
    assert not pattern.fullmatch(written + ".tmp") and not pattern.fullmatch("other.0123.jsonl")
    assert il.directory(setting) == setting.rsplit("/", 1)[0]


def line(t, rid, status=200, **more):
    return json.dumps({"id": rid, "time": t, "model": "iris-rf", "version": "1", "replica": "r1",
                       "latency_ms": 1.5, "status": status, **more}).encode()


def test_files_are_parsed_with_their_node_and_junk_counted():
    pattern = il.file_pattern("/l/inference.jsonl")
    files = {"inference.r1.jsonl": line("2026-12-02T06:00:01.000000Z", "b") + b"\n" + b'{"id": "tor\n',
             "inference.r1.jsonl.1": line("2026-12-02T06:00:00.000000Z", "a") + b"\n\n",
             "unrelated.txt": b"not a log\n"}
    parsed = il.parse_files(files, pattern, "node2")
    assert sorted(r["id"] for r in parsed.records) == ["a", "b"] and parsed.bad_lines == 1
    assert {r["node"] for r in parsed.records} == {"node2"}


def test_select_orders_filters_and_tails():
    recs = [json.loads(line(f"2026-12-02T06:00:0{i}.000000Z", f"r{i}", 200 if i % 2 else 500)) for i in (3, 1, 2, 0)]
    assert [r["id"] for r in il.select(recs)] == ["r0", "r1", "r2", "r3"]
    assert [r["id"] for r in il.select(recs, tail=2)] == ["r2", "r3"]
    assert il.select(recs, tail=0) == []
    assert [r["id"] for r in il.select(recs, since="2026-12-02T06:00:02.000000Z")] == ["r2", "r3"]
    assert [r["id"] for r in il.select(recs, status="error")] == ["r0", "r2"]
    assert [r["id"] for r in il.select(recs, status="ok")] == ["r1", "r3"]
    assert [r["id"] for r in il.select(recs, grep=re.compile('"r3"'))] == ["r3"]
    with pytest.raises(UsageError):
        il.select(recs, status="maybe")


def test_render_names_replica_node_model_and_sample():
    rec = dict(json.loads(line("2026-12-02T06:00:00.000000Z", "x1", inputs=[1], outputs=[2])), node="node1")
    assert il.render(rec) == ("2026-12-02T06:00:00.000000Z r1@node1 iris-rf:1 200 1.50ms id=x1 "
                              "inputs=[1] outputs=[2]")
