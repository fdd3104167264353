"""How many replicas of a service a gateway can send requests to: its HAProxy server-template slots. Pure.

The gateway finds the replicas through Docker's DNS: `server-template replica 128 tasks.predictor:8080`
makes 128 server slots and fills them with the addresses `tasks.predictor` resolves to, one per running
task. A replica beyond the slots runs, passes its health check and is never sent a request, and nothing
says so (36 replicas behind 32 slots: 32 answered). So the count is a limit: deploy and scale refuse to
go past it, in one line that names the file's line to change.
"""
from __future__ import annotations

import re

# Sections that hold servers; the others (global, defaults, frontend, resolvers, ...) end them.
_SECTION = re.compile(r"^(backend|listen|frontend|defaults|global|resolvers|peers|userlist|cache|program|"
                      r"http-errors|ring|mailers)\b")
_SERVERS = ("backend", "listen")
# server-template <prefix> <num | first-last> tasks.<service>[:<port>] ...
_TEMPLATE = re.compile(r"^server-template\s+\S+\s+(\d+)(?:-(\d+))?\s+tasks\.([A-Za-z0-9_.-]+?)(?::\d+)?(?:\s|$)")


def slots(text: str) -> dict[str, int]:
    """{DNS name after `tasks.`: slots} of an HAProxy configuration. Where several backends route to the same
    service, the fewest: a replica beyond one backend's slots gets none of that backend's requests."""
    per_backend: dict[str, dict[str, int]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        head = _SECTION.match(line)
        if head:
            section = line if head.group(1) in _SERVERS else None
            continue
        m = _TEMPLATE.match(line)
        if m and section:
            first, last, name = int(m.group(1)), m.group(2), m.group(3)
            count = int(last) - first + 1 if last else first
            backend = per_backend.setdefault(section, {})
            backend[name] = backend.get(name, 0) + count
    out: dict[str, int] = {}
    for backend in per_backend.values():
        for name, count in backend.items():
            out[name] = min(out.get(name, count), count)
    return out


def _aliases(spec: dict) -> set[str]:
    """The names Docker's DNS knows a service by: its own, and its aliases on each network (a stack's short
    names)."""
    nets = (spec.get("TaskTemplate") or {}).get("Networks") or spec.get("Networks") or []
    return {spec["Name"], *(a for n in nets for a in (n.get("Aliases") or []))}


def limits(services: dict[str, dict], configs: dict[str, bytes]) -> dict[str, tuple[int, str]]:
    """{service name: (slots, where they are set)} for every service a gateway of the same stack routes to.

    services: {name: spec} of one stack (or of the swarm); configs: {config name: its data} for the configs
    those services mount. A service behind two gateways gets the lower limit.
    """
    out: dict[str, tuple[int, str]] = {}
    for gateway, spec in sorted(services.items()):
        for ref in (spec.get("TaskTemplate") or {}).get("ContainerSpec", {}).get("Configs") or []:
            data = configs.get(ref.get("ConfigName"))
            if not data:
                continue
            for dns_name, count in slots(data.decode("utf-8", "replace")).items():
                for name, target in services.items():
                    if dns_name in _aliases(target) and (name not in out or count < out[name][0]):
                        out[name] = (count, f"the gateway {gateway}'s HAProxy config "
                                            f"(server-template ... {count} tasks.{dns_name})")
    return out


def problem(name: str, replicas: int, limit: tuple[int, str] | None, what: str = "replicas") -> str | None:
    """One line when `replicas` exceed what the gateway can route to, else None."""
    if limit is None or replicas <= limit[0]:
        return None
    count, where = limit
    return (f"service {name}: {replicas} {what}, but {where} routes to at most {count}; the rest would run and "
            f"get no request: raise that count in the gateway's haproxy.cfg and deploy the stack again")


def stack_problems(services: dict[str, dict], configs: dict[str, bytes], max_replicas: dict[str, int]) -> list[str]:
    """Pure: what a stack asks beyond its gateways' slots: each service's replicas, and the autoscaler's max
    (max_replicas: {service name: the max of its autoscale policy})."""
    found = limits(services, configs)
    out = []
    for name, spec in sorted(services.items()):
        replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas")
        for n, what in ((replicas, "replicas"), (max_replicas.get(name), "replicas at the autoscaler's max")):
            line = problem(name, n, found.get(name), what) if n is not None else None
            if line:
                out.append(line)
    return out
