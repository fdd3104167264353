"""The node-loss drill's bookkeeping: which node it loses, the quorum, the entry point's silence, failures
per phase. Pure."""
import pytest

from swarmml.errors import UsageError
from swarmml.verify.loadgen import Record
from swarmml.verify import drill


def _node(nid, role="worker", state="ready", leader=False):
    n = {"ID": nid, "Description": {"Hostname": f"host-{nid}"}, "Spec": {"Role": role}, "Status": {"State": state}}
    if role == "manager":
        n["ManagerStatus"] = {"Leader": leader, "Reachability": "reachable"}
    return n


def _task(nid, state="running"):
    return {"NodeID": nid, "DesiredState": "running", "Status": {"State": state}}


# Three managers (m1 leads), a worker and a worker that is down; m2 holds the gateway's floating IP.
NODES = [_node("m1", "manager", leader=True), _node("m2", "manager"), _node("m3", "manager"), _node("w1"),
         _node("w2", state="down")]
TASKS = [_task("m1"), _task("m2"), _task("m3"), _task("m3"), _task("w1"), _task("w2"), _task("m3", "starting")]


def test_the_drill_loses_the_leader_the_gateway_or_a_node_that_is_neither():
    assert drill.choose_node("leader", TASKS, NODES, holder="m2") == ("m1", "host-m1", 1, ["leader"])
    assert drill.choose_node("gateway", TASKS, NODES, holder="m2") == ("m2", "host-m2", 1, ["gateway"])
    # A Swarm worker goes first among the others, even with fewer replicas than m3.
    assert drill.choose_node("worker", TASKS, NODES, holder="m2") == ("w1", "host-w1", 1, [])
    assert drill.choose_node("worker", TASKS, NODES[:3], holder="m2") == ("m3", "host-m3", 2, [])
    # One node may be both, as on a cluster where the leader also holds the floating IP.
    assert drill.choose_node("host-m1", TASKS, NODES, holder="m1") == ("m1", "host-m1", 1, ["leader", "gateway"])


@pytest.mark.parametrize("which, holder, says", [
    ("gateway", None, "--node gateway: no ready node is the gateway (no node holds the gateway's address)"),
    ("worker", "m2", "--node worker: no ready node runs replicas without being the leader or holding"),
    ("host-x", "m2", "--node: expected a node's hostname or leader, gateway, worker, got 'host-x' (nodes: host-m1,"),
])
def test_a_node_the_drill_cannot_lose_is_one_line(which, holder, says):
    nodes = NODES[:2] if which == "worker" else NODES
    with pytest.raises(UsageError) as refused:
        drill.choose_node(which, TASKS, nodes, holder=holder)
    assert str(refused.value).startswith(says) and "\n" not in str(refused.value)


def test_losing_a_manager_is_refused_when_it_would_cost_the_quorum():
    assert drill.quorum_problem(NODES, "m1") is None  # 2 of 3 managers remain
    assert drill.quorum_problem(NODES, "w1") is None  # not a manager
    one = [_node("m1", "manager", leader=True), _node("w1")]
    assert drill.quorum_problem(one, "m1").startswith("losing it leaves 0 of 1 managers, no quorum")
    two = NODES[:2]
    assert drill.quorum_problem(two, "m2").startswith("losing it leaves 1 of 2 managers, no quorum")
    down = [NODES[0], NODES[1], _node("m3", "manager", state="down")]
    assert drill.quorum_problem(down, "m1").startswith("losing it leaves 1 of 3 managers")


def test_the_entry_points_silence_is_the_longest_wait_between_answers():
    # 10 requests/s; the node dies 0.2 s after t=10, the floating IP moves 2 s later: requests sent
    # meanwhile hang, then all answer at 12.2; two on open connections fail at once.
    records = [Record(t / 10, 5.0, 200, None, "r") for t in range(100)]
    records += [Record(10.0 + i / 10, (12.2 - 10.0 - i / 10) * 1000, 200, None, "r") for i in range(2, 22)]
    records += [Record(10.1, 100.0, 0, "IncompleteReadError", None), Record(10.15, 50.0, 0, "Incomplete", None)]
    records += [Record(10.0, 5.0, 200, None, "r"), Record(10.1, 5.0, 200, None, "r")]
    records += [Record(12.2 + i / 10, 5.0, 200, None, "r") for i in range(30)]
    assert drill.answers_again_s(records, t_stop=10.0) == pytest.approx(2.1, abs=0.02)
    assert drill.answers_again_s(records, t_stop=10.0, t_end=11.0) == pytest.approx(0.9, abs=0.02)
    assert drill.answers_again_s([r for r in records if r.error], 10.0) is None


def test_drill_counts_failures_per_phase():
    records = [Record(t / 10, 5.0, 200, None, "r") for t in range(300)]
    records[105] = Record(10.5, 30.0, 0, "ConnectionResetError", None)
    records[150] = Record(15.0, 30.0, 503, "http_503", None)
    s = drill.summarize(records, t_stop=10.0, t_recovered=20.0, t_return=24.0, t_end=30.0)
    assert s["requests"] == 300 and s["failed"] == 2 and s["failed_pct"] == round(200 / 300, 4)
    assert s["error_kinds"] == {"ConnectionResetError": 1, "http_503": 1} and s["failures_at_s"] == [0.5, 5.0]
    assert s["phases"] == {"before": {"from_s": -10.0, "requests": 100, "failed": 0},
                           "node_lost": {"from_s": 0.0, "requests": 100, "failed": 2},
                           "recovered": {"from_s": 10.0, "requests": 40, "failed": 0},
                           "node_back_and_rebalance": {"from_s": 14.0, "requests": 60, "failed": 0}}
    assert "recovered" not in drill.summarize(records, 10.0, None, 24.0, 30.0)["phases"]
