"""Pure top logic: counters from a page, rates between two scrapes, container stats, the gateway's rows.

The pages in tests/data/top were recorded once from a replica and the gateway of the ML stack under load.
Reading Prometheus text and HAProxy CSV, and the quantile, are tested in tests/unit/test_metrics_formats.py.
"""
import paths
import math
import os

import pytest

from swarmml.observe import top
from swarmml.metrics_formats import read_haproxy_stats

DATA = os.path.join(paths.DATA, "top")


def page(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


def test_counters_from_a_recorded_metrics_page():
    c = top.counters(page("metrics.txt"))
    assert c.ok == 272 and c.failed == 0 and c.in_flight == 0
    assert c.buckets[math.inf] == 272  # summed over both models; iris-logreg had none
    ordered = [c.buckets[le] for le in sorted(c.buckets)]
    assert ordered == sorted(ordered)  # cumulative


def test_a_page_that_is_not_the_model_services_gives_none():
    assert top.counters(page("haproxy-stats.csv")) is None
    assert top.counters("") is None


def test_rates_between_two_scrapes():
    prev = top.Counters(ok=100, failed=2, in_flight=1, buckets={0.01: 90, 0.1: 102, math.inf: 102})
    cur = top.Counters(ok=160, failed=4, in_flight=3, buckets={0.01: 150, 0.1: 164, math.inf: 164})
    r = top.rates(prev, cur, dt=2.0)
    assert r["requests_per_s"] == 31 and r["errors_per_s"] == 1 and r["in_flight"] == 3
    assert r["p50_ms"] == pytest.approx(31 / 60 * 10)  # rank 31 of 62, 60 of them below 10 ms
    assert 10 < r["p99_ms"] <= 100


def test_no_rate_at_first_sight_or_after_a_restart():
    cur = top.Counters(ok=5, in_flight=1)
    assert top.rates(None, cur, 2.0)["requests_per_s"] is None
    assert top.rates(top.Counters(ok=500), cur, 2.0)["requests_per_s"] is None
    assert top.rates(None, cur, 2.0)["in_flight"] == 1


def _stats(total_ns, at, usage=0, inactive=0):
    return {"cpu_stats": {"cpu_usage": {"total_usage": total_ns}}, "swarmml_read_at": at,
            "memory_stats": {"usage": usage, "stats": {"inactive_file": inactive}}}


def test_cpu_cores_and_memory_from_container_stats():
    assert top.cpu_cores(_stats(1_000_000_000, 10.0), _stats(2_000_000_000, 12.0)) == 0.5
    assert top.cpu_cores(None, _stats(1, 1.0)) is None
    assert top.cpu_cores(_stats(5, 10.0), _stats(1, 12.0)) is None  # a new container behind the same id
    assert top.memory_bytes(_stats(0, 0, usage=100 << 20, inactive=10 << 20)) == 90 << 20
    assert top.memory_bytes({"memory_stats": {"usage": 50, "stats": {"total_inactive_file": 20}}}) == 30
    assert top.memory_bytes({}) is None


def test_gateway_servers_from_the_recorded_stats_page():
    rows = read_haproxy_stats(page("haproxy-stats.csv"))
    servers = top.gateway_servers(rows)
    assert servers and all(s["backend"] == "predictor" for s in servers.values())
    assert sorted(s["status"] for s in servers.values()) == ["UP", "UP"]  # 2 replicas, the other slots unresolved
    assert all(ip.startswith("10.") for ip in servers)
    fronts = top.gateway_frontends(rows)
    assert [f["frontend"] for f in fronts] == ["inference"]
