"""Placement report, constraints and service URLs: pure functions over the engine's task and node lists.

The dicts below have the shapes the Engine API answers with (GET /services, /tasks, /nodes).
"""
import copy

import pytest

from swarmml import placement, services
from swarmml.errors import NotFound

SINCE = "2026-11-24T17:30:00Z"
IMAGE = "registry:5000/swarmml/predictor:latest@sha256:" + "0123456789abcdef" * 4


def node(i, state="ready", availability="active", addr=None):
    return {"ID": f"node{i}id", "Description": {"Hostname": f"node{i}"},
            "Status": {"State": state, "Addr": addr or f"172.30.0.{i + 1}"},
            "Spec": {"Availability": availability, "Role": "worker"}}


NODES = [node(1), node(2), node(3)]


def task(slot, node_id="node1id", state="running", desired="running", at="2026-11-24T17:30:05.1Z", err=None,
         message=None, image=IMAGE, tid=None, env=None, template=None):
    """A task; its Spec is the service's TaskTemplate it was made from (template), or one with image/env."""
    status = {"State": state, "Timestamp": at, "Message": message or state}
    if err:
        status["Err"] = err
    spec = copy.deepcopy(template) if template else {"ContainerSpec": {"Image": image, **({"Env": env} if env else {})}}
    return {"ID": tid or f"t{slot}{state}{at[-6:-1]}", "Slot": slot, "NodeID": node_id, "DesiredState": desired,
            "Status": status, "Spec": spec}


def service(replicas=2, mode=None, restart=None, update_state=None, env=None):
    template = {"ContainerSpec": {"Image": IMAGE, **({"Env": env} if env else {})}}
    if restart:
        template["RestartPolicy"] = restart
    svc = {"ID": "svc1", "Spec": {"Name": "ml_predictor", "TaskTemplate": template,
                                  "Mode": mode or {"Replicated": {"Replicas": replicas}}}}
    if update_state:
        svc["UpdateStatus"] = {"State": update_state, "Message": "update rolled back due to failure"}
    return svc


def failed(slot, at, err="task: non-zero exit (1)", node_id="node2id", state="failed"):
    return task(slot, node_id, state=state, desired="shutdown", at=at, err=err)


def labelled(i, role="worker", labels=None, engine_labels=None, arch="x86_64", **kw):
    n = node(i, **kw)
    n["Spec"].update(Role=role, Labels=labels or {})
    n["Description"].update(Platform={"OS": "linux", "Architecture": arch}, Engine={"Labels": engine_labels})
    return n


@pytest.mark.parametrize("constraint,expected", [
    ("node.role == manager", [1]), ("node.role==worker", [2, 3, 4]), ("node.role != manager", [2, 3, 4]),
    ("node.hostname == NODE2", [2]), ("node.id == node3id", [3]),
    ("node.labels.zone == eu", [2, 3]), ("node.labels.zone != eu", [1, 4]), ("node.labels.Zone == eu", []),
    ("engine.labels.ssd == true", [4]), ("node.platform.os == linux", [1, 2, 3, 4]),
    ("node.platform.arch == aarch64", [3]), ("node.ip == 172.30.0.0/24", [1, 2, 3, 4]),
    ("node.ip != 172.30.0.3", [1, 3, 4]), ("node.ip == not-an-address", []), ("node.colour == red", []),
])
def test_constraints_read_like_swarm_reads_them(constraint, expected):
    nodes = [labelled(1, role="manager"), labelled(2, labels={"zone": "eu"}),
             labelled(3, labels={"zone": "EU"}, arch="aarch64"), labelled(4, engine_labels={"ssd": "true"})]
    spec = {"TaskTemplate": {"Placement": {"Constraints": [constraint]}}}
    assert [int(n["ID"][4]) for n in placement.eligible_nodes(spec, nodes)] == expected


def test_eligible_nodes_are_ready_active_and_fit_the_image_platforms():
    nodes = [labelled(1), labelled(2, state="down"), labelled(3, availability="drain"),
             labelled(4, availability="pause"), labelled(5, arch="aarch64")]
    spec = {"TaskTemplate": {"Placement": {"Platforms": [{"Architecture": "amd64", "OS": "linux"}]}}}
    assert [n["ID"] for n in placement.eligible_nodes(spec, nodes)] == ["node1id"]
    multi = {"TaskTemplate": {"Placement": {"Platforms": [{"Architecture": "amd64", "OS": "linux"},
                                                          {"Architecture": "", "OS": "linux"}]}}}
    assert [n["ID"] for n in placement.eligible_nodes(multi, nodes)] == ["node1id", "node5id"]


def test_placement_report_lines_and_rows():
    tasks = [task(1), task(2), task(3, "node2id"),
             task(4, None, state="pending", message="pending task scheduling",
                  err="no suitable node (insufficient resources on 3 nodes)"),
             failed(5, "2026-11-24T17:30:03Z", err="task: non-zero exit (137)"),
             failed(5, "2026-11-24T17:29:00Z", err="an older failure")]
    p = placement.placement(service(5), tasks, NODES, since=SINCE)
    assert p.per_node == {"node1": 2, "node2": 1} and p.images == [IMAGE]
    assert p.unplaceable == ["ml_predictor.4 pending: no suitable node (insufficient resources on 3 nodes)"]
    assert p.failed == ["ml_predictor.5 failed on node2: task: non-zero exit (137)"]
    (row,) = placement.rows([p])
    assert row == {"service": "ml_predictor", "replicas": "3/5", "per_node": "node1:2 node2:1",
                   "image": "predictor:latest@sha256:0123456789ab",
                   "problems": "ml_predictor.4 pending: no suitable node (insufficient resources on 3 nodes); "
                               "ml_predictor.5 failed on node2: task: non-zero exit (137)"}


def _published(mode, port=8080):
    return {"ID": "g", "Spec": {"Name": "ml_gateway", "EndpointSpec": {"Ports": [
        {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": port, "PublishMode": mode}]}},
        "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": port, "PublishMode": mode}]}}


def test_url_of_a_host_mode_port_is_a_node_running_a_task():
    nodes = [node(1), node(2, state="down"), node(3)]
    tasks = [task(1, "node2id"), task(2, "node3id"), task(3, "node1id", state="starting")]
    # node2 is down (its task is stale) and node1's task is not running yet: only node3 answers.
    assert services.url_for(_published("host", 8091), tasks, nodes) == "http://172.30.0.4:8091"
    with pytest.raises(NotFound, match="no running task"):
        services.url_for(_published("host"), tasks[2:], nodes)


def test_url_of_an_ingress_port_is_any_ready_node():
    assert services.url_for(_published("ingress"), [], [node(2, state="down"), node(3)]) == "http://172.30.0.4:8080"
