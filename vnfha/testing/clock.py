"""A clock that moves only when the test moves it.

``FakeClock`` implements :class:`vnfha.clock.Clock`. Sleepers and timeouts registered on it fire
when :meth:`FakeClock.advance` (or :meth:`FakeClock.jump`) carries the clock past their
deadline, in deadline order, and never before. Nothing here reads the real time, so a test of a
2-second lease runs in microseconds and gives the same result on a loaded CI machine.

Typical use::

    clock = FakeClock()
    session = Session(store, clock=clock, ...)
    await clock.advance(0.5)      # fire everything due in the next 0.5 s, letting tasks run
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["FakeClock"]

T = TypeVar("T")


class FakeClock:
    """A manually driven monotonic clock for tests (see the module docstring)."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        """The current fake time, in seconds."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by at least ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    async def wait_for(self, aw: Awaitable[T], timeout_s: float) -> T:
        """Race ``aw`` against a fake-time sleep of ``timeout_s``."""
        task = asyncio.ensure_future(aw)
        timer = asyncio.ensure_future(self.sleep(timeout_s))
        try:
            done, _ = await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            timer.cancel()
            raise
        if task in done:
            timer.cancel()
            return task.result()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            pass
        raise TimeoutError(f"timed out after {timeout_s} s of fake time")

    @property
    def pending_sleepers(self) -> int:
        """How many sleeps are waiting for the clock to move."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_deadline(self) -> float | None:
        """The earliest pending sleeper's wake-up time, or None."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def jump(self, seconds: float) -> None:
        """Move the clock forward and wake due sleepers, without letting them run yet."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds} s)")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    async def settle(self, rounds: int = 20) -> None:
        """Let ready tasks run: yields to the loop ``rounds`` times."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float, *, step: float | None = None) -> None:
        """Move forward by ``seconds``, waking each sleeper at its own deadline in order.

        Between wake-ups the loop runs until idle enough (``settle``), so a task that sleeps
        again in a loop (a keepalive every 0.5 s) is woken at each of its own deadlines. With
        ``step``, time also moves in increments of at most ``step`` even with no sleeper due.
        """
        target = self._now + seconds
        await self.settle()
        while True:
            nxt = self.next_deadline()
            limit = target if step is None else min(target, self._now + step)
            if nxt is not None and nxt <= limit:
                self.jump(max(0.0, nxt - self._now))
            elif self._now < limit:
                self.jump(limit - self._now)
            await self.settle()
            if self._now >= target and (self.next_deadline() or target + 1) > target:
                return

    async def advance_until(self, predicate: Callable[[], object], limit_s: float = 5.0, *,
                            step: float = 0.01, what: str = "the condition") -> float:
        """Move forward in ``step`` increments until ``predicate()`` is true; the fake time it
        took. AssertionError naming ``what`` once ``limit_s`` of fake time passed without it."""
        start = self._now
        while not predicate():
            if self._now - start >= limit_s:
                raise AssertionError(f"{what} did not happen within {limit_s} s of fake time")
            await self.advance(step)
        return self._now - start

