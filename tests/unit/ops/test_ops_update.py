"""What update changes in a ServiceSpec, the changes it reports and the options it refuses: pure, no daemon."""
import pytest

from ops_helpers import spec
from swarmml.errors import UsageError
from swarmml.ops.update import spec_changes, with_update


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
    assert [(c.service, c.field, c.old, c.new) for c in added] == [("x", "a.b", None, 1)]


@pytest.mark.parametrize("kwargs,fragment", [
    ({"env": ["NOEQUALS"]}, "--env"), ({"cpus": "-1"}, "--cpus"), ({"cpus": "lots"}, "--cpus"),
    ({"cpus": "0.0000000001"}, "--cpus"), ({"memory": "huge"}, "--memory"), ({"memory": "0"}, "--memory"),
    ({"delay": "soon"}, "--delay"), ({"delay": "-2s"}, "--delay"), ({"monitor": "10 parsecs"}, "--monitor"),
    ({"order": "random"}, "--order"), ({"replicas": "-2"}, "--replicas"), ({"parallelism": "x"}, "--parallelism"),
    ({"failure_action": "explode"}, "--failure-action"), ({"image": "two words"}, "--image"),
    ({"image": ""}, "--image"),
])
def test_update_options_are_checked(kwargs, fragment):
    with pytest.raises(UsageError, match=fragment):
        with_update(spec(3), **kwargs)
