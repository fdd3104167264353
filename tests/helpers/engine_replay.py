"""Replaying recorded engine answers (tests/data/engine/, made by scripts/record_engine.py) to swarmml.engine.

A Replay stands in for docker.DockerClient: the low-level calls swarmml.engine's services, tasks,
nodes and swarm modules make (inspect_service, tasks, nodes, info, inspect_swarm, task logs) answer
with the frame the recording had at the replay clock's time. The Clock stands in for the `time`
module of the polling code, so a wait of minutes replays in milliseconds, and in the recorded order.
"""
import paths
import copy
import json
import os

import docker.errors

DATA = os.path.join(paths.DATA, "engine")


def recording(name):
    with open(os.path.join(DATA, f"{name}.json")) as f:
        return json.load(f)


class Clock:
    """monotonic() and sleep() that only move when the code under test sleeps."""

    def __init__(self):
        self.t = 1000.0

    def monotonic(self):
        return self.t

    def perf_counter(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds


class Replay:
    """A docker.DockerClient answering from one recording, by the clock.

    start: the event the replay starts at ("updated": the first call sees the engine right after the
    change). edit(frame) -> frame: a minimal change to every frame, for a scenario the recording
    lacks; tests that use one say what it changes and why.
    """

    def __init__(self, name, clock, start=None, edit=None):
        rec = recording(name)
        self.name, self.clock = name, clock
        self.events = {e["event"]: e["at_s"] for e in rec["events"]}
        self.frames = [edit(copy.deepcopy(f)) if edit else f for f in rec["frames"]]
        self.swarm = rec["frames"][0].get("swarm")
        self.logs = {tid: lines for f in rec["frames"] for tid, lines in (f.get("logs") or {}).items()}
        self.extra_services = {}  # name -> (service, tasks): objects the recording did not have
        self.calls = []
        self.offset = 0.0
        self.jump_to(start) if start else self._align(self.frames[0]["at_s"])

    # --- the replay's own controls -----------------------------------------------------

    def _align(self, at_s):
        self.offset = at_s - self.clock.t

    def jump_to(self, event):
        """From now on, answer as the engine did right after `event` (the first frame recorded after it:
        a call that changed something has returned before anyone reads)."""
        self._align(self.frame_after(event)["at_s"])

    def at(self):
        return self.clock.t + self.offset

    def frame(self):
        now = self.at()
        seen = [f for f in self.frames if f["at_s"] <= now + 1e-6]  # the clock adds in floats
        return seen[-1] if seen else self.frames[0]

    def frame_after(self, event):
        """The first frame recorded after `event`: what a reader saw right after it."""
        return next(f for f in self.frames if f["at_s"] >= self.events[event])

    # --- what swarmml.engine's services, tasks, nodes and swarm call -------------------

    @property
    def api(self):
        return self

    def info(self):
        self.calls.append("info")
        return self.frame()["info"]

    def inspect_swarm(self):
        return self.swarm

    def nodes(self, filters=None):
        self.calls.append("nodes")
        return self.frame()["nodes"]

    def _service_and_tasks(self, ident):
        f = self.frame()
        svc = f["service"]
        if ident in (svc["ID"], svc["Spec"]["Name"]):
            return svc, f["tasks"], set(f["up_to_date"])
        for name, (other, tasks) in self.extra_services.items():
            if ident in (other["ID"], name):
                return other, tasks, {t["ID"] for t in tasks}
        raise docker.errors.NotFound(f"service {ident} not found", explanation=f"service {ident} not found")

    def inspect_service(self, ident):
        self.calls.append("inspect_service")
        return self._service_and_tasks(ident)[0]

    def services(self, filters=None):
        return [self.frame()["service"]] + [s for s, _ in self.extra_services.values()]

    def tasks(self, filters=None):
        filters = filters or {}
        self.calls.append("tasks+up-to-date" if filters.get("_up-to-date") else "tasks")
        ids = filters.get("service") or [self.frame()["service"]["ID"]]
        _, tasks, fresh = self._service_and_tasks(ids[0])
        if filters.get("desired-state"):
            tasks = [t for t in tasks if t["DesiredState"] == filters["desired-state"]]
        if filters.get("_up-to-date"):
            tasks = [t for t in tasks if t["ID"] in fresh]
        return tasks

    # GET /tasks/{id}/logs, the way swarmml.engine.tasks.task_log_tail asks for it.
    def _url(self, path, *args):
        return path.format(*args)

    def _get(self, url, params=None, stream=False):
        return url.split("/")[2]

    def _raise_for_status(self, task_id):
        if task_id not in self.logs:
            raise docker.errors.NotFound(f"no logs of {task_id} in the recording")

    def _multiplexed_response_stream_helper(self, task_id):
        yield "".join(line + "\n" for line in self.logs[task_id]).encode()
