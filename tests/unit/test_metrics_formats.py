"""The one reader of each metrics format (swarmml/metrics_formats.py), and how top and the autoscaler use it.

Merged from the tests of the copies it replaced (top's and the autoscaler's Prometheus parsers, histogram
quantiles and HAProxy CSV readers). The pages in tests/data/top were recorded once from a replica and the
gateway of the ML stack under load.
"""
import paths
import math
import os
import re

import pytest

from swarmml import metrics_formats as mf
from swarmml.observe import top
from swarmml.autoscale import signals as sig

DATA = os.path.join(paths.DATA, "top")


def page(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


# --- Prometheus text -----------------------------------------------------------------------------

def test_labels_with_escapes_timestamps_comments_and_blank_lines():
    rows = mf.read_prometheus_text('# HELP m a\n# TYPE m gauge\nm{a="x\\"y",b="2",c="l\\nl"} 1.5 1700000000\n'
                                   '\nn 2\n# a comment\ne NaN\n')
    assert rows[:2] == [("m", {"a": 'x"y', "b": "2", "c": "l\nl"}, 1.5), ("n", {}, 2.0)]
    assert rows[2][0] == "e" and math.isnan(rows[2][2])
    assert all(isinstance(v, float) for _, _, v in rows)
    assert mf.read_prometheus_text("") == []


@pytest.mark.parametrize("text, line", [
    ("<html>oops</html>", "line 1"),
    ("ok 1\n\nnot a sample\n", "line 3"),  # blank lines count: the number is the page's own
    ("# HELP x y\nx 1\ne NaNx\n", "line 3"),
    ('m{a=1} 1\n', "line 1"),
    ("# TYPE x\n", "line 1"),
    ("# TYPE x gauge\nx 1\n# TYPE y histogrm\ny 1\n# TYPE z gauge\nz 1\n", "line 3"),  # found a family later
])
def test_a_page_with_a_bad_line_is_refused_with_that_line(text, line):
    with pytest.raises(mf.BadMetrics, match=f"^{line} is not Prometheus text") as info:
        mf.read_prometheus_text(text)
    assert "\n" not in str(info.value)  # the autoscaler reports it as one line


def test_the_recorded_model_service_page_reads_whole():
    rows = mf.read_prometheus_text(page("metrics.txt"))
    names = {name for name, _, _ in rows}
    assert {mf.SUCCESS_TOTAL, mf.IN_FLIGHT, mf.REQUEST_SECONDS + "_bucket", mf.REQUEST_SECONDS + "_count",
            mf.REQUEST_SECONDS + "_sum"} <= names
    assert len(rows) == sum(1 for x in page("metrics.txt").splitlines() if x and not x.startswith("#"))


def test_the_model_service_writes_the_names_top_and_the_autoscaler_read():
    # The model service does not import swarmml: its names are its own, and this keeps them the same.
    from swarmml_model_service.metrics import Metrics

    m = Metrics()
    mm = m.for_model("iris", "1")
    mm.in_flight.inc()
    mm.request.observe(0.003)
    mm.success.inc()
    mm.failed(503)
    rows = mf.read_prometheus_text(m.render().decode())
    names = {name for name, _, _ in rows}
    assert {mf.IN_FLIGHT, mf.SUCCESS_TOTAL, mf.FAILURE_TOTAL, mf.REQUEST_SECONDS + "_bucket",
            mf.REQUEST_SECONDS + "_count", mf.REQUEST_SECONDS + "_sum"} <= names
    buckets = {mf.bucket_bound(labels): v for name, labels, v in rows if name == mf.REQUEST_SECONDS + "_bucket"}
    assert buckets[math.inf] == 1 and mf.quantile(0.5, buckets) == pytest.approx(0.0035)  # half of (2, 5] ms


def test_bucket_bounds():
    assert mf.bucket_bound({"le": "+Inf"}) == math.inf and mf.bucket_bound({"le": "0.005"}) == 0.005
    for labels in ({}, {"le": "x"}, {"le": "NaN"}):
        with pytest.raises(mf.BadMetrics, match="le label"):
            mf.bucket_bound(labels)


JUNK = page("metrics.txt") + "not a sample\n"


def test_the_autoscaler_reports_a_bad_page_as_one_line():
    with pytest.raises(sig.BadMetrics, match=r"^line \d+ is not Prometheus text: 'not a sample'"):
        sig.read_scrape(JUNK, at=0.0)
    assert sig.BadMetrics is mf.BadMetrics  # the controller catches the one class


def test_the_autoscalers_image_installs_the_parser():
    # Imported when the first page is read, so the image's import test (test_autoscale_status.py)
    # would not see it missing: the controller would fail at its first scrape instead.
    from swarmml.build import autoscaler
    assert any(r.split(">=")[0] == "prometheus-client" for r in autoscaler.REQUIREMENTS)


def test_top_blanks_a_bad_page_and_keeps_the_others():
    # The page, not the line: a page with junk in it (a proxy's error, a cut read) is not counted in part.
    assert top.counters(JUNK) is None
    assert top.counters(page("metrics.txt")).ok == 272


# --- histogram quantile --------------------------------------------------------------------------

def test_quantile_without_an_answer():
    assert mf.quantile(0.95, {}) is None
    assert mf.quantile(0.95, {0.1: 0, math.inf: 0}) is None  # no observations
    assert mf.quantile(0.5, {math.inf: 10}) is None  # only +Inf: nothing is known (the old copies said 0.0)
    assert mf.quantile(0.5, {0.1: 5, 0.2: 10}) is None  # no +Inf bucket (the old copies took 0.2 as the top)
    assert mf.quantile(math.nan, {0.1: 5, math.inf: 10}) is None
    assert mf.quantile(0.0, {0.1: 0, 0.2: 5, math.inf: 5}) is None  # Prometheus's 0/0


def test_quantile_all_in_the_first_bucket_interpolates_from_zero():
    assert mf.quantile(0.5, {0.1: 10, math.inf: 10}) == pytest.approx(0.05)
    assert mf.quantile(1.0, {0.1: 10, 0.2: 10, math.inf: 10}) == pytest.approx(0.1)


def test_quantile_interpolates_within_the_bucket():
    buckets = {0.001: 0, 0.002: 50, 0.005: 100, math.inf: 100}
    assert mf.quantile(0.5, buckets) == pytest.approx(0.002)
    assert mf.quantile(0.99, buckets) == pytest.approx(0.002 + 0.003 * 49 / 50)
    assert mf.quantile(0.25, buckets) == pytest.approx(0.0015)
    # 95th of 100 falls in (0.01, 0.05]: 60 below, 35 in the bucket -> 0.01 + 0.04 * 35/35
    assert mf.quantile(0.95, {0.01: 60, 0.05: 95, math.inf: 100}) == pytest.approx(0.05)


def test_quantile_in_the_inf_bucket_is_the_last_finite_bound():
    assert mf.quantile(0.99, {0.1: 1, math.inf: 10}) == 0.1
    assert mf.quantile(0.99, {0.2: 1, 0.1: 1, math.inf: 10}) == 0.2  # whatever order the dict is in


def test_quantile_follows_prometheus_at_the_edges():
    assert mf.quantile(1.5, {0.1: 1, math.inf: 10}) == math.inf
    assert mf.quantile(-0.1, {0.1: 1, math.inf: 10}) == -math.inf
    assert mf.quantile(0.5, {-1.0: 10, math.inf: 20}) == -1.0  # no natural lower bound below 0
    # Histograms of replicas with different bounds, added up, are not monotonic: the running maximum.
    assert mf.quantile(0.5, {0.01: 6, 0.02: 4, 0.05: 10, math.inf: 10}) == mf.quantile(
        0.5, {0.01: 6, 0.02: 6, 0.05: 10, math.inf: 10}) == pytest.approx(0.005 / 0.6)


# --- HAProxy statistics CSV ----------------------------------------------------------------------

def test_haproxy_rows_keyed_by_the_header_after_its_hash():
    rows = mf.read_haproxy_stats(page("haproxy-stats.csv"))
    assert rows[0]["pxname"] == "inference" and rows[0]["svname"] == "FRONTEND"
    assert [r["svname"] for r in rows if r["pxname"] == "predictor"][-1] == "BACKEND"
    assert {r["addr"] for r in rows if r["svname"].startswith("replica") and r["addr"]} == {"10.0.1.5:8080",
                                                                                            "10.0.1.4:8080"}


def test_haproxy_quotes_blank_lines_and_short_rows():
    text = '\n# pxname,svname,scur,check_desc\na,BACKEND,3,"down, then up"\n\nb,s1\n'
    assert mf.read_haproxy_stats(text) == [{"pxname": "a", "svname": "BACKEND", "scur": "3",
                                            "check_desc": "down, then up"}, {"pxname": "b", "svname": "s1"}]


@pytest.mark.parametrize("text", ["", "not csv", "<html>", "pxname,svname\na,b\n", page("metrics.txt"), "# \n"])
def test_what_is_not_haproxy_statistics(text):
    with pytest.raises(mf.BadMetrics, match="not HAProxy statistics CSV"):
        mf.read_haproxy_stats(text)


# --- one figure, whoever reads it ----------------------------------------------------------------

def test_top_and_the_autoscaler_read_the_same_figures_from_the_same_page():
    now = page("metrics.txt").replace('swarmml_infer_in_flight{model="iris-rf",version="1"} 0.0',
                                      'swarmml_infer_in_flight{model="iris-rf",version="1"} 3.0')
    # The same replica when it started: every counter at 0.
    before = re.sub(r"^(swarmml_infer_\w+(?:\{[^}]*\})?) \S+$", r"\1 0.0", now, flags=re.M)
    c0, c1 = top.counters(before), top.counters(now)
    s0, s1 = sig.read_scrape(before, at=10.0), sig.read_scrape(now, at=12.0)
    assert c1.buckets == s1.buckets and c1.in_flight == s1.in_flight == 3.0

    # First look: both show the gauge.
    assert top.rates(None, c1, 0.0)["in_flight"] == sig.replica_signal("t", s1).in_flight == 3.0

    # Between the two: the same histogram difference, the same quantiles (p50/p99 in top, p95 in the autoscaler).
    delta = {le: c1.buckets[le] - c0.buckets.get(le, 0.0) for le in c1.buckets}
    assert delta == {le: s1.buckets[le] - s0.buckets.get(le, 0.0) for le in s1.buckets}
    r, t = sig.replica_signal("t", s1, s0), top.rates(c0, c1, 2.0)
    assert r.p95_ms == pytest.approx(mf.quantile(0.95, delta) * 1000)
    assert t["p99_ms"] == pytest.approx(mf.quantile(0.99, delta) * 1000)
    assert 5 <= t["p50_ms"] < r.p95_ms < t["p99_ms"] <= 50  # 272 requests: 112 under 5 ms, 271 under 50
    assert r.rps == t["requests_per_s"] == 136.0  # 272 requests in 2 s, counted by both
