"""Fixed groups of shards batched together through an in-process engine, with rows that depend on
the plan alone (DESIGN §4: shards are the unit of caching, not of batching).

An in-process engine (transformers, vLLM) pads and reduces per batch, so a request's log-probs (and,
in principle, its text) depend on what shares its batch. Shards merged by timing (``Coalescer``
alone) would make a build's rows depend on thread scheduling, and a resumed build's rows differ from
a fresh one's. A ``ShardGroup`` instead runs a fixed set of consecutive shards (the stage skeleton
picks them from the plan: ``flows.stage``) in *lockstep*: each member's engine calls wait until
every member of the group is either waiting on an engine call or finished; then the calls of the
lowest-numbered waiting member's kind (one ``Coalescer``: an engine's ``generate`` or ``score``) are
concatenated in member order and run as one engine call, which splits it into batches by its own
rules. Which requests share a batch is then a function of the group's shards alone, whatever the
timing, so a group run again after a kill gives the same rows.

``member(group, n)`` makes the calling thread member ``n`` for the duration of a shard; the
``Coalescer`` asks ``current()`` and hands its calls to the group.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: The group and member number of the shard running in this thread (None: not in a group).
_MEMBER: contextvars.ContextVar[tuple[ShardGroup, int] | None] = contextvars.ContextVar(
    "prefmill_shard_group", default=None
)


@dataclass
class _Waiting:
    key: int
    run: Callable[[list[Any]], list[Any]]
    items: list[Any]
    results: list[Any] | None = None
    error: BaseException | None = None


class GroupCancelled(Exception):
    """The build was interrupted while this shard's group was running."""


class ShardGroup:
    """``size`` shards whose engine calls run together in a fixed composition (module docstring)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._cond = threading.Condition()
        self._waiting: dict[int, _Waiting] = {}
        self._finished: set[int] = set()
        self._busy = False
        self._cancelled = False

    def cancel(self) -> None:
        """Interrupted: members waiting, or calling later, raise ``GroupCancelled``; the batch
        running now ends first."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    @contextmanager
    def member(self, n: int) -> Iterator[None]:
        """The calling thread is member ``n`` until the block ends (however it ends)."""
        token = _MEMBER.set((self, n))
        try:
            yield
        finally:
            _MEMBER.reset(token)
            with self._cond:
                self._finished.add(n)
                self._cond.notify_all()

    def gather(self, key: int, run: Callable[[list[Any]], list[Any]], items: list[Any]) -> list[Any]:
        """``run(items)``'s results for this member, computed in one ``run`` call over the items of
        every member waiting with the same ``key`` once the whole group is waiting or finished."""
        me = _MEMBER.get()
        assert me is not None and me[0] is self, "gather called outside a member of this group"
        mine = _Waiting(key, run, list(items))
        with self._cond:
            self._waiting[me[1]] = mine
            self._cond.notify_all()
            while mine.results is None and mine.error is None:
                if self._cancelled:
                    self._waiting.pop(me[1], None)
                    raise GroupCancelled("the build was interrupted")
                if self._busy or len(self._waiting) + len(self._finished) < self.size:
                    self._cond.wait()
                    continue
                lead = self._waiting[min(self._waiting)]
                batch = [(n, w) for n, w in sorted(self._waiting.items()) if w.key == lead.key]
                for n, _ in batch:
                    del self._waiting[n]
                self._busy = True
                self._cond.release()
                results: list[Any] = []
                error: BaseException | None = None
                try:
                    results = lead.run([x for _, w in batch for x in w.items])
                except BaseException as exc:  # every member of the batch gets it, not just this one
                    error = exc
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
                at = 0
                for _, w in batch:
                    w.results, w.error = results[at : at + len(w.items)], error
                    at += len(w.items)
        if mine.error is not None:
            raise mine.error
        assert mine.results is not None
        return mine.results


def current() -> ShardGroup | None:
    """The group of the shard running in this thread, if any."""
    me = _MEMBER.get()
    return None if me is None else me[0]
