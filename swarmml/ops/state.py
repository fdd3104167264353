"""Reading a service's state from the engine's task and node lists: pure functions, no daemon.

What runs where, which tasks carry the service's current spec, whether a
rolling update is ours and how far it got, which tasks can't be placed and
why. The waiting loop (watch.py) and every verb build on these.
"""
from dataclasses import dataclass, field

from swarmml.placement import (ACTIVE, ENDED, FAILED, UNPLACEABLE, Placement, desired_replicas,  # noqa: F401
                               eligible_nodes, hostnames, parse_ts, placement, task_name, task_time)

# TaskTemplate fields whose change makes Swarm replace a task. Placement is left out: Swarm keeps a
# task whose node still satisfies new constraints; Runtime is left out: tasks don't carry it.
TASK_FIELDS = ("ContainerSpec", "Resources", "ForceUpdate", "Networks", "LogDriver")
STACK_LABEL = "com.docker.stack.namespace"


def is_global(spec):
    mode = spec.get("Mode") or {}
    return "Global" in mode or "GlobalJob" in mode


def is_job(spec):
    mode = spec.get("Mode") or {}
    return "ReplicatedJob" in mode or "GlobalJob" in mode


def short_name(service):
    spec = service["Spec"]
    ns = (spec.get("Labels") or {}).get(STACK_LABEL)
    return spec["Name"][len(ns) + 1:] if ns and spec["Name"].startswith(ns + "_") else spec["Name"]


# --- which nodes a service may use ------------------------------------------------------

def eligible_hostnames(spec, nodes):
    """Hostnames of the nodes that may run the service's tasks (swarmml.placement.eligible_nodes), sorted."""
    return sorted(n["Description"]["Hostname"] for n in eligible_nodes(spec, nodes))


def max_per_node(spec):
    return ((spec.get("TaskTemplate") or {}).get("Placement") or {}).get("MaxReplicas") or None


def capacity_problem(spec, replicas, nodes):
    """Why `replicas` tasks can't all be placed under max_replicas_per_node, or None."""
    cap = max_per_node(spec)
    if not cap:
        return None
    eligible = eligible_hostnames(spec, nodes)
    if replicas <= cap * len(eligible):
        return None
    return (f"{spec['Name']}: {replicas} replicas can't be placed: max_replicas_per_node is {cap} and "
            f"{len(eligible)} node{'s' if len(eligible) != 1 else ''} {'are' if len(eligible) != 1 else 'is'} "
            f"eligible, so at most {cap * len(eligible)} can run")


# --- tasks ------------------------------------------------------------------------------

def _canonical(value):
    """Drop what the engine leaves out or fills in as empty, so equal specs compare equal."""
    if isinstance(value, dict):
        out = {k: _canonical(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [], "", False, 0)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def task_shape(task_spec):
    """The parts of a task spec whose change replaces the task, canonical."""
    return _canonical({k: (task_spec or {}).get(k) for k in TASK_FIELDS})


# --- rolling updates -------------------------------------------------------------------------

def update_marker(service):
    """What identifies the service's current rolling update (or rollback): its state's start time."""
    us = service.get("UpdateStatus") or {}
    return us.get("StartedAt")


@dataclass
class Status:
    """How far a change to one service has got."""

    service: str
    desired: int  # tasks that should run (for global services: the tasks Swarm made)
    running: int  # running tasks that should run
    updated: int  # of those, the ones carrying the current spec
    phase: str  # scaling / updating / rolling back / rolled back / paused / done
    done: bool = False
    ok: bool = True
    message: str = ""  # Swarm's update message, or the first pending task's reason
    placement: Placement = None
    stuck: list = field(default_factory=list)  # tasks the scheduler finds no node for


def rollout_status(service, tasks, nodes, marker_before=None, mode="update", since=None):
    """Pure: the state of a change to `service`.

    marker_before: update_marker() read just before the change, so an older
    update's status (a rollback hours ago) is not taken for this one's.
    mode: "scale", "update", or "rollback" (a rollback is what was asked for,
    so rollback_completed is success).
    """
    spec = service["Spec"]
    p = placement(service, tasks, nodes, since)
    us = service.get("UpdateStatus") or {}
    ours = bool(us) and update_marker(service) != marker_before
    state = us.get("State") if ours else None
    earlier_paused = not ours and us.get("State") in ("paused", "rollback_paused")

    current = task_shape(spec["TaskTemplate"])
    live = [t for t in tasks if t.get("DesiredState") == "running" and t["Status"]["State"] == "running"]
    updated = sum(1 for t in live if task_shape(t["Spec"]) == current)
    desired = p.desired if p.desired is not None else sum(1 for t in tasks if t.get("DesiredState") == "running")
    # A paused update from before leaves tasks of an older spec on purpose; they don't make us wait.
    converged = p.running == desired and (updated == desired or earlier_paused)
    st = Status(spec["Name"], desired, p.running, updated, "scaling" if mode == "scale" else "updating",
                placement=p, message=us.get("Message", "") if ours else "")

    if state in ("paused", "rollback_paused"):
        st.phase, st.done, st.ok = state.replace("_", " "), True, False
        return st
    if state == "rollback_started":
        st.phase = "rolling back"
    elif state == "rollback_completed":
        st.phase = "rolled back"
        st.ok = mode == "rollback"
        st.done = converged
    elif state == "updating":
        pass
    else:  # completed, or no rolling update at all (a scale, a change Swarm applies without replacing tasks)
        st.done = converged
    if st.done:
        st.phase = "rolled back" if state == "rollback_completed" else "done"
        return st
    # Tasks the scheduler can't place stay pending forever: say so instead of waiting for the deadline.
    waiting = desired - p.running
    if p.unplaceable and len(p.unplaceable) >= waiting > 0 and not p.pending:
        st.stuck = list(p.unplaceable)
    if not st.message:
        st.message = (p.unplaceable + p.pending)[0] if (p.unplaceable or p.pending) else ""
    return st


def tasks_of_spec(tasks, task_template):
    """Tasks made from this task template (e.g. the spec of an update that was rolled back), newest first."""
    shape = task_shape(task_template)
    made = [t for t in tasks if task_shape(t["Spec"]) == shape]
    return sorted(made, key=task_time, reverse=True)


def failed_task(tasks, task_template):
    """The task that best explains why an update to task_template failed, or None.

    Tasks that failed, were rejected, or exited while meant to run come
    first; tasks Swarm shut down itself (the rollback) only when nothing else is left.
    """
    made = tasks_of_spec(tasks, task_template)
    for t in made:
        st = t["Status"]["State"]
        if st in FAILED or (st == "complete" and t.get("DesiredState") != "complete"):
            return t
        if st == "shutdown" and t["Status"].get("Err"):
            return t
    ended = [t for t in made if t["Status"]["State"] in ENDED]
    return ended[0] if ended else None


def last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def explain_failure(service, task, nodes, facts=None):
    """One line on why a task stopped: Swarm's error, then what its container says (facts) if we reached it.

    facts: swarmml.engine.swarm.container_facts() of the task's container, or None.
    """
    st = task["Status"]
    node = hostnames(nodes).get(task.get("NodeID"), (task.get("NodeID") or "-")[:12])
    parts = [f"{task_name(service, task)} on {node} {st['State']}"]
    if st.get("Err"):
        parts.append(st["Err"])
    health = (facts or {}).get("health") or {}
    probes = health.get("Log") or []
    failing = [pr for pr in probes if pr.get("ExitCode") not in (0, None)]
    # A container that exited before its first probe has "unhealthy" and no probe to quote: say nothing then.
    if failing and (health.get("Status") == "unhealthy" or probes[-1] is failing[-1]):
        last = failing[-1]
        streak = health.get("FailingStreak") or len(failing)
        out = last_line(last.get("Output")) or f"exit code {last.get('ExitCode')}"
        parts.append(f"healthcheck failed {streak} time{'s' if streak != 1 else ''} in a row: {out}")
    if facts:
        if facts.get("oom_killed"):
            parts.append("killed: out of memory")
        if facts.get("error"):
            parts.append(facts["error"])
        if facts.get("exit_code") and not st.get("Err"):
            parts.append(f"exit code {facts['exit_code']}")
        if facts.get("log_tail") and not probes:
            parts.append(f"last log line: {facts['log_tail'][-1].strip()[:200]}")
    elif not st.get("Err"):
        parts.append(st.get("Message") or "no error recorded")
    return "; ".join(parts)
