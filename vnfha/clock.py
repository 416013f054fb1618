"""Time, injected.

Runtime code never calls ``time.monotonic()`` or ``asyncio.sleep()`` itself: it is handed a
:class:`Clock`. Production uses :class:`SystemClock`; tests use
:class:`vnfha.testing.FakeClock`, which moves only when the test says so, so that lease
deadlines, keepalive cadence and expiry can be checked exactly and in microseconds.

Guarantees of every Clock:

- ``monotonic()`` never goes backwards and is not affected by wall-clock changes.
- ``sleep(s)`` returns no earlier than ``s`` seconds of this clock's time after it was called.
- ``wait_for(aw, timeout_s)`` returns ``aw``'s result, or cancels ``aw`` and raises
  ``TimeoutError`` once ``timeout_s`` of this clock's time has passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

__all__ = ["Clock", "SystemClock"]

T = TypeVar("T")


class Clock(Protocol):
    """A monotonic clock with sleeping and timeouts on the same time base."""

    def monotonic(self) -> float:
        """Seconds on a monotonic time base with an arbitrary origin."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` of this clock's time."""
        ...

    async def wait_for(self, aw: Awaitable[T], timeout_s: float) -> T:
        """Await ``aw``; on timeout cancel it and raise ``TimeoutError``."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and the running asyncio loop."""

    def monotonic(self) -> float:
        """Seconds from ``time.monotonic()`` (CLOCK_MONOTONIC on Linux)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)``; a negative value sleeps for no time."""
        await asyncio.sleep(max(0.0, seconds))

    async def wait_for(self, aw: Awaitable[T], timeout_s: float) -> T:
        """Await ``aw`` under ``asyncio.timeout``; raises the built-in ``TimeoutError``.

        Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation of the caller that
        arrives as ``aw`` completes (fixed in 3.12), which leaves a cancelled task running.
        """
        async with asyncio.timeout(max(0.0, timeout_s)):
            return await aw
