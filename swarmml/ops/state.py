"""What the day-2 verbs read from the engine's task and node lists: pure functions, no daemon.

Which nodes a service may use and how many replicas fit, which task explains
a failed update and why it stopped. How far a rollout got is not decided
here but in swarmml.ops.rollout, for every verb alike.
"""
from swarmml.ops.placement import (ACTIVE, ENDED, FAILED, UNPLACEABLE, Placement, desired_replicas,  # noqa: F401
                               eligible_nodes, hostnames, parse_ts, placement, task_name, task_time)

# To find the tasks an attempted (maybe since rolled back) TaskTemplate made, after the fact, when the
# engine can no longer tell: the fields that differ between two templates' tasks. Placement is left out
# (Swarm keeps tasks across a constraint change); Runtime too (tasks don't carry it).
TASK_FIELDS = ("ContainerSpec", "Resources", "ForceUpdate", "Networks", "LogDriver")


def is_global(spec):
    mode = spec.get("Mode") or {}
    return "Global" in mode or "GlobalJob" in mode


def is_job(spec):
    mode = spec.get("Mode") or {}
    return "ReplicatedJob" in mode or "GlobalJob" in mode


# --- which nodes a service may use ------------------------------------------------------

def eligible_hostnames(spec, nodes):
    """Hostnames of the nodes that may run the service's tasks (swarmml.ops.placement.eligible_nodes), sorted."""
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
    """The parts of a task spec that tell tasks of two templates apart, canonical."""
    return _canonical({k: (task_spec or {}).get(k) for k in TASK_FIELDS})


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

    facts: swarmml.engine.tasks.container_facts() of the task's container, or None.
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
