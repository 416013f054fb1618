"""Waiting in tests on the system clock: :func:`until` a condition holds, with a deadline and a
message naming what did not happen. (On a :class:`~vnfha.testing.FakeClock`, use
:meth:`~vnfha.testing.FakeClock.advance_until`, which moves fake time instead.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["until"]


async def until(predicate: Callable[[], object], timeout_s: float = 10.0,
                what: str = "the condition", *, poll_s: float = 0.005) -> float:
    """Return once ``predicate()`` is true, with the seconds it took; AssertionError naming
    ``what`` once ``timeout_s`` of real time passed without it. Polls every ``poll_s``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        await asyncio.sleep(poll_s)
    return time.monotonic() - start
