"""A load run, second by second, and the issue's measures. Pure."""
from swarmml.autoscale import timeline as tl


class R:
    def __init__(self, at_s, latency_ms, error=None):
        self.at_s, self.latency_ms, self.error = at_s, latency_ms, error


def run():
    """10 s at 2 replicas, a step up at 10 s: 4 replicas from 14 s, p99 high until 16 s; step down at 30 s."""
    recs = []
    for t in range(40):
        lat = 900.0 if 10 <= t < 16 else 20.0
        recs += [R(t + 0.1 * k, lat) for k in range(5)]
    recs.append(R(12.5, 0, error="timeout"))
    samples = [(0.5, 2, 2), (13.2, 2, 4), (14.5, 4, 4), (35.0, 4, 2), (36.0, 2, 2)]
    return tl.seconds(recs, samples, 40.0)


def test_seconds_bucket_requests_and_carry_the_replicas():
    rows = run()
    assert len(rows) == 40 and rows[0].sent == 5 and rows[12].failed == 1 and rows[12].sent == 6
    assert (rows[12].replicas, rows[13].desired, rows[14].replicas) == (2, 4, 4)
    assert rows[11].p99_ms == 900.0 and rows[20].p99_ms == 20.0


def test_summary_measures():
    s = tl.summarize("autoscale", run(), p99_target_ms=250, step_up_s=10, step_down_s=30)
    assert s.failed == 1 and s.requests == 201
    assert s.scale_changes == 2 and s.peak_replicas == 4
    assert s.reach_peak_s == 4  # 14 - 10
    assert s.p99_recovered_s == 6  # from 16 s it stays under target
    assert s.first_scale_down_s == 4  # the sample at 35.0 s is the state at the end of second 34
    assert s.p99_ok_share == 34 / 40
    assert s.replica_seconds == sum(r.replicas for r in run())
    table = tl.markdown([s, tl.summarize("static-max", run(), 250)])
    assert "| autoscale |" in table and "| static-max |" in table and "100%" in table


def test_percentile():
    assert tl.percentile([], 0.99) is None
    assert tl.percentile(list(range(1, 101)), 0.99) == 99
    assert tl.percentile([5.0], 0.99) == 5.0
