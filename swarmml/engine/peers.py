"""The other managers of a remote swarm, as URLs the client can fail over to, remembered between runs.

A user gives swarmml one manager (tcp://swarm-1:2376, ssh://ops@swarm-1). The
swarm knows the rest: each manager's raft address (ManagerStatus.Addr, "IP:2377").
Their engines are reached the way the given one is, with its scheme, user and
TLS material. The port is the given one when the given host is itself one of
the managers' addresses (the same setup on every machine), and the scheme's
usual port otherwise (the given address is a proxy or a published port).

The list is kept in a small JSON file, keyed by the URL the user gave, so that
a command started after that manager was lost can still reach the others.
Deriving URLs is pure; load and save read and write the file.
"""
from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

DEFAULT_PORTS = {"tcp": {True: 2376, False: 2375}, "https": {True: 2376, False: 2376},
                 "http": {True: 2375, False: 2375}, "ssh": {True: 22, False: 22}}


def manager_hosts(nodes: list[dict]) -> list[str]:
    """Pure: the address of every manager in a node list from the Engine API, the leader first."""
    managers = [n for n in nodes if n.get("ManagerStatus")]
    managers.sort(key=lambda n: (not n["ManagerStatus"].get("Leader"), n["ManagerStatus"].get("Addr", "")))
    hosts = []
    for n in managers:
        addr = n["ManagerStatus"].get("Addr") or ""
        host = addr.rsplit(":", 1)[0].strip("[]") if addr else (n.get("Status") or {}).get("Addr", "")
        if host and host not in hosts:
            hosts.append(host)
    return hosts


def peer_urls(base_url: str, hosts: list[str], tls: bool) -> list[str]:
    """Pure: URLs for the managers at hosts, in base_url's scheme, user and port; base_url's own host left out."""
    parts = urlsplit(base_url)
    scheme = parts.scheme
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return []
    same_setup = parts.hostname in hosts
    port = parts.port if same_setup and parts.port else DEFAULT_PORTS[scheme][tls]
    user = f"{parts.username}@" if parts.username else ""
    out = []
    for host in hosts:
        if host == parts.hostname:
            continue
        shown = f"[{host}]" if ":" in host else host
        url = f"{scheme}://{user}{shown}" + ("" if scheme == "ssh" and port == 22 else f":{port}")
        if url not in out:
            out.append(url)
    return out


def cache_path(env=os.environ) -> str:
    root = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "swarmml", "managers.json")


def load(base_url: str, path: str | None = None) -> list[str]:
    """The peers remembered for base_url ([] when none, or the file is unreadable)."""
    try:
        with open(path or cache_path()) as f:
            known = json.load(f)
    except (OSError, ValueError):
        return []
    peers = known.get(base_url) if isinstance(known, dict) else None
    return [p for p in peers if isinstance(p, str)] if isinstance(peers, list) else []


def save(base_url: str, peers: list[str], path: str | None = None) -> None:
    """Remember base_url's peers. A cache: a file that can't be written is left alone."""
    path = path or cache_path()
    try:
        with open(path) as f:
            known = json.load(f)
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    if known.get(base_url) == peers:
        return
    known[base_url] = peers
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(known, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass
