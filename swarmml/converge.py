"""Waiting for services to converge, with a progress bar per service.

A service has converged when its running tasks match what its spec asks for
and any update Swarm is rolling has completed. A rollback, a paused update,
a replica whose tasks keep failing (when the caller sets give_up_after), or a
deadline passing is a failure that names the task errors.
"""
import time
from dataclasses import dataclass, field

from swarmml import placement as placements
from swarmml.console import progress
from swarmml.engine import swarm as engine

BAD_UPDATE_STATES = ("paused", "rollback_started", "rollback_completed", "rollback_paused")


def now(client):
    """The manager's clock as a datetime, to tell a change's task failures from older ones.

    The manager's, not this machine's: the engines write the task timestamps, and a remote manager's
    clock may differ from ours.
    """
    return placements.parse_ts(engine.now(client))


@dataclass
class Convergence:
    ok: bool
    duration_s: float
    placements: list = field(default_factory=list)  # Placement
    problems: list = field(default_factory=list)  # one line each


def _task_shape(task_spec):
    """The parts of a task spec an update changes, canonical (engine defaults dropped)."""
    from swarmml.stack.plan import canonical
    return canonical({k: task_spec.get(k) for k in ("ContainerSpec", "Resources", "Placement", "ForceUpdate")},
                     pin_digests=True)


def failing_replicas(service, tasks, since, give_up_after):
    """Pure: [(replica, failures, last error, last failed task ID)] for replicas whose tasks failed give_up_after times
    since `since` (fewer when the restart policy gives up sooner) and that have no running task.

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
        if t.get("DesiredState") == "running" and t["Status"]["State"] == "running":
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


def status_of(service, tasks, nodes, since, rollback=False, give_up_after=None):
    """(done, failed, placement) for one service: pure. rollback: a rollback is what we asked for.

    give_up_after: fail once a replica's tasks failed that many times with none running
    (see failing_replicas); None waits for the deadline, as Swarm retries forever.
    """
    p = placements.placement(service, tasks, nodes, since)
    update = (service.get("UpdateStatus") or {}).get("State")
    spec_mode = service["Spec"].get("Mode", {})
    if rollback and update in ("rollback_started", "rollback_completed"):
        update = "updating" if update == "rollback_started" else "completed"
    if update in BAD_UPDATE_STATES:
        return True, f"{service['Spec']['Name']}: update {update.replace('_', ' ')}: " + \
            ((service.get("UpdateStatus") or {}).get("Message") or "") + \
            ("; " + p.failed[-1] if p.failed else ""), p
    if p.desired is None:
        # Global: one task per node its constraints and platforms allow (counted from the nodes, not
        # from the tasks: right after a create, Swarm may not have made the tasks yet).
        want = len(placements.eligible_nodes(service["Spec"], nodes))
    else:
        want = p.desired
    if "ReplicatedJob" in spec_mode or "GlobalJob" in spec_mode:
        done = sum(1 for t in tasks if t["Status"]["State"] == "complete")
        return done >= want, None, p
    updating = update in ("updating",)
    # A running task made from an older spec (other env, limits, image...) means an update is not done,
    # even before Swarm reports the update as started.
    current = _task_shape(service["Spec"]["TaskTemplate"])
    stale = [t for t in tasks if t.get("DesiredState") == "running" and t["Status"]["State"] == "running"
             and _task_shape(t["Spec"]) != current]
    done = p.running == want and not updating and not stale
    if not done and give_up_after:
        failing = failing_replicas(service, tasks, since, give_up_after)
        if failing:
            replica, count, why, _ = failing[0]
            name = service["Spec"]["Name"]
            label = f"{name}.{replica}" if isinstance(replica, int) else f"{name} on node {replica[:12]}"
            others = len(failing) - 1
            more = f" ({others} other replica{'s' if others > 1 else ''} failing too)" if others else ""
            return True, f"{label} failed {count} times: {why}{more}", p
    return done, None, p


def _last_output(client, service, tasks, since, give_up_after):
    """What the last failed container printed last: usually why it could not start."""
    failing = failing_replicas(service, tasks, since, give_up_after or 1)
    if not failing:
        return ""
    lines = engine.task_log_tail(client, failing[0][3], lines=1)
    return f"; it printed: {lines[-1].strip()[:200]}" if lines else ""


def wait(client, service_names, timeout=300, since=None, show=True, rollback=False, give_up_after=None):
    started = time.monotonic()
    pending = list(service_names)
    results, problems = {}, []

    def poll():
        nodes = engine.nodes(client)
        for name in list(pending):
            svc = engine.service(client, name)
            tasks = engine.tasks(client, [svc["ID"]])
            done, failed, p = status_of(svc, tasks, nodes, since, rollback, give_up_after)
            results[name] = p
            if failed:
                problems.append(failed + _last_output(client, svc, tasks, since, give_up_after))
                pending.remove(name)
            elif done:
                pending.remove(name)
            yield name, p

    with progress(show=show) as bar:
        ids = {}
        while True:
            for name, p in poll():
                total = p.desired if p.desired is not None else max(p.running, 1)
                status = "; ".join((p.unplaceable + p.pending)[:1]) if name in pending else "done"
                if name not in ids:
                    ids[name] = bar.add_task(name, total=total, status="")
                bar.update(ids[name], completed=min(p.running, total), total=total, status=status[:70])
            if not pending or time.monotonic() - started > timeout:
                break
            time.sleep(0.5)

    for name in pending:
        p = results.get(name)
        why = "; ".join((p.failed[-1:] + (p.unplaceable + p.pending)[:1])) if p else ""
        problems.append(f"{name}: not converged after {timeout:.0f} s" + (f" ({why})" if why else ""))
    return Convergence(not problems, time.monotonic() - started,
                       [results[n] for n in service_names if n in results], problems)
