"""Engine I/O for logs: a task's log lines through the manager's /tasks/{id}/logs.

Swarm's log broker fetches the lines from whichever node runs (or ran) the
task, so the manager alone reaches every task. Lines come back as plain
strings with the engine's timestamp in front.
"""
import threading
from typing import Iterator

import docker.errors
import requests

from swarmml.engine import explain
from swarmml.errors import SwarmmlError


class TaskLog:
    """One task's log stream; lines() yields "<RFC 3339> <text>" strings, close() ends it from another thread."""

    def __init__(self, client, task_id: str, *, follow: bool = False, tail: int | None = None,
                 since: float | None = None):
        self.client, self.task_id, self.follow = client, task_id, follow
        self.params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow),
                       "tail": "all" if tail is None else str(tail)}
        if since is not None:
            self.params["since"] = f"{since:.9f}"
        self._resp = None
        self._closed = threading.Event()

    def lines(self) -> Iterator[str]:
        api = self.client.api
        try:
            self._resp = api._get(api._url("/tasks/{0}/logs", self.task_id), params=self.params, stream=True,
                                  timeout=None if self.follow else 60)
            api._raise_for_status(self._resp)
            pending = b""
            for frame in api._multiplexed_response_stream_helper(self._resp):
                pending += frame
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    if raw.strip():
                        yield raw.decode(errors="replace")
            if pending.strip():
                yield pending.decode(errors="replace")
        except docker.errors.APIError as exc:
            if not self._closed.is_set():
                raise SwarmmlError(f"logs of task {self.task_id[:12]}: {explain(exc)}") from None
        except (requests.exceptions.RequestException, OSError, AttributeError, ValueError):
            # A closed stream (close() from another thread) or a node that went away ends the lines.
            if not self._closed.is_set() and not self.follow:
                raise

    def close(self) -> None:
        self._closed.set()
        if self._resp is not None:
            try:
                self._resp.close()
            except Exception:  # closing a stream that another thread reads may raise anything
                pass
