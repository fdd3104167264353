"""The placement report: replicas per node, images, unplaceable and failed tasks, from the engine's lists.

The dicts below have the shapes the Engine API answers with (GET /services, /tasks, /nodes).
"""
import copy


from swarmml.ops import placement

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
