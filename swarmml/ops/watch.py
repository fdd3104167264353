"""Following a change until Swarm has carried it out: progress per service and per batch.

The decisions are state.rollout_status (pure); this module only polls the
engine, draws progress on stderr and keeps the time.
"""
import time
from dataclasses import dataclass, field

from swarmml.console import progress
from swarmml.engine import swarm as engine
from swarmml.ops import state
from swarmml.ops.results import Batch

POLL_S = 0.5
# Tasks the scheduler can't place for this long (with nothing else on its way) end the wait.
STUCK_S = 8.0


@dataclass
class Outcome:
    ok: bool
    duration_s: float
    statuses: dict = field(default_factory=dict)  # service -> state.Status at the end
    batches: list = field(default_factory=list)  # Batch
    problems: list = field(default_factory=list)

    @property
    def placements(self):
        return [s.placement for s in self.statuses.values()]


def snapshot(client, names):
    """service -> its update marker, read just before changing it."""
    return {n: state.update_marker(engine.service(client, n)) for n in names}


def follow(client, names, mode, markers, timeout=300, show=True, started=None, since=None):
    """Poll until every service in `names` is done (or failed, stuck, or out of time).

    mode: "scale", "update" or "rollback" (see state.rollout_status).
    markers: snapshot() taken before the change.
    """
    started = started if started is not None else time.monotonic()
    t0 = time.monotonic()
    pending = list(names)
    statuses, batches, problems = {}, [], []
    last_updated, stuck_since, seen_running = {}, {}, {}

    def poll():
        nodes = engine.nodes(client)
        hosts = state.hostnames(nodes)
        for name in list(pending):
            svc = engine.service(client, name)
            tasks = engine.tasks(client, svc["ID"])
            st = state.rollout_status(svc, tasks, nodes, markers.get(name), mode, since)
            statuses[name] = st
            new_nodes = _started_where(svc, tasks, hosts, seen_running.setdefault(name, set()))
            if mode != "scale" and st.updated > last_updated.get(name, st.updated if st.phase == "done" else 0):
                batches.append(Batch(name, st.updated, st.desired, round(time.monotonic() - started, 2),
                                     sorted(new_nodes)))
                yield "batch", name, st
            last_updated[name] = st.updated
            if st.stuck:
                stuck_since.setdefault(name, time.monotonic())
            else:
                stuck_since.pop(name, None)
            if st.done:
                pending.remove(name)
                if not st.ok:
                    problems.append(f"{name}: {st.phase}" + (f": {st.message}" if st.message else ""))
            elif name in stuck_since and time.monotonic() - stuck_since[name] >= STUCK_S:
                pending.remove(name)
                problems.append(f"{name}: {st.running} of {st.desired} replicas run; "
                                f"{len(st.stuck)} can't be placed: {_reason(st.stuck[0])}")
            yield "status", name, st

    with progress(show=show) as bar:
        ids = {}
        while True:
            for kind, name, st in poll():
                total = max(st.desired, 1)
                count = st.running if mode == "scale" else st.updated
                text = st.phase if st.done else f"{st.phase}: {st.message}" if st.message else st.phase
                if name not in ids:
                    ids[name] = bar.add_task(name, total=total, status="")
                bar.update(ids[name], completed=min(count, total), total=total, status=text[:90])
                if kind == "batch":
                    b = batches[-1]
                    where = f" on {', '.join(b.nodes)}" if b.nodes else ""
                    bar.console.print(f"{name}: {b.updated}/{b.desired} tasks on the new spec{where} "
                                      f"({b.at_s:.1f} s)")
            if not pending or time.monotonic() - t0 > timeout:
                break
            time.sleep(POLL_S)

    for name in pending:
        st = statuses.get(name)
        why = f" ({st.phase}; {st.running}/{st.desired} running, {st.updated} on the current spec" + \
              (f"; {st.message}" if st.message else "") + ")" if st else ""
        problems.append(f"{name}: not done after {timeout:.0f} s{why}")
    return Outcome(not problems, time.monotonic() - t0, statuses, batches, problems)


def _started_where(service, tasks, hosts, seen):
    """Nodes of running tasks with the current spec not seen before (for the per-batch lines)."""
    current = state.task_shape(service["Spec"]["TaskTemplate"])
    out = []
    for t in tasks:
        if t["Status"]["State"] == "running" and t.get("DesiredState") == "running" and t["ID"] not in seen:
            seen.add(t["ID"])
            if state.task_shape(t["Spec"]) == current:
                out.append(hosts.get(t.get("NodeID"), "?"))
    return out


def _reason(line):
    return line.split(": ", 1)[1] if ": " in line else line
