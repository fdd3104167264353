"""verify's report files: JSON, Markdown and the scaling plot. No daemon."""
import json
import os

from swarmml.verify import capacity, curve, method, report


def _run(n, i, drift):
    rps = 48.0 * n * (1 - 0.02 * n) * drift
    return {"replicas": n, "requests": int(rps * 10), "requests_per_s": rps, "p50_ms": 10.0, "p95_ms": 20.0,
            "p99_ms": 30.0 + n, "errors": 0, "order": i, "bottleneck": "replicas",
            "bottleneck_detail": "replicas used 0.250 of their 0.25 CPU",
            "warmup": {"s": 6.1 if n == 1 else 4.0, "windows": [40.0, 47.0, 47.5, 47.2], "settled": True},
            "cpu": {"replicas": {"cores": 0.25 * n, "per_container": [0.25] * n}, "gateway": {"cores": 0.05},
                    "load_generator": 0.02, "machine": {"busy": 0.3 * n}}}


def _report(ok=True):
    order = method.order([1, 2, 4, 6], 2)
    runs = [_run(n, i, 1.0 if i < 6 else 1.02) for i, n in enumerate(order)]  # a step in speed at the turn
    steps = curve.with_verdicts(curve.efficiencies(method.combine(runs)), curve.parse_thresholds("2=0.8"))
    return {"service": "ml_predictor", "gateway": "ml_gateway", "ok": ok,
            "cluster": {"nodes": 3, "machine_cores": 2},
            "settings": {"cpus": 0.25, "model": "iris-rf", "batching": "off", "loop": "closed",
                         "connections": "8 per replica", "duration_s": 10, "repeat": 2, "order": order,
                         "warmup": "until 3 windows of 2 s agree within 10% (at most 30 s)"},
            "checks": [{"name": "placement", "ok": True, "detail": "6 replicas on 3 nodes"}], "steps": steps,
            "runs": runs, "noise": method.noise(runs),
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
    # 6 replicas: 253.4 then 258.5 requests/s, against the base's 47.0 then 48.0
    assert ("PASS" in md and "| 6 | 256.0 | 253.4..258.5 | 10.0 | 20.0 | 36.0 | 0 | 5.86 | 0.20 |"
            " 0.90 (0.88..0.92) | 0.90 (0.88..0.92) | 0.8 | pass | 0.250 | 0.050 | 0.020 | 1.80 | replicas |" in md), md
    assert "order 1, 2, 1, 4, 1, 6, 6, 1, 4, 1, 2, 1" in md and "within 10%" in md
    assert "6 replicas 253.4 then 258.5 requests/s (2.0%)" in md
    assert "| 7 | 6 | 258.5 | 36.0 | 5.80 | 4.0 | yes |" in md
    assert "**1 of 3000 requests failed**" in md and "node1:3 node3:3 -> node1:2 node2:2 node3:2" in md
    assert (tmp_path / "out" / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    failed = report.markdown(_report(ok=False))
    assert "**FAIL**" in failed and "- E(6) = 0.70 < 0.8" in failed
    rows = [{"replicas": n, "closed_loop_per_s": 48.0 * n, "sustainable_per_s": 38.4 * n, "latency_ms": 180.0,
             "per_replica_per_s": 38.4, "first_failed_per_s": 43.2 * n, "why": "p99 400 ms > 250 ms",
             "limited_by": "replicas" if n < 4 else "machine", "rungs": []} for n in (1, 2, 4)]
    with_slo = {**_report(), "capacity": capacity.answer(rows, (99.0, 250.0), 120.0)}
    paths = report.write(with_slo, str(tmp_path / "slo"))
    assert [os.path.basename(p) for p in paths] == ["report.json", "report.md", "scaling.png", "capacity.png"]
    md = (tmp_path / "slo" / "report.md").read_text()
    assert "## Capacity under p99 <= 250 ms" in md
    assert "| 4 | 192.0 | 153.6 | 38.4 | 180.0 | 172.8 | p99 400 ms > 250 ms | machine |" in md
    assert "From 4 replicas on, the machine was the limit" in md
    assert "**120 requests/s under p99 <= 250 ms: 4 replicas** (4 replicas sustain 153.6 requests/s >= 120)" in md
    no_curve = {**_report(), "steps": []}
    assert [os.path.basename(p) for p in report.write(no_curve, str(tmp_path / "checks-only"))] == \
        ["report.json", "report.md"]
