"""Rebalance's measure and plan, stack history's storage rules, service names: pure, no daemon."""
import itertools
import json
import zlib

import pytest

from ops_helpers import NODES, node, service, spec, task
from swarmml import services
from swarmml.errors import NotFound, UsageError
from swarmml.ops import history
from swarmml.ops.rebalance import extra_replicas, measure, simulate, spread
from swarmml.ops.rollback import missing_secrets, stack_changes

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


def test_history_stores_no_secret_data_and_reads_back():
    desired = {"namespace": "ml", "services": {"ml_p": spec(2)}, "secrets": {"ml_key": {"Name": "ml_key",
                                                                                        "Data": "c2VjcmV0"}}}
    data = history.encode(desired)
    assert b"c2VjcmV0" not in zlib.decompress(data)
    back = history.decode(data)
    assert back["secrets"] == {"ml_key": {"Name": "ml_key"}} and back["services"]["ml_p"] == spec(2)


def test_history_keeps_the_newest_revisions():
    assert history.next_revision([]) == 1 and history.next_revision([3, 7]) == 8
    assert history.to_drop(range(1, 10)) == []
    assert history.to_drop(range(1, 11)) == [1]
    assert history.to_drop([5, 2, 9, 3, 4, 6, 7, 8, 10, 11, 12]) == [2, 3]


def test_stack_changes_between_running_specs_and_a_revision():
    now = {"ml_p": spec(3), "ml_new": spec(1, name="ml_new")}
    older = spec(2)
    older["TaskTemplate"]["ContainerSpec"]["Image"] = "r/p:1@sha256:00"
    older["TaskTemplate"]["ContainerSpec"]["Env"] = ["A=1"]
    changes = stack_changes(now, {"ml_p": older, "ml_old": spec(1, name="ml_old")})
    assert [(c.service, c.field) for c in changes] == [("ml_new", "service"), ("ml_old", "service"),
                                                     ("ml_p", "image"), ("ml_p", "replicas"), ("ml_p", "env")]
    assert changes[0].new == "removed" and changes[1].new == "created"
    assert changes[4].old == ["B=2"] and changes[4].new == []
    assert missing_secrets({"secrets": {"a": {}, "b": {}}}, {"a"}) == ["b"]


def _named(name, ns=None):
    return {"ID": name, "Spec": {"Name": f"{ns}_{name}" if ns else name,
                                 "Labels": {"com.docker.stack.namespace": ns} if ns else {}}}


def test_service_names_are_relative_to_their_stack():
    found = [_named("predictor", "ml"), _named("gateway", "ml"), _named("predictor", "canary"), _named("solo")]
    assert services.match(found, "gateway")["Spec"]["Name"] == "ml_gateway"
    assert services.match(found, "ml_predictor")["Spec"]["Name"] == "ml_predictor"
    assert services.match(found, "predictor", stack="canary")["Spec"]["Name"] == "canary_predictor"
    assert services.match(found, "solo")["ID"] == "solo"
    with pytest.raises(UsageError, match="in several stacks \\(canary, ml\\); add --stack"):
        services.match(found, "predictor")
    with pytest.raises(NotFound, match="no service 'nope' in stack 'ml' \\(services: ml_gateway, ml_predictor\\)"):
        services.match(found, "nope", stack="ml")
    assert [s["Spec"]["Name"] for s in services.of_stack(found, "ml")] == ["ml_gateway", "ml_predictor"]
    with pytest.raises(NotFound, match="no stack named 'nostack'"):
        services.of_stack(found, "nostack")


def test_not_found_is_bad_input():
    assert NotFound("x").exit_code == 2


def test_node_helper_shape():
    assert node(2)["Description"]["Hostname"] == "node2"
