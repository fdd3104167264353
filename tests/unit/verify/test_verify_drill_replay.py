"""The node-loss drill on a replayed node loss (tests/data/engine/node-down.json): every branch, no daemon.

The recording: 6 replicas over 3 nodes, node3's container stopped, Swarm marking it down and
running its replicas elsewhere, node3 started again. The drill's own operations (stop, start,
rebalance, "is the node's container running") and its load are stand-ins that move the replay.
The recording has no gateway service: the drill is told one runs where node1's tasks run (an
addition, not an edit of what was recorded).
"""
import types

import pytest
from engine_replay import Clock, Replay

from swarmml.verify.loadgen import Record
from swarmml.verify import drill

NAME, GATEWAY = "rec_nodedown", "rec_gateway"


class Load:
    """drill.Background's stand-in: its clock is the replay's; tests add the requests' records."""

    def __init__(self, clock):
        self.clock, self.records, self.t0 = clock, [], clock.t
        self.result = types.SimpleNamespace(records=self.records)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def elapsed(self):
        return self.clock.t - self.t0


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(drill, "time", c)
    return c


class Drill:
    """One replayed drill: the replay, the operations the drill calls, and what they were asked."""

    def __init__(self, clock, restarted_by_someone_else=False):
        self.clock = clock
        self.replay = Replay("node-down", clock, start="created")
        self.replay.jump_to("stopped node3")
        self.replay._align(self.replay.frame_after("stopped node3")["at_s"] - 3.5)  # all 6 run, 3.5 s before
        svc = self.replay.frame()["service"]
        node1 = next(n["ID"] for n in self.replay.frame()["nodes"] if n["Description"]["Hostname"] == "node1")
        gw_task = {"ID": "gw1", "NodeID": node1, "DesiredState": "running", "Status": {"State": "running"}}
        self.replay.extra_services[GATEWAY] = ({**svc, "ID": "gw", "Spec": {**svc["Spec"], "Name": GATEWAY}},
                                               [gw_task])
        self.restarted = restarted_by_someone_else
        self.asked = []

    def stop_node(self, cluster, host):
        self.asked.append(("stop", host))
        self.replay.jump_to("stopped node3")

    def start_node(self, cluster, host):
        self.asked.append(("start", host))
        self.replay.jump_to("started node3")

    def node_running(self, cluster, host):
        return self.restarted

    def rebalance(self, client, name):
        self.asked.append(("rebalance", name))
        return types.SimpleNamespace(ok=True, problems=[])

    def run(self, monkeypatch, **limits):
        load = Load(self.clock)
        monkeypatch.setattr(drill, "Background", lambda *a, **k: load)
        return drill.node_loss(self.replay, NAME, GATEWAY, "http://gw/v2/models/m/infer", "{}", "rollout",
                               self.rebalance, self.stop_node, self.start_node, self.node_running, **limits)


def test_the_drill_measures_when_swarm_marked_the_node_down_and_ran_its_replicas_elsewhere(clock, monkeypatch):
    d = Drill(clock)
    result = d.run(monkeypatch)
    assert d.asked == [("stop", "node3"), ("start", "node3"), ("rebalance", NAME)]
    assert (result["node"], result["replicas_on_node"], result["desired"]) == ("node3", 2, 6)
    events = d.replay.events
    node3 = next(n["ID"] for n in d.replay.frames[0]["nodes"] if n["Description"]["Hostname"] == "node3")
    recorded_recovery = next(f["at_s"] for f in d.replay.frames if f["at_s"] > events["stopped node3"] and sum(
        1 for t in f["tasks"] if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
        and t["NodeID"] != node3) == 6)
    assert result["recovery_s"] == pytest.approx(recorded_recovery - d.replay.frame_after("stopped node3")["at_s"],
                                                 abs=drill.POLL_S)
    assert 0 < result["marked_down_s"] < result["recovery_s"]
    assert result["heartbeat_s"] == 5.0
    assert result["ok"] and result["problems"] == []


def test_a_recovery_slower_than_the_limit_fails_the_drill(clock, monkeypatch):
    result = Drill(clock).run(monkeypatch, max_recovery_s=1.0)
    assert not result["ok"] and result["problems"] == [
        f"node-loss drill: replicas ran again after {result['recovery_s']:.1f} s > 1.0 s"]


def test_replicas_not_back_within_the_drills_timeout_fail_it_and_the_node_is_started_again(clock, monkeypatch):
    monkeypatch.setattr(drill, "RECOVERY_TIMEOUT_S", 1)
    d = Drill(clock)
    result = d.run(monkeypatch)
    assert result["recovery_s"] is None and result["problems"] == [
        "node-loss drill: the 6 replicas did not run again within 1 s"]
    assert ("start", "node3") in d.asked


def test_a_node_restarted_by_someone_else_voids_the_drill_without_a_type_error(clock, monkeypatch):
    # Before the fix `recovered` stayed None here and `recovered > max_recovery_s` raised TypeError.
    d = Drill(clock, restarted_by_someone_else=True)
    result = d.run(monkeypatch)
    assert result["recovery_s"] is None and not result["ok"]
    assert len(result["problems"]) == 1
    assert result["problems"][0].startswith("node-loss drill: node3 was started again by something else")


def test_failed_requests_while_the_node_was_lost_are_counted_in_that_phase(clock, monkeypatch):
    d = Drill(clock)
    load = Load(clock)

    def failing_background(*args, **kwargs):
        return load
    monkeypatch.setattr(drill, "Background", failing_background)
    real_sleep = clock.sleep

    def sleep_with_requests(seconds):
        # One request per 0.1 s of replay time; those sent while node3's replicas are lost fail.
        lost = ("stop", "node3") in d.asked and ("start", "node3") not in d.asked
        for i in range(int(seconds * 10)):
            at = load.elapsed() + i / 10
            load.records.append(Record(at, 1.0, 0 if lost and i % 10 == 0 else 200,
                                       "connect" if lost and i % 10 == 0 else None, "r"))
        real_sleep(seconds)
    monkeypatch.setattr(drill.time, "sleep", sleep_with_requests)
    result = drill.node_loss(d.replay, NAME, GATEWAY, "http://gw", "{}", "rollout", d.rebalance, d.stop_node,
                             d.start_node, d.node_running, max_failed_pct=100.0)
    assert result["failed"] > 0 and result["error_kinds"] == {"connect": result["failed"]}
    assert result["phases"]["before"]["failed"] == 0
    assert result["phases"]["node_lost"]["failed"] > 0
