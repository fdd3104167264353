"""verify's ballast: real processes on this machine, at the lowest priority, read back and gone after. No daemon."""
import os
import time

from swarmml.verify import cpu as verify_io
from swarmml.verify.ballast import Ballast, loops_for


def test_only_wholly_idle_cores_are_filled():
    assert [loops_for(2, busy) for busy in (0.0, 0.49, 0.8, 1.0, 1.3, 1.85, 2.0, 2.3)] == [2, 1, 1, 1, 0, 0, 0, 0]
    assert loops_for(8, 2.5) == 5


def test_loops_run_at_idle_priority_and_leave_nothing_behind():
    with Ballast() as filler:
        assert filler.pids == []
        filler.fill(2)
        pids = filler.pids
        assert len(pids) == 2
        time.sleep(0.5)  # the loops have started and set their policy
        for pid in pids:
            assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        first = verify_io.cpu_snapshot({}, pids)["ballast"]
        time.sleep(1.0)
        second = verify_io.cpu_snapshot({}, pids)["ballast"]
        assert second > first  # they spin, and /proc says so
        filler.fill(1)
        assert filler.pids == pids[:1] and _gone(pids[1])
    assert not filler.pids
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}")
    assert verify_io.cpu_snapshot({})["ballast"] is None  # no ballast: nothing to leave out


def test_a_loop_stops_by_itself_when_verify_is_gone(tmp_path):
    # verify killed outright can't stop its loops: each notices its parent changed and exits
    pid_file = tmp_path / "pid"
    child = os.fork()
    if child == 0:
        filler = Ballast().__enter__()
        filler.fill(1)
        pid_file.write_text(str(filler.pids[0]))
        os._exit(0)  # no __exit__: the loop is orphaned
    os.waitpid(child, 0)
    orphan = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while not _gone(orphan) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gone(orphan)


def _gone(pid):
    """Exited: no such process, or a zombie until its new parent reaps it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
