"""Pure log logic: timestamps, merging in time order, prefixes, --since, --grep, the follow reorder buffer."""
import pytest

from swarmml.observe import logs
from swarmml.errors import UsageError

A = logs.Source("predictor", "1", "node2", "task-a")
B = logs.Source("predictor", "2", "node3", "task-b")
G = logs.Source("gateway", "1", "node1", "task-g")


def line(t, seq, source, text="x"):
    return logs.LogLine(t, seq, source, text)


def test_parse_time_keeps_nanoseconds_and_zones():
    assert logs.parse_time("2026-12-01T21:38:40.123456789Z") == 1796161120_123456789
    assert logs.parse_time("2026-12-01T21:38:40Z") == 1796161120_000000000
    assert logs.parse_time("2026-12-01T22:38:40.5+01:00") == 1796161120_500000000
    with pytest.raises(ValueError):
        logs.parse_time("yesterday")


def test_split_timestamp_and_format_time():
    t, text = logs.split_timestamp("2026-12-01T21:38:40.000001000Z [WARNING] Server predictor/replica1 is UP\r\n")
    assert text == "[WARNING] Server predictor/replica1 is UP"
    assert logs.format_time(t) == "2026-12-01T21:38:40.000001Z"


def test_merge_orders_by_time_across_tasks_and_keeps_each_tasks_order_on_ties():
    a = [line(1, 0, A, "a1"), line(5, 1, A, "a5"), line(5, 2, A, "a5bis")]
    b = [line(2, 3, B, "b2"), line(9, 4, B, "b9")]
    g = [line(5, 5, G, "g5")]
    merged = logs.merge([a, b, g])
    assert [x.text for x in merged] == ["a1", "b2", "a5", "a5bis", "g5", "b9"]


def test_merge_sorts_a_stream_that_arrived_out_of_order():
    assert [x.time_ns for x in logs.merge([[line(3, 0, A), line(1, 1, A)], []])] == [1, 3]


def test_source_names_slot_or_node():
    hosts = {"n2": "node2"}
    assert logs.source_for({"ID": "t1", "Slot": 3, "NodeID": "n2"}, "predictor", hosts).prefix == "predictor.3@node2"
    glob = logs.source_for({"ID": "t2", "NodeID": "n2"}, "agent", hosts)
    assert (glob.replica, glob.node) == ("node2", "node2")
    assert logs.source_for({"ID": "t3", "Slot": 1}, "predictor", hosts).node == "?"


def test_render_plain_pads_the_prefix_and_names_replica_and_node():
    assert logs.render(line(0, 0, A, "ready"), width=20) == "predictor.1@node2    | ready"
    stamped = logs.render(line(1796161120_000000000, 0, G, "up"), timestamps=True)
    assert stamped == "gateway.1@node1 | 2026-12-01T21:38:40.000000Z up"


def test_render_colored_escapes_rich_markup_in_the_line():
    text = logs.render(line(0, 0, G, "[WARNING] (8) : x"), color="cyan")
    assert text == r"[cyan]gateway.1@node1 |[/cyan] \[WARNING] (8) : x"


def test_colors_one_per_service_stable():
    c = logs.colors(["predictor", "gateway", "predictor"])
    assert c == {"gateway": logs.PALETTE[0], "predictor": logs.PALETTE[1]}


def test_to_json_has_every_field():
    assert line(1796161120_000000000, 0, A, "hi").to_json() == {
        "time": "2026-12-01T21:38:40.000000Z", "service": "predictor", "replica": "1", "node": "node2",
        "task": "task-a", "message": "hi"}


@pytest.mark.parametrize("value, back", [("90s", 90), ("10m", 600), ("2h", 7200), ("1h30m", 5400), ("1d", 86400),
                                         ("1.5m", 90)])
def test_parse_since_durations(value, back):
    assert logs.parse_since(value, now=10_000_000.0) == 10_000_000.0 - back


def test_parse_since_time_and_bad_input():
    assert logs.parse_since("2026-12-01T21:38:40Z", now=0) == 1796161120.0
    with pytest.raises(UsageError, match="--since"):
        logs.parse_since("ten minutes", now=0)


def test_grep():
    rx = logs.compile_grep(r"replica\d is (UP|DOWN)")
    assert logs.keep(line(0, 0, G, "Server predictor/replica3 is DOWN"), rx)
    assert not logs.keep(line(0, 0, G, "hello"), rx)
    assert logs.keep(line(0, 0, G, "hello"), logs.compile_grep(None))
    with pytest.raises(UsageError, match="--grep"):
        logs.compile_grep("(")


def test_reorder_puts_lines_from_different_streams_in_time_order():
    r = logs.Reorder(hold_s=0.3)
    r.push(line(20, 0, A, "late stamp, first to arrive"), arrived=0.0)
    r.push(line(10, 1, B, "early stamp, second to arrive"), arrived=0.1)
    assert r.ready(now=0.2) == []  # nothing has waited long enough
    assert [x.seq for x in r.ready(now=0.35)] == [1, 0]  # both out, oldest stamp first
    assert r.ready(now=5.0) == []


def test_reorder_never_holds_a_line_longer_than_hold():
    r = logs.Reorder(hold_s=0.3)
    r.push(line(10, 0, A), arrived=0.0)
    r.push(line(30, 1, B), arrived=0.25)
    assert [x.seq for x in r.ready(now=0.3)] == [0]
    assert [x.seq for x in r.ready(now=0.55)] == [1]
    r.push(line(40, 2, A), arrived=1.0)
    assert [x.seq for x in r.flush()] == [2]
