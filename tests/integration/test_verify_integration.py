"""swarmml verify on the real 3-node cluster: the README's main command and its report files, bad input, and
the capacity answer under an SLO. The node-loss drill's report is tested with the drills
(test_node_loss_integration.py); a failed threshold's exit and report over a remote transport
(test_remote_integration.py)."""
import json
import os
import struct

import pytest

from stack_helpers import STACK_FILE, environ, swarmml, wait_answering
from swarmml import ops
from swarmml.ops import deploy, services
from swarmml.verify import loadgen
from swarmml.engine import services as engine_services
from swarmml.verify.run import ONE_ROW, infer_body

pytestmark = pytest.mark.integration
STACK, PORT = "it-verify", 8093
STEP_KEYS = ("replicas", "requests_per_s", "p50_ms", "p95_ms", "p99_ms", "errors", "efficiency")


@pytest.fixture(scope="module")
def stack(cluster, pushed_images):
    deploy.deploy([STACK_FILE], name=STACK, environ=environ(PORT, PREDICTOR_REPLICAS=3), client=cluster.client,
                  show_progress=False, timeout=240)
    wait_answering(services.url(cluster.client, "gateway", STACK), replicas=3)
    # Swarm spreads a new service over the nodes it sees ready, and never moves tasks later: after the
    # drills of earlier modules one node came back late in CI, and got none. verify's checks and its
    # worker drill need one replica per node, which is what rebalance is for.
    moved = ops.rebalance(cluster.client, f"{STACK}_predictor", show=False)
    assert moved.ok, moved.problems
    yield
    deploy.remove_stack(cluster.client, STACK)


def _spec(cluster):
    return engine_services.service(cluster.client, f"{STACK}_predictor")["Spec"]


def test_the_readme_main_command(cluster, stack, tmp_path):
    # The README's main command after `swarmml scale predictor 10`, with its defaults: the whole default curve
    # where the machine's free CPU holds it, and what it left out said. It must pass on this 2-core machine,
    # also with other work beside it (then with fewer steps).
    scaled = swarmml("scale", "predictor", "10", "--stack", STACK, env=cluster.env)
    assert scaled.returncode == 0, scaled.stderr[-2000:]
    try:
        _the_readme_main_command(cluster, tmp_path)
    finally:  # the module's other tests start from 3 replicas, one per node
        assert swarmml("scale", "predictor", "3", "--stack", STACK, env=cluster.env).returncode == 0
        assert ops.rebalance(cluster.client, f"{STACK}_predictor", show=False).ok


def _the_readme_main_command(cluster, tmp_path):
    before = _spec(cluster)
    out = tmp_path / "report"
    done = swarmml("verify", "--stack", STACK, "--report", str(out), env=cluster.env)
    report = json.loads((out / "report.json").read_text())
    print(f"main command: exit {done.returncode}, verdict {report['verdict']}, problems {report['problems']}, "
          f"inconclusive {report['inconclusive']}")
    # Never "does not scale" (exit 1) for what the machine did. Inconclusive (exit 3) is allowed here: CI once
    # measured a lone replica dearer per request than each of two (E(2) = 1.34, suspect), which no fit of the
    # steps can foresee; the README's runs on this machine passed (scripts/results/main-command-*).
    assert done.returncode in (0, 3), (done.stdout + done.stderr)[-3000:]
    assert report["verdict"] == ("pass" if done.returncode == 0 else "inconclusive") and not report["problems"]
    assert report["ok"] == (done.returncode == 0)
    assert ("**PASS**" if report["ok"] else "**INCONCLUSIVE**") in (out / "report.md").read_text()
    checks = {c["name"]: c for c in report["checks"]}
    assert all(c["ok"] for c in checks.values()) and checks["every_replica_answers"]["data"]["seen"] == 10

    st = report["settings"]
    steps = [s["replicas"] for s in report["steps"]]
    assert st["steps_fitted"] and steps == st["steps"] and steps[0] == 1 and len(steps) >= 2
    assert sorted(steps + [s["replicas"] for s in st["left_out"]]) == [1, 2, 4, 6]
    assert all(s["why"].endswith("were busy before the curve") for s in st["left_out"]), st["left_out"]
    assert 0 <= st["free_cpu"]["busy_at_rest"] <= st["free_cpu"]["cores"] == os.cpu_count()
    for s in st["left_out"]:  # printed for the user too, one line each
        assert f"left out {s['replicas']} replicas" in done.stderr
    assert [r["replicas"] for r in report["runs"]] == st["order"]
    for run in report["runs"]:
        assert run["warmup"]["windows"] and run["warmup"]["s"] <= 30 + 10
    for step in report["steps"]:
        assert step["repeats"] >= 2 and len(step["runs_per_s"]) == step["repeats"]
        lo, hi = step["efficiency_interval"]
        assert lo <= step["efficiency"] <= hi and step["cpu_s_per_request"] > 0
        assert step["verdict"] in (("base",) if step["replicas"] == 1 else ("pass", "inconclusive", "suspect"))
        assert all(step[k] is not None for k in STEP_KEYS), step
        assert step["errors"] == 0 and step["requests_per_s"] > 0 and step["replicas_answering"] == step["replicas"]
        assert step["p50_ms"] <= step["p95_ms"] <= step["p99_ms"]
        # the replicas' cgroups are on this machine: their CPU is measured and capped by the curve's limit
        per = step["cpu"]["replicas"]["per_container"]
        assert len(per) == step["replicas"] and all(0 < c <= 0.25 * 1.1 for c in per), per
        assert step["bottleneck"] in ("replicas", "machine", "gateway", "load generator", "offered load")
    # a local cluster: the cores a step left wholly idle were filled, and the machine's busy figure leaves them out
    assert st["fill_idle"] is True
    for run in report["runs"]:
        filled = run["warmup"]["filled_cores"]
        assert 0 <= filled <= (os.cpu_count() or 1) and ("ballast" in run["cpu"]["machine"]) == (filled > 0), run
    assert report["steps"][0]["efficiency"] == 1.0
    print("main command: "
          f"{[(s['replicas'], s['requests_per_s'], s['efficiency'], s['bottleneck']) for s in report['steps']]}; "
          f"left out {[s['replicas'] for s in st['left_out']]}, busy at rest {st['free_cpu']['busy_at_rest']}")

    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "scaling.png"]
    png = (out / "scaling.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 600 and height >= 400
    assert "## Scaling curve" in (out / "report.md").read_text()

    # verify puts back what it changed for the curve
    after = _spec(cluster)
    for key in ("Mode", "UpdateConfig"):
        assert after[key] == before[key], key
    for key in ("Resources", "ContainerSpec"):
        assert after["TaskTemplate"][key] == before["TaskTemplate"][key], key


def test_verify_bad_input_is_one_line_and_changes_nothing(cluster, stack):
    before = _spec(cluster)
    for args in (["verify", "nosuch", "--stack", STACK], ["verify", "predictor", "--stack", STACK, "--steps", "1,x"],
                 ["verify", "predictor", "--stack", STACK, "--model", "no-such-model"],
                 ["verify", "predictor", "--stack", STACK, "--min-efficiency", "2=x"],
                 ["verify", "predictor", "--stack", STACK, "--steps", "0"],
                 ["verify", "predictor", "--stack", STACK, "--steps", "1,2,1"],
                 ["verify", "predictor", "--stack", STACK, "--repeat", "0"],
                 ["verify", "predictor", "--stack", STACK, "--gateway", "nosuch"]):
        done = swarmml(*args, env=cluster.env)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert _spec(cluster) == before


def test_slo_answer_holds_when_deployed(cluster, stack, tmp_path):
    # The capacity answer, then the check that it is one: that many replicas, the load asked about offered
    # open-loop through the gateway, and its p99 within the SLO. The replicas get 0.5 CPU and the service's
    # own batching (auto): at 0.25 CPU a replica's p99 sits at 150-200 ms whatever the rate (it waits out
    # 75 ms of each 100 ms quota period), so a 250 ms bound is within the noise of one window to the next.
    load_per_s, cpus = 200, "0.5"
    done = swarmml("verify", "predictor", "--stack", STACK, "--steps", "1,2", "--repeat", "1", "--duration", "4",
                   "--cpus", cpus, "--batching", "auto", "--min-efficiency", "0", "--slo", "p99=250ms", "--for",
                   f"{load_per_s}/s", "--report", str(tmp_path), "-o", "json", env=cluster.env)
    # The curve's verdict is not what is tested here: a suspect 1-replica base (E(2) = 1.09 in one CI run) makes it
    # inconclusive (3) while the capacity answer, measured open-loop per row, still stands.
    assert done.returncode in (0, 1, 3), done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert "capacity" in report, report["problems"]  # e.g. the curve stopped: a scale the engine could not finish
    cap = report["capacity"]
    assert cap["slo"] == {"percentile": 99.0, "bound_ms": 250.0} and [r["replicas"] for r in cap["rows"]] == [1, 2]
    for row in cap["rows"]:
        rungs = row["rungs"]
        assert [r["offered_per_s"] for r in rungs] == sorted(r["offered_per_s"] for r in rungs)
        if row["sustainable_per_s"]:
            assert row["sustainable_per_s"] in [r["offered_per_s"] for r in rungs]
            assert row["latency_ms"] <= 250
    need = cap["for"]["replicas"]
    assert need is not None and not cap["for"]["extrapolated"], cap["for"]
    assert f"**{load_per_s} requests/s under p99 <= 250 ms: {need} replicas**" in (tmp_path / "report.md").read_text()

    updated = swarmml("update", "predictor", "--stack", STACK, "--replicas", str(need), "--cpus", cpus,
                      "--env", "SWARMML_BATCHING=auto", env=cluster.env)
    assert updated.returncode == 0, updated.stderr[-2000:]
    url = services.url(cluster.client, "gateway", STACK)
    wait_answering(url, replicas=need)
    # The answer is about a steady state, and verify measured it on warm replicas: the same load warms the
    # fresh ones first.
    loadgen.run(f"{url}/v2/models/iris-rf/infer", infer_body([ONE_ROW]), rate=load_per_s, duration=10,
                connections=64)
    r = loadgen.run(f"{url}/v2/models/iris-rf/infer", infer_body([ONE_ROW]), rate=load_per_s, duration=15,
                    connections=64)
    print(f"slo: {need} replicas for {load_per_s}/s; deployed: p99 {r.percentile(99):.0f} ms, {r.errors} errors, "
          f"{r.requests_per_s:.1f} requests/s")
    assert r.requests_per_s >= 0.95 * load_per_s
    assert r.errors == 0 and r.percentile(99) < 250
