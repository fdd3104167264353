"""Reading a service's state: placement, eligible nodes, rollout progress, why a task failed. Pure, no daemon."""
import datetime

import pytest

from ops_helpers import NODES, TEMPLATE, node, service, spec, task, with_image
from swarmml.ops import state

NEW = with_image(TEMPLATE, "registry:5000/swarmml/predictor:2@sha256:bb")


def test_timestamps_with_nanoseconds_compare_as_times():
    a, b = state.parse_ts("2026-01-01T00:00:01.1Z"), state.parse_ts("2026-01-01T00:00:01.123456789Z")
    assert a < b  # as strings, "…01.1Z" sorts after "…01.12…"
    assert b.tzinfo is not None and b.microsecond == 123456
    assert state.parse_ts("0001-01-01T00:00:00Z") is None and state.parse_ts("") is None
    assert state.parse_ts("2026-01-01T01:00:00+01:00") == state.parse_ts("2026-01-01T00:00:00Z")


def test_placement_counts_running_tasks_per_node_and_says_why_others_wait():
    tasks = [task("n1", 1), task("n1", 2), task("n2", 3),
             task(None, 4, state="pending", err="no suitable node (max replicas per node limit exceed)"),
             task("n3", 5, state="preparing", message="preparing"),
             task("n3", 6, state="failed", desired="shutdown", err="task: non-zero exit (3)"),
             task("n2", 7, state="shutdown", desired="shutdown")]
    p = state.placement(service(spec(5)), tasks, NODES)
    assert (p.desired, p.running, p.per_node) == (5, 3, {"node1": 2, "node2": 1})
    assert p.unplaceable == ["ml_predictor.4 pending: no suitable node (max replicas per node limit exceed)"]
    assert p.pending == ["ml_predictor.5 preparing on node3: preparing"]
    assert p.failed == ["ml_predictor.6 failed on node3: task: non-zero exit (3)"]
    since = datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.timezone.utc)
    assert state.placement(service(spec(5)), tasks, NODES, since=since).failed == []


def test_down_and_drained_nodes_are_not_eligible():
    nodes = [node(1), node(2, state="down"), node(3, availability="drain"), node(4, availability="pause")]
    assert state.eligible_hostnames(spec(), nodes) == ["node1"]


def test_capacity_under_max_replicas_per_node():
    assert state.capacity_problem(spec(max_per_node=2), 6, NODES) is None
    problem = state.capacity_problem(spec(max_per_node=2), 7, NODES)
    assert "7 replicas can't be placed" in problem and "max_replicas_per_node is 2" in problem
    assert "3 nodes are eligible, so at most 6" in problem
    one = state.capacity_problem(spec(max_per_node=1, constraints=["node.role==manager"]), 2, NODES)
    assert "1 node is eligible, so at most 1" in one
    assert state.capacity_problem(spec(), 100, NODES) is None


def test_a_scale_is_done_when_the_replicas_run():
    svc = service(spec(3))
    tasks = [task("n1", 1), task("n2", 2)]
    st = state.rollout_status(svc, tasks, NODES, mode="scale")
    assert not st.done and (st.running, st.desired) == (2, 3)
    st = state.rollout_status(svc, tasks + [task("n3", 3)], NODES, mode="scale")
    assert st.done and st.ok and st.phase == "done"


def test_an_update_waits_for_every_task_to_carry_the_new_spec():
    svc = service(spec(3, template=NEW), update_status={"State": "updating", "StartedAt": "2026-01-01T00:01:00Z"})
    old = [task("n1", 1), task("n2", 2), task("n3", 3)]
    st = state.rollout_status(svc, old, NODES, marker_before=None)
    assert (st.done, st.updated, st.phase) == (False, 0, "updating")
    half = [task("n1", 1, template=NEW, tid="new1"), task("n2", 2), task("n3", 3)]
    assert state.rollout_status(svc, half, NODES).updated == 1
    done = [task(f"n{i}", i, template=NEW, tid=f"new{i}") for i in (1, 2, 3)]
    svc["UpdateStatus"]["State"] = "completed"
    st = state.rollout_status(svc, done, NODES)
    assert st.done and st.ok and st.updated == 3


def test_before_swarm_reports_the_update_old_tasks_still_mean_not_done():
    # Swarm writes UpdateStatus a moment after the spec: the old "completed" is not this update's.
    svc = service(spec(3, template=NEW), update_status={"State": "completed", "StartedAt": "2026-01-01T00:00:00Z"})
    st = state.rollout_status(svc, [task(f"n{i}", i) for i in (1, 2, 3)], NODES,
                              marker_before="2026-01-01T00:00:00Z")
    assert not st.done and st.updated == 0


def test_an_older_rollback_is_not_taken_for_this_updates():
    svc = service(spec(3), update_status={"State": "rollback_completed", "StartedAt": "2026-01-01T00:00:00Z"})
    tasks = [task(f"n{i}", i) for i in (1, 2, 3)]
    st = state.rollout_status(svc, tasks, NODES, marker_before="2026-01-01T00:00:00Z", mode="scale")
    assert st.done and st.ok


def test_an_automatic_rollback_fails_the_update_once_it_has_converged():
    us = {"State": "rollback_started", "StartedAt": "2026-01-01T00:01:00Z",
          "Message": "update rolled back due to failure or early termination of task t1"}
    svc = service(spec(3), update_status=us)
    tasks = [task(f"n{i}", i) for i in (1, 2, 3)] + [
        task("n1", 1, state="complete", desired="shutdown", template=NEW, tid="bad")]
    st = state.rollout_status(svc, tasks, NODES)
    assert not st.done and st.phase == "rolling back" and "rolled back" in st.message
    us["State"] = "rollback_completed"
    st = state.rollout_status(svc, tasks, NODES)
    assert st.done and not st.ok and st.phase == "rolled back"
    # Asked for (swarmml rollback), the same end is a success.
    assert state.rollout_status(svc, tasks, NODES, mode="rollback").ok


@pytest.mark.parametrize("paused", ["paused", "rollback_paused"])
def test_a_paused_update_ends_the_wait_as_a_failure(paused):
    svc = service(spec(3, template=NEW), update_status={"State": paused, "StartedAt": "2026-01-01T00:01:00Z",
                                                        "Message": "update paused due to failure"})
    st = state.rollout_status(svc, [task(f"n{i}", i) for i in (1, 2, 3)], NODES)
    assert st.done and not st.ok and st.phase == paused.replace("_", " ")


def test_an_earlier_paused_update_does_not_block_a_scale():
    svc = service(spec(4, template=NEW), update_status={"State": "paused", "StartedAt": "2026-01-01T00:00:00Z"})
    tasks = [task("n1", 1, template=NEW, tid="x"), task("n2", 2), task("n3", 3), task("n1", 4)]
    st = state.rollout_status(svc, tasks, NODES, marker_before="2026-01-01T00:00:00Z", mode="scale")
    assert st.done and st.ok


def test_tasks_no_node_can_take_are_reported_as_stuck():
    err = "no suitable node (max replicas per node limit exceed; scheduling constraints not satisfied on 1 node)"
    tasks = [task("n1", 1), task("n2", 2), task(None, 3, state="pending", err=err)]
    st = state.rollout_status(service(spec(3, max_per_node=1)), tasks, NODES[:2], mode="scale")
    assert not st.done and len(st.stuck) == 1 and "max replicas per node" in st.stuck[0]
    # A task still on its way somewhere means we are not stuck yet.
    more = tasks + [task("n1", 4, state="preparing")]
    assert state.rollout_status(service(spec(4, max_per_node=2)), more, NODES[:2], mode="scale").stuck == []


def test_the_task_that_explains_a_failed_update():
    tasks = [task("n1", 1, ts="2026-01-01T00:00:01Z"),
             task("n2", 1, state="shutdown", desired="shutdown", template=NEW, ts="2026-01-01T00:00:09Z", tid="s"),
             task("n2", 1, state="failed", desired="shutdown", template=NEW, err="task: non-zero exit (1)",
                  ts="2026-01-01T00:00:05Z", tid="f")]
    assert state.failed_task(tasks, NEW)["ID"] == "f"  # a failure beats the task the rollback shut down
    assert state.failed_task(tasks[:2], NEW)["ID"] == "s"
    assert state.failed_task(tasks[:1], NEW) is None


def test_why_a_task_stopped_uses_the_healthcheck_output_when_reachable():
    svc = service(spec(3))
    t = task("n2", 2, state="complete", desired="shutdown", template=NEW, message="finished")
    probe = {"ExitCode": 1, "Output": "Traceback (most recent call last):\n  ...\n"
                                      "urllib.error.URLError: <urlopen error [Errno 111] Connection refused>\n"}
    facts = {"exit_code": 0, "error": "", "oom_killed": False, "log_tail": ["serving on :9090"],
             "health": {"Status": "unhealthy", "FailingStreak": 3, "Log": [probe, probe, probe]}}
    line = state.explain_failure(svc, t, NODES, facts)
    assert line == ("ml_predictor.2 on node2 complete; healthcheck failed 3 times in a row: "
                    "urllib.error.URLError: <urlopen error [Errno 111] Connection refused>")
    # Without the container: Swarm's own message.
    assert state.explain_failure(svc, t, NODES, None) == "ml_predictor.2 on node2 complete; finished"


def test_why_a_task_stopped_uses_the_last_log_line_for_a_crash():
    svc = service(spec(3))
    t = task("n3", 1, state="failed", desired="shutdown", template=NEW, err="task: non-zero exit (1)")
    facts = {"exit_code": 1, "error": "", "oom_killed": False, "health": None,
             "log_tail": ["Traceback (most recent call last):", "SystemExit: this image cannot start"]}
    assert state.explain_failure(svc, t, NODES, facts) == (
        "ml_predictor.1 on node3 failed; task: non-zero exit (1); last log line: SystemExit: this image cannot start")
    # Exited before its first probe: Docker says "unhealthy" with no probe to quote, so no healthcheck part.
    early = dict(facts, health={"Status": "unhealthy", "FailingStreak": 0, "Log": []})
    assert state.explain_failure(svc, t, NODES, early) == state.explain_failure(svc, t, NODES, facts)
    oom = dict(facts, oom_killed=True, exit_code=137, log_tail=[])
    assert "killed: out of memory" in state.explain_failure(svc, t, NODES, oom)


def test_short_names_are_relative_to_the_stack():
    assert state.short_name(service(spec(name="ml_predictor"))) == "predictor"
    assert state.short_name({"Spec": {"Name": "solo", "Labels": {}}}) == "solo"
