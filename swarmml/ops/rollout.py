"""Reading how far a change to a service has got: the one place that decides done, failed or progressing.

deploy, scale, update, rollback, rebalance and verify's restore all ask this
module (through swarmml.ops.converge, which polls the engine and draws progress).
Everything here is pure: it reads the Engine API's JSON for one service, its
tasks and the nodes, and returns a Rollout.

Which tasks run the current spec ("fresh")
------------------------------------------
We do not compare specs ourselves: the engine is asked, as docker/cli's
`service create/update` progress does, for the service's tasks with the
`_up-to-date=true` filter, and that answer is `fresh_ids`. The manager
filters with swarmkit's orchestrator.IsTaskDirty, the same test its updater
uses to pick the tasks it replaces, so our "done" can never disagree with
what Swarm is doing. That rule, as swarmkit writes it:

- a task whose SpecVersion is the service's is up to date;
- otherwise the whole TaskSpec is compared with the service's TaskTemplate:
  ContainerSpec, Resources, RestartPolicy, Placement, Networks, LogDriver,
  ForceUpdate, ... (a changed network or log driver replaces tasks);
  ContainerSpec.PullOptions is ignored for a task that has already pulled
  (ready..running);
- a task whose TaskSpec differs only in Placement stays up to date when its
  node still meets the new placement constraints: Swarm keeps it running
  (adding a constraint every node meets moves nothing);
- a task whose endpoint spec (published ports, mode) differs is not up to
  date.

The Engine API does not show a task's SpecVersion or endpoint, so this rule
can't be computed from what we read; asking is also what keeps it right when
Swarm changes it.

When a rollout is done
----------------------
Also after docker/cli: a replicated service is converged when exactly its
replica count of tasks run, all of them fresh; a global one when every
eligible node runs a fresh task and no stale one runs. A task on a node
marked down does not count as running, though Swarm may still list it so.
Jobs are done when enough tasks completed.

UpdateStatus, read only when it belongs to this change (its StartedAt differs
from the marker taken before the change; an older rollback or pause is not
ours):

- updating, rollback_started: not done;
- paused, rollback_paused: done, failed (Swarm waits for a person);
- rollback_completed: failed unless a rollback is what was asked, and done
  once converged, so the placement reported is the one that stays;
- completed, or none (a scale, or a change that replaces no task): done when
  converged.

After tasks failed during the change, "done" is believed only once it has
held for the service's update monitor period (5 s without one), as docker/cli
waits "to verify that tasks are stable": a crash-looping container is caught
running for a moment between two failures (tests/data/engine/crash-loop.json).
Without failures, done is done at once.

And two ways to stop before Swarm gives up, which it never does:

- a replica whose tasks failed `give_up_after` times since the change
  started, with none running in its place (a crash loop);
- tasks the scheduler finds no node for, with nothing else on its way
  (`stuck`; the caller decides how long that may last).
"""
from dataclasses import dataclass, field

from swarmml.ops import placement as placements

PHASES = ("scaling", "updating", "rolling back", "rolled back", "paused", "rollback paused", "settling", "done")
SETTLE_S = 5.0  # how long "done" must hold after failures, for a service without an update monitor period
MODES = ("deploy", "scale", "update", "rollback")


@dataclass
class Batch:
    """A step of a rolling update: `updated` of `desired` tasks carried the new spec `at_s` seconds in."""

    service: str
    updated: int
    desired: int
    at_s: float
    nodes: list = field(default_factory=list)  # where the tasks of this step started


@dataclass
class Rollout:
    """How far a change to one service has got."""

    service: str
    desired: int  # tasks that should run (global: the eligible nodes; jobs: completions)
    running: int  # running tasks meant to run, on nodes not down
    fresh: int  # of those, the ones Swarm says run the current spec
    phase: str  # one of PHASES
    done: bool = False
    ok: bool = True
    message: str = ""  # Swarm's update message, or why the first waiting task waits
    placement: placements.Placement | None = None
    stuck: list = field(default_factory=list)  # tasks the scheduler finds no node for, when nothing else comes
    failing: list = field(default_factory=list)  # failing_replicas(), when the crash-loop limit was reached

    @property
    def problem(self):
        """One line for a failed rollout, None while it is fine."""
        if self.ok:
            return None
        if self.failing:
            return crash_loop_line(self.service, self.failing)
        last_failure = self.placement.failed[-1:] if self.placement else []
        return f"{self.service}: {self.phase}" + (f": {self.message}" if self.message else "") + \
            "".join(f"; {f}" for f in last_failure)


def update_marker(service):
    """What identifies the service's current rolling update (or rollback): when it started."""
    return (service.get("UpdateStatus") or {}).get("StartedAt")


def is_live(task, down_nodes=()):
    """Meant to run, running, and on a node Swarm has not marked down."""
    return (task.get("DesiredState") == "running" and task["Status"]["State"] == "running"
            and task.get("NodeID") not in down_nodes)


def settle_s(service):
    monitor = (service["Spec"].get("UpdateConfig") or {}).get("Monitor")
    return monitor / 1e9 if monitor else SETTLE_S


def hold_until_settled(r, service, done_for_s):
    """Take back a successful `done` that came after failures and has held less than settle_s(service).

    done_for_s: how long the successive reads have said done (the caller keeps the time).
    """
    if r.done and r.ok and r.placement is not None and r.placement.failed and done_for_s < settle_s(service):
        r.done, r.phase = False, "settling"
    return r


def _is_job(spec):
    mode = spec.get("Mode") or {}
    return "ReplicatedJob" in mode or "GlobalJob" in mode


def wanted(service, nodes):
    """Tasks the service should end with: replicas, completions, or (global) one per eligible node.

    Global services are counted from the nodes, not from the tasks: right after a create
    Swarm may not have made the tasks yet.
    """
    spec = service["Spec"]
    want = placements.desired_replicas(spec)
    if want is None:
        want = len(placements.eligible_nodes(spec, nodes))
    return want


def failing_replicas(service, tasks, since, give_up_after):
    """[(replica, failures, last error, last failed task ID)] for replicas whose tasks failed give_up_after
    times since `since` (fewer when the restart policy gives up sooner) and that have no running task.

    A replica is a slot of a replicated service, a node of a global one.
    """
    policy = service["Spec"]["TaskTemplate"].get("RestartPolicy") or {}
    limit = give_up_after
    if policy.get("Condition") == "none":
        limit = 1
    elif policy.get("MaxAttempts"):
        limit = min(limit, policy["MaxAttempts"])
    by_replica = {}
    for t in tasks:
        key = t.get("Slot") or t.get("NodeID") or t["ID"]
        r = by_replica.setdefault(key, {"failed": [], "running": False})
        if is_live(t):
            r["running"] = True
        if placements.failed_since(t, since):
            r["failed"].append(t)
    out = []
    for key, r in sorted(by_replica.items(), key=lambda kv: str(kv[0])):
        if len(r["failed"]) >= limit and not r["running"]:
            last = max(r["failed"], key=placements.task_time)
            why = last["Status"].get("Err") or last["Status"].get("Message") or last["Status"]["State"]
            out.append((key, len(r["failed"]), why, last["ID"]))
    return out


def crash_loop_line(name, failing):
    replica, count, why, _ = failing[0]
    label = f"{name}.{replica}" if isinstance(replica, int) else f"{name} on node {str(replica)[:12]}"
    others = len(failing) - 1
    more = f" ({others} other replica{'s' if others > 1 else ''} failing too)" if others else ""
    # A node that may not pull says "No such image": the usual cause is a registry that asks for a login.
    hint = (" (if its registry asks for a login: `docker login` it, then deploy with --with-registry-auth)"
            if str(why).startswith("No such image") else "")
    return f"{label} failed {count} times: {why}{more}{hint}"


def read(service, tasks, fresh_ids, nodes, mode="update", marker_before=None, since=None, give_up_after=None):
    """The Rollout of a change to `service` (see the module's docstring for the rules).

    tasks: all the tasks Swarm keeps for the service; fresh_ids: the IDs of those the
    engine lists as up to date. mode: one of MODES (a rollback is what "rollback" asked
    for, so rollback_completed is its success). marker_before: update_marker() read just
    before the change. since: when the change began (a datetime or the engine's RFC 3339
    text), so older task failures are not this change's. give_up_after: fail a crash loop
    after that many failures of one replica (None waits, as Swarm retries forever).
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    spec = service["Spec"]
    p = placements.placement(service, tasks, nodes, since)
    down = {n["ID"] for n in nodes if n["Status"].get("State") == "down"}
    live = [t for t in tasks if is_live(t, down)]
    fresh_ids = set(fresh_ids)
    fresh = sum(1 for t in live if t["ID"] in fresh_ids)
    want = wanted(service, nodes)
    us = service.get("UpdateStatus") or {}
    ours = bool(us) and update_marker(service) != marker_before
    state = us.get("State") if ours else None
    # A paused update from before this change leaves stale tasks on purpose: they don't make us wait.
    earlier_paused = not ours and us.get("State") in ("paused", "rollback_paused")

    r = Rollout(spec["Name"], want, len(live), fresh, "scaling" if mode == "scale" else "updating",
                placement=p, message=us.get("Message", "") if ours else "")
    if _is_job(spec):
        r.running = sum(1 for t in tasks if t["Status"]["State"] == "complete")
        r.done = r.running >= want
        r.phase = "done" if r.done else r.phase
        return r
    if placements.desired_replicas(spec) is None:
        converged = (fresh >= want or earlier_paused) and (fresh == len(live) or earlier_paused)
    else:
        converged = len(live) == want and (fresh == want or earlier_paused)

    if state in ("paused", "rollback_paused"):
        r.phase, r.done, r.ok = state.replace("_", " "), True, False
        return r
    if state == "rollback_started":
        r.phase = "rolling back"
    elif state == "rollback_completed":
        r.phase = "rolled back"
        r.ok = mode == "rollback"
        r.done = converged
    elif state != "updating":
        r.done = converged
    if r.done:
        if r.ok:
            r.phase = "done"
        return r
    if give_up_after:
        r.failing = failing_replicas(service, tasks, since, give_up_after)
        if r.failing:
            r.done, r.ok = True, False
            return r
    waiting = want - len(live)
    if p.unplaceable and len(p.unplaceable) >= waiting > 0 and not p.pending:
        r.stuck = list(p.unplaceable)
    if not r.message:
        r.message = (p.unplaceable + p.pending)[0] if (p.unplaceable or p.pending) else ""
    return r
