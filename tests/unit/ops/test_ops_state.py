"""Reading a service's state: placement, eligible nodes, rollout progress, why a task failed. Pure, no daemon."""
import datetime

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

