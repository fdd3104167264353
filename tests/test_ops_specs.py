"""What scale and update change in a ServiceSpec, and the input they refuse: pure, no daemon."""
import pytest

from ops_helpers import TEMPLATE, spec
from swarmml.errors import UsageError
from swarmml.ops.scale import parse_targets, with_replicas
from swarmml.ops.update import spec_changes, with_update


@pytest.mark.parametrize("args,expected", [
    (["predictor", "10"], {"predictor": 10}),
    (["predictor=10"], {"predictor": 10}),
    (["predictor=4", "gateway=0"], {"predictor": 4, "gateway": 0}),
    (["ml_predictor", " 3 "], {"ml_predictor": 3}),
])
def test_scale_targets(args, expected):
    assert parse_targets(args) == expected


@pytest.mark.parametrize("args,fragment", [
    (["predictor", "-1"], "non-negative integer"), (["predictor", "ten"], "non-negative integer"),
    (["predictor=2.5"], "non-negative integer"), (["=3"], "SERVICE=REPLICAS"), (["predictor"], "SERVICE=REPLICAS"),
    (["a=1", "a=2"], "given twice"), ([], "nothing to scale"), (["predictor", "1e3"], "non-negative integer"),
])
def test_bad_scale_targets_say_what_is_expected(args, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_targets(args)


def test_with_replicas_leaves_its_input_alone_and_refuses_global_services():
    s = spec(2)
    assert with_replicas(s, 10)["Mode"] == {"Replicated": {"Replicas": 10}}
    assert s["Mode"] == {"Replicated": {"Replicas": 2}}
    with pytest.raises(UsageError, match="is global"):
        with_replicas(spec(mode={"Global": {}}), 3)
    job = with_replicas(spec(mode={"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}), 5)
    assert job["Mode"]["ReplicatedJob"] == {"MaxConcurrent": 1, "TotalCompletions": 5}


def test_with_update_changes_only_what_is_asked():
    s = spec(3)
    new = with_update(s, image="registry:5000/swarmml/predictor:2@sha256:bb", env=["B=3", "C=4"], cpus="0.25",
                      memory="256M", parallelism="2", delay="2s", order="stop-first", failure_action="pause",
                      monitor="10s", force=True, replicas="4")
    cs = new["TaskTemplate"]["ContainerSpec"]
    assert cs["Image"] == "registry:5000/swarmml/predictor:2@sha256:bb"
    assert new["Labels"]["com.docker.stack.image"] == "registry:5000/swarmml/predictor:2"
    assert cs["Env"] == ["A=1", "B=3", "C=4"]
    assert new["TaskTemplate"]["Resources"]["Limits"] == {"NanoCPUs": 250_000_000, "MemoryBytes": 256 * 2**20}
    assert new["UpdateConfig"] == {"Parallelism": 2, "Order": "stop-first", "Delay": 2_000_000_000,
                                   "Monitor": 10_000_000_000, "FailureAction": "pause"}
    assert new["TaskTemplate"]["ForceUpdate"] == 1 and new["Mode"]["Replicated"]["Replicas"] == 4
    assert s == spec(3)  # the input is not modified


def test_an_update_with_no_options_changes_nothing():
    s = spec(3)
    assert with_update(s) == s
    assert spec_changes("ml_predictor", s, with_update(s)) == []


def test_spec_changes_name_each_changed_leaf():
    s = spec(3)
    new = with_update(s, env=["A=9"], cpus="1", force=True)
    changes = {c.field: (c.old, c.new) for c in spec_changes("ml_predictor", s, new)}
    assert changes == {"TaskTemplate.ContainerSpec.Env": (["A=1", "B=2"], ["A=9", "B=2"]),
                       "TaskTemplate.Resources.Limits.NanoCPUs": (500_000_000, 1_000_000_000),
                       "TaskTemplate.ForceUpdate": (0, 1)}
    added = spec_changes("x", {"a": {}}, {"a": {"b": 1}})
    assert [(c.field, c.old, c.new) for c in added] == [("a.b", None, 1)]
    service, field, old, new_ = added[0]  # a Change unpacks like a tuple
    assert service == "x"


@pytest.mark.parametrize("kwargs,fragment", [
    ({"env": ["NOEQUALS"]}, "--env"), ({"cpus": "-1"}, "--cpus"), ({"cpus": "lots"}, "--cpus"),
    ({"cpus": "0.0000000001"}, "--cpus"), ({"memory": "huge"}, "--memory"), ({"memory": "0"}, "--memory"),
    ({"delay": "soon"}, "--delay"), ({"delay": "-2s"}, "--delay"), ({"monitor": "10 parsecs"}, "--monitor"),
    ({"order": "random"}, "--order"), ({"replicas": "-2"}, "--replicas"), ({"parallelism": "x"}, "--parallelism"),
    ({"failure_action": "explode"}, "--failure-action"), ({"image": "two words"}, "--image"), ({"image": ""}, "--image"),
])
def test_update_options_are_checked(kwargs, fragment):
    with pytest.raises(UsageError, match=fragment):
        with_update(spec(3), **kwargs)


def test_template_fixture_is_untouched():
    # The helpers deep-copy: a test that edits a spec never leaks into another.
    assert TEMPLATE["ContainerSpec"]["Env"] == ["A=1", "B=2"]
