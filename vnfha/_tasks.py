"""Small asyncio helpers shared by the runtime modules."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["stop_task"]


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any, and if it is not the running one) and wait until it has ended.

    Only the task's own cancellation is absorbed: a cancellation of the caller propagates.
    """
    if task is None or task is asyncio.current_task():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
