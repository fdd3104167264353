"""The rollout reader on hand-built engine answers: each rule of swarmml.ops.rollout, one test each.

`fresh` stands for the engine's answer to /tasks?filters={"_up-to-date":["true"]}: which tasks
Swarm itself finds up to date. The replayed recordings (test_rollout_replay.py) check the same
rules on real answers.
"""
import pytest
from ops_helpers import NODES, TEMPLATE, node, service, spec, task, with_image

from swarmml.ops import rollout

NEW = with_image(TEMPLATE, "registry:5000/swarmml/predictor:2@sha256:bb")
SINCE = "2026-01-01T00:00:00Z"


def ids(tasks):
    return {t["ID"] for t in tasks}


def failed(slot, ts, err="task: non-zero exit (1)", node_id="n2", state="failed"):
    return task(node_id, slot, state=state, desired="shutdown", err=err, ts=ts, tid=f"f{slot}{ts}")


def test_done_when_the_replicas_run_and_swarm_finds_them_up_to_date():
    tasks = [task("n1", 1), task("n2", 2)]
    r = rollout.read(service(spec(2)), tasks, ids(tasks), NODES)
    assert (r.done, r.ok, r.phase, r.running, r.fresh, r.desired) == (True, True, "done", 2, 2, 2)


def test_tasks_swarm_finds_stale_mean_not_done_whatever_their_spec_says():
    # A change of networks alone: the task specs we can read look the same, Swarm says otherwise.
    tasks = [task("n1", 1), task("n2", 2)]
    r = rollout.read(service(spec(2)), tasks, ids(tasks[:1]), NODES)
    assert not r.done and (r.running, r.fresh) == (2, 1)


def test_tasks_swarm_keeps_after_a_constraint_change_are_fresh_though_their_spec_differs():
    svc = service(spec(2, constraints=["node.platform.os == linux"]))
    tasks = [task("n1", 1), task("n2", 2)]  # made before the constraint: their Placement is empty
    assert rollout.read(svc, tasks, ids(tasks), NODES).done


def test_a_scale_is_done_when_the_replicas_run():
    tasks = [task("n1", 1), task("n2", 2)]
    r = rollout.read(service(spec(3)), tasks, ids(tasks), NODES, mode="scale")
    assert not r.done and (r.running, r.desired, r.phase) == (2, 3, "scaling")
    tasks.append(task("n3", 3))
    assert rollout.read(service(spec(3)), tasks, ids(tasks), NODES, mode="scale").done
    # Scaling down: done once the surplus stopped, not while it still runs.
    assert not rollout.read(service(spec(2)), tasks, ids(tasks), NODES, mode="scale").done


def test_a_task_on_a_node_marked_down_does_not_count():
    tasks = [task("n1", 1), task("n2", 2), task("n3", 3)]
    nodes = [NODES[0], NODES[1], node(3, state="down")]
    r = rollout.read(service(spec(3)), tasks, ids(tasks), nodes, mode="scale")
    assert not r.done and r.running == 2


def test_an_update_counts_its_batches_and_ends_when_swarm_says_completed():
    us = {"State": "updating", "StartedAt": "2026-01-01T00:01:00Z"}
    svc = service(spec(3, template=NEW), update_status=us)
    new = [task(f"n{i}", i, template=NEW, tid=f"new{i}") for i in (1, 2, 3)]
    assert rollout.read(svc, new[:1] + [task("n2", 2), task("n3", 3)], ids(new), NODES).fresh == 1
    r = rollout.read(svc, new, ids(new), NODES)
    assert not r.done and r.phase == "updating"  # the last batch's monitor period runs
    us["State"] = "completed"
    assert rollout.read(svc, new, ids(new), NODES).done


def test_an_older_update_status_is_not_this_changes():
    us = {"State": "rollback_completed", "StartedAt": SINCE}
    tasks = [task(f"n{i}", i) for i in (1, 2, 3)]
    r = rollout.read(service(spec(3), update_status=us), tasks, ids(tasks), NODES, "scale", marker_before=SINCE)
    assert r.done and r.ok and r.message == ""


def test_an_automatic_rollback_fails_the_update_once_it_has_converged():
    us = {"State": "rollback_started", "StartedAt": "2026-01-01T00:01:00Z",
          "Message": "update rolled back due to failure or early termination of task t1"}
    svc = service(spec(3), update_status=us)
    tasks = [task(f"n{i}", i) for i in (1, 2, 3)]
    bad = task("n1", 1, state="failed", desired="shutdown", template=NEW, tid="bad", err="task: non-zero exit (3)")
    r = rollout.read(svc, tasks + [bad], ids(tasks), NODES, since=SINCE)
    assert not r.done and r.phase == "rolling back" and "rolled back" in r.message
    us["State"] = "rollback_completed"
    r = rollout.read(svc, tasks + [bad], ids(tasks), NODES, since=SINCE)
    assert r.done and not r.ok and r.phase == "rolled back"
    assert "non-zero exit (3)" in r.problem
    r = rollout.read(svc, tasks + [bad], ids(tasks), NODES, mode="rollback")
    assert r.done and r.ok and r.problem is None


@pytest.mark.parametrize("paused", ["paused", "rollback_paused"])
def test_a_paused_update_ends_the_wait_as_a_failure(paused):
    us = {"State": paused, "StartedAt": "2026-01-01T00:01:00Z", "Message": "update paused due to failure"}
    tasks = [task(f"n{i}", i) for i in (1, 2, 3)]
    r = rollout.read(service(spec(3, template=NEW), update_status=us), tasks, set(), NODES)
    assert r.done and not r.ok and r.phase == paused.replace("_", " ")
    assert r.problem == f"ml_predictor: {paused.replace('_', ' ')}: update paused due to failure"


def test_an_earlier_paused_update_does_not_block_a_scale():
    svc = service(spec(4, template=NEW), update_status={"State": "paused", "StartedAt": SINCE})
    tasks = [task("n1", 1, template=NEW, tid="x"), task("n2", 2), task("n3", 3), task("n1", 4)]
    assert rollout.read(svc, tasks, {"x"}, NODES, "scale", marker_before=SINCE).done


def test_tasks_no_node_can_take_are_stuck_unless_something_else_is_on_its_way():
    err = "no suitable node (max replicas per node limit exceed; scheduling constraints not satisfied on 1 node)"
    tasks = [task("n1", 1), task("n2", 2), task(None, 3, state="pending", err=err)]
    r = rollout.read(service(spec(3, max_per_node=1)), tasks, ids(tasks), NODES[:2], mode="scale")
    assert not r.done and len(r.stuck) == 1 and "max replicas per node" in r.stuck[0] and err in r.message
    more = tasks + [task("n1", 4, state="preparing")]
    assert rollout.read(service(spec(4, max_per_node=2)), more, ids(more), NODES[:2], "scale").stuck == []


def test_a_replica_that_keeps_failing_fails_fast_with_its_error():
    tasks = [task("n1", 1), failed(2, "2026-01-01T00:00:02Z"), failed(2, "2026-01-01T00:00:04Z"),
             failed(2, "2026-01-01T00:00:06Z", err="task: non-zero exit (2)"),
             task("n3", 2, state="starting", ts="2026-01-01T00:00:07Z", tid="again")]
    svc = service(spec(2))
    assert not rollout.read(svc, tasks, ids(tasks), NODES, since=SINCE).done  # without a limit: wait on
    assert not rollout.read(svc, tasks[:3], ids(tasks), NODES, since=SINCE, give_up_after=3).done
    r = rollout.read(svc, tasks, ids(tasks), NODES, since=SINCE, give_up_after=3)
    assert r.done and not r.ok and r.problem == "ml_predictor.2 failed 3 times: task: non-zero exit (2)"


def test_failures_before_the_change_and_replicas_running_again_do_not_count():
    svc = service(spec(2))
    old = [failed(1, f"2025-12-31T23:59:5{i}Z") for i in range(3)]
    assert rollout.failing_replicas(svc, old, SINCE, 3) == []
    recovered = [failed(1, f"2026-01-01T00:00:0{i}Z") for i in range(3)] + [task("n3", 1, tid="ok")]
    assert rollout.failing_replicas(svc, recovered, SINCE, 3) == []
    assert rollout.failing_replicas(svc, recovered[:3], SINCE, 3)[0][:2] == (1, 3)


@pytest.mark.parametrize("restart,limit", [
    ({"Condition": "none"}, 1), ({"Condition": "on-failure", "MaxAttempts": 2}, 2), ({"Condition": "any"}, 3),
    ({"Condition": "any", "MaxAttempts": 10}, 3),
])
def test_the_restart_policy_can_give_up_sooner(restart, limit):
    s = spec(1)
    s["TaskTemplate"]["RestartPolicy"] = restart
    tasks = []
    for i in range(1, 4):
        tasks.append(failed(1, f"2026-01-01T00:00:0{i}Z", err="No such image: x:latest", state="rejected"))
        found = rollout.failing_replicas(service(s), tasks, SINCE, 3)
        assert bool(found) == (i >= limit), (restart, i)
    assert found[0][2] == "No such image: x:latest"


def test_global_services_wait_for_every_node_their_constraints_allow():
    g = spec(mode={"Global": {}}, constraints=["node.hostname != node3"])
    assert not rollout.read(service(g), [], set(), NODES).done  # Swarm has made no task yet
    tasks = [task("n1", None, tid="a"), task("n2", None, state="starting", tid="b")]
    assert not rollout.read(service(g), tasks, ids(tasks), NODES).done
    tasks[1] = task("n2", None, tid="b")
    r = rollout.read(service(g), tasks, ids(tasks), NODES)
    assert r.done and r.desired == 2 and r.placement.per_node == {"node1": 1, "node2": 1}
    assert not rollout.read(service(g), tasks, {"a"}, NODES).done  # one still runs the old spec
    never = spec(mode={"Global": {}}, constraints=["node.labels.swarmml.never == true"])
    assert rollout.read(service(never), [], set(), NODES).done


def test_a_global_replica_that_keeps_failing_is_named_by_its_node():
    g = spec(mode={"Global": {}}, constraints=["node.hostname != node2"])
    tasks = [failed(None, f"2026-01-01T00:00:0{i}Z", node_id="n3") for i in range(3)] + [task("n1", None, tid="a")]
    tasks.append(task("n3", None, state="ready", ts="2026-01-01T00:00:04Z", tid="next"))
    r = rollout.read(service(g), tasks, ids(tasks), NODES, since=SINCE, give_up_after=3)
    assert r.done and r.problem.startswith("ml_predictor on node n3 failed 3 times")


def test_zero_replicas_are_done_at_once_and_jobs_when_complete():
    assert rollout.read(service(spec(0)), [], set(), NODES).done
    job = service(spec(mode={"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 2}}))
    one = [task("n1", 1, state="complete", desired="shutdown")]
    assert not rollout.read(job, one, set(), NODES).done
    assert rollout.read(job, one + [task("n2", 2, state="complete", desired="shutdown")], set(), NODES).done
    gjob = service(spec(mode={"GlobalJob": {}}))
    done = [task(f"n{i}", None, state="complete", desired="shutdown", tid=f"j{i}") for i in (1, 2, 3)]
    assert not rollout.read(gjob, done[:2], set(), NODES).done
    assert rollout.read(gjob, done, set(), NODES).done


def test_an_unknown_mode_is_a_bug_of_the_caller():
    with pytest.raises(ValueError, match="mode"):
        rollout.read(service(spec(1)), [], set(), NODES, mode="scal")


def test_done_after_failures_is_believed_only_once_it_held_for_the_monitor_period():
    s = spec(1)
    s["UpdateConfig"]["Monitor"] = 2_000_000_000
    tasks = [failed(1, "2026-01-01T00:00:02Z"), task("n1", 1, tid="again")]
    r = rollout.read(service(s), tasks, ids(tasks), NODES, since=SINCE)
    assert r.done
    assert rollout.hold_until_settled(r, service(s), 1.0).phase == "settling" and not r.done
    r = rollout.read(service(s), tasks, ids(tasks), NODES, since=SINCE)
    assert rollout.hold_until_settled(r, service(s), 2.0).done
    clean = rollout.read(service(spec(1)), tasks[1:], {"again"}, NODES, since=SINCE)
    assert rollout.hold_until_settled(clean, service(spec(1)), 0.0).done  # no failure: done at once
