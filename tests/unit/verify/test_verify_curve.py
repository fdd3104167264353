"""verify's scaling curve: efficiency per step and the thresholds it is checked against. Pure."""
import pytest

from swarmml.errors import UsageError
from swarmml.verify import curve


def test_thresholds_plain_or_per_step_count():
    assert curve.parse_thresholds("0.8") == {1: 0.8}
    t = curve.parse_thresholds("6=0.8, 2=0.9,4=0.85")
    assert t == {2: 0.9, 4: 0.85, 6: 0.8}
    assert [curve.threshold_for(n, t) for n in (1, 2, 3, 4, 5, 6, 10)] == [None, 0.9, 0.9, 0.85, 0.85, 0.8, 0.8]
    assert curve.threshold_for(3, curve.parse_thresholds("0.7,2=0.9,3=0.5")) == 0.5
    for bad in ("", "x", "2=", "0=0.9", "2=5"):
        with pytest.raises(UsageError):
            curve.parse_thresholds(bad)


def test_efficiency_and_curve_check():
    steps = curve.efficiencies([
        {"replicas": 1, "requests_per_s": 50.0, "errors": 0},
        {"replicas": 2, "requests_per_s": 95.0, "errors": 0},
        {"replicas": 4, "requests_per_s": 150.0, "errors": 2, "error_kinds": {"http_503": 2}, "bottleneck": "machine"},
        {"replicas": 6, "requests_per_s": 270.0, "errors": 0, "replicas_answering": 5},
    ])
    assert [s["efficiency"] for s in steps] == [1.0, 0.95, 0.75, 0.9]
    ok, problems, inconclusive = curve.curve_check(steps, curve.parse_thresholds("0.8"))
    # a step the machine starved is no evidence against the service: inconclusive, with what to do; its failed
    # requests and a replica that did not answer stay failures
    assert not ok and problems == ["2 failed requests at 4 replicas (http_503 2)",
                                   "5 of 6 replicas answered during the step"]
    assert inconclusive == ["E(4) = 0.75 < 0.8, inconclusive: the machine could not give the replicas their CPU "
                            "(limited by machine); to measure it: fewer steps (--steps 1,2), a smaller --cpus, "
                            "or a quieter machine"]
    ok, problems, inconclusive = curve.curve_check(steps[:2], curve.parse_thresholds("2=0.96"))
    assert problems == ["E(2) = 0.95 < 0.96"] and inconclusive == []
    assert curve.curve_check(steps[:2], curve.parse_thresholds("0.9")) == (True, [], [])
    # starved replicas: E falls, but requests per CPU-second they got hold (the machine, not the service)
    starved = curve.efficiencies([{"replicas": 1, "requests_per_s": 60.0, "cpu": {"replicas": {"cores": 0.25}}},
                                  {"replicas": 6, "requests_per_s": 288.0, "cpu": {"replicas": {"cores": 1.26}}}])
    assert [(s["efficiency"], s["cpu_efficiency"]) for s in starved] == [(1.0, 1.0), (0.8, 0.952)]
    assert steps[0]["cpu_efficiency"] is None
    # a curve not starting at 1 compares per replica with its smallest step
    assert [s["efficiency"] for s in curve.efficiencies([{"replicas": 2, "requests_per_s": 100.0},
                                                         {"replicas": 4, "requests_per_s": 180.0}])] == [1.0, 0.9]
