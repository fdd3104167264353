"""verify's report files: JSON, Markdown and the scaling plot. No daemon."""
import json
import os

from swarmml.verify import curve, report


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
    assert ("PASS" in md and "| 6 | 253.4 |" in md
            and "| 0.90 | 0.8 | - | 0.250 | 0.050 | 0.020 | 1.80 | replicas |" in md)
    assert "**1 of 3000 requests failed**" in md and "node1:3 node3:3 -> node1:2 node2:2 node3:2" in md
    assert (tmp_path / "out" / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    failed = report.markdown(_report(ok=False))
    assert "**FAIL**" in failed and "- E(6) = 0.70 < 0.8" in failed
    no_curve = {**_report(), "steps": []}
    assert [os.path.basename(p) for p in report.write(no_curve, str(tmp_path / "checks-only"))] == \
        ["report.json", "report.md"]
