"""A small HTTP/1.1 load generator: keep-alive connections on asyncio, closed or open loop.

Closed loop: each connection sends its next request when the last answered.
Open loop: requests are due at a fixed rate whatever the answers, and latency
counts from when a request was due, so a slow server can't hide its queue
(no coordinated omission).

It runs on the same few cores as the service it measures, so its own CPU per
request matters: one preformatted request, a minimal response parser, no task
per request, and uvloop when it is installed (about half the CPU per request).
"""
import asyncio
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

REPLICA_HEADER = b"x-replica"  # the model service names the replica (its hostname) in every answer


@dataclass(slots=True)
class Record:
    """One request: when it was due or sent (s from the start), latency, status (0: none), error kind, replica.

    late_ms (open loop): how long after its due time it went out. Its latency
    includes that wait, as a user's would; a large one says the generator ran
    out of connections or CPU, which the report should know apart from the server.
    """

    at_s: float
    latency_ms: float
    status: int
    error: str | None
    replica: str | None
    late_ms: float = 0.0


@dataclass
class LoadResult:
    records: list = field(default_factory=list)  # Record, in completion order
    duration_s: float = 0.0
    bodies: dict = field(default_factory=dict)  # replica -> last 2xx body (keep_bodies=True)

    @property
    def requests(self):
        return len(self.records)

    @property
    def errors(self):
        return sum(1 for r in self.records if r.error)

    @property
    def ok(self):
        return self.requests - self.errors

    @property
    def requests_per_s(self):
        return self.ok / self.duration_s if self.duration_s else 0.0

    @property
    def latencies_ms(self):
        return [r.latency_ms for r in self.records if not r.error]

    @property
    def statuses(self):
        return Counter(r.status for r in self.records if r.status)

    @property
    def error_kinds(self):
        return Counter(r.error for r in self.records if r.error)

    @property
    def replicas(self):
        return Counter(r.replica for r in self.records if r.replica)

    def percentile(self, q, latencies=None):
        data = sorted(self.latencies_ms if latencies is None else latencies)
        if not data:
            return None
        return data[min(len(data) - 1, max(0, int(round(q / 100.0 * (len(data) - 1)))))]

    def late_ms(self, q):
        """The q-th percentile of how late requests went out (0 in a closed loop)."""
        return self.percentile(q, [r.late_ms for r in self.records])

    def summary(self):
        lat = sorted(self.latencies_ms)
        return {"requests": self.requests, "errors": self.errors, "duration_s": round(self.duration_s, 3),
                "requests_per_s": round(self.requests_per_s, 1),
                "p50_ms": _r(self.percentile(50, lat)), "p95_ms": _r(self.percentile(95, lat)),
                "p99_ms": _r(self.percentile(99, lat)), "sent_late_p99_ms": _r(self.late_ms(99)),
                "statuses": dict(self.statuses),
                "error_kinds": dict(self.error_kinds), "replicas": dict(self.replicas)}


def _r(v):
    return None if v is None else round(v, 2)


class BadResponse(Exception):
    """The server answered something this parser does not accept."""


class _Conn:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, raw):
        if self.writer is not None and (self.writer.is_closing() or self.reader.at_eof()):
            # The server closed this idle keep-alive connection: nothing was sent on it, so open
            # another, as HTTP clients do with a stale pooled connection.
            self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(raw)
        except RuntimeError as exc:  # uvloop: the transport closed under us (a reset arrived)
            raise ConnectionResetError(str(exc)) from None
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise BadResponse(lines[0][:60])
        length, replica, close, chunked = 0, None, parts[0] == b"HTTP/1.0", False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == REPLICA_HEADER:
                replica = value.strip().decode()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        body = await self._chunked() if chunked else (await self.reader.readexactly(length) if length else b"")
        if close:
            self.close()
        return int(parts[1]), replica, body

    async def _chunked(self):
        out = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            out.append((await self.reader.readexactly(size + 2))[:-2])  # the chunk, then its CRLF
        while await self.reader.readuntil(b"\r\n") != b"\r\n":  # trailers, up to the empty line
            pass
        return b"".join(out)

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def build_request(url, body, method="POST"):
    """(host, port, raw request bytes) for a JSON POST of body to url."""
    u = urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        raise ValueError(f"expected an http:// URL, got {url!r}")
    body = body if isinstance(body, bytes) else body.encode()
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    head = (f"{method} {path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return u.hostname, u.port or 80, head + body


async def _within(coro, seconds):
    # asyncio.timeout (3.11) arms one timer; wait_for would wrap every request in a task.
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await coro
    return await asyncio.wait_for(coro, seconds)


# What a failed exchange can raise; anything else is a bug and propagates.
_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, BadResponse,
           ValueError)


async def run_async(url, body, connections=16, duration=10.0, max_requests=None, rate=None, stop=None,
                    keep_bodies=False, timeout=10.0):
    """Load url with POSTs of body for duration s (or max_requests, or until stop is set).

    body: bytes/str, or a function i -> bytes/str for the i-th request.
    rate: None for a closed loop, else requests/s in an open loop (connections
    then bound how many can be in flight).
    """
    factory = body if callable(body) else None
    host, port, fixed = build_request(url, b"" if factory else body)
    result = LoadResult()
    records = result.records
    start = time.perf_counter()
    deadline = start + duration
    sent = 0
    interval = 1.0 / rate if rate else None

    def next_slot():
        """(index, due time or None) of the next request, or None when the run is over."""
        nonlocal sent
        if (max_requests is not None and sent >= max_requests) or (stop is not None and stop.is_set()):
            return None
        due = start + sent * interval if interval else None
        if (due or time.perf_counter()) >= deadline:
            return None
        sent += 1
        return sent - 1, due

    async def worker():
        conn = _Conn(host, port)
        while (slot := next_slot()) is not None:
            i, due = slot
            if due is not None:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            raw = build_request(url, factory(i))[2] if factory else fixed
            sent_at = time.perf_counter()
            # Open loop: the clock starts when the request was due, not when a connection
            # was free to send it; a stalled server then shows its whole queue (wrk2's point).
            t0 = due if due is not None else sent_at
            late = (sent_at - t0) * 1000.0
            try:
                status, replica, resp = await _within(conn.request(raw), timeout)
            except _ERRORS as exc:
                conn.close()
                records.append(Record(t0 - start, (time.perf_counter() - t0) * 1000.0, 0, type(exc).__name__, None,
                                      late))
                continue
            ok = 200 <= status < 300
            records.append(Record(t0 - start, (time.perf_counter() - t0) * 1000.0, status,
                                  None if ok else f"http_{status}", replica, late))
            if ok and keep_bodies and replica:
                result.bodies[replica] = resp
        conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    result.duration_s = time.perf_counter() - start
    return result


def connections_for(rate, latency_s):
    """Connections an open loop at rate requests/s needs when answers take up to latency_s (Little's law).

    With fewer, requests wait for a free connection and the server sees only
    what it finishes: the loop closes, and whatever watches the arrival rate
    (an autoscaler, a capacity search) reads the server's capacity as the load.
    """
    return math.ceil(rate * latency_s)


def run(url, body, **kwargs):
    """run_async in a fresh event loop (uvloop's when installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_async(url, body, **kwargs))
    return uvloop.run(run_async(url, body, **kwargs))


class Background:
    """Load in a thread while something else happens (a scale, a rolling update, a node loss)."""

    def __init__(self, url, body, connections=8, rate=None, duration=3600.0, timeout=10.0):
        self.stop_event = threading.Event()
        self.result = None
        self.error = None
        self.started = None  # perf_counter at the start: records' at_s count from here
        self._args = (url, body, connections, rate, duration, timeout)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        url, body, connections, rate, duration, timeout = self._args
        self.started = time.perf_counter()
        try:
            self.result = run(url, body, connections=connections, rate=rate, duration=duration,
                              stop=self.stop_event, timeout=timeout)
        except BaseException as exc:  # handed to the caller by stop(): a thread's traceback would be lost
            self.error = exc

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def elapsed(self):
        """Seconds since the load started, on the records' clock."""
        return time.perf_counter() - self.started if self.started else 0.0

    def stop(self):
        self.stop_event.set()
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.result
