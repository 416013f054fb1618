"""Session: a lease, kept alive, that knows when it can no longer be trusted.

Modelled on etcd's ``client/v3/concurrency.Session``: a session grants one lease, renews it from
one background task, and says when it is over (:meth:`Session.wait_lost`, like ``Done()``). On
top of that it keeps a **local deadline**, the monotonic time until which the lease is certainly
still alive on the server:

    deadline = (send time of the last acknowledged keepalive) + (TTL etcd granted) - margin

The deadline is anchored at the *send* time because etcd renews the lease at some moment after
the request left; it uses the TTL etcd actually granted (etcd silently raises TTLs below its
minimum); the margin covers clock-rate drift between the two machines and the time the holder
needs to stop acting. Anything held through the session (the active role) is safe to act on only
while :meth:`Session.valid` is true; a process resumed after SIGSTOP or a VM freeze sees the
deadline passed at its very next check, before it acts.

State changes (CONNECTED / SUSPENDED / LOST, see :mod:`vnfha.store.session_state`) are computed
by pure functions and reported to listeners with their reason. LOST is final: start a new
session. Keepalives are sent every ``keepalive_interval_s``; after a failure the next is sent
after ``retry_interval_s`` instead, and never later than the deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

from vnfha._tasks import stop_task
from vnfha.clock import Clock, SystemClock
from vnfha.errors import LeaseNotFound, SessionLost, StoreError
from vnfha.store.base import Store
from vnfha.store.session_state import (
    SessionState,
    SessionView,
    on_ack,
    on_failure,
    on_lease_gone,
    on_tick,
    started,
)

__all__ = ["Session", "SessionState", "SessionView"]

log = logging.getLogger("vnfha.store.session")

Listener = Callable[[SessionView], None]


class Session:
    """A lease kept alive by a background task, with a local deadline (module docstring).

    Use as ``async with Session(store, ttl_s=2, ...) as session:``; leaving the block stops the
    keepalives and revokes the lease (so whatever it held is released at once, not after TTL).
    """

    def __init__(
        self,
        store: Store,
        *,
        ttl_s: int,
        keepalive_interval_s: float,
        margin_s: float,
        clock: Clock | None = None,
        request_timeout_s: float = 0.5,
        retry_interval_s: float | None = None,
    ) -> None:
        if ttl_s < 1:
            raise ValueError(f"ttl_s={ttl_s}: etcd leases are whole seconds, at least 1")
        if not 0 < keepalive_interval_s < ttl_s:
            raise ValueError(f"keepalive_interval_s={keepalive_interval_s} must be in (0, {ttl_s})")
        self._store = store
        self._clock: Clock = clock or SystemClock()
        self._ttl_s = ttl_s
        self._interval = keepalive_interval_s
        self._margin = margin_s
        self._timeout = request_timeout_s
        self._retry = retry_interval_s if retry_interval_s is not None else min(
            keepalive_interval_s, 0.1)
        self._view: SessionView | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._listeners: list[Listener] = []
        self._ack_listeners: list[Listener] = []
        self._closed = False
        self.abandoned = False
        """True once the holder gave the lease up (:meth:`abandon`)."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> SessionView:
        """Grant the lease and start keeping it alive. Raises StoreError if the grant fails."""
        if self._view is not None:
            raise RuntimeError("session already opened")
        send_time = self._clock.monotonic()
        lease = await self._store.grant(self._ttl_s, timeout_s=self._timeout)
        margin = min(self._margin, lease.ttl_s / 2)
        self._view = started(lease.id, lease.ttl_s, margin, send_time)
        if lease.ttl_s != self._ttl_s:
            log.info("lease %#x: asked TTL %d s, etcd granted %d s", lease.id, self._ttl_s,
                     lease.ttl_s)
        self._task = asyncio.get_running_loop().create_task(
            self._keepalive_loop(), name=f"session-{lease.id:#x}"
        )
        return self._view

    def abandon(self, reason: str) -> None:
        """Give the lease up now, locally: LOST at once (the listeners hear it synchronously),
        for a holder that must stop acting for a reason of its own (``reason``, logged). A
        later :meth:`close` with ``revoke`` still revokes it in etcd, so that what it held is
        freed before the TTL runs out."""
        if self._view is None or self._view.state is SessionState.LOST:
            return
        self.abandoned = True
        self._set(on_lease_gone(self._view, reason))

    async def close(self, *, revoke: bool = True) -> None:
        """Stop the keepalives and (by default) revoke the lease, an abandoned one
        (:meth:`abandon`) too. Idempotent; never raises for a store that cannot be reached (the
        lease then expires on its own)."""
        if self._closed:
            return
        self._closed = True
        await stop_task(self._task)
        view = self._view
        if view is None:
            return
        if revoke and (view.state is not SessionState.LOST or self.abandoned):
            try:
                await self._store.revoke(view.lease_id, timeout_s=self._timeout)
            except StoreError as e:
                log.warning("lease %#x: revoke on close failed (%s); it expires by itself",
                            view.lease_id, e)
        self._set(on_lease_gone(view, "session closed"))

    # -- what callers read -------------------------------------------------------------------

    @property
    def view(self) -> SessionView:
        """The latest snapshot, re-evaluated against the clock now."""
        if self._view is None:
            raise RuntimeError("session not opened")
        view = on_tick(self._view, self._clock.monotonic())
        if view is not self._view:
            self._set(view)
        return view

    @property
    def lease_id(self) -> int:
        """The lease this session holds."""
        return self.view.lease_id

    @property
    def granted_ttl_s(self) -> int:
        """The TTL etcd granted (may exceed the one asked for)."""
        return self.view.granted_ttl_s

    @property
    def state(self) -> SessionState:
        """CONNECTED, SUSPENDED or LOST, as of now."""
        return self.view.state

    @property
    def deadline(self) -> float:
        """The local deadline on the session's clock."""
        return self.view.deadline

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: a LOST that follows is the holder's own doing."""
        return self._closed

    def valid(self) -> bool:
        """True while the lease is certainly alive: call before every externally visible act."""
        return self.view.state is not SessionState.LOST

    def check(self) -> None:
        """Raise SessionLost unless :meth:`valid`."""
        view = self.view
        if view.state is SessionState.LOST:
            raise SessionLost(view.lease_id, view.reason)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(view)`` on every state change (synchronously, from the loop)."""
        self._listeners.append(listener)

    def add_ack_listener(self, listener: Listener) -> None:
        """Call ``listener(view)`` after every keepalive etcd acknowledged (synchronously): the
        moment the lease is confirmed alive, e.g. to kick a watchdog."""
        self._ack_listeners.append(listener)

    async def wait_lost(self) -> SessionView:
        """Wait until the session is LOST (by deadline, by etcd, or by close)."""
        await self._lost.wait()
        return self.view

    # -- internals ---------------------------------------------------------------------------

    def _set(self, view: SessionView) -> None:
        old = self._view
        self._view = view
        if old is not None and old.state is view.state:
            return
        if view.state is SessionState.LOST:
            self._lost.set()
        quiet = view.state is SessionState.CONNECTED or self._closed  # a close is not news
        log_fn = log.info if quiet else log.warning
        log_fn("lease %#x: %s (%s)", view.lease_id, view.state.value, view.reason)
        for listener in list(self._listeners):
            try:
                listener(view)
            except Exception:
                log.exception("session listener %r failed", listener)

    async def _keepalive_loop(self) -> None:
        clock = self._clock
        assert self._view is not None
        # the first keepalive is due one interval after the grant was *sent*: a grant that took
        # long (retried across endpoints) leaves less of the lease, so it comes sooner
        await clock.sleep(max(0.0, self._view.last_ack_send_time + self._interval
                              - clock.monotonic()))
        while True:
            view = on_tick(self._view, clock.monotonic())
            self._set(view)
            if view.state is SessionState.LOST:
                return
            send_time = clock.monotonic()
            timeout = max(0.001, min(self._timeout, view.remaining(send_time)))
            wait = self._interval
            try:
                # bounded as a whole: finding a connection or rotating endpoints must not hold
                # the next keepalive back past the deadline (seen once: a new active lost its
                # lease 0.5 s after taking over, with no keepalive failure reported)
                ttl = await clock.wait_for(
                    self._store.keepalive(view.lease_id, timeout_s=timeout),
                    max(0.001, min(timeout + self._timeout / 2, view.remaining(send_time))))
            except TimeoutError:
                self._set(on_failure(self._view, clock.monotonic(),
                                     f"keepalive not answered within {timeout:.3f} s"))
                wait = self._retry
            except LeaseNotFound:
                self._set(on_lease_gone(view, "etcd says the lease is gone (expired or revoked)"))
                return
            except StoreError as e:
                self._set(on_failure(self._view, clock.monotonic(), str(e)))
                wait = self._retry
            else:
                self._set(on_ack(self._view, send_time, ttl, clock.monotonic()))
                if self._view.state is SessionState.CONNECTED:
                    for listener in list(self._ack_listeners):
                        try:
                            listener(self._view)
                        except Exception:
                            log.exception("keepalive listener %r failed", listener)
            remaining = self._view.remaining(clock.monotonic())
            await clock.sleep(max(0.0, min(wait, remaining)))
