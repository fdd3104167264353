"""The io.swarmml.autoscale.* labels: parsed into a Policy, or refused in one line naming the label. Pure."""
import pytest

from swarmml.stack import autoscale_policy as pol
from swarmml.errors import UsageError

P = pol.PREFIX


def labels(**kw):
    base = {"min": "2", "max": "10", "target-inflight": "4"}
    base.update({k.replace("_", "-"): v for k, v in kw.items()})
    return {P + k: v for k, v in base.items() if v is not None}


def test_no_label_no_policy():
    assert pol.parse({"com.docker.stack.namespace": "ml"}) is None
    assert pol.parse(None) is None
    assert not pol.has_policy({"a": "b"}) and pol.has_policy(labels())


def test_a_minimal_policy_takes_the_defaults():
    p = pol.parse(labels())
    assert (p.min, p.max, p.targets) == (2, 10, {"inflight": 4.0})
    assert (p.up_window_s, p.down_window_s, p.tolerance, p.panic_threshold, p.max_step) == (6.0, 60.0, 0.1, 2.0, None)
    assert p.labels[P + "min"] == "2"


def test_every_setting_is_read():
    p = pol.parse(labels(**{"up-window": "10s", "down-window": "2m", "max-step": "3", "target-p95-ms": "250",
                            "tolerance": "0.2", "panic-threshold": "3", "model": "iris-rf", "metrics-port": "9090",
                            "metrics-path": "/m", "interval": "500ms"}))
    assert (p.up_window_s, p.down_window_s, p.max_step, p.tolerance, p.panic_threshold) == (10, 120, 3, 0.2, 3)
    assert p.targets == {"inflight": 4.0, "p95-ms": 250.0}
    assert (p.model, p.metrics_port, p.metrics_path, p.interval_s) == ("iris-rf", 9090, "/m", 0.5)


def test_numbers_from_yaml_ints_are_fine():
    assert pol.parse({P + "min": 1, P + "max": 3, P + "target-inflight": 2.5}).targets == {"inflight": 2.5}


@pytest.mark.parametrize("given,label,words", [
    (labels(min="5", max="3"), "min", "min 5 is greater than max 3"),
    (labels(**{"target-inflight": "0"}), "target-inflight", "more than 0"),
    (labels(**{"target-inflight": "-1"}), "target-inflight", "more than 0"),
    (labels(**{"target-inflight": "four"}), "target-inflight", "expected a number, got 'four'"),
    (labels(**{"target-inflight": "nan"}), "target-inflight", "finite"),
    (labels(max="ten"), "max", "expected a whole number, got 'ten'"),
    (labels(min="1.5"), "min", "whole number"),
    (labels(min="0"), "min", "at least 1"),
    (labels(min=None), "min", "missing"),
    (labels(max=None), "max", "missing"),
    (labels(metric="cpu"), "metric", "unknown metric 'cpu'"),
    (labels(metric="rps"), "target-rps", "needs a target"),
    (labels(**{"target-inflight": None}), "target-inflight", "give a target"),
    (labels(**{"max-step": "0"}), "max-step", "at least 1"),
    (labels(**{"down-window": "soon"}), "down-window", "duration like 30s"),
    (labels(**{"up-window": "-5"}), "up-window", "0 s or more"),
    (labels(tolerance="1.5"), "tolerance", "fraction"),
    (labels(**{"panic-threshold": "1"}), "panic-threshold", "more than 1"),
    (labels(**{"metrics-port": "70000"}), "metrics-port", "1 to 65535"),
    (labels(**{"metrics-path": "metrics"}), "metrics-path", "starting with /"),
    (labels(**{"target-inflght": "4"}), "target-inflght", "unknown autoscale setting"),
    (labels(metric="query", target="5"), "query", "needs both query and metrics-url"),
    (labels(metric="query", target="5", query="up", **{"metrics-url": "prom:9090"}), "metrics-url", "http://"),
])
def test_bad_policies_are_one_line_naming_the_label(given, label, words):
    with pytest.raises(UsageError) as exc:
        pol.parse(given, where="service ml_predictor")
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"service ml_predictor: label {P}{label}: "), msg
    assert words in msg


def test_metric_chooses_among_the_targets():
    p = pol.parse(labels(metric="p95-ms", **{"target-p95-ms": "200"}))
    assert p.targets == {"p95-ms": 200.0}
    p = pol.parse(labels(metric="query", target="5", query="sum(x)", **{"metrics-url": "http://prom:9090"}))
    assert p.targets == {"query": 5.0} and p.query == "sum(x)"


def test_check_services_names_the_service_and_refuses_global_ones():
    good = {"Labels": labels(), "Mode": {"Replicated": {"Replicas": 2}}}
    assert set(pol.check_services({"ml_predictor": good, "ml_gateway": {"Labels": {}}})) == {"ml_predictor"}
    with pytest.raises(UsageError, match=r"^service ml_x: label io.swarmml.autoscale.min: min 3 is greater"):
        pol.check_services({"ml_x": {"Labels": labels(min="3", max="2")}})
    with pytest.raises(UsageError, match="only replicated services"):
        pol.check_services({"ml_g": {"Labels": labels(), "Mode": {"Global": {}}}})


def test_overrides_from_the_command_line():
    p = pol.with_overrides(pol.parse(labels()), maximum=6, target_inflight=2)
    assert (p.min, p.max, p.targets) == (2, 6, {"inflight": 2.0})
    assert pol.with_overrides(None, 1, 3, 1.5).max == 3
    with pytest.raises(UsageError, match="has no io.swarmml.autoscale"):
        pol.with_overrides(None, where="service ml_web")
    with pytest.raises(UsageError, match="min 4 is greater than max 3"):
        pol.with_overrides(pol.parse(labels()), minimum=4, maximum=3)
