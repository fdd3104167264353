"""The rollout reader and its waiting loop on real engine answers, replayed (no daemon).

Each recording (tests/data/engine/<name>.json, scripts/record_engine.py) is what a 3-node
cluster answered while Swarm carried a change out. converge.wait polls the Replay as it polls an
engine, on a clock that moves only when it sleeps.
"""
import copy

import pytest
from engine_replay import Clock, Replay, recording

from swarmml.ops import converge, placement, rollout


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(converge, "time", c)
    return c


def start(name, clock, event="updated", edit=None):
    """A Replay from the moment of `event`, and the marker and clock a caller read just before it."""
    replay = Replay(name, clock, start=event, edit=edit)
    before = [f for f in replay.frames if f["at_s"] < replay.events[event]][-1:] or replay.frames[:1]
    return replay, rollout.update_marker(before[0]["service"]), before[0]["info"]["SystemTime"]


def read(frame, mode="update", marker=None, since=None, give_up_after=None):
    return rollout.read(frame["service"], frame["tasks"], frame["up_to_date"], frame["nodes"], mode, marker,
                        since, give_up_after)


def test_a_rolling_update_is_followed_batch_by_batch_until_swarm_completes_it(clock):
    replay, marker, since = start("update-rolls", clock)
    name = replay.frames[0]["service"]["Spec"]["Name"]
    out = converge.wait(replay, [name], "update", {name: marker}, since=since, show=False)
    assert out.ok, out.problems
    assert [(b.updated, b.desired) for b in out.batches] == [(1, 3), (2, 3), (3, 3)]
    assert all(len(b.nodes) == 1 for b in out.batches)
    r = out.statuses[name]
    assert (r.phase, r.running, r.fresh) == ("done", 3, 3)
    assert replay.at() >= recording("update-rolls")["frames"][-1]["at_s"]  # it waited for "completed"


def test_right_after_an_update_before_swarm_wrote_its_status_the_old_tasks_mean_not_done():
    # A real frame: the update call has returned, UpdateStatus is not written yet, no task has moved.
    frames = recording("update-rolls")["frames"]
    first = next(f for f in frames if f["at_s"] > 2.77)
    assert "UpdateStatus" not in first["service"] and not first["up_to_date"]
    r = read(first)
    assert not r.done and (r.running, r.fresh) == (3, 0)


def test_a_change_of_networks_alone_waits_for_every_task_to_move(clock):
    replay, marker, since = start("network-only", clock)
    name = replay.frames[0]["service"]["Spec"]["Name"]
    first = replay.frame_after("updated")
    # The tasks' specs look current to anyone who compares ContainerSpec, Resources, Placement and
    # ForceUpdate (the old deploy reader); only their Networks differ, and Swarm says they are stale.
    old = next(t for t in first["tasks"] if t["DesiredState"] == "running")
    template = first["service"]["Spec"]["TaskTemplate"]
    assert old["Spec"]["ContainerSpec"] == template["ContainerSpec"] and old["Spec"]["Networks"] != template["Networks"]
    assert not read(first, "deploy", marker).done
    out = converge.wait(replay, [name], "deploy", {name: marker}, since=since, show=False)
    assert out.ok and [b.updated for b in out.batches] == [1, 2]
    running = [t for t in replay.frame()["tasks"] if rollout.is_live(t)]
    assert {t["Spec"]["Networks"][0]["Target"] for t in running} == {template["Networks"][0]["Target"]}


def network_change_before_any_task_moved():
    """Edited: the moment update-rolls recorded for real (the update call returned, UpdateStatus not yet
    written, no task touched, none up to date), built for the network change from network-only's
    frames: the service as just updated, without its UpdateStatus; the tasks as just before."""
    rec = recording("network-only")
    at = next(e["at_s"] for e in rec["events"] if e["event"] == "updated")
    before = [f for f in rec["frames"] if f["at_s"] < at][-1]
    after = next(f for f in rec["frames"] if f["at_s"] >= at)
    service = {k: v for k, v in after["service"].items() if k != "UpdateStatus"}
    return {**before, "service": service, "up_to_date": []}


def test_a_network_change_read_before_any_task_moved_is_not_done():
    # The reader before issue 10 said done here (checked against that code): it compared ContainerSpec,
    # Resources, Placement and ForceUpdate, which the network change leaves alone.
    frame = network_change_before_any_task_moved()
    assert all(rollout.is_live(t) for t in frame["tasks"]) and len(frame["tasks"]) == 2
    r = read(frame, "deploy")
    assert not r.done and (r.running, r.fresh) == (2, 0)


def test_a_constraint_every_node_meets_is_done_at_once_though_the_task_specs_differ(clock):
    replay, marker, since = start("constraint-only", clock)
    name = replay.frames[0]["service"]["Spec"]["Name"]
    first = replay.frame_after("updated")
    placed = first["service"]["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
    assert placed == ["node.platform.os == linux"]
    assert all(not (t["Spec"].get("Placement") or {}).get("Constraints") for t in first["tasks"])
    out = converge.wait(replay, [name], "deploy", {name: marker}, since=since, show=False)
    assert out.ok and out.duration_s < 1 and out.statuses[name].fresh == 3


def test_an_update_swarm_rolled_back_fails_once_the_old_spec_runs_again(clock):
    replay, marker, since = start("update-rolled-back", clock)
    name = replay.frames[0]["service"]["Spec"]["Name"]
    phases = []
    real_read = rollout.read

    def spying(*args, **kwargs):
        r = real_read(*args, **kwargs)
        phases.append(r.phase)
        return r
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rollout, "read", spying)
        out = converge.wait(replay, [name], "update", {name: marker}, since=since, show=False)
    assert not out.ok and "rolling back" in phases and phases[-1] == "rolled back"
    assert out.problems[0].startswith(f"{name}: rolled back: rollback completed; {name}.1 failed on node")
    assert out.problems[0].endswith("task: non-zero exit (3)")
    assert out.statuses[name].running == 2


def test_a_rollback_asked_for_succeeds_when_the_previous_spec_runs(clock):
    replay, marker, since = start("manual-rollback", clock, event="rolled back by request")
    name = replay.frames[0]["service"]["Spec"]["Name"]
    out = converge.wait(replay, [name], "rollback", {name: marker}, since=since, show=False)
    assert out.ok, out.problems
    assert out.statuses[name].phase == "done" and [b.updated for b in out.batches] == [1, 2]


def test_a_paused_update_ends_the_wait_with_swarms_reason(clock):
    replay, marker, since = start("update-paused", clock)
    name = replay.frames[0]["service"]["Spec"]["Name"]
    out = converge.wait(replay, [name], "update", {name: marker}, since=since, show=False)
    assert not out.ok and out.statuses[name].phase == "paused"
    assert out.problems == [f"{name}: paused: update paused due to failure or early termination of task "
                            f"{out.statuses[name].message.rsplit(' ', 1)[-1]}; "
                            + out.statuses[name].placement.failed[-1]]


def test_a_crash_loop_fails_the_deploy_at_the_third_failure_with_what_the_container_printed(clock):
    replay, _, since = start("crash-loop", clock, event="created")
    name = replay.frames[0]["service"]["Spec"]["Name"]
    out = converge.wait(replay, [name], "deploy", {}, since=since, show=False, give_up_after=3)
    assert out.problems == [(f"{name}.1 failed 3 times: task: non-zero exit (3); "
                             "it printed: model file missing: /models/x.skops")]
    assert out.duration_s < 5  # the third failure, not the deadline
    without_limit = converge.wait(Replay("crash-loop", clock, start="created"), [name], "deploy", {}, since=since,
                                  show=False, timeout=20)
    assert without_limit.problems[0].startswith(f"{name}: not done after 20 s (updating; 0/1 running")


def test_tasks_no_node_can_take_end_the_wait_with_the_schedulers_reason(clock):
    replay, _, since = start("unplaceable", clock, event="created")
    name = replay.frames[0]["service"]["Spec"]["Name"]
    out = converge.wait(replay, [name], "deploy", {}, since=since, show=False, timeout=60)
    assert out.problems == [(f"{name}: 0 of 2 replicas run; 2 can't be placed: "
                             "no suitable node (insufficient resources on 3 nodes)")]
    assert converge.STUCK_S <= out.duration_s < converge.STUCK_S + 2


def test_a_node_marked_down_runs_nothing_the_reader_counts():
    frames = recording("node-down")["frames"]
    down = next(f for f in frames if any(n["Status"]["State"] == "down" for n in f["nodes"]))
    lost = next(n["ID"] for n in down["nodes"] if n["Status"]["State"] == "down")

    def as_marked_down_before_rescheduling(frame):
        """Edited: the moment Swarm marked the node down, before the orchestrator shut its tasks down."""
        for t in frame["tasks"]:
            if t["NodeID"] == lost:
                t["DesiredState"] = "running"
        frame["tasks"] = [t for t in frame["tasks"] if t["NodeID"] == lost or t["DesiredState"] == "running"
                          and t["Status"]["State"] == "running"]
        return frame
    edited = as_marked_down_before_rescheduling(copy.deepcopy(down))
    on_lost = sum(1 for t in edited["tasks"] if t["NodeID"] == lost)
    r = read(edited, "scale")
    assert on_lost == 2 and not r.done and r.running == len(edited["tasks"]) - on_lost
    assert placement.placement(edited["service"], edited["tasks"], edited["nodes"]).running == len(edited["tasks"])
    back = next(f for f in frames if f["at_s"] > down["at_s"] and sum(map(rollout.is_live, f["tasks"])) == 6)
    assert read(back, "scale").done
