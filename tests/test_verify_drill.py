"""The node-loss drill's bookkeeping: which node it stops, failures per phase. Pure."""
import pytest

from swarmml.errors import SwarmmlError
from swarmml.loadgen import Record
from swarmml.verify import drill


def _node(nid, role="worker", state="ready"):
    return {"ID": nid, "Description": {"Hostname": f"host-{nid}"}, "Spec": {"Role": role}, "Status": {"State": state}}


def _task(nid, state="running"):
    return {"NodeID": nid, "DesiredState": "running", "Status": {"State": state}}


def test_drill_stops_the_busiest_worker_without_the_gateway():
    nodes = [_node("m", role="manager"), _node("w1"), _node("w2"), _node("w3", state="down")]
    tasks = [_task("m"), _task("m"), _task("m"), _task("w1"), _task("w1"), _task("w2"), _task("w2"), _task("w2"),
             _task("w2", state="starting"), _task("w3")]
    assert drill.choose_victim(tasks, nodes, gateway_nodes={"m"}) == ("w2", "host-w2", 3)
    assert drill.choose_victim(tasks, nodes, gateway_nodes={"w2"}) == ("w1", "host-w1", 2)
    with pytest.raises(SwarmmlError, match="no ready worker") as refused:
        drill.choose_victim(tasks, nodes, gateway_nodes={"w1", "w2"})
    assert refused.value.exit_code == 1  # the cluster's shape, not the user's input


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
