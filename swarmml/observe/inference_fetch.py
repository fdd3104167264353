"""`swarmml logs --inference`: the inference logs of a service, read from every node that keeps them.

A node's inference_log volume holds the files of every replica that ran
there, so one container of the service per node is enough: the newest one
that the node's engine still has, running or not (the archive API reads a
stopped container's volumes too). Nodes whose engine swarmml can't reach
(a remote swarm's workers), or that have no container of the service any
more, are named in `unread`: their lines are not shown.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from swarmml.observe import inference_logs
from swarmml.engine import files as engine_files
from swarmml.engine import nodes as engine_nodes
from swarmml.engine import tasks as engine_tasks
from swarmml.engine import resolve_target
from swarmml.errors import NotFound, SwarmmlError, UsageError
from swarmml.ops.placement import hostnames


@dataclass
class Fetched:
    records: list[dict] = field(default_factory=list)
    bad_lines: int = 0
    unread: dict[str, str] = field(default_factory=dict)  # node -> why its volume was not read


def fetch(client, service: dict) -> Fetched:
    name = service["Spec"]["Name"]
    setting = inference_logs.log_setting(service)
    if not setting:
        raise UsageError(f"service {name} keeps no inference log (its {inference_logs.SETTING} is not set)")
    pattern, directory = inference_logs.file_pattern(setting), inference_logs.directory(setting)
    nodes = engine_nodes.nodes(client)
    names = hostnames(nodes)
    try:
        cluster = resolve_target().cluster
    except SwarmmlError:
        cluster = None
    engines = engine_nodes.node_engines(client, cluster, nodes)
    by_node: dict[str, list[dict]] = {}
    for t in engine_tasks.tasks(client, [service["ID"]]):
        if (t["Status"].get("ContainerStatus") or {}).get("ContainerID") and t.get("NodeID"):
            by_node.setdefault(t["NodeID"], []).append(t)
    out = Fetched()
    try:
        for node_id, tasks in sorted(by_node.items()):
            host = names.get(node_id, node_id[:12])
            node_engine = engines.get(node_id)
            if node_engine is None:
                out.unread[host] = "its engine can't be reached from here"
                continue
            # The running task first, then the newest: any of them sees the node's whole volume.
            tasks.sort(key=lambda t: (t["Status"]["State"] == "running", t["CreatedAt"]), reverse=True)
            for t in tasks:
                try:
                    got = engine_files.read_dir(node_engine, t["Status"]["ContainerStatus"]["ContainerID"],
                                                directory, keep=pattern.fullmatch)
                except NotFound:
                    continue
                parsed = inference_logs.parse_files(got, pattern, host)
                out.records += parsed.records
                out.bad_lines += parsed.bad_lines
                break
            else:
                out.unread[host] = "no container of the service is left on it"
    finally:
        for c in engines.values():
            if c is not client:
                c.close()
    if not out.records and not by_node:
        raise NotFound(f"service {name} has no task with a container: nothing to read")
    return out
