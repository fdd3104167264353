"""`swarmml deploy` and autoscaling: the autoscaler's replica count is kept, bad policies are refused. No daemon."""
import paths
import copy
import textwrap

import pytest

from swarmml.ops import deploy
from swarmml.ops.autoscaled import hold_replicas
from swarmml.errors import UsageError
from swarmml.stack import convert, load
from swarmml.stack.plan import plan

STACK = """
version: "3.8"
services:
  predictor:
    image: registry:5000/swarmml/predictor:latest
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
      labels:
        io.swarmml.autoscale.min: 2
        io.swarmml.autoscale.max: %(max)s
        io.swarmml.autoscale.target-inflight: %(target)s
  gateway:
    image: registry:5000/swarmml/gateway:latest
    deploy:
      replicas: 1
"""


def desired_stack(tmp_path, max_=10, target="4"):
    f = tmp_path / "stack.yml"
    f.write_text(textwrap.dedent(STACK % {"max": max_, "target": target}))
    return convert(load([str(f)], name="ml", environ={}))


def running(spec, replicas):
    have = copy.deepcopy(spec)
    have["Mode"] = {"Replicated": {"Replicas": replicas}}
    return {"ID": "abc", "Version": 7, "Spec": have}


def test_a_deploy_keeps_the_autoscalers_count_and_plans_no_update(tmp_path):
    desired = desired_stack(tmp_path)
    current = {"services": {"ml_predictor": running(desired.services["ml_predictor"], 6),
                            "ml_gateway": running(desired.services["ml_gateway"], 1)}}
    notes = hold_replicas(desired.services, current["services"])
    assert desired.services["ml_predictor"]["Mode"] == {"Replicated": {"Replicas": 6}}
    assert notes == ["ml_predictor: autoscaled, keeping 6 replicas (the autoscaler's count; the file says 2)"]
    actions = {a.name: a.action for a in plan(desired, current).actions if a.kind == "service"}
    assert actions == {"ml_predictor": "unchanged", "ml_gateway": "unchanged"}


def test_services_without_a_policy_follow_the_file(tmp_path):
    desired = desired_stack(tmp_path)
    current = {"ml_gateway": running(desired.services["ml_gateway"], 3)}
    hold_replicas(desired.services, current)
    assert desired.services["ml_gateway"]["Mode"]["Replicated"]["Replicas"] == 1


def test_a_new_max_or_min_in_the_file_bounds_the_kept_count(tmp_path):
    desired = desired_stack(tmp_path, max_=4)
    notes = hold_replicas(desired.services, {"ml_predictor": running(desired.services["ml_predictor"], 6)})
    assert desired.services["ml_predictor"]["Mode"]["Replicated"]["Replicas"] == 4
    assert "within min 2 / max 4" in notes[0]


def test_a_new_service_starts_with_its_replicas_within_min_and_max(tmp_path):
    desired = desired_stack(tmp_path)
    desired.services["ml_predictor"]["Mode"]["Replicated"]["Replicas"] = 1
    notes = hold_replicas(desired.services, {})
    assert desired.services["ml_predictor"]["Mode"]["Replicated"]["Replicas"] == 2
    assert notes == ["ml_predictor: autoscaled, starting with 2 replicas (min 2, max 10)"]


@pytest.mark.parametrize("max_,target,label,words", [
    (1, "4", "min", "min 2 is greater than max 1"),
    (10, "0", "target-inflight", "more than 0"),
    ("lots", "4", "max", "expected a whole number, got 'lots'"),
])
def test_deploy_refuses_a_bad_policy_in_one_line_before_asking_any_engine(tmp_path, monkeypatch, max_, target, label,
                                                                         words):
    f = tmp_path / "stack.yml"
    f.write_text(textwrap.dedent(STACK % {"max": max_, "target": target}))

    def no_engine(*a, **kw):
        raise AssertionError("the engine was asked")

    monkeypatch.setattr(deploy, "target_client", no_engine)
    with pytest.raises(UsageError) as exc:
        deploy.deploy([str(f)], name="ml", environ={})
    msg = str(exc.value)
    assert msg.startswith(f"service ml_predictor: label io.swarmml.autoscale.{label}: ") and words in msg
    assert "\n" not in msg


def test_an_unknown_metric_is_refused(tmp_path):
    f = tmp_path / "stack.yml"
    f.write_text(textwrap.dedent(STACK % {"max": 3, "target": "4"}).replace(
        "target-inflight: 4", "target-inflight: 4\n        io.swarmml.autoscale.metric: cpu"))
    with pytest.raises(UsageError, match=r"label io.swarmml.autoscale.metric: unknown metric 'cpu'"):
        deploy.deploy([str(f)], name="ml", environ={})


def test_the_checkout_stack_with_its_autoscale_files_has_a_valid_policy():
    import os
    root = paths.ROOT
    files = [os.path.join(root, f) for f in ("docker-stack.yml", "stacks/autoscale.yml",
                                             "stacks/autoscaler-service.yml")]
    desired = convert(load(files, environ={}))
    from swarmml.stack.autoscale_policy import check_services
    policies = check_services(desired.services)
    assert list(policies) == ["ml_predictor"]
    p = policies["ml_predictor"]
    assert (p.min, p.max, p.targets, p.model, p.gateway) == (2, 8, {"inflight": 1.5}, "iris-rf", "gateway")
    ctl = desired.services["ml_autoscaler"]["TaskTemplate"]
    assert ctl["Placement"]["Constraints"] == ["node.role == manager"]
    assert "SWARMML_AUTOSCALE_HOLDER={{.Task.Name}}" in ctl["ContainerSpec"]["Env"]
