"""Keeping one engine fed from several shards at once (DESIGN §4: shards are the unit of caching,
not of batching).

The stage skeleton runs a window of shards in threads of one process (``flows.stage``); each shard
calls its engine's ``generate`` / ``score`` with its own requests. Three pieces turn those calls
into full engine batches:

- ``Coalescer`` (in-process engines: transformers, vLLM): concurrent calls queue their items; one
  caller at a time (the leader) takes up to ``batch_size`` queued items, whoever they belong to, runs
  them as one engine batch and hands each caller its rows; a caller returns as soon as its own rows
  are back, so its shard is written while the others' requests keep the engine busy.
  Inside a fixed group of shards (``lockstep.ShardGroup``: what the stage skeleton runs for
  in-process engines) the calls go to the group instead, so batches are made of the group's
  calls alone and do not depend on timing.
- ``LoopThread`` (the openai engine): one asyncio loop per engine in a daemon thread, so the
  requests of every shard share one HTTP client and one adaptive concurrency limit.
- ``IN_FLIGHT``: the process's requests in flight (HTTP requests, or rows in the running batch),
  time-weighted, for the progress display and the build summary's achieved concurrency.

Nothing here imports torch or httpx.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from prefmill.engines import lockstep

T = TypeVar("T")
R = TypeVar("R")

#: How long a leader waits for other shards' requests before running a batch that is not full.
LINGER_SECONDS = 0.02
#: Longest a thread waiting for the engine's loop sleeps before looking at signals again (a wait
#: without a timeout is not woken by Ctrl-C when the kernel hands the signal to another thread).
WAKE_SECONDS = 0.25


class InFlightMeter:
    """Requests in flight in this process, and their time integral (request-seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self._area = 0.0
        self._since = time.perf_counter()

    def _tick(self) -> None:
        t = time.perf_counter()
        self._area += self.now * (t - self._since)
        self._since = t

    def add(self, n: int) -> None:
        with self._lock:
            self._tick()
            self.now += n
            self.peak = max(self.peak, self.now)

    def area(self) -> float:
        """Request-seconds so far (the mean in flight over a span is its area / its length)."""
        with self._lock:
            self._tick()
            return self._area


IN_FLIGHT = InFlightMeter()


@dataclass
class _Call(Generic[T, R]):
    """One caller's items: their results fill in as batches end."""

    items: list[T]
    progress: Callable[[int], None] | None
    context: contextvars.Context
    results: list[R | None] = field(default_factory=list)
    left: int = 0


class Coalescer(Generic[T, R]):
    """Merges concurrent calls of ``run`` (a batch function: items -> one result per item, in order)
    into batches of at most ``batch_size`` items (None: all queued items). ``failed(text)`` is the
    result of an item whose batch raised; ``run`` is never called by two threads at once.

    How calls are merged by timing changes how full the batches are, and for in-process engines the
    last float bits of log-probs: inside a build their shards run in fixed groups (``lockstep``),
    whose calls bypass the queue and are merged in a fixed order."""

    def __init__(
        self,
        run: Callable[[list[T]], list[R]],
        failed: Callable[[str], R],
        batch_size: int | None,
        weight: Callable[[T], int] = lambda _: 1,
    ) -> None:
        self.run = run
        self.failed = failed
        self.batch_size = batch_size
        self.weight = weight
        self.batches = 0
        self._cond = threading.Condition()
        self._queue: deque[tuple[_Call[T, R], int]] = deque()
        self._busy = False

    def __call__(self, items: list[T], progress: Callable[[int], None] | None = None) -> list[R]:
        call: _Call[T, R] = _Call(list(items), progress, contextvars.copy_context())
        call.results = [None] * len(call.items)
        call.left = len(call.items)
        if not call.items:
            return []
        group = lockstep.current()
        if group is not None:  # a fixed group of shards: batches made of the group's calls alone
            results = group.gather(id(self), self._run_items, call.items)
            if progress is not None:
                progress(len(results))
            return results
        with self._cond:
            self._queue.extend((call, i) for i in range(len(call.items)))
            self._cond.notify_all()
            while call.left:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                batch = self._take()
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        return [r for r in call.results]  # type: ignore[misc]

    def _take(self) -> list[tuple[_Call[T, R], int]]:
        """Up to ``batch_size`` queued items, oldest first, after a short wait for more callers
        when the queue holds less than a batch (called with the lock held)."""
        deadline = time.perf_counter() + LINGER_SECONDS
        while self.batch_size is not None and len(self._queue) < self.batch_size:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            before = len(self._queue)
            self._cond.wait(left)
            if len(self._queue) == before:
                break  # nobody else is coming within the linger
        n = len(self._queue) if self.batch_size is None else min(self.batch_size, len(self._queue))
        return [self._queue.popleft() for _ in range(n)]

    def _run_items(self, items: list[T]) -> list[R]:
        """``run(items)``, one result per item whatever happens: a failed run fails its items."""
        rows = sum(self.weight(x) for x in items)
        IN_FLIGHT.add(rows)
        try:
            results = self.run(items)
            if len(results) != len(items):
                raise RuntimeError(f"the engine returned {len(results)} results for {len(items)} requests")
        except Exception as exc:  # one bad batch must not stall the other shards
            results = [self.failed(f"{type(exc).__name__}: {exc}") for _ in items]
        finally:
            IN_FLIGHT.add(-rows)
        self.batches += 1
        return results

    def _run(self, batch: list[tuple[_Call[T, R], int]]) -> None:
        results = self._run_items([call.items[i] for call, i in batch])
        done: dict[int, tuple[_Call[T, R], int]] = {}
        with self._cond:
            for (call, i), result in zip(batch, results, strict=True):
                call.results[i] = result
                call.left -= 1
                entry = done.setdefault(id(call), (call, 0))
                done[id(call)] = (call, entry[1] + 1)
        for call, n in done.values():
            if call.progress is not None:
                call.context.run(call.progress, n)


_WAITING: set[concurrent.futures.Future[Any]] = set()
_WAITING_LOCK = threading.Lock()


def cancel_loop_calls() -> int:
    """Cancel every ``LoopThread.run`` call now waiting, in any thread (the build was interrupted:
    shard threads stop at once instead of when their requests end). Returns how many."""
    with _WAITING_LOCK:
        waiting = list(_WAITING)
    return sum(f.cancel() for f in waiting)


class LoopThread:
    """An asyncio event loop running in a daemon thread: ``run(factory)`` runs the coroutine there
    and blocks the calling thread until it ends. Calls from several threads run concurrently on the
    one loop (and share whatever the coroutines share: a client, a limiter)."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The coroutine's result. The calling thread waits in short slices: a signal handler (Ctrl-C's
        KeyboardInterrupt, Prefect's SIGTERM) runs only between them, and then cancels the coroutine."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run called from its own loop")
        future = asyncio.run_coroutine_threadsafe(factory(), self.loop)
        with _WAITING_LOCK:
            _WAITING.add(future)
        try:
            while not future.done():
                concurrent.futures.wait([future], timeout=WAKE_SECONDS)
        except BaseException:
            future.cancel()
            raise
        finally:
            with _WAITING_LOCK:
                _WAITING.discard(future)
        return future.result()
