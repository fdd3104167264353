"""verify --slo: the SLO and load options, the rate ladder, what a replica count sustains, replicas needed. Pure."""
import pytest

from swarmml.errors import UsageError
from swarmml.verify import capacity


def test_slo_and_load_options():
    assert capacity.parse_slo("p99=250ms") == (99.0, 250.0)
    assert capacity.parse_slo(" P95=0.5s ") == (95.0, 500.0)
    assert capacity.parse_slo("p99.9=1s") == (99.9, 1000.0)
    for bad in ("p99=abc", "p99", "250ms", "p0=10ms", "p100=10ms", "p99=0ms", "p99=250", "", None):
        with pytest.raises(UsageError, match="^--slo: expected"):
            capacity.parse_slo(bad)
    assert capacity.parse_load("200/s") == 200.0 == capacity.parse_load("200")
    assert capacity.parse_load("12.5/s") == 12.5
    for bad in ("abc", "0/s", "-5/s", "200/min", ""):
        with pytest.raises(UsageError, match="^--for: expected"):
            capacity.parse_load(bad)


def test_ladder_rises_from_the_closed_loop_estimate():
    assert capacity.ladder(100.0) == [20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0]
    with pytest.raises(ValueError):
        capacity.ladder(0)


def rung(offered, p99, answered=None, errors=0, bottleneck="replicas"):
    return {"offered_per_s": offered, "requests_per_s": offered if answered is None else answered,
            "latency_ms": p99, "errors": errors, "bottleneck": bottleneck}


def test_sustainable_is_the_highest_rate_before_the_first_miss():
    rungs = [rung(40, 60.0), rung(50, 80.0), rung(60, 240.0), rung(70, 900.0, bottleneck="machine")]
    s = capacity.sustainable(rungs, 99, 250)
    assert s == {"sustainable_per_s": 60, "latency_ms": 240.0, "first_failed_per_s": 70,
                 "why": "p99 900 ms > 250 ms", "at_least": False, "limited_by": "machine"}
    # a rung that passes after a miss does not count: the ladder stops at the first
    assert capacity.sustainable([rung(40, 60.0), rung(50, 300.0), rung(60, 100.0)], 99, 250)["sustainable_per_s"] == 40
    # within the latency but the queue grew: answered 80 of 100 requests/s
    s = capacity.sustainable([rung(90, 100.0), rung(100, 200.0, answered=80.0)], 99, 250)
    assert s["sustainable_per_s"] == 90 and "queue grew" in s["why"]
    s = capacity.sustainable([rung(40, 60.0, errors=3)], 99, 250)
    assert s["sustainable_per_s"] is None and s["why"] == "3 failed requests"
    s = capacity.sustainable([rung(40, 60.0), rung(50, 70.0)], 99, 250)
    assert s["sustainable_per_s"] == 50 and s["first_failed_per_s"] is None and s["why"] == ""
    assert s["at_least"]  # no rung missed: the ladder's top is a floor under it, not the answer's edge


def test_replicas_for_a_load():
    table = {1: 45.0, 2: 88.0, 4: 170.0, 6: 240.0}
    assert capacity.replicas_for(200, table)["replicas"] == 6
    assert capacity.replicas_for(170, table) == {"load_per_s": 170, "replicas": 4, "extrapolated": False,
                                                 "detail": "4 replicas sustain 170 requests/s >= 170"}
    far = capacity.replicas_for(500, table)
    assert far["replicas"] == 13 and far["extrapolated"] and "about 13" in far["detail"]
    assert capacity.replicas_for(10, {1: None, 2: None})["replicas"] is None
    assert capacity.replicas_for(60, {1: None, 2: 88.0})["replicas"] == 2


def test_where_the_replicas_stop_being_the_limit():
    rows = [{"replicas": 1, "limited_by": "replicas"}, {"replicas": 4, "limited_by": "machine"},
            {"replicas": 2, "limited_by": "replicas"}, {"replicas": 6, "limited_by": "gateway"}]
    assert capacity.first_limit(rows) == {"replicas": 4, "limited_by": "machine"}
    assert capacity.first_limit(rows[:1]) is None
    # an open-loop rung that missed with cores to spare is no limit outside the replicas
    assert capacity.first_limit([{"replicas": 1, "limited_by": "offered load"}]) is None


def test_a_floor_near_the_bound_is_said():
    def row(n, *latencies):
        return {"replicas": n, "rungs": [{"latency_ms": v} for v in latencies]}
    # 0.25-CPU replicas: p99 near 180 ms from the first rung on, whatever the rate
    note = capacity.floor_note([row(1, 180.0, 240.0), row(2, 165.0, 190.0)], 250.0, 99.0)
    assert note.startswith("p99 was 165 ms or more already at the lowest rate tried")
    assert capacity.floor_note([row(1, 180.0), row(2, 80.0)], 250.0, 99.0) is None
    assert capacity.floor_note([row(1, None)], 250.0, 99.0) is None and capacity.floor_note([], 250.0, 99.0) is None
