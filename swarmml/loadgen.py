"""A small HTTP/1.1 load generator: keep-alive connections on asyncio, closed or open loop.

Closed loop: each connection sends its next request when the last answered.
Open loop: requests are due at a fixed rate whatever the answers, and latency
counts from when a request was due, so a slow server can't hide its queue
(no coordinated omission).
"""
import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

REPLICA_HEADER = b"x-replica"


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    duration_s: float = 0.0
    latencies_ms: list = field(default_factory=list)  # successful requests only
    statuses: Counter = field(default_factory=Counter)
    error_kinds: Counter = field(default_factory=Counter)
    replicas: Counter = field(default_factory=Counter)
    bodies: dict = field(default_factory=dict)  # replica -> last body (for golden checks)

    @property
    def ok(self):
        return self.requests - self.errors

    @property
    def requests_per_s(self):
        return self.ok / self.duration_s if self.duration_s else 0.0

    def percentile(self, q):
        if not self.latencies_ms:
            return None
        data = sorted(self.latencies_ms)
        k = min(len(data) - 1, max(0, int(round(q / 100.0 * (len(data) - 1)))))
        return data[k]

    def summary(self):
        return {"requests": self.requests, "errors": self.errors, "duration_s": round(self.duration_s, 3),
                "requests_per_s": round(self.requests_per_s, 1),
                "p50_ms": _r(self.percentile(50)), "p95_ms": _r(self.percentile(95)),
                "p99_ms": _r(self.percentile(99)), "statuses": dict(self.statuses),
                "error_kinds": dict(self.error_kinds), "replicas": dict(self.replicas)}


def _r(v):
    return None if v is None else round(v, 2)


class _Conn:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, raw):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, replica, close = 0, None, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == REPLICA_HEADER:
                replica = value.strip().decode()
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, replica, body

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def build_request(url, body, method="POST"):
    u = urlsplit(url)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    head = (f"{method} {path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return u.hostname, u.port or 80, head + body


async def run_async(url, body, connections=16, duration=10.0, max_requests=None, rate=None, stop=None,
                    keep_bodies=False, timeout=10.0):
    host, port, raw = build_request(url, body if isinstance(body, bytes) else body.encode())
    result = LoadResult()
    start = time.perf_counter()
    deadline = start + duration
    sent = 0
    interval = 1.0 / rate if rate else None

    def next_slot():
        """(due time or None) for the next request, or False when the run is over."""
        nonlocal sent
        if (max_requests is not None and sent >= max_requests) or (stop is not None and stop.is_set()):
            return False
        due = start + sent * interval if interval else None
        if (due or time.perf_counter()) >= deadline:
            return False
        sent += 1
        return due

    async def worker():
        conn = _Conn(host, port)
        while True:
            due = next_slot()
            if due is False:
                break
            if due is not None:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            t0 = due if due is not None else time.perf_counter()
            result.requests += 1
            try:
                status, replica, resp = await asyncio.wait_for(conn.request(raw), timeout)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                    ValueError, IndexError) as exc:
                conn.close()
                result.errors += 1
                result.error_kinds[type(exc).__name__] += 1
                continue
            result.statuses[status] += 1
            if replica:
                result.replicas[replica] += 1
            if 200 <= status < 300:
                result.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
                if keep_bodies and replica:
                    result.bodies[replica] = resp
            else:
                result.errors += 1
                result.error_kinds[f"http_{status}"] += 1
        conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    result.duration_s = time.perf_counter() - start
    return result


def run(url, body, **kwargs):
    return asyncio.run(run_async(url, body, **kwargs))


class Background:
    """Load in a thread while something else happens (a scale, a rolling update, a node loss)."""

    def __init__(self, url, body, connections=8, rate=None, duration=3600.0):
        self.stop_event = threading.Event()
        self.result = None
        self._thread = threading.Thread(target=self._run, args=(url, body, connections, rate, duration), daemon=True)

    def _run(self, url, body, connections, rate, duration):
        self.result = run(url, body, connections=connections, rate=rate, duration=duration, stop=self.stop_event)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_event.set()
        self._thread.join()
        return self.result
