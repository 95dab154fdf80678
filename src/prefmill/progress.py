"""Progress reporting for long work, without a dependency on any UI.

Flows and shard tasks call ``reporter()``; the CLI installs a rich progress display with
``use_reporter``. The default reporter does nothing. The reporter travels in a ``ContextVar``, so it
follows the call chain (Prefect runs a flow's directly-called tasks in the caller's thread).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Reporter(Protocol):
    def stage_started(self, stage: str, *, shards: int, done: int, units: int, unit: str) -> None:
        """A stage begins: ``shards`` in all, ``done`` already finished, ``units`` of work in all."""

    def advance(self, stage: str, *, units: int = 0, tokens: int = 0) -> None:
        """``units`` more rows (e.g. samples) finished, producing ``tokens`` tokens."""

    def shard_done(self, stage: str) -> None:
        """One more shard is written."""

    def stage_finished(self, stage: str, *, cached: bool) -> None:
        """The stage's versions are published (or were found cached)."""

    def note(self, stage: str, text: str) -> None:
        """Where the work inside a running shard is (e.g. a judge's requests done, tok/s, ETA)."""

    def in_flight(self, stage: str, *, requests: int, peak: int) -> None:
        """Requests now in flight through the stage's engine (``peak``: the most so far); sampled
        while shards run. Optional: callers look it up with ``getattr``."""


class NullReporter:
    def stage_started(self, stage: str, *, shards: int, done: int, units: int, unit: str) -> None:
        pass

    def advance(self, stage: str, *, units: int = 0, tokens: int = 0) -> None:
        pass

    def shard_done(self, stage: str) -> None:
        pass

    def stage_finished(self, stage: str, *, cached: bool) -> None:
        pass

    def note(self, stage: str, text: str) -> None:
        pass

    def in_flight(self, stage: str, *, requests: int, peak: int) -> None:
        pass


_NULL = NullReporter()
_current: ContextVar[Reporter | None] = ContextVar("prefmill_reporter", default=None)


def reporter() -> Reporter:
    return _current.get() or _NULL


@contextmanager
def use_reporter(r: Reporter) -> Iterator[Reporter]:
    token = _current.set(r)
    try:
        yield r
    finally:
        _current.reset(token)
