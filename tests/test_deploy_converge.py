"""Convergence and the placement report: pure functions over the engine's task and node lists.

The dicts below have the shapes the Engine API answers with (GET /services, /tasks, /nodes).
"""
import copy

import pytest

from swarmml import converge, placement

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


def test_converged_when_every_replica_runs_the_current_spec():
    done, problem, p = converge.status_of(service(2), [task(1), task(2, "node2id")], NODES, SINCE)
    assert (done, problem) == (True, None)
    assert (p.running, p.desired, p.per_node) == (2, 2, {"node1": 1, "node2": 1})


def test_tasks_still_running_an_older_spec_mean_the_update_is_not_done():
    svc = service(2, env=["SWARMML_MAX_BATCH_SIZE=64"])
    tasks = [task(1, env=["SWARMML_MAX_BATCH_SIZE=64"]), task(2, "node2id")]
    assert converge.status_of(svc, tasks, NODES, SINCE)[:2] == (False, None)


def test_a_rolled_back_update_is_a_failure_with_the_task_error():
    tasks = [task(1), task(2), failed(2, "2026-11-24T17:30:09Z", err="task: non-zero exit (3)")]
    done, problem, _ = converge.status_of(service(2, update_state="rollback_completed"), tasks, NODES, SINCE)
    assert done and "update rollback completed" in problem and "non-zero exit (3)" in problem
    # ... unless a rollback is what the caller asked for.
    done, problem, _ = converge.status_of(service(2, update_state="rollback_completed"), tasks, NODES, SINCE,
                                          rollback=True)
    assert (done, problem) == (True, None)


def test_zero_replicas_converge_at_once_and_jobs_when_complete():
    assert converge.status_of(service(0), [], NODES, SINCE)[:2] == (True, None)
    job = service(mode={"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 2}})
    one = [task(1, state="complete", desired="shutdown")]
    assert converge.status_of(job, one, NODES, SINCE)[:2] == (False, None)
    assert converge.status_of(job, one + [task(2, state="complete", desired="shutdown")], NODES, SINCE)[:2] == \
        (True, None)
    global_job = service(mode={"GlobalJob": {}})  # on all three nodes
    complete = [task(None, f"node{i}id", state="complete", desired="shutdown") for i in (1, 2, 3)]
    assert converge.status_of(global_job, complete[:2], NODES, SINCE)[0] is False
    assert converge.status_of(global_job, complete, NODES, SINCE)[0] is True


def test_global_services_wait_for_every_node_their_constraints_allow():
    g = service(mode={"Global": {}})
    g["Spec"]["TaskTemplate"]["Placement"] = {"Constraints": ["node.hostname != node3"]}
    # Right after the create Swarm has made no task yet: that is not "converged".
    assert converge.status_of(g, [], NODES, SINCE)[0] is False
    made = g["Spec"]["TaskTemplate"]
    tasks = [task(None, "node1id", template=made), task(None, "node2id", state="starting", template=made)]
    assert converge.status_of(g, tasks, NODES, SINCE)[0] is False
    tasks[1] = task(None, "node2id", template=made)
    done, _, p = converge.status_of(g, tasks, NODES, SINCE)
    assert done and p.desired is None and p.per_node == {"node1": 1, "node2": 1}
    # Constrained to no node at all (like the fidelity stack's): nothing to wait for.
    g["Spec"]["TaskTemplate"]["Placement"] = {"Constraints": ["node.labels.swarmml.never == true"]}
    assert converge.status_of(g, [], NODES, SINCE)[0] is True


def test_a_replica_that_keeps_failing_fails_the_deploy_with_its_error():
    tasks = [task(1), failed(2, "2026-11-24T17:30:02Z"), failed(2, "2026-11-24T17:30:04Z"),
             failed(2, "2026-11-24T17:30:06Z", err="task: non-zero exit (2)"),
             task(2, "node3id", state="starting", at="2026-11-24T17:30:07Z")]
    svc = service(2)
    assert converge.status_of(svc, tasks, NODES, SINCE)[:2] == (False, None)  # without a limit: wait on
    assert converge.status_of(svc, tasks[:3], NODES, SINCE, give_up_after=3)[:2] == (False, None)
    done, problem, p = converge.status_of(svc, tasks, NODES, SINCE, give_up_after=3)
    assert done and problem == "ml_predictor.2 failed 3 times: task: non-zero exit (2)"
    assert len(p.failed) == 3 and p.pending == ["ml_predictor.2 starting on node3: starting"]


def test_failures_before_the_deploy_and_replicas_running_again_do_not_count():
    old = [failed(1, f"2026-11-24T17:29:5{i}Z") for i in range(3)]
    assert converge.failing_replicas(service(2), old, SINCE, 3) == []
    recovered = [failed(1, f"2026-11-24T17:30:0{i}Z") for i in range(3)] + [task(1, "node3id")]
    assert converge.failing_replicas(service(2), recovered, SINCE, 3) == []
    assert converge.failing_replicas(service(2), recovered[:3], SINCE, 3)[0][:2] == (1, 3)


@pytest.mark.parametrize("restart,limit", [
    ({"Condition": "none"}, 1), ({"Condition": "on-failure", "MaxAttempts": 2}, 2), ({"Condition": "any"}, 3),
    ({"Condition": "any", "MaxAttempts": 10}, 3),
])
def test_the_restart_policy_can_give_up_sooner(restart, limit):
    svc = service(1, restart=restart)
    tasks = []
    for i in range(1, 4):
        tasks.append(failed(1, f"2026-11-24T17:30:0{i}Z", err="No such image: x:latest", state="rejected"))
        found = converge.failing_replicas(svc, tasks, SINCE, 3)
        assert bool(found) == (i >= limit), (restart, i)
    assert found[0][2] == "No such image: x:latest"


def test_a_global_replica_is_a_node():
    g = service(mode={"Global": {}})
    g["Spec"]["TaskTemplate"]["Placement"] = {"Constraints": ["node.hostname != node2"]}
    tasks = [failed(None, f"2026-11-24T17:30:0{i}Z", node_id="node3id") for i in range(3)] + [task(None, "node1id")]
    # Swarm has already made node3's next attempt; it waits out the restart delay.
    tasks.append(task(None, "node3id", state="ready", at="2026-11-24T17:30:04Z"))
    done, problem, _ = converge.status_of(g, tasks, NODES, SINCE, give_up_after=3)
    assert done and problem.startswith("ml_predictor on node node3id failed 3 times")


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
