"""Spec edits for scale/update/rebalance, placement and imbalance: pure, no daemon."""
import pytest

from swarmml import ops, placement, services, specs
from swarmml.errors import NotFound, UsageError

SPEC = {
    "Name": "ml_predictor",
    "Labels": {"com.docker.stack.namespace": "ml", "com.docker.stack.image": "r/p:1"},
    "TaskTemplate": {"ContainerSpec": {"Image": "r/p:1@sha256:aa", "Env": ["A=1", "B=2"]}, "ForceUpdate": 2},
    "Mode": {"Replicated": {"Replicas": 2}},
    "UpdateConfig": {"Parallelism": 1, "Order": "start-first"},
}


@pytest.mark.parametrize("args,expected", [
    (["predictor", "10"], {"predictor": 10}),
    (["predictor=10"], {"predictor": 10}),
    (["a=1", "b=0"], {"a": 1, "b": 0}),
])
def test_parse_targets(args, expected):
    assert specs.parse_targets(args) == expected


@pytest.mark.parametrize("args", [["predictor", "-1"], ["predictor", "ten"], ["predictor=2.5"], ["=3"], ["predictor"]])
def test_bad_scale_targets(args):
    with pytest.raises(UsageError):
        specs.parse_targets(args)


def test_with_replicas_and_global_refused():
    assert specs.with_replicas(SPEC, 10)["Mode"] == {"Replicated": {"Replicas": 10}}
    assert SPEC["Mode"] == {"Replicated": {"Replicas": 2}}  # the input is not modified
    with pytest.raises(UsageError, match="is global"):
        specs.with_replicas({**SPEC, "Mode": {"Global": {}}}, 3)


def test_with_update_changes_only_what_is_asked():
    new = specs.with_update(SPEC, image="r/p:2@sha256:bb", env=["B=3", "C=4"], cpus="0.25", memory="256M",
                            parallelism="2", delay="2s", order="stop-first", failure_action="rollback",
                            monitor="10s", force=True)
    cs = new["TaskTemplate"]["ContainerSpec"]
    assert cs["Image"] == "r/p:2@sha256:bb" and new["Labels"]["com.docker.stack.image"] == "r/p:2"
    assert cs["Env"] == ["A=1", "B=3", "C=4"]
    assert new["TaskTemplate"]["Resources"]["Limits"] == {"NanoCPUs": 250_000_000, "MemoryBytes": 256 * 2**20}
    assert new["UpdateConfig"] == {"Parallelism": 2, "Order": "stop-first", "Delay": 2_000_000_000,
                                   "Monitor": 10_000_000_000, "FailureAction": "rollback"}
    assert new["TaskTemplate"]["ForceUpdate"] == 3
    assert specs.with_update(SPEC)["TaskTemplate"] == {**SPEC["TaskTemplate"], "Resources": {"Limits": {}}}


@pytest.mark.parametrize("kwargs,fragment", [
    ({"env": ["NOEQUALS"]}, "--env"), ({"cpus": "-1"}, "--cpus"), ({"cpus": "lots"}, "--cpus"),
    ({"memory": "huge"}, "--memory"), ({"delay": "soon"}, "--delay"), ({"order": "random"}, "--order"),
    ({"replicas": "-2"}, "--replicas"), ({"failure_action": "explode"}, "--failure-action"),
])
def test_update_options_are_validated(kwargs, fragment):
    with pytest.raises(UsageError, match=fragment):
        specs.with_update(SPEC, **kwargs)


def _svc(name, ns="ml"):
    return {"ID": name, "Spec": {"Name": f"{ns}_{name}" if ns else name,
                                 "Labels": {"com.docker.stack.namespace": ns} if ns else {}}}


def test_service_names_relative_to_stack():
    all_ = [_svc("predictor"), _svc("gateway"), _svc("predictor", "canary"), _svc("solo", None)]
    assert services.match(all_, "gateway")["ID"] == "gateway"
    assert services.match(all_, "ml_predictor")["Spec"]["Name"] == "ml_predictor"
    assert services.match(all_, "predictor", stack="canary")["Spec"]["Name"] == "canary_predictor"
    assert services.match(all_, "solo")["ID"] == "solo"
    with pytest.raises(UsageError, match="in several stacks"):
        services.match(all_, "predictor")
    with pytest.raises(NotFound, match="no service 'nope'"):
        services.match(all_, "nope")


def _node(i, state="ready", avail="active"):
    return {"ID": f"n{i}", "Description": {"Hostname": f"node{i}"}, "Status": {"State": state, "Addr": f"10.0.0.{i}"},
            "Spec": {"Availability": avail, "Role": "worker"}}


def _task(node, state="running", desired="running", slot=1, err=None, image="img"):
    status = {"State": state, "Timestamp": "2026-01-01T00:00:00Z", "ContainerStatus": {"ContainerID": f"c{slot}" * 6}}
    if err:
        status["Err"] = err
    return {"NodeID": node, "DesiredState": desired, "Slot": slot, "Status": status,
            "Spec": {"ContainerSpec": {"Image": image}}}


def test_placement_counts_pending_and_failed():
    svc = {"Spec": {"Name": "ml_p", "Mode": {"Replicated": {"Replicas": 4}}}}
    tasks = [_task("n1", slot=1), _task("n1", slot=2), _task("n2", slot=3),
             _task(None, state="pending", slot=4, err="no suitable node (max replicas per node limit exceed)"),
             _task("n3", state="failed", desired="shutdown", slot=5, err="task: non-zero exit (3)")]
    p = placement.placement(svc, tasks, [_node(1), _node(2), _node(3)])
    assert (p.desired, p.running, p.per_node) == (4, 3, {"node1": 2, "node2": 1})
    assert "no suitable node" in p.pending[0] and "non-zero exit (3)" in p.failed[0]
    assert placement.spread(p.per_node, ["node1", "node2", "node3"]) == 2


@pytest.mark.parametrize("per_node,expected", [
    ({"n1": 3, "n2": 3, "n3": 3}, 0), ({"n1": 4, "n2": 3, "n3": 3}, 0), ({"n1": 5, "n2": 5}, 3),
    ({"n1": 2}, 1), ({"n1": 1, "n2": 1}, 0),
])
def test_imbalance_measure(per_node, expected):
    tasks = [_task(n, slot=i) for n, c in per_node.items() for i in range(c)]
    svc = {"Spec": {"Name": "p", "Mode": {"Replicated": {"Replicas": len(tasks)}}}}
    imb = ops.measure_imbalance(svc, tasks, [_node(1), _node(2), _node(3)])
    assert imb.spread == expected


def test_url_for_host_mode_uses_the_node_running_the_task():
    svc = {"Spec": {"Name": "ml_gateway", "EndpointSpec": {"Ports": [{"PublishedPort": 8080, "PublishMode": "host",
                                                                    "TargetPort": 8080}]}}}
    url = services.url_for(svc, [_task("n2")], [_node(1), _node(2)])
    assert url == "http://10.0.0.2:8080"
    with pytest.raises(NotFound):
        services.url_for(svc, [], [_node(1)])
    with pytest.raises(UsageError, match="publishes no port"):
        services.url_for({"Spec": {"Name": "x", "EndpointSpec": {}}}, [], [_node(1)])
