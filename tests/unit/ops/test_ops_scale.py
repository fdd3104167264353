"""What scale changes in a ServiceSpec, and the targets it refuses: pure, no daemon."""
import pytest

from ops_helpers import spec
from swarmml.errors import UsageError
from swarmml.ops.scale import parse_targets, with_replicas


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
