"""swarmml verify on the real 3-node cluster: checks, a short curve, the node-loss drill, the report files."""
import json

import pytest

from stack_helpers import STACK_FILE, environ, swarmml, wait_answering
from swarmml import deploy, services
from swarmml.engine import swarm as engine

pytestmark = pytest.mark.integration
STACK, PORT = "it-verify", 8093


@pytest.fixture(scope="module")
def stack(cluster, pushed_images):
    deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT, PREDICTOR_REPLICAS=3), client=cluster.client,
                  show_progress=False, timeout=240)
    wait_answering(services.url(cluster.client, "gateway", STACK), replicas=3)
    yield
    deploy.remove_stack(cluster.client, STACK)


def test_verify_reports_checks_curve_and_drill(cluster, stack, tmp_path):
    before = engine.service(cluster.client, f"{STACK}_predictor")["Spec"]
    out = tmp_path / "report"
    # Efficiency targets are a benchmark (scripts/bench_verify.sh); here the report's content is what is tested.
    done = swarmml("verify", "predictor", "--stack", STACK, "--steps", "1,2,3", "--duration", "4",
                   "--min-efficiency", "0", "--drill", "node-loss", "--report", str(out), "-o", "json",
                   env=cluster.env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["ok"] and report["problems"] == []
    assert {c["name"]: c["ok"] for c in report["checks"]} == {
        "placement": True, "every_replica_answers": True, "golden_predictions": True}
    assert [s["replicas"] for s in report["steps"]] == [1, 2, 3]
    for step in report["steps"]:
        for key in ("replicas", "requests_per_s", "p50_ms", "p95_ms", "p99_ms", "errors", "efficiency"):
            assert step[key] is not None, key
        assert step["errors"] == 0 and step["requests_per_s"] > 0
        assert step["replicas_answering"] == step["replicas"]
    assert report["steps"][0]["efficiency"] == 1.0
    drill = report["drill"]
    assert drill["recovery_s"] is not None and drill["requests"] > 0
    print(f"curve: {[(s['replicas'], s['requests_per_s'], s['efficiency']) for s in report['steps']]}; drill: {drill}")
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "scaling.png"]
    assert (out / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Scaling curve" in (out / "report.md").read_text()
    # verify restores what it changed for the curve
    after = engine.service(cluster.client, f"{STACK}_predictor")["Spec"]
    assert after["Mode"] == before["Mode"]
    assert after["TaskTemplate"]["Resources"] == before["TaskTemplate"]["Resources"]
    assert after["TaskTemplate"]["ContainerSpec"]["Env"] == before["TaskTemplate"]["ContainerSpec"]["Env"]
    assert after["UpdateConfig"] == before["UpdateConfig"]


def test_verify_bad_input_is_one_line(cluster, stack):
    for args in (["verify", "nosuch", "--stack", STACK], ["verify", "predictor", "--stack", STACK, "--steps", "1,x"]):
        done = swarmml(*args, env=cluster.env)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
