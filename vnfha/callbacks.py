"""The component's callbacks, run for one member: one at a time, in order, each bounded.

A :class:`~vnfha.member.Member` owns one :class:`CallbackRunner` and queues a callback by name
(``on_active``, ``on_standby``, ``on_quiesce``, ``restart``) when its role changes or the
escalation ladder asks. Guarantees:

- **One at a time, in order.** Callbacks run in the order they were queued, each after the
  previous one returned, raised or overran. A callback the component does not define is
  skipped. The future :meth:`CallbackRunner.enqueue` returns is done when that entry is.
- **Bounded.** Each callback runs for at most ``timeout_s`` (``callback_timeout_s``) of the
  injected clock. One that overruns is cancelled and left behind, still owned by the runner,
  so the next callback is not blocked by it.
- **Failures are reported, never raised.** A raise or an overrun is counted
  (:attr:`CallbackRunner.failures`), logged at ERROR as ``member=... callback=... failed: ...``,
  sent to the member's listeners as :class:`~vnfha.events.CallbackFailed`, and handed to the
  escalation ladder (``on_failure(name, error)``), in that order. The role stands: etcd decides
  roles, not callbacks.
- **Cancellation is never swallowed.** Cancelling the runner cancels the running callback and
  the runner ends.
- **A bounded drain.** :meth:`CallbackRunner.drain` lets the queue run out for at most one
  timeout per queued callback (plus one), then cancels the runner and every task it owns.
- Before :meth:`CallbackRunner.start`, :meth:`~CallbackRunner.enqueue` runs nothing and returns
  a future that is already done.
- **Gates.** A callback with a gate (:attr:`CallbackRunner.gates`) runs only if its gate,
  awaited first in the callback's place in the queue, returns True.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from vnfha.clock import Clock
from vnfha.events import CallbackFailed

__all__ = ["CallbackRunner"]

# the member's logger: docs/operations.md names it as the one callback failures are logged on
log = logging.getLogger("vnfha.member")

_BARRIER = ""  # a queue entry that calls nothing: when it is done, everything before it is


class CallbackRunner:
    """Runs ``component``'s callbacks for the member named ``member`` (see the module
    docstring for the guarantees). ``emit`` delivers a :class:`CallbackFailed` to the member's
    listeners; ``on_failure(name, error)`` tells the escalation ladder."""

    def __init__(
        self,
        component: object,
        *,
        member: str,
        clock: Clock,
        timeout_s: float,
        emit: Callable[[CallbackFailed], None],
        on_failure: Callable[[str, str], None],
    ) -> None:
        self._component = component
        self._member = member
        self._clock = clock
        self._timeout_s = timeout_s
        self._emit = emit
        self._on_failure = on_failure
        self._queue: asyncio.Queue[tuple[str, tuple[Any, ...], asyncio.Future[None]]] | None
        self._queue = None
        self._runner: asyncio.Task[None] | None = None
        self._orphans: set[asyncio.Task[Any]] = set()
        self.failures = 0
        """How many callbacks raised or overran since start."""
        self.gates: dict[str, Callable[..., Awaitable[bool]]] = {}
        """Steps run, in the queue, before a callback of that name with its arguments: one that
        returns False skips the callback (it reports why itself). The member's service
        addresses are taken this way before ``on_active`` (:mod:`vnfha.roles.addresses`)."""

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task that runs the callbacks one at a time (None before :meth:`start`)."""
        return self._runner

    def start(self) -> None:
        """Start running queued callbacks, in a task of the running loop."""
        self._queue = asyncio.Queue()
        self._runner = asyncio.create_task(self._run(), name=f"{self._member}-callbacks")

    def enqueue(self, name: str, *args: Any) -> asyncio.Future[None]:
        """Queue ``component.<name>(*args)``; the future is done once it has run (or failed)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._queue is None:
            fut.set_result(None)
        else:
            self._queue.put_nowait((name, args, fut))
        return fut

    def adopt(self, task: asyncio.Task[Any]) -> None:
        """Own a background task of the member until it ends: :meth:`drain` cancels it."""
        self._orphans.add(task)
        task.add_done_callback(self._orphans.discard)

    async def drain(self) -> None:
        """Let the queue run out (bounded), then cancel the runner and every task it owns."""
        if self._queue is not None and self._runner is not None:
            # the queue is finite: let it run out, bounded by one timeout per queued callback
            limit = self._timeout_s * (self._queue.qsize() + 1)
            with contextlib.suppress(TimeoutError):
                await self._clock.wait_for(self._wait_idle(), limit)
        for task in [self._runner, *self._orphans]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _wait_idle(self) -> None:
        await self.enqueue(_BARRIER)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            name, args, fut = await self._queue.get()
            try:
                await self._invoke(name, args)
            finally:
                if not fut.done():
                    fut.set_result(None)

    async def _invoke(self, name: str, args: tuple[Any, ...]) -> None:
        gate = self.gates.get(name)
        if gate is not None and not await gate(*args):
            return  # the gate refused: it reported why
        method: Callable[..., Awaitable[None]] | None = getattr(self._component, name, None)
        if method is None:
            return
        task = asyncio.ensure_future(method(*args))
        timeout = self._timeout_s
        try:
            await self._clock.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            self.adopt(task)  # left behind, so the next callback is not blocked by it
            self._report(name, f"did not return within callback_timeout_s={timeout}", True)
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception as e:  # a component bug must not stop the member
            self._report(name, f"{type(e).__name__}: {e}", False)
            log.debug("%s: %s traceback", self._member, name, exc_info=True)

    def _report(self, name: str, error: str, timed_out: bool) -> None:
        self.failures += 1
        log.error("member=%s callback=%s failed: %s", self._member, name, error)
        self._emit(CallbackFailed(self._member, name, error, timed_out))
        self._on_failure(name, error)
