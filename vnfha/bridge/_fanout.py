"""One publisher, many subscribers, bounded: how drivers and the bridge hand out event streams.

Guarantees:

- A subscription sees every item published after :meth:`Fanout.subscribe` returned, in order
  (it subscribes at the call, not at its first read).
- Memory is bounded: a subscriber that falls ``max_queued`` items behind is cut off; its next
  read raises the error that ``lagged`` builds (it has lost items and must resynchronise), and
  the publisher is never slowed down by it.
- :meth:`Fanout.close` ends every subscription (after the items already queued) and every later
  one at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Fanout", "Subscription"]

T = TypeVar("T")


class Subscription(Generic[T]):
    """An async iterator over the items published since it was made (see the module)."""

    def __init__(self, owner: Fanout[T]) -> None:
        self._owner = owner
        self._items: deque[T] = deque()
        self._wake = asyncio.Event()
        self._ended = False
        self._lagged = False

    def _offer(self, item: T) -> None:
        if self._ended or self._lagged:
            return
        if len(self._items) >= self._owner.max_queued:
            self._lagged = True
            self._items.clear()
        else:
            self._items.append(item)
        self._wake.set()

    def _end(self) -> None:
        self._ended = True
        self._wake.set()

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            if self._lagged:
                self.close()
                raise self._owner.lagged(self._owner.max_queued)
            if self._items:
                return self._items.popleft()
            if self._ended:
                self.close()
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()

    def close(self) -> None:
        """Stop receiving; the iterator ends. Idempotent."""
        self._ended = True
        self._owner._subscribers.discard(self)
        self._wake.set()

    async def aclose(self) -> None:
        """:meth:`close`, for ``contextlib.aclosing`` and async generator habits."""
        self.close()


class Fanout(Generic[T]):
    """Publish items to every current subscriber, each with its own bounded queue."""

    def __init__(self, *, max_queued: int, lagged: Callable[[int], Exception]) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued={max_queued}: must be at least 1")
        self.max_queued = max_queued
        self.lagged = lagged
        self._subscribers: set[Subscription[T]] = set()
        self._closed = False

    def subscribe(self) -> Subscription[T]:
        """A new subscription; already ended if the fanout is closed."""
        sub = Subscription(self)
        if self._closed:
            sub._end()
        else:
            self._subscribers.add(sub)
        return sub

    def publish(self, item: T) -> None:
        """Queue ``item`` for every subscriber; never blocks."""
        for sub in tuple(self._subscribers):
            sub._offer(item)

    def close(self) -> None:
        """End every subscription, now and later."""
        self._closed = True
        for sub in tuple(self._subscribers):
            sub._end()
        self._subscribers.clear()

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)
