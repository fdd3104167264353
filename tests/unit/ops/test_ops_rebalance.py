"""Rebalance's measure and plan: pure, no daemon."""
import itertools

import pytest

from ops_helpers import NODES, service, spec, task
from swarmml.ops.rebalance import extra_replicas, measure, simulate, spread

EVEN = ["node1", "node2", "node3"]


@pytest.mark.parametrize("per_node,expected", [
    ({"node1": 2, "node2": 2, "node3": 2}, 0),
    ({"node1": 3, "node2": 2, "node3": 2}, 0),  # 7 over 3: 3-2-2 is as even as it gets
    ({"node1": 3, "node2": 3, "node3": 0}, 2),  # a node came back empty
    ({"node1": 3, "node2": 2, "node3": 1}, 1),
    ({"node1": 2}, 1),
    ({}, 0),
    ({"node1": 2, "node2": 2, "gone": 2}, 2),  # replicas on a node that is no longer eligible are displaced
])
def test_spread_is_the_distance_from_an_even_spread(per_node, expected):
    assert spread(per_node, EVEN) == expected


def test_measure_reads_running_tasks_on_eligible_nodes():
    tasks = [task("n1", 1), task("n1", 2), task("n1", 3), task("n2", 4), task("n2", 5), task("n2", 6),
             task("n3", 7, state="shutdown", desired="shutdown")]
    imb = measure(service(spec(6)), tasks, NODES)
    assert (imb.per_node, imb.eligible, imb.spread) == ({"node1": 3, "node2": 3}, EVEN, 2)
    workers_only = measure(service(spec(6, constraints=["node.role==worker"])), tasks, NODES)
    assert workers_only.eligible == ["node2", "node3"] and workers_only.spread == 3


@pytest.mark.parametrize("per_node,extra", [
    ({"node1": 3, "node2": 3, "node3": 0}, 2),
    ({"node1": 4, "node2": 1, "node3": 1}, 2),
    ({"node1": 5, "node2": 1, "node3": 1}, 2),
    ({"node1": 3, "node2": 3, "node3": 1}, 1),
    ({"node1": 4, "node2": 2, "node3": 2}, 1),  # nobody below floor, one above ceil
    ({"node1": 6, "node2": 0, "node3": 0}, 4),
])
def test_scaling_up_then_down_moves_exactly_the_surplus(per_node, extra):
    assert extra_replicas(per_node, EVEN) == extra
    assert spread(simulate(per_node, EVEN, extra), EVEN) == 0
    assert sum(simulate(per_node, EVEN, extra).values()) == sum(per_node.values())


def test_every_small_placement_is_evened_by_some_extra_replicas():
    for counts in itertools.product(range(6), repeat=3):
        per_node = dict(zip(EVEN, counts))
        extra = extra_replicas(per_node, EVEN)
        if spread(per_node, EVEN) and sum(counts):
            assert extra is not None, per_node
            assert spread(simulate(per_node, EVEN, extra), EVEN) == 0


def test_max_replicas_per_node_can_leave_no_room_to_move_through():
    assert simulate({"node1": 2, "node2": 2, "node3": 0}, EVEN, 1, cap=2) == \
        {"node1": 1, "node2": 2, "node3": 1}
    assert extra_replicas({"node1": 2, "node2": 2}, ["node1", "node2"], cap=2) is None
    assert extra_replicas({"node1": 2, "node2": 2, "node3": 0}, EVEN, cap=2) == 1
