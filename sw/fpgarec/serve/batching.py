"""Dynamic batching: concurrent requests become one accelerator batch.

Each request submits one checked query (a user id or an item list) and awaits its row of the
batch's result. One task on the event loop forms batches:

1. wait until a query is pending;
2. unless ``max_batch`` are pending already, let the event loop read more requests for up to
   ``max_wait`` seconds, as long as new ones keep arriving (cut short at ``max_batch``
   pending, or after a few loop iterations without a new request: a lone request is not
   held back for the whole ``max_wait``);
3. take up to ``max_batch`` pending queries, run sampler + backend on them as one batch
   (inline on the event loop, or in one worker thread), resolve each request's future.

While a batch runs, new queries queue up and form the next batch, so under load the batch size
grows with the arrival rate and the per-query cost of the backend falls; at low load a query
waits at most ``max_wait``. A batch that raises fails only its own requests (5xx); the loop
goes on. Beyond ``max_queue`` pending queries, :meth:`DynamicBatcher.submit` refuses at once
(the service answers 503) instead of letting latency grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More than ``max_queue`` queries are waiting."""


class DynamicBatcher:
    """Forms batches of queries for ``run(queries) -> (B, top_k)`` (see module docstring).

    ``on_batch(size, seconds)`` is called after every batch (metrics).
    """

    #: event-loop iterations without a new query after which a batch stops waiting (a request's
    #: bytes take two iterations from the socket to :meth:`submit`)
    IDLE_ROUNDS = 3

    def __init__(self, run: Callable[[list], np.ndarray], max_batch: int = 64, max_wait: float = 0.001,
                 max_queue: int = 4096, in_thread: bool = False,
                 on_batch: Callable[[int, float], None] | None = None):
        self.run = run
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait)
        self.max_queue = int(max_queue)
        self.in_thread = bool(in_thread)
        self.on_batch = on_batch
        self._queries: list = []
        self._futures: list[asyncio.Future] = []
        self._wake: asyncio.Future | None = None
        self._task: asyncio.Task | None = None
        self._executor = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pending(self) -> int:
        return len(self._queries)

    def start(self) -> None:
        """Start the batching task on the running event loop."""
        self._loop = asyncio.get_running_loop()
        if self.in_thread:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fpgarec-batch")
        self._task = self._loop.create_task(self._batch_loop(), name="fpgarec-batcher")

    async def stop(self) -> None:
        """Stop the task; queries still pending get a ``CancelledError``."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for fut in self._futures:
            if not fut.done():
                fut.cancel()
        self._queries, self._futures = [], []
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def submit(self, query) -> asyncio.Future:
        """Queue one checked query; the future resolves to its result row ((top_k,) int64)."""
        if len(self._queries) >= self.max_queue:
            raise QueueFull(f"{len(self._queries)} queries waiting")
        if self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running")
        fut = self._loop.create_future()
        self._queries.append(query)
        self._futures.append(fut)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        return fut

    async def _gather_more(self, loop) -> None:
        """Let the event loop read more requests while they keep arriving: stop at
        ``max_batch`` pending, after ``max_wait``, or after :attr:`IDLE_ROUNDS` loop iterations
        without a new query (so a lone request does not wait the whole ``max_wait``)."""
        deadline = loop.time() + self.max_wait
        idle = 0
        while len(self._queries) < self.max_batch and idle < self.IDLE_ROUNDS and loop.time() < deadline:
            before = len(self._queries)
            await asyncio.sleep(0)
            idle = idle + 1 if len(self._queries) == before else 0

    async def _batch_loop(self) -> None:
        loop = self._loop
        while True:
            if not self._queries:
                self._wake = loop.create_future()
                await self._wake
            if len(self._queries) < self.max_batch and self.max_wait > 0:
                await self._gather_more(loop)
            n = min(len(self._queries), self.max_batch)
            queries, futures = self._queries[:n], self._futures[:n]
            del self._queries[:n], self._futures[:n]
            t0 = time.perf_counter()
            try:
                if self._executor is not None:
                    result = await loop.run_in_executor(self._executor, self.run, queries)
                else:
                    result = self.run(queries)
                if len(result) != n:
                    raise RuntimeError(f"the accelerator returned {len(result)} rows for {n} queries")
            except asyncio.CancelledError:
                for fut in futures:
                    fut.cancel()
                raise
            except Exception as exc:  # a failed batch fails its requests, not the service
                log.exception("accelerator batch of %d queries failed", n)
                for fut in futures:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            finally:
                if self.on_batch is not None:
                    self.on_batch(n, time.perf_counter() - t0)
            for fut, row in zip(futures, result, strict=True):
                if not fut.done():  # the client may have gone away
                    fut.set_result(row)
