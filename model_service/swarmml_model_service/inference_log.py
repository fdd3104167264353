"""Inference logs: one JSON line per request, appended by a writer thread to a size-rotated file.

The request path only puts a tuple on a queue (a C-level SimpleQueue: no
lock taken in Python, no formatting, no syscall); the writer thread formats
whatever has queued up and appends it with one write(), so a line is never
split across two writes and a reader never sees half of one. close() drains
the queue: the server calls it after the SIGTERM drain, once no request can
add a line any more.

Each process writes its own file, named after its replica (the container's
hostname): two replicas on one node share the node's volume, and two
writers rotating one file would lose lines. inference.jsonl becomes
inference.<replica>.jsonl, rotated to .1 ... .<keep>.
"""
from __future__ import annotations

import os
import random
import sys
import threading
import time
from datetime import datetime, timezone
from queue import SimpleQueue

import orjson

# Past this many queued lines the writer is not keeping up (a stalled disk): drop and count rather than let
# the replica's memory grow until the kernel kills it.
MAX_QUEUED = 100_000
FLUSH_S = 1.0  # how long lines gather in memory before the writer formats and appends them
MAX_BATCH = 4096  # lines formatted and written at a time
_STOP = object()


def replica_path(path: str, replica: str) -> str:
    """Pure: the file one replica writes, for SWARMML_INFERENCE_LOG=path (dir/inference.jsonl)."""
    head, tail = os.path.split(path)
    stem, dot, ext = tail.rpartition(".")
    name = f"{stem}.{replica}.{ext}" if dot and stem else f"{tail}.{replica}"
    return os.path.join(head, name)


def rotation_moves(path: str, keep: int, present: int | None = None) -> list[tuple[str, str]]:
    """Pure: the renames that rotate path, oldest first (path.<keep> is overwritten, so it goes away).

    present: how many rotated files there are (path.1 ... path.<present>); only those move."""
    if keep < 1:
        return []
    top = keep - 1 if present is None else min(present, keep - 1)
    moves = [(f"{path}.{i}", f"{path}.{i + 1}") for i in range(top, 0, -1)]
    return moves + [(path, f"{path}.1")]


def should_rotate(size: int, incoming: int, max_bytes: int) -> bool:
    """Pure: rotate before appending incoming bytes to a file of size bytes? Never an empty file: a chunk
    bigger than max_bytes goes whole into a fresh file rather than being split."""
    return size > 0 and size + incoming > max_bytes


def sampled(fraction: float, draw: float) -> bool:
    """Pure: is a request whose random draw in [0, 1) is `draw` one whose inputs and outputs are logged?"""
    return draw < fraction


def format_time(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def record(entry: tuple, replica: str) -> dict:
    """Pure: the JSON object of one queued entry (see InferenceLog.put for its fields)."""
    t, req_id, seq, model, version, latency_s, status, sample = entry
    rec = {"id": req_id if req_id is not None else f"{replica}-{seq}", "time": format_time(t), "model": model,
           "version": version, "replica": replica, "latency_ms": round(latency_s * 1000, 3), "status": status}
    if sample is not None:
        request_json, response_json = sample
        rec["inputs"] = _field(request_json, "inputs")
        if response_json is not None:
            rec["outputs"] = _field(response_json, "outputs")
    return rec


def _field(raw: bytes, key: str):
    try:
        return orjson.loads(raw).get(key)
    except (orjson.JSONDecodeError, AttributeError):
        return None  # a 400 for malformed JSON has no inputs to show


def encode(rec: dict) -> bytes:
    return orjson.dumps(rec, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def split_for_rotation(sizes: list[int], size: int, max_bytes: int) -> list[int]:
    """Pure: where to rotate in a batch of lines of these sizes, appended to a file of `size` bytes: the
    indexes of the lines that start a new file."""
    cuts = []
    for i, n in enumerate(sizes):
        if should_rotate(size, n, max_bytes):
            cuts.append(i)
            size = 0
        size += n
    return cuts


class InferenceLog:
    def __init__(self, path: str, replica: str, sample: float = 0.0, max_bytes: int = 64 << 20, keep: int = 3,
                 on_drop=None):
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"SWARMML_INFERENCE_LOG_SAMPLE: expected a fraction from 0 to 1, got {sample}")
        if max_bytes < 1:
            raise ValueError(f"SWARMML_INFERENCE_LOG_MAX_BYTES: expected a positive size, got {max_bytes}")
        self.path, self.replica, self.sample = replica_path(path, replica), replica, sample
        self.max_bytes, self.keep, self.on_drop = max_bytes, keep, on_drop
        self.queue: SimpleQueue = SimpleQueue()
        self.dropped = 0
        self._seq = 0
        self._warned = False
        self._fd = self._open()  # fails at startup, where the operator sees it, not at the first request
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()

    # --- the request path ------------------------------------------------
    def wants_sample(self) -> bool:
        return self.sample > 0.0 and sampled(self.sample, random.random())

    def put(self, req_id, model, version, latency_s, status, sample=None) -> None:
        """sample: (request JSON bytes, response JSON bytes or None) when wants_sample() said so."""
        self._seq += 1
        if self.queue.qsize() >= MAX_QUEUED:
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop()
            return
        self.queue.put((time.time(), req_id, self._seq, model, version, latency_s, status, sample))

    def close(self, timeout: float = 10.0) -> None:
        """Write everything queued so far, then stop; put() after close() is not written."""
        self.queue.put(_STOP)
        self._thread.join(timeout)

    # --- the writer thread -----------------------------------------------
    def _open(self) -> int:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        # A process killed mid-write (SIGKILL, OOM) may have left a partial last line: end it, so that the
        # next line starts on its own.
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    os.write(fd, b"\n")
        self._size = os.fstat(fd).st_size
        return fd

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self.queue.get()]  # blocks while idle: no wake-ups without requests
            # Then lets lines gather for a while instead of waking per request. A put() that finds no waiting
            # reader costs no syscall; each wake of this thread costs the request path a GIL hand-off. Under a
            # 0.25-CPU quota (throttled every period) each wake costs the replica far more than its work:
            # waking per request cost each request 2.3 ms of the replica's CPU, 30 % of its throughput;
            # waking every 0.2 s still cost a lone replica 18 % of its throughput, every 1 s under 1 %
            # (README: "What metrics and the inference log cost the hot path").
            if self.queue.qsize() < MAX_BATCH:  # a writer that is behind goes on at once
                time.sleep(FLUSH_S)
            while len(batch) < MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get())
            if any(e is _STOP for e in batch):
                stop = True
                batch = [e for e in batch if e is not _STOP]
            lines = []
            for e in batch:
                try:
                    lines.append(encode(record(e, self.replica)))
                except Exception:  # an entry that can't be encoded must not stop the writer for good
                    self.dropped += 1
            if lines:
                self._write(lines)
        os.close(self._fd)

    def _write(self, lines: list[bytes]) -> None:
        """One write() per file the batch goes to: whole lines only, so a reader never sees half of one."""
        cuts = split_for_rotation([len(x) for x in lines], self._size, self.max_bytes)
        # Segment k > 0 starts a new file, even when it starts at line 0 (the file was full already).
        for k, (start, end) in enumerate(zip([0, *cuts], [*cuts, len(lines)])):
            if k:
                self._rotate()
            if end > start:
                self._append(b"".join(lines[start:end]), end - start)

    def _append(self, data: bytes, n_lines: int) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            self._size += len(data)
        except OSError as exc:
            self.dropped += n_lines
            if not self._warned:
                self._warned = True
                print(f"swarmml-model-service: inference log {self.path}: {exc}; dropping lines",
                      file=sys.stderr, flush=True)

    def _rotate(self) -> None:
        try:
            self._rotate_files()
        except OSError as exc:  # keep appending to the file we have rather than lose lines
            print(f"swarmml-model-service: rotating {self.path}: {exc}", file=sys.stderr, flush=True)

    def _rotate_files(self) -> None:
        # Renamed while still open (POSIX allows it), closed only once the new file is open: a failure
        # anywhere leaves a file to append to.
        present = 0
        while present < self.keep and os.path.exists(f"{self.path}.{present + 1}"):
            present += 1
        for src, dst in rotation_moves(self.path, self.keep, present):
            os.replace(src, dst)
        if self.keep < 1:
            os.unlink(self.path)
        old, self._fd = self._fd, os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.close(old)
        self._size = 0
