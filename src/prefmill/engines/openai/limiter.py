"""The adaptive bound on requests in flight of the openai engine (AIMD)."""

from __future__ import annotations

import asyncio

from prefmill.engines.batching import IN_FLIGHT


class AimdLimiter:
    """Adaptive bound on requests in flight: additive increase, multiplicative decrease on 429.

    One decrease per congestion window: a 429 from a request that started before the last decrease
    does not halve the bound again (a burst of 429s from one overload counts once).
    """

    def __init__(self, max_limit: int, min_limit: int = 1) -> None:
        self.max_limit = max(1, int(max_limit))
        self.min_limit = max(1, min(int(min_limit), self.max_limit))
        self.limit = float(self.max_limit)
        self.in_flight = 0
        self.peak_in_flight = 0
        self.decreases = 0
        self.limits: list[float] = [self.limit]  # every change, for reports and tests
        self._epoch = 0
        self._waiting = 0  # acquirers queued on the condition
        self._cond = asyncio.Condition()

    async def acquire(self) -> int:
        """Wait for a slot; returns the congestion epoch the request starts in."""
        if self._waiting or self.in_flight >= int(self.limit):  # queue behind the others
            self._waiting += 1
            try:
                async with self._cond:
                    try:
                        await self._cond.wait_for(lambda: self.in_flight < int(self.limit))
                    except asyncio.CancelledError:  # pass on a wake-up this waiter may have been given
                        self._cond.notify(max(0, int(self.limit) - self.in_flight))
                        raise
                    return self._take()
            finally:
                self._waiting -= 1
        return self._take()  # a free slot and nobody waiting: no lock (one event loop, no await)

    def _take(self) -> int:
        self.in_flight += 1
        IN_FLIGHT.add(1)
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return self._epoch

    async def release(self, epoch: int, *, ok: bool, throttled: bool) -> None:
        self.in_flight -= 1
        IN_FLIGHT.add(-1)
        if throttled and epoch == self._epoch and self.limit > self.min_limit:
            self.limit = max(float(self.min_limit), self.limit / 2)
            self._epoch += 1
            self.decreases += 1
            self.limits.append(self.limit)
        elif ok and self.limit < self.max_limit:
            self.limit = min(float(self.max_limit), self.limit + 1 / self.limit)
            self.limits.append(self.limit)
        if self._waiting:
            # wake as many waiters as there are free slots (not all of them: with hundreds queued
            # behind a bound of 16, waking every one on every release costs more than the requests)
            async with self._cond:
                self._cond.notify(max(0, int(self.limit) - self.in_flight))
