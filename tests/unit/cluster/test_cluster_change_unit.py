"""What `cluster up --expose/--registry-auth` changes on a running cluster: pure decisions, no daemon."""
import pytest

from swarmml.cluster.change import (Change, drains, keeps_address, lowest_free, plan_change, recreate_order,
                                    settled, tasks_back)


def row(hostname, role="manager", state="ready", leader=False, reachable=True, availability="active"):
    return {"hostname": hostname, "role": role, "state": state, "leader": leader, "availability": availability,
            "reachable": reachable if role == "manager" else False}


@pytest.mark.parametrize("exposed, wanted, asks, wants, expected", [
    ([], ["ssh", "tls"], False, False, Change(("ssh", "tls"), False)),  # the case: expose a plain one
    (["ssh"], ["tls"], False, False, Change(("ssh", "tls"), False)),  # adds: ssh stays
    (["ssh", "tls"], ["tls"], False, False, Change()),  # already there
    (["ssh", "tls"], [], False, False, Change()),  # up without the flag takes nothing away
    ([], [], False, True, Change((), True)),
    ([], [], True, True, Change()),  # already asks for a login
    ([], [], True, False, Change()),  # and keeps asking
])
def test_a_running_cluster_gets_only_what_it_lacks(exposed, wanted, asks, wants, expected):
    change = plan_change(exposed, wanted, asks, wants)
    assert change == expected
    assert bool(change) == (expected != Change())


def test_managers_are_recreated_one_by_one_followers_first_the_leader_last():
    rows = [row("node1", leader=True), row("node3"), row("node2"), row("node4", role="worker")]
    assert recreate_order(rows) == ["node2", "node3", "node1"]
    # node10 after node2 (numbers, not text); a worker node1 still goes: the host publishes its ports
    rows = [row("node10"), row("node2", leader=True), row("node1", role="worker")]
    assert recreate_order(rows) == ["node1", "node10", "node2"]
    assert recreate_order([row("node1", leader=True)]) == ["node1"]


def test_a_node_is_drained_first_only_when_its_tasks_have_somewhere_to_go():
    rows = [row("node1", leader=True), row("node2"), row("node3", role="worker")]
    assert drains("node1", rows) and drains("node3", rows)
    assert not drains("node1", rows[:1])  # alone: its tasks would only wait
    others_away = [rows[0], row("node2", state="down"), row("node3", role="worker", availability="drain")]
    assert not drains("node1", others_away)
    # a node its operator drained (or paused) stays as it is, and is not made active afterwards
    assert not drains("node2", [rows[0], row("node2", availability="drain")])
    assert not drains("node2", [rows[0], row("node2", availability="pause")])


def test_the_engine_hands_out_the_lowest_free_address():
    assert lowest_free("172.18.0.0/16", {"172.18.0.1", "172.18.0.2", "172.18.0.4"}) == "172.18.0.3"
    assert lowest_free("10.0.0.0/30", {"10.0.0.1", "10.0.0.2"}) is None


def test_a_node_gets_its_address_back_only_when_no_lower_one_is_free():
    network = {"subnet": "172.18.0.0/16", "gateway": "172.18.0.1",
               "held": {"reg": "172.18.0.2", "n1": "172.18.0.3", "n2": "172.18.0.4", "n3": "172.18.0.5"}}
    assert all(keeps_address(network, a) for a in network["held"].values())
    del network["held"]["n1"]  # node1 stopped: its address is free, below node2's and node3's
    assert not keeps_address(network, "172.18.0.4") and not keeps_address(network, "172.18.0.5")
    assert keeps_address(network, "172.18.0.2")


def test_settled_needs_a_leader_every_node_ready_and_every_manager_reachable():
    rows = [row("node1", leader=True), row("node2"), row("node3"), row("node4", role="worker")]
    assert settled(rows, 4)
    assert not settled(rows, 5)  # a node not back in the list yet
    assert not settled([dict(r, leader=False) for r in rows], 4)  # electing
    assert not settled(rows[:1] + [row("node2", reachable=False)] + rows[2:], 4)
    assert not settled(rows[:3] + [row("node4", role="worker", state="down")], 4)


def test_tasks_are_back_when_every_service_runs_as_many_as_before():
    before = [{"node": "a", "service": "s"}, {"node": "b", "service": "s"}, {"node": "a", "service": "t"}]
    assert tasks_back(before, before)
    moved = [{"node": "a", "service": "s"}, {"node": "a", "service": "s"}, {"node": "c", "service": "t"}]
    assert tasks_back(before, moved)  # another node runs them: that counts
    assert not tasks_back(before, before[1:])
    assert tasks_back([], [])
