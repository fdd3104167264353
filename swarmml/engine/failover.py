"""Keep talking to a swarm when the manager we talk to is lost.

A swarm with three managers survives the loss of one, but a client that knows
only one manager's address does not. For a local cluster, swarmml knows every
manager's socket, so its client sends each call to the manager that answered
last, and moves on to the next one when that manager:

- can't be reached at all (its socket refuses, or is gone): nothing was sent,
  so sending the call elsewhere is always safe;
- answers that it can't serve swarm calls now (no leader, not a manager: the
  Unavailable kind of errors.py): it did nothing, so another may.

A connection lost after the call was sent is not resent here: the call may have
happened, and errors.py's retry policy decides what is safe to try again.
"""
from __future__ import annotations

import errno

import requests
from docker.transport import UnixHTTPAdapter

from swarmml.engine import errors

NEVER_SENT = (FileNotFoundError, ConnectionRefusedError)
NEVER_SENT_ERRNOS = (errno.ENOENT, errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)


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
        stack += [getattr(e, "reason", None), e.__cause__, e.__context__]
        stack += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return False


def another_may_answer(status_code: int, text: str) -> bool:
    """Pure: an answer that says this manager can't serve the call now (errors.py's Unavailable kind)."""
    return status_code >= 500 and errors.kind_of(status_code, text) is errors.Unavailable


class ManagerFailover(requests.adapters.BaseAdapter):
    """A requests adapter over several managers' unix sockets; the one that answered last goes first."""

    def __init__(self, sockets: list[str], timeout: float = 60, pool_connections: int = 25, max_pool_size: int = 10):
        super().__init__()
        self.sockets = list(sockets)
        self.adapters = [UnixHTTPAdapter(f"http+unix://{s}", timeout, pool_connections=pool_connections,
                                         max_pool_size=max_pool_size) for s in self.sockets]
        self.current = 0

    @property
    def socket(self) -> str:
        """The socket of the manager that answered last."""
        return self.sockets[self.current]

    def send(self, request, **kwargs):
        failure: Exception | None = None
        refused = None
        for step in range(len(self.adapters)):
            i = (self.current + step) % len(self.adapters)
            try:
                resp = self.adapters[i].send(request, **kwargs)
            except requests.exceptions.ConnectionError as exc:
                if not never_sent(exc):
                    raise
                failure = exc
                continue
            if another_may_answer(resp.status_code, _text(resp)) and step < len(self.adapters) - 1:
                refused = resp
                continue
            self.current = i
            return resp
        if refused is not None:
            return refused
        assert failure is not None
        raise failure

    def close(self):
        for a in self.adapters:
            a.close()


def _text(resp) -> str:
    # Only error answers are read here, and they are short JSON ({"message": ...}).
    if resp.status_code < 500 or resp.headers.get("Content-Type", "").startswith("application/vnd.docker.raw"):
        return ""
    try:
        return resp.content.decode("utf-8", "replace")
    except requests.exceptions.RequestException:
        return ""


def install(client, sockets: list[str]) -> ManagerFailover:
    """Route a unix-socket DockerClient's calls through ManagerFailover over sockets (its own socket first)."""
    adapter = ManagerFailover(sockets, timeout=client.api.timeout)
    client.api.mount("http+docker://", adapter)
    client.api._custom_adapter = adapter  # the SDK falls back to it for URLs no adapter claims
    return adapter
