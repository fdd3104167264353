"""Adaptive micro-batching: concurrent requests for one model share one predict call.

While a predict runs (it holds the event loop), new requests queue up; the
next batch takes all of them, up to max_batch_size rows, waiting at most
max_wait_ms for more after the first. Under light load a request waits at
most max_wait_ms; under heavy load batches grow and the per-row cost falls.

A request's payload is either rows (a 2-D array, stacked with the others'
rows) or columns ({name: 1-D array}, joined column by column), so a column
model too makes one DataFrame per batch rather than one per request.
"""
import asyncio
import time

import numpy as np

from swarmml_model_service.columns import concat as concat_columns


class MicroBatcher:
    def __init__(self, run_batch, max_batch_size=64, max_wait_ms=2.0, on_batch=None):
        self.run_batch = run_batch  # (payload, output names) -> {output name: array}, called on the loop
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.on_batch = on_batch  # called with (rows in batch, queue waits in s) for metrics
        self.queue = asyncio.Queue()
        self.task = None

    def start(self):
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self):
        if self.task:
            self.task.cancel()

    async def submit(self, payload, n_rows, outputs):
        fut = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((payload, n_rows, outputs, fut, time.perf_counter()))
        return await fut

    async def _loop(self):
        while True:
            items = [await self.queue.get()]
            n = items[0][1]
            deadline = time.monotonic() + self.max_wait
            while n < self.max_batch_size:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                items.append(item)
                n += item[1]
            self._run(items)

    def _run(self, items):
        started = time.perf_counter()
        wanted = tuple(sorted({name for _, _, outs, _, _ in items for name in outs}))
        payload = items[0][0] if len(items) == 1 else merge([it[0] for it in items])
        try:
            results = self.run_batch(payload, wanted)
        except Exception as exc:  # one bad batch must not kill the loop
            for _, _, _, fut, _ in items:
                if not fut.done():
                    fut.set_exception(exc)
            return
        if self.on_batch:
            self.on_batch(sum(it[1] for it in items), [started - it[4] for it in items])
        start = 0
        for _, n, outs, fut, _ in items:
            end = start + n
            if not fut.done():
                fut.set_result({name: results[name][start:end] for name in outs})
            start = end


def merge(payloads: list):
    """One payload from several requests' payloads of one model (all rows, or all columns)."""
    if isinstance(payloads[0], np.ndarray):
        return np.vstack(payloads)
    return concat_columns(payloads)
