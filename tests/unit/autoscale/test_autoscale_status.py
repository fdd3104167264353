"""`swarmml autoscale status` and `install`, as pure functions of the lease's labels and the engine's JSON."""
import pytest
from click.testing import CliRunner
from ops_helpers import service, spec

from swarmml.autoscale import install, lease, status
from swarmml.build import autoscaler as autoscaler_image
from swarmml.cli import cli
from swarmml.errors import UsageError

P = "io.swarmml.autoscale."
POLICY = {P + "min": "2", P + "max": "6", P + "target-inflight": "2"}


def autoscaled(name="ml_predictor", labels=POLICY, replicas=3):
    s = spec(replicas, name=name)
    s["Labels"].update(labels)
    s["TaskTemplate"]["Networks"] = [{"Target": "net1"}]
    return service(s, sid=name)


def lease_with(decision_reason, at=1000.0):
    st = {"services": {"ml_predictor": {
        "signal": {"inflight": 1.5, "rps": 40.0, "unknown": ["ml_predictor.3"]},
        "decision": {"time": "00:16:40", "action": "hold", "current": 3, "desired": 3, "reason": decision_reason},
        "decisions": [{"time": "00:16:00", "action": "up", "current": 2, "desired": 3, "reason": "scale up to 3"},
                      {"time": "00:16:40", "action": "hold", "current": 3, "desired": 3,
                       "reason": decision_reason}]}}}
    return lease.labels_for("swarmml-autoscaler.1.abc", at, st)


def test_a_running_controller_says_why_each_service_holds():
    r = status.report(lease_with("in down-window until 00:17:40: 2 wanted"), [autoscaled(), service(spec(1, "ml_gw"))],
                      now=1005.0)
    assert r["controller"]["state"] == "running"
    (row,) = r["services"]
    assert row["policy"]["min"] == 2 and row["replicas"] == 3
    assert row["why"] == "in down-window until 00:17:40: 2 wanted"
    (t,) = status.rows(r)
    assert t["min_max"] == "2-6" and t["signal"] == "1.5 in flight, 40 req/s, 1 unknown"
    assert t["last_change"] == "00:16:00 2->3"


def test_without_a_controller_status_says_so():
    r = status.report(None, [autoscaled()], now=0)
    assert r["controller"]["state"] == "absent"
    assert r["services"][0]["why"].startswith("no autoscaler has run on this swarm")
    r = status.report(lease_with("x", at=1000.0), [autoscaled()], now=2000.0)
    assert r["controller"]["state"] == "stopped" and "expired at 00:16:55" in r["services"][0]["why"]


def test_a_bad_policy_on_the_swarm_is_the_reason():
    r = status.report(None, [autoscaled(labels={**POLICY, P + "min": "9"})], now=0)
    assert r["services"][0]["why"].startswith("service ml_predictor: label io.swarmml.autoscale.min: min 9")


def test_status_of_a_service_without_a_policy_is_a_usage_error():
    with pytest.raises(UsageError, match="has no io.swarmml.autoscale"):
        status.report(None, [service(spec(1, "ml_gw"))], now=0, only="ml_gw")


def test_install_spec_runs_one_controller_on_a_manager_with_the_socket():
    s = install.service_spec("registry:5000/swarmml/autoscaler:latest", ["net1", "net1", "net2"])
    tt = s["TaskTemplate"]
    assert tt["Placement"]["Constraints"] == ["node.role==manager"]
    assert tt["ContainerSpec"]["Mounts"] == [{"Type": "bind", "Source": "/var/run/docker.sock",
                                              "Target": "/var/run/docker.sock"}]
    assert tt["Networks"] == [{"Target": "net1"}, {"Target": "net2"}]
    assert s["Mode"] == {"Replicated": {"Replicas": 1}} and s["UpdateConfig"]["Order"] == "stop-first"
    assert install.autoscaled_networks([autoscaled(), service(spec(1, "ml_gw"))]) == ["net1"]


def test_install_context_holds_swarmml_source_and_no_image_recipes(tmp_path, monkeypatch):
    import subprocess

    class Done:
        returncode = 0
        stderr = ""

    monkeypatch.setattr(subprocess, "run", lambda *a, **kw: Done())
    ctx = autoscaler_image.prepare_context(str(tmp_path))
    import os
    assert os.path.exists(os.path.join(ctx, "swarmml", "autoscale", "controller.py"))
    assert not os.path.exists(os.path.join(ctx, "swarmml", "data"))
    with open(os.path.join(ctx, "Dockerfile")) as f:
        assert "swarmml.autoscale.controller" in f.read()


# What the host has and the autoscaler's image does not (it installs autoscaler_image.REQUIREMENTS only).
NOT_IN_THE_IMAGE = ("numpy", "scipy", "sklearn", "joblib", "skops", "pandas", "matplotlib", "swarmml_model_service",
                    "bcrypt", "cryptography", "paramiko")


def test_the_install_context_starts_its_controller_without_what_the_image_lacks(tmp_path, monkeypatch):
    # A controller image whose entry point fails to import crash-loops in the cluster, and nothing else says so.
    import os
    import subprocess
    import sys

    class Done:
        returncode = 0
        stderr = ""

    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **kw: Done())
    ctx = autoscaler_image.prepare_context(str(tmp_path))
    monkeypatch.setattr(subprocess, "run", real_run)
    code = (
        "import importlib.abc, sys\n"
        "class Absent(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {NOT_IN_THE_IMAGE!r}:\n"
        "            raise ImportError(f'{name} is not in the autoscaler image')\n"
        "sys.meta_path.insert(0, Absent())\n"
        "import swarmml.autoscale.controller, swarmml.ops\n"
        "from swarmml.engine import connect\n"
        "import swarmml\n"
        "print(swarmml.__file__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path),
                          env=dict(os.environ, PYTHONPATH=ctx))
    assert done.returncode == 0, done.stderr[-800:]
    assert done.stdout.strip() == os.path.join(ctx, "swarmml", "__init__.py")


def test_the_cli_routes_a_service_name_to_the_loop_and_checks_options_first():
    runner = CliRunner()
    done = runner.invoke(cli, ["autoscale", "predictor", "--min", "0"])
    assert done.exit_code == 2 and "--min" in done.output
    assert runner.invoke(cli, ["autoscale", "--help"]).exit_code == 0
