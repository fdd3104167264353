"""The model service's /metrics text -> per-replica load. Pure.

Reading the text itself, the quantile and the HAProxy CSV are tested in tests/unit/test_metrics_formats.py."""
import math

import pytest

from swarmml.autoscale import signals as sig

TEXT = """# HELP swarmml_infer_in_flight Inference requests in flight
# TYPE swarmml_infer_in_flight gauge
swarmml_infer_in_flight{model="iris-rf",version="1"} 3.0
swarmml_infer_in_flight{model="iris-logreg",version="1"} 1.0
# TYPE swarmml_infer_request_seconds histogram
swarmml_infer_request_seconds_bucket{le="0.01",model="iris-rf",version="1"} %(a)s
swarmml_infer_request_seconds_bucket{le="0.05",model="iris-rf",version="1"} %(b)s
swarmml_infer_request_seconds_bucket{le="+Inf",model="iris-rf",version="1"} %(c)s
swarmml_infer_request_seconds_count{model="iris-rf",version="1"} %(c)s
swarmml_infer_request_seconds_sum{model="iris-rf",version="1"} %(s)s
swarmml_infer_request_seconds_count{model="iris-logreg",version="1"} 10.0
swarmml_infer_request_seconds_sum{model="iris-logreg",version="1"} 0.5
swarmml_infer_success_total{model="iris-rf",version="1"} 100.0
"""


def text(a=0, b=0, c=0, s=0.0):
    return TEXT % {"a": a, "b": b, "c": c, "s": s}


def test_scrape_sums_models_unless_one_is_asked_for():
    s = sig.read_scrape(text(1, 2, 3, 0.1), at=5.0)
    assert (s.in_flight, s.requests, s.seconds) == (4.0, 13.0, 0.6)
    rf = sig.read_scrape(text(1, 2, 3, 0.1), at=5.0, model="iris-rf")
    assert (rf.in_flight, rf.requests, rf.buckets) == (3.0, 3.0, {0.01: 1.0, 0.05: 2.0, math.inf: 3.0})
    with pytest.raises(sig.BadMetrics, match="for model 'nope'"):
        sig.read_scrape(text(), at=0, model="nope")
    with pytest.raises(sig.BadMetrics, match="no swarmml_infer_in_flight"):
        sig.read_scrape("up 1\n", at=0)


def test_in_flight_between_two_scrapes_is_littles_law():
    before = sig.read_scrape(text(0, 0, 0, 0.0), at=10.0, model="iris-rf")
    now = sig.read_scrape(text(60, 95, 100, 4.0), at=12.0, model="iris-rf")
    r = sig.replica_signal("ml_predictor.1", now, before)
    assert r.known and r.in_flight == pytest.approx(2.0)  # 4 request-seconds in 2 s
    assert r.rps == pytest.approx(50.0)
    # 95th of 100 falls in (0.01, 0.05]: 60 below, 35 in the bucket -> 0.01 + 0.04 * 35/35
    assert r.p95_ms == pytest.approx(50.0)


def test_first_look_uses_the_gauge_and_a_restart_starts_over():
    now = sig.read_scrape(text(1, 1, 1, 0.01), at=3.0, model="iris-rf")
    r = sig.replica_signal("t", now)
    assert (r.known, r.in_flight, r.rps) == (True, 3.0, None)
    later_but_reset = sig.read_scrape(text(0, 0, 0, 0.0), at=5.0, model="iris-rf")
    assert sig.replica_signal("t", later_but_reset, now).rps is None


def test_a_replica_that_cant_be_scraped_is_unknown_not_idle():
    r = sig.replica_signal("ml_predictor.3", None, error="timed out")
    assert (r.known, r.in_flight, r.error) == (False, None, "timed out")
    s = sig.Signal([r, sig.ReplicaSignal("a", True, in_flight=2.0)])
    assert [x.task for x in s.unknown] == ["ml_predictor.3"] and s.values("inflight") == [2.0]
    assert s.to_json()["unknown"] == ["ml_predictor.3"] and s.to_json()["inflight"] == 2.0


def test_prometheus_query_answers():
    vec = '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2.5"]},' \
          '{"metric":{},"value":[1,"1"]}]}}'
    assert sig.read_query_answer(vec) == 3.5
    assert sig.read_query_answer('{"status":"success","data":{"resultType":"scalar","result":[1,"7"]}}') == 7
    for bad, words in (('{"status":"error","error":"parse error"}', "parse error"), ("nope", "not JSON"),
                       ('{"status":"success","data":{"resultType":"vector","result":[]}}', "no samples"),
                       ('{"status":"success","data":{"resultType":"matrix","result":[]}}', "matrix")):
        with pytest.raises(sig.BadMetrics, match=words):
            sig.read_query_answer(bad)


def test_open_requests_that_did_not_complete_are_read_from_the_gauge():
    before = sig.read_scrape(text(0, 0, 5, 0.5), at=0.0, model="iris-rf")
    stuck = sig.read_scrape(text(0, 0, 5, 0.5), at=2.0, model="iris-rf")  # in flight gauge: 3, none completed
    assert sig.replica_signal("t", stuck, before).in_flight == 3.0


HAPROXY = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,status
inference,FRONTEND,,,70,80,4096,100,OPEN
predictor,replica1,0,0,51,64,,2382,UP 1/2
predictor,replica2,0,0,0,64,,3717,MAINT (resolution)
predictor,replica3,0,0,13,64,,1148,UP
predictor,BACKEND,6,9,64,80,,7247,UP
"""


def test_haproxy_statistics_give_the_backends_requests_in_flight_and_queued():
    assert sig.read_haproxy_csv(HAPROXY, "predictor") == 70.0  # 64 open to the replicas + 6 queued
    with pytest.raises(sig.BadMetrics, match="no backend 'web'"):
        sig.read_haproxy_csv(HAPROXY, "web")
    with pytest.raises(sig.BadMetrics, match="not HAProxy"):
        sig.read_haproxy_csv("<html>", "predictor")
    with pytest.raises(sig.BadMetrics, match="without scur or qcur"):
        sig.read_haproxy_csv("# pxname,svname,status\npredictor,BACKEND,UP\n", "predictor")


HAPROXY_REQ = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,req_tot
inference,FRONTEND,,,70,80,4096,100,OPEN,5120
predictor,replica1,0,0,51,64,,2382,UP 1/2,
predictor,BACKEND,6,9,64,80,,7247,UP,5000
"""


def test_the_backends_requests_received_and_their_rate_over_the_gateways():
    assert sig.read_haproxy_backend(HAPROXY_REQ, "predictor") == (70.0, 5000.0)
    assert sig.read_haproxy_backend(HAPROXY, "predictor") == (70.0, None)  # an HAProxy that does not count them
    before = {"gw1": (10.0, 1000.0), "gw2": (10.0, 50.0)}
    now = {"gw1": (12.0, 1060.0), "gw2": (12.5, 75.0)}
    assert sig.arrival_rate(now, before) == 30.0 + 10.0
    assert sig.arrival_rate({"gw1": (12.0, 3.0)}, before) is None  # restarted: its counter went back
    assert sig.arrival_rate(now, {}) is None  # the first look
