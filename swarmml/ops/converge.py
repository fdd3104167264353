"""Waiting until Swarm has carried a change out: the one polling loop, with progress per service and batch.

Every verb that changes services waits here (deploy, scale, update, rollback,
rebalance, verify's restore). What "done" means is decided by
swarmml.ops.rollout.read (pure); this module only asks the engine, keeps the
time, draws progress on stderr and turns the end into problems to report.
"""
import time
from dataclasses import dataclass, field

from swarmml.ops import placement as placements
from swarmml.ops import rollout
from swarmml.console import progress
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import swarm as engine_swarm
from swarmml.engine import tasks as engine_tasks

POLL_S = 0.5
# Tasks the scheduler can't place for this long (with nothing else on its way) end the wait:
# Swarm would keep them pending forever.
STUCK_S = 8.0


def now(client):
    """The manager's clock as a datetime, to tell a change's task failures from older ones.

    The manager's, not this machine's: the engines write the task timestamps, and a remote manager's
    clock may differ from ours.
    """
    return placements.parse_ts(engine_swarm.now(client))


@dataclass
class Outcome:
    ok: bool
    duration_s: float
    statuses: dict = field(default_factory=dict)  # service -> rollout.Rollout at the end
    batches: list = field(default_factory=list)  # rollout.Batch, in order
    problems: list = field(default_factory=list)  # one line each

    @property
    def placements(self):
        return [s.placement for s in self.statuses.values()]


def snapshot(client, names):
    """service -> its update marker, read just before changing it."""
    return {n: rollout.update_marker(engine_services.service(client, n)) for n in names}


def observe(client, name):
    """(service, tasks, fresh task ids) as the engine answers now: the reader's input for one service."""
    svc = engine_services.service(client, name)
    tasks = engine_tasks.tasks(client, [svc["ID"]])
    fresh = {t["ID"] for t in engine_tasks.tasks(client, [svc["ID"]], up_to_date=True)}
    return svc, tasks, fresh


def started_where(tasks, fresh, hosts, seen):
    """Hostnames of fresh running tasks not in `seen` (which this adds them to): a batch's nodes."""
    out = []
    for t in tasks:
        if rollout.is_live(t) and t["ID"] in fresh and t["ID"] not in seen:
            seen.add(t["ID"])
            out.append(hosts.get(t.get("NodeID"), "?"))
    return sorted(out)


def wait(client, names, mode="deploy", markers=None, timeout=300, since=None, show=True, started=None,
         give_up_after=None):
    """Poll until every service in `names` is done, failed, stuck, or out of time; returns an Outcome.

    mode, give_up_after: see rollout.read. markers: snapshot() taken before the change (a service
    missing from it had no update status to mistake for this one's). started: the monotonic time the
    operation began, for the batches' times.
    """
    markers = markers or {}
    started = started if started is not None else time.monotonic()
    t0 = time.monotonic()
    pending = list(names)
    statuses, batches, problems = {}, [], []
    last_fresh, stuck_since, seen, settled_since = {}, {}, {}, {}

    def poll():
        nodes = engine_nodes.nodes(client)
        hosts = placements.hostnames(nodes)
        for name in list(pending):
            svc, tasks, fresh = observe(client, name)
            r = rollout.read(svc, tasks, fresh, nodes, mode, markers.get(name), since, give_up_after)
            statuses[name] = r
            where = started_where(tasks, fresh, hosts, seen.setdefault(name, set()))
            # Fresh tasks that were already there when we started are no batch of this change.
            before = last_fresh.get(name, r.fresh if r.phase == "done" else 0)
            if mode != "scale" and r.fresh > before:
                batches.append(rollout.Batch(name, r.fresh, r.desired, round(time.monotonic() - started, 2),
                                             where))
                yield "batch", name, r
            last_fresh[name] = r.fresh
            if r.stuck:
                stuck_since.setdefault(name, time.monotonic())
            else:
                stuck_since.pop(name, None)
            if r.done and r.ok:
                settled_since.setdefault(name, time.monotonic())
                rollout.hold_until_settled(r, svc, time.monotonic() - settled_since[name])
            else:
                settled_since.pop(name, None)
            if r.done:
                pending.remove(name)
                if not r.ok:
                    problems.append(r.problem + (_last_output(client, r) if r.failing else ""))
            elif name in stuck_since and time.monotonic() - stuck_since[name] >= STUCK_S:
                pending.remove(name)
                problems.append(f"{name}: {r.running} of {r.desired} replicas run; "
                                f"{len(r.stuck)} can't be placed: {_reason(r.stuck[0])}")
            yield "status", name, r

    with progress(show=show) as bar:
        ids = {}
        while True:
            for kind, name, r in poll():
                total = max(r.desired, 1)
                count = r.running if mode == "scale" else r.fresh
                text = r.phase if r.done else f"{r.phase}: {r.message}" if r.message else r.phase
                if name not in ids:
                    ids[name] = bar.add_task(name, total=total, status="")
                bar.update(ids[name], completed=min(count, total), total=total, status=text[:90])
                if kind == "batch":
                    b = batches[-1]
                    on = f" on {', '.join(b.nodes)}" if b.nodes else ""
                    bar.console.print(f"{name}: {b.updated}/{b.desired} tasks on the new spec{on} ({b.at_s:.1f} s)")
            if not pending or time.monotonic() - t0 > timeout:
                break
            time.sleep(POLL_S)

    for name in pending:
        problems.append(f"{name}: not done after {timeout:.0f} s" + _why_not(statuses.get(name)))
    return Outcome(not problems, time.monotonic() - t0, statuses, batches, problems)


def _why_not(r):
    if r is None:
        return ""
    p = r.placement
    why = [f"{r.phase}; {r.running}/{r.desired} running, {r.fresh} on the current spec"]
    why += (p.failed[-1:] + (p.unplaceable + p.pending)[:1]) if p else []
    return f" ({'; '.join(why)})"


def _last_output(client, r):
    """What the last failed container of a crash loop printed last: usually why it could not start."""
    lines = engine_tasks.task_log_tail(client, r.failing[0][3], lines=1)
    return f"; it printed: {lines[-1].strip()[:200]}" if lines else ""


def _reason(line):
    return line.split(": ", 1)[1] if ": " in line else line
