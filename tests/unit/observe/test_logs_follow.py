"""Following: tasks that appear while we follow join the stream; the first tasks get --tail, later ones all lines.

No daemon: the task list and the log streams are fakes that logstream.follow is given.
"""
import threading
import time

from swarmml.observe import logs, logstream

A = logs.Source("predictor", "1", "node2", "task-a")
C = logs.Source("predictor", "3", "node1", "task-c")


class FakeLog:
    def __init__(self, lines):
        self._lines, self.closed = lines, threading.Event()

    def lines(self):
        yield from self._lines
        self.closed.wait(5)  # a followed stream stays open until closed

    def close(self):
        self.closed.set()


def test_a_task_that_starts_while_following_joins_and_every_log_is_closed():
    sources = {"task-a": A}
    opened = {}

    def open_log(task_id, follow, tail, since):
        opened[task_id] = {"follow": follow, "tail": tail, "since": since}
        text = {"task-a": ["2026-12-01T21:00:00.000000001Z a starts"],
                "task-c": ["2026-12-01T21:00:05Z c starts", "2026-12-01T21:00:06Z c ready"]}[task_id]
        log = FakeLog(text)
        opened[task_id]["log"] = log
        return log

    stop = threading.Event()
    seen = []
    started = time.monotonic()
    for line in logstream.follow(None, [], tail=10, since=None, stop=stop, poll_s=0.05, hold_s=0.05,
                                 list_sources=lambda: dict(sources), open_log=open_log):
        seen.append(line)
        if len(seen) == 1:
            sources["task-c"] = C  # a scale-up: a new task appears in the list
        if len(seen) == 3 or time.monotonic() - started > 5:
            stop.set()
    assert [(x.source.prefix, x.text) for x in seen] == [
        ("predictor.1@node2", "a starts"), ("predictor.3@node1", "c starts"), ("predictor.3@node1", "c ready")]
    assert opened["task-a"]["tail"] == 10 and opened["task-a"]["follow"]
    assert opened["task-c"]["tail"] is None  # a task that joined later is read from its first line
    assert all(o["log"].closed.is_set() for o in opened.values())


def test_a_line_without_timestamp_is_kept():
    lines = list(logstream.follow(None, [], stop=_set_after(0.3), poll_s=1, hold_s=0.01,
                                  list_sources=lambda: {"task-a": A},
                                  open_log=lambda task_id, **kw: FakeLog(["no stamp here"])))
    assert [x.text for x in lines] == ["no stamp here"]


def _set_after(seconds):
    e = threading.Event()
    threading.Timer(seconds, e.set).start()
    return e
