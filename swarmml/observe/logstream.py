"""The logs of every task of some services: read once, or followed as tasks come and go.

I/O through swarmml.engine only; what a line is and in which order it shows
is decided by the pure functions in swarmml.observe.logs.
"""
import itertools
import queue
import threading
import time
from typing import Callable, Iterator

from swarmml.observe import logs
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import services as engine_services
from swarmml.engine import tasks as engine_tasks
from swarmml.engine.logs import TaskLog
from swarmml.ops.placement import hostnames
from swarmml.errors import NotFound
from swarmml.ops import services as svc
from swarmml.ops.services import short_name


def resolve_targets(client, name: str, stack: str | None = None) -> list[dict]:
    """NAME is a stack (all its services) or a service (short or full name)."""
    everything = engine_services.services(client)
    if stack is None and any(svc.stack_of(s) == name for s in everything):
        return svc.of_stack(everything, name)
    try:
        return [svc.match(everything, name, stack)]
    except NotFound:
        stacks = sorted({svc.stack_of(s) for s in everything if svc.stack_of(s)})
        raise NotFound(f"no stack or service named {name!r}"
                       + (f" (stacks: {', '.join(stacks)})" if stacks else "")) from None


def _sources(client, services: list[dict]) -> dict[str, logs.Source]:
    names = {s["ID"]: short_name(s) for s in services}
    hosts = hostnames(engine_nodes.nodes(client))
    return {t["ID"]: logs.source_for(t, names[t["ServiceID"]], hosts)
            for t in engine_tasks.tasks(client, list(names)) if _has_container(t)}


def _has_container(task: dict) -> bool:
    """Tasks that never got a container (pending, rejected) have no logs to ask for."""
    return bool((task.get("Status") or {}).get("ContainerStatus", {}).get("ContainerID"))


def read(client, services: list[dict], *, tail: int | None = None, since: float | None = None) -> list[logs.LogLine]:
    """Every task's lines (running and stopped ones Swarm still keeps), merged in time order."""
    seq = itertools.count()
    streams = []
    for task_id, source in _sources(client, services).items():
        log = TaskLog(client, task_id, tail=tail, since=since)
        streams.append([_line(raw, next(seq), source) for raw in log.lines()])
    return logs.merge(streams)


def _line(raw: str, seq: int, source: logs.Source) -> logs.LogLine:
    try:
        time_ns, text = logs.split_timestamp(raw)
    except ValueError:  # a line without the engine's timestamp: it is shown when it arrives
        time_ns, text = time.time_ns(), raw
    return logs.LogLine(time_ns, seq, source, text)


def follow(client, services: list[dict], *, tail: int | None = None, since: float | None = None,
           stop: threading.Event | None = None, poll_s: float = 1.0, hold_s: float = 0.3,
           list_sources: Callable[[], dict[str, logs.Source]] | None = None,
           open_log: Callable[..., TaskLog] | None = None) -> Iterator[logs.LogLine]:
    """Lines as they are written, by every task, including tasks that start while we follow.

    Tasks present at the start show their last `tail` lines (or those since
    `since`) first; a task that appears later is read from its first line.
    Stops when `stop` is set.
    """
    stop = stop or threading.Event()
    list_sources = list_sources or (lambda: _sources(client, services))
    open_log = open_log or (lambda task_id, **kw: TaskLog(client, task_id, **kw))
    arrived: queue.Queue = queue.Queue()
    seq = itertools.count()
    followed: dict[str, TaskLog] = {}

    def reader(log: TaskLog, source: logs.Source):
        for raw in log.lines():
            arrived.put(_line(raw, next(seq), source))

    def join(first: bool):
        for task_id, source in list_sources().items():
            if task_id in followed:
                continue
            log = open_log(task_id, follow=True, tail=tail if first else None, since=since if first else None)
            followed[task_id] = log
            threading.Thread(target=reader, args=(log, source), daemon=True, name=f"logs-{task_id[:12]}").start()

    reorder = logs.Reorder(hold_s)
    join(first=True)
    next_poll = time.monotonic() + poll_s
    try:
        while not stop.is_set():
            try:
                line = arrived.get(timeout=min(hold_s, 0.1))
                reorder.push(line, time.monotonic())
            except queue.Empty:
                pass
            yield from reorder.ready(time.monotonic())
            if time.monotonic() >= next_poll:
                join(first=False)
                next_poll = time.monotonic() + poll_s
    finally:
        for log in followed.values():
            log.close()
    yield from reorder.flush()
