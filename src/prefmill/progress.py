"""Progress reporting for long work, without a dependency on any UI.

Flows and shard tasks call ``reporter()``; the CLI installs a rich progress display with
``use_reporter``. The default reporter does nothing. The reporter travels in a ``ContextVar``, so it
follows the call chain (Prefect runs a flow's directly-called tasks in the caller's thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol


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


def duration(seconds: float) -> str:
    """A short duration: ``42s``, ``7m``, ``2.5h``."""
    if seconds < 90:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 5400 else f"{seconds / 3600:.1f}h"


def eta(done: float, total: float, elapsed: float) -> str:
    """``ETA 2m`` for ``total - done`` more units at the rate so far; empty before the first unit
    and once all are done."""
    if done <= 0 or done >= total:
        return ""
    return f"ETA {duration((total - done) * elapsed / done)}"


class Portions:
    """A shard's ``units`` handed out while its engine work runs: the work is ``parts`` engine
    calls (e.g. one per judge model), each reporting the fraction of its requests done; the units
    reported so far follow ``(finished parts + fraction of this one) / parts`` and never exceed
    ``units`` (whatever the shard did not report, its wrapper reports when it ends)."""

    def __init__(self, advance: Callable[[int], None], units: int, parts: int) -> None:
        self.advance, self.units, self.parts = advance, units, max(parts, 1)
        self.finished = 0  # parts whose call reported its last request
        self.reported = 0
        self._lock = threading.Lock()

    def done(self, done: int, total: int) -> None:
        """The current call has ``done`` of its ``total`` requests back."""
        with self._lock:
            whole = self.finished + (done / total if total else 1.0)
            if total == 0 or done >= total:
                self.finished += 1
            target = min(self.units, int(self.units * whole / self.parts))
            step, self.reported = target - self.reported, max(target, self.reported)
        if step > 0:
            self.advance(step)


_portions: ContextVar[Portions | None] = ContextVar("prefmill_portions", default=None)


@contextmanager
def portions(advance: Callable[[int], None], units: int, parts: int) -> Iterator[Portions]:
    """Inside, ``calls_done(done, total)`` (called by engine loops after each batch) advances the
    progress of a shard of ``units`` whose work is ``parts`` engine calls."""
    p = Portions(advance, units, parts)
    token = _portions.set(p)
    try:
        yield p
    finally:
        _portions.reset(token)


def calls_done(done: int, total: int) -> None:
    """``done`` of the current engine call's ``total`` requests are back (no-op outside ``portions``)."""
    p = _portions.get()
    if p is not None:
        p.done(done, total)


# --- what a shard's model calls generated, for the build summary -------------------------------------
@dataclass
class TokenMeter:
    """Tokens generated (prompt tokens left out, as for synthesis's ``n_tokens``) and their cost."""

    tokens: int = 0
    cost_usd: float = 0.0


_meter: ContextVar[TokenMeter | None] = ContextVar("prefmill_token_meter", default=None)


@contextmanager
def metered() -> Iterator[TokenMeter]:
    """Count what the model calls made inside the block generate (judges, critiques, revisions); an
    enclosing meter counts it too."""
    meter, outer = TokenMeter(), _meter.get()
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)
        if outer is not None:
            outer.tokens += meter.tokens
            outer.cost_usd += meter.cost_usd


def count_generated(generations: Iterable[Any]) -> None:
    """Add ``generations``' (``engines.base.Generation``) tokens and cost to the running meter, if any."""
    if (meter := _meter.get()) is None:
        return
    for g in generations:
        meter.tokens += int(g.n_tokens or 0)
        meter.cost_usd += float(g.cost_usd or 0.0)
