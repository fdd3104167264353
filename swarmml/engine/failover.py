"""Keep talking to a swarm when the manager we talk to is lost.

A swarm with three managers survives the loss of one, but a client that knows
only one manager's address does not. swarmml's client sends each call to the
manager that answered last, and moves on to the next one when that manager:

- can't be reached at all (its socket refuses or is gone, its address refuses
  or doesn't answer the connection): nothing was sent, so sending the call
  elsewhere is always safe;
- answers that it can't serve swarm calls now (no leader, not a manager: the
  Unavailable kind of errors.py): it did nothing, so another may;
- lost the connection of a GET: reading the swarm changes nothing.

Any other call whose connection was lost after it was sent is not resent here:
it may have happened, and errors.py's retry policy decides what is safe to try again.

The managers are known two ways. A local cluster's are its nodes' sockets. A
remote swarm's (tcp:// with or without TLS, ssh://) are read from the swarm
itself, its managers' addresses with the scheme, user and port the user gave,
and remembered between runs (peers.py), so that a command started after its
manager was lost still finds the others.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Callable

import requests
import urllib3.exceptions
from docker.transport import UnixHTTPAdapter

from swarmml.engine import errors

NEVER_SENT = (FileNotFoundError, ConnectionRefusedError, requests.exceptions.ConnectTimeout,
              urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError)
NEVER_SENT_ERRNOS = (errno.ENOENT, errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
# A lost machine's address doesn't refuse, it stays silent: wait this long for a connection to the
# next manager, not the call's whole timeout.
CONNECT_TIMEOUT_S = 3.0


def never_sent(exc: BaseException) -> bool:
    """Pure: whether a transport error happened before the request left (connect failed), from its causes."""
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, NEVER_SENT) or (isinstance(e, OSError) and e.errno in NEVER_SENT_ERRNOS):
            return True
        stack += [c for c in (getattr(e, "reason", None), e.__cause__, e.__context__) if isinstance(c, BaseException)]
        stack += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return False


def another_may_answer(status_code: int, text: str) -> bool:
    """Pure: an answer that says this manager can't serve the call now (errors.py's Unavailable kind)."""
    return status_code >= 500 and errors.kind_of(status_code, text) is errors.Unavailable


@dataclass
class Way:
    """One manager: how to reach it. make() builds its adapter when it is first used (an SSH
    adapter connects at once, and a lost manager must not stop the others from being tried);
    base: the URL prefix of calls at this manager, or None when they keep the client's."""
    url: str
    make: Callable[[], requests.adapters.BaseAdapter]
    base: str | None = None
    adapter: requests.adapters.BaseAdapter | None = field(default=None, repr=False)

    def get(self) -> requests.adapters.BaseAdapter:
        if self.adapter is None:
            self.adapter = self.make()
        return self.adapter


def unix_ways(sockets: list[str], timeout: float, pool_connections: int = 25, max_pool_size: int = 10) -> list[Way]:
    """The ways to a local cluster's managers: their nodes' unix sockets."""
    def maker(path):
        return lambda: UnixHTTPAdapter(f"http+unix://{path}", timeout, pool_connections=pool_connections,
                                       max_pool_size=max_pool_size)
    return [Way(f"unix://{s}", maker(s)) for s in sockets]


def rebased(request, base: str, other: str):
    """A copy of a prepared request sent to the same path at another manager (base -> other)."""
    if not request.url.startswith(base):
        return request
    moved = request.copy()
    moved.url = other + request.url[len(base):]
    return moved


class ManagerFailover(requests.adapters.BaseAdapter):
    """A requests adapter over several managers; the one that answered last goes first.

    base: the URL prefix of the client's calls (its base_url), rewritten for the ways that have their own.
    """

    def __init__(self, ways: list[Way], base: str = "http+docker://localhost"):
        super().__init__()
        self.ways = list(ways)
        self.base = base
        self.current = 0

    @property
    def url(self) -> str:
        """The manager that answered last."""
        return self.ways[self.current].url

    def send(self, request, **kwargs):
        failure: Exception | None = None
        refused = None
        several = len(self.ways) > 1
        if several:
            kwargs["timeout"] = _short_connect(kwargs.get("timeout"))
        for step in range(len(self.ways)):
            i = (self.current + step) % len(self.ways)
            way = self.ways[i]
            try:
                adapter = way.get()
                resp = adapter.send(request if way.base is None else rebased(request, self.base, way.base), **kwargs)
            except requests.exceptions.SSLError:
                raise  # the same certificates are refused, or refuse, at every manager: a mistake to show, not a loss
            except requests.exceptions.ConnectionError as exc:
                if not (never_sent(exc) or (several and request.method in ("GET", "HEAD"))):
                    raise
                failure = exc
                continue
            except OSError as exc:  # an SSH way that could not connect: its adapter was never made
                failure = requests.exceptions.ConnectionError(exc)
                continue
            if another_may_answer(resp.status_code, _text(resp)) and step < len(self.ways) - 1:
                refused = resp
                continue
            self.current = i
            return resp
        if refused is not None:
            return refused
        assert failure is not None
        raise failure

    def close(self):
        for w in self.ways:
            if w.adapter is not None:
                w.adapter.close()


def _short_connect(timeout):
    """(connect, read) timeouts: a silent manager is passed over after CONNECT_TIMEOUT_S."""
    if isinstance(timeout, tuple):
        connect, read = timeout
        return (min(connect, CONNECT_TIMEOUT_S) if connect else CONNECT_TIMEOUT_S, read)
    return (min(timeout, CONNECT_TIMEOUT_S) if timeout else CONNECT_TIMEOUT_S, timeout)


def _text(resp) -> str:
    # Only error answers are read here, and they are short JSON ({"message": ...}).
    if resp.status_code < 500 or resp.headers.get("Content-Type", "").startswith("application/vnd.docker.raw"):
        return ""
    try:
        return resp.content.decode("utf-8", "replace")
    except requests.exceptions.RequestException:
        return ""


def install(client, ways: list[Way]) -> ManagerFailover:
    """Route a DockerClient's calls through ManagerFailover over ways (its own manager first)."""
    base = client.api.base_url
    adapter = ManagerFailover(ways, base=base)
    client.api.mount(base, adapter)  # longer than the SDK's own prefix for it, so this adapter is chosen
    client.api._custom_adapter = adapter  # the SDK falls back to it for URLs no adapter claims
    return adapter
