"""verify's checks, efficiency, report files; the load generator against a real local HTTP server."""
import asyncio
import json
import threading

import pytest

from swarmml import loadgen
from swarmml.placement import ServicePlacement
from swarmml.verify import checks, curve, report


def test_efficiency_and_curve_check():
    steps = curve.efficiencies([
        {"replicas": 1, "requests_per_s": 50.0, "errors": 0},
        {"replicas": 2, "requests_per_s": 95.0, "errors": 0},
        {"replicas": 4, "requests_per_s": 150.0, "errors": 2},
    ])
    assert [s["efficiency"] for s in steps] == [1.0, 0.95, 0.75]
    ok, problems = curve.curve_check(steps, 0.8)
    assert not ok and problems == ["E(4) = 0.75 < 0.8", "2 failed requests at 4 replicas"]
    assert curve.curve_check(steps[:2], 0.8) == (True, [])


def test_placement_check_spread_and_explanations():
    good = ServicePlacement("p", 6, 6, {"node1": 2, "node2": 2, "node3": 2})
    assert checks.placement_check(good, ["node1", "node2", "node3"]).ok
    lopsided = ServicePlacement("p", 6, 6, {"node1": 4, "node2": 2})
    c = checks.placement_check(lopsided, ["node1", "node2", "node3"], constraints=["node.role==worker"])
    assert not c.ok and "replicas on 2 nodes, 3 possible" in c.detail and "node.role==worker" in c.detail
    few = ServicePlacement("p", 2, 2, {"node1": 1, "node3": 1})
    assert checks.placement_check(few, ["node1", "node2", "node3"]).ok
    missing = ServicePlacement("p", 3, 2, {"node1": 1, "node2": 1}, pending=["p.3 pending: no suitable node"])
    assert "2 of 3 replicas running" in checks.placement_check(missing, ["node1", "node2"]).detail


def test_answer_and_golden_checks():
    assert checks.answer_check({"aaaaaaaaaaaa", "bbbbbbbbbbbb"}, ["aaaaaaaaaaaa1234", "bbbbbbbbbbbb5678"]).ok
    miss = checks.answer_check({"aaaaaaaaaaaa"}, ["aaaaaaaaaaaa1234", "bbbbbbbbbbbb5678"])
    assert not miss.ok and "bbbbbbbbbbbb" in miss.detail
    same = json.dumps({"outputs": [{"name": "predict", "data": [0, 1]}]}).encode()
    other = json.dumps({"outputs": [{"name": "predict", "data": [0, 2]}]}).encode()
    assert checks.golden_check({"a": same, "b": same}, 2).ok
    assert "disagree" in checks.golden_check({"a": same, "b": other}, 2).detail
    assert not checks.golden_check({"a": same}, 2).ok


def _report():
    steps = curve.efficiencies([{"replicas": n, "requests_per_s": 48.0 * n * (1 - 0.02 * n), "p50_ms": 10.0,
                                 "p95_ms": 20.0, "p99_ms": 30.0 + n, "errors": 0} for n in (1, 2, 4, 6)])
    return {"service": "ml_predictor", "ok": True, "cluster": {"nodes": 3},
            "settings": {"cpus": 0.25, "model": "iris-rf", "batching": "off"},
            "checks": [checks.answer_check({"a" * 12}, ["a" * 12]).to_dict()], "steps": steps, "problems": []}


def test_report_files(tmp_path):
    paths = report.write(_report(), str(tmp_path / "out"))
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == ["report.json", "report.md", "scaling.png"]
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [s["replicas"] for s in data["steps"]] == [1, 2, 4, 6]
    for key in ("replicas", "requests_per_s", "p50_ms", "p99_ms", "errors", "efficiency"):
        assert key in data["steps"][0]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| 6 |" in md and "PASS" in md
    assert (tmp_path / "out" / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
