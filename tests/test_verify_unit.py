"""verify's curve, CPU accounting, drill bookkeeping and report files: pure, no daemon."""
import json
import os

import pytest

from swarmml.verify import cpu as verify_io
from swarmml.errors import UsageError
from swarmml.loadgen import Record
from swarmml.verify import curve, drill, report, usage


def test_thresholds_plain_or_per_step_count():
    assert curve.parse_thresholds("0.8") == {1: 0.8}
    t = curve.parse_thresholds("6=0.8, 2=0.9,4=0.85")
    assert t == {2: 0.9, 4: 0.85, 6: 0.8}
    assert [curve.threshold_for(n, t) for n in (1, 2, 3, 4, 5, 6, 10)] == [None, 0.9, 0.9, 0.85, 0.85, 0.8, 0.8]
    assert curve.threshold_for(3, curve.parse_thresholds("0.7,2=0.9,3=0.5")) == 0.5
    for bad in ("", "x", "2=", "0=0.9", "2=5"):
        with pytest.raises(UsageError):
            curve.parse_thresholds(bad)


def test_efficiency_and_curve_check():
    steps = curve.efficiencies([
        {"replicas": 1, "requests_per_s": 50.0, "errors": 0},
        {"replicas": 2, "requests_per_s": 95.0, "errors": 0},
        {"replicas": 4, "requests_per_s": 150.0, "errors": 2, "error_kinds": {"http_503": 2}, "bottleneck": "machine"},
        {"replicas": 6, "requests_per_s": 270.0, "errors": 0, "replicas_answering": 5},
    ])
    assert [s["efficiency"] for s in steps] == [1.0, 0.95, 0.75, 0.9]
    ok, problems = curve.curve_check(steps, curve.parse_thresholds("0.8"))
    assert not ok and problems == ["E(4) = 0.75 < 0.8 (limited by machine)", "2 failed requests at 4 replicas (http_503 2)",
                                   "5 of 6 replicas answered during the step"]
    ok, problems = curve.curve_check(steps[:2], curve.parse_thresholds("2=0.96"))
    assert problems == ["E(2) = 0.95 < 0.96"]
    assert curve.curve_check(steps[:2], curve.parse_thresholds("0.9")) == (True, [])
    # starved replicas: E falls, but requests per CPU-second they got hold (the machine, not the service)
    starved = curve.efficiencies([{"replicas": 1, "requests_per_s": 60.0, "cpu": {"replicas": {"cores": 0.25}}},
                                  {"replicas": 6, "requests_per_s": 288.0, "cpu": {"replicas": {"cores": 1.26}}}])
    assert [(s["efficiency"], s["cpu_efficiency"]) for s in starved] == [(1.0, 1.0), (0.8, 0.952)]
    assert steps[0]["cpu_efficiency"] is None
    # a curve not starting at 1 compares per replica with its smallest step
    assert [s["efficiency"] for s in curve.efficiencies([{"replicas": 2, "requests_per_s": 100.0},
                                                         {"replicas": 4, "requests_per_s": 180.0}])] == [1.0, 0.9]


def snap(at, containers, machine, thread_cpu, cores=2):
    return {"at": at, "containers": containers, "machine": machine, "cores": cores, "thread_cpu": thread_cpu}


def test_cpu_rates_and_bottlenecks():
    before = snap(0.0, {"replicas": {"a": (0, 0, 0), "b": (0, 0, 0)}, "gateway": {"g": (0, 0, 0)}}, (0.0, 0.0), 1.0)
    after = snap(10.0, {"replicas": {"a": (int(2.45e9), 99, 100), "b": (int(2.5e9), 100, 100)},
                        "gateway": {"g": (int(0.5e9), 0, 100)}}, (12.0, 20.0), 1.3)
    u = usage.rates(before, after)
    assert u["replicas"] == {"containers": 2, "measured": 2, "cores": 0.495, "per_container": [0.245, 0.25],
                             "throttled": 0.995}
    assert u["gateway"]["cores"] == 0.05 and u["load_generator"] == 0.03
    assert u["machine"] == {"cores": 2, "busy": 1.2, "other": 0.625}
    kind, why = usage.bottleneck(u, 0.25, 0.5)
    assert kind == "replicas" and "0.247 of their 0.25 CPU each" in why

    starved = snap(10.0, {"replicas": {"a": (int(2.0e9), 60, 100), "b": (int(2.1e9), 60, 100)},
                          "gateway": {"g": (int(1e9), 0, 100)}}, (19.6, 20.0), 1.5)
    kind, why = usage.bottleneck(usage.rates(before, starved), 0.25, 0.5)
    assert kind == "machine" and "1.96 of 2 cores busy" in why and "gateway 0.100" in why

    gw = snap(10.0, {"replicas": {"a": (int(1.5e9), 0, 100), "b": (int(1.5e9), 0, 100)},
                     "gateway": {"g": (int(4.8e9), 0, 100)}}, (10.0, 20.0), 1.5)
    assert usage.bottleneck(usage.rates(before, gw), 0.25, 0.5)[0] == "gateway"
    idle = snap(10.0, {"replicas": {"a": (int(1e9), 0, 100), "b": (int(1e9), 0, 100)},
                       "gateway": {"g": (int(0.1e9), 0, 100)}}, (5.0, 20.0), 1.2)
    assert usage.bottleneck(usage.rates(before, idle), 0.25, 0.5)[0] == "offered load"
    remote = snap(10.0, {"replicas": {"a": None, "b": None}, "gateway": {"g": None}}, None, 1.2)
    u = usage.rates(before, remote)
    assert u["replicas"]["cores"] is None and u["machine"]["busy"] is None
    assert usage.bottleneck(u, 0.25)[0] == "unknown"


def test_cpu_snapshot_reads_cgroup_v1_and_v2_files(tmp_path, monkeypatch):
    v1 = tmp_path / "v1"
    (v1 / "cpuacct" / "docker" / "abc").mkdir(parents=True)
    (v1 / "cpu" / "docker" / "abc").mkdir(parents=True)
    (v1 / "cpuacct" / "docker" / "abc" / "cpuacct.usage").write_text("123456789\n")
    (v1 / "cpu" / "docker" / "abc" / "cpu.stat").write_text("nr_periods 40\nnr_throttled 30\nthrottled_time 9\n")
    monkeypatch.setattr(verify_io, "CGROUP", str(v1))
    s = verify_io.cpu_snapshot({"replicas": ["abc", "gone"]})
    assert s["containers"] == {"replicas": {"abc": (123456789, 30, 40), "gone": None}}
    assert s["cores"] == os.cpu_count() and s["machine"][0] <= s["machine"][1] and s["thread_cpu"] > 0
    v2 = tmp_path / "v2"
    (v2 / "system.slice" / "docker-def.scope").mkdir(parents=True)
    (v2 / "system.slice" / "docker-def.scope" / "cpu.stat").write_text("usage_usec 2000\nnr_periods 5\nnr_throttled 1\n")
    monkeypatch.setattr(verify_io, "CGROUP", str(v2))
    assert verify_io.cpu_snapshot({"r": ["def"]})["containers"]["r"]["def"] == (2_000_000, 1, 5)


def _node(nid, role="worker", state="ready"):
    return {"ID": nid, "Description": {"Hostname": f"host-{nid}"}, "Spec": {"Role": role}, "Status": {"State": state}}


def _task(nid, state="running"):
    return {"NodeID": nid, "DesiredState": "running", "Status": {"State": state}}


def test_drill_stops_the_busiest_worker_without_the_gateway():
    nodes = [_node("m", role="manager"), _node("w1"), _node("w2"), _node("w3", state="down")]
    tasks = [_task("m"), _task("m"), _task("m"), _task("w1"), _task("w1"), _task("w2"), _task("w2"), _task("w2"),
             _task("w2", state="starting"), _task("w3")]
    assert drill.choose_victim(tasks, nodes, gateway_nodes={"m"}) == ("w2", "host-w2", 3)
    assert drill.choose_victim(tasks, nodes, gateway_nodes={"w2"}) == ("w1", "host-w1", 2)
    with pytest.raises(Exception, match="no ready worker"):
        drill.choose_victim(tasks, nodes, gateway_nodes={"w1", "w2"})


def test_drill_counts_failures_per_phase():
    records = [Record(t / 10, 5.0, 200, None, "r") for t in range(300)]
    records[105] = Record(10.5, 30.0, 0, "ConnectionResetError", None)
    records[150] = Record(15.0, 30.0, 503, "http_503", None)
    s = drill.summarize(records, t_stop=10.0, t_recovered=20.0, t_return=24.0, t_end=30.0)
    assert s["requests"] == 300 and s["failed"] == 2 and s["failed_pct"] == round(200 / 300, 4)
    assert s["error_kinds"] == {"ConnectionResetError": 1, "http_503": 1} and s["failures_at_s"] == [0.5, 5.0]
    assert s["phases"] == {"before": {"from_s": -10.0, "requests": 100, "failed": 0},
                           "node_lost": {"from_s": 0.0, "requests": 100, "failed": 2},
                           "recovered": {"from_s": 10.0, "requests": 40, "failed": 0},
                           "node_back_and_rebalance": {"from_s": 14.0, "requests": 60, "failed": 0}}
    assert "recovered" not in drill.summarize(records, 10.0, None, 24.0, 30.0)["phases"]


def _report(ok=True):
    steps = curve.efficiencies([{"replicas": n, "requests_per_s": 48.0 * n * (1 - 0.02 * n), "p50_ms": 10.0,
                                 "p95_ms": 20.0, "p99_ms": 30.0 + n, "errors": 0, "threshold": None if n == 1 else 0.8,
                                 "bottleneck": "replicas", "bottleneck_detail": "replicas used 0.250 of their 0.25 CPU",
                                 "cpu": {"replicas": {"per_container": [0.25] * n}, "gateway": {"cores": 0.05},
                                         "load_generator": 0.02, "machine": {"busy": 0.3 * n}}}
                                for n in (1, 2, 4, 6)])
    return {"service": "ml_predictor", "gateway": "ml_gateway", "ok": ok,
            "cluster": {"nodes": 3, "machine_cores": 2},
            "settings": {"cpus": 0.25, "model": "iris-rf", "batching": "off", "loop": "closed",
                         "connections": "8 per replica", "duration_s": 10},
            "checks": [{"name": "placement", "ok": True, "detail": "6 replicas on 3 nodes"}], "steps": steps,
            "drill": {"node": "node2", "replicas_on_node": 2, "desired": 6, "rate": 100.0, "requests": 3000,
                      "failed": 1, "failed_pct": 0.0333, "recovery_s": 17.2, "node_back_after_s": 22.0,
                      "error_kinds": {"http_503": 1}, "failures_at_s": [0.4],
                      "phases": {"node_lost": {"from_s": 0.0, "requests": 1700, "failed": 1}},
                      "rebalance": {"before": {"node1": 3, "node3": 3}, "after": {"node1": 2, "node2": 2, "node3": 2}},
                      "limits": {"max_recovery_s": 30, "max_failed_pct": 0.1}},
            "problems": [] if ok else ["E(6) = 0.70 < 0.8"]}


def test_report_files(tmp_path):
    paths = report.write(_report(), str(tmp_path / "out"))
    assert [os.path.basename(p) for p in paths] == ["report.json", "report.md", "scaling.png"]
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [s["replicas"] for s in data["steps"]] == [1, 2, 4, 6]
    for key in ("replicas", "requests_per_s", "p50_ms", "p99_ms", "errors", "efficiency"):
        assert key in data["steps"][0]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "PASS" in md and "| 6 | 253.4 |" in md and "| 0.90 | 0.8 | - | 0.250 | 0.050 | 0.020 | 1.80 | replicas |" in md
    assert "**1 of 3000 requests failed**" in md and "node1:3 node3:3 -> node1:2 node2:2 node3:2" in md
    assert (tmp_path / "out" / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    failed = report.markdown(_report(ok=False))
    assert "**FAIL**" in failed and "- E(6) = 0.70 < 0.8" in failed
    no_curve = {**_report(), "steps": []}
    assert [os.path.basename(p) for p in report.write(no_curve, str(tmp_path / "checks-only"))] == \
        ["report.json", "report.md"]
