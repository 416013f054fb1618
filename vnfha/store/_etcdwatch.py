"""One etcd watch that survives endpoint failures.

Each :class:`EtcdWatch` owns one Watch stream with one watcher on it. It remembers the revision
after the last event it delivered; when its stream breaks (the member died, the store switched
endpoints) it opens a new stream on the store's current connection and asks for events from that
revision, so every event is delivered once, in revision order, across any number of reconnects.
If no endpoint takes the watch back within ``watch_resume_timeout_s`` iteration raises
StoreUnavailable; if etcd has compacted the revision it needs, iteration raises Compacted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, Self

import grpc
import grpc.aio

from vnfha.clock import Clock
from vnfha.errors import Compacted, StoreAuthError, StoreRequestError, StoreUnavailable
from vnfha.store import _etcdconv as conv
from vnfha.store._etcdconn import Connection, EtcdOptions
from vnfha.store._etcdrpc import EOF, pb
from vnfha.store.base import WatchBatch, encode_key, prefix_end

__all__ = ["EtcdWatch", "WatchHost"]


class WatchHost(Protocol):
    """What a watch needs of its store (:class:`vnfha.store.etcd.EtcdStore` is one): a
    connection, moving on from a failed one, and its clock, endpoints and options."""

    @property
    def clock(self) -> Clock:
        """The store's clock (the watch's deadlines run on it)."""
        ...

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every endpoint the store knows (named in errors)."""
        ...

    @property
    def options(self) -> EtcdOptions:
        """The store's timeouts."""
        ...

    async def connection(self) -> Connection:
        """The current connection, opened if needed."""
        ...

    async def rotate(self, failed: Connection, reason: str) -> None:
        """Move on from ``failed`` to the next endpoint."""
        ...


class EtcdWatch:
    """An async context manager and iterator of WatchBatch (see the module docstring)."""

    def __init__(
        self, store: WatchHost, key: str, *, prefix: bool, start_revision: int, prev_kv: bool
    ) -> None:
        self._store = store
        self._key = encode_key(key)
        self._range_end = encode_key(prefix_end(key)) if prefix else b""
        self._prev_kv = prev_kv
        self._next_rev = start_revision
        self._call: Any = None
        self._conn: Connection | None = None
        self._cancelled = False
        self._on_close: list[Callable[[EtcdWatch], None]] = []

    @property
    def next_revision(self) -> int:
        """The revision the watch resumes from after a reconnect (0 until it knows)."""
        return self._next_rev

    @property
    def endpoint(self) -> str | None:
        """The endpoint the watch's stream is open on, if any."""
        return self._conn.endpoint if self._conn else None

    def on_close(self, callback: Callable[[EtcdWatch], None]) -> None:
        """Call ``callback(self)`` once the watch is cancelled."""
        self._on_close.append(callback)

    async def __aenter__(self) -> Self:
        if self._call is None and not self._cancelled:
            await self._resume()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.cancel()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> WatchBatch:
        while True:
            if self._cancelled:
                raise StopAsyncIteration
            if self._call is None:
                await self._resume()
            call = self._call
            try:
                resp = await call.read()
            except grpc.aio.AioRpcError as e:
                await self._lost(f"watch stream: {e.code().name}")
                continue
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._cancelled or (task is not None and task.cancelling()):
                    if self._cancelled:
                        raise StopAsyncIteration from None
                    raise
                await self._lost("watch stream cancelled")
                continue
            if resp is EOF:
                await self._lost("watch stream ended")
                continue
            batch = self._handle(resp)
            if batch is not None:
                return batch

    async def cancel(self) -> None:
        """Stop the watch; iteration ends (StopAsyncIteration). Idempotent."""
        if self._cancelled:
            return
        self._cancelled = True
        if self._call is not None:
            self._call.cancel()
            self._call = None
        for callback in self._on_close:
            callback(self)

    # -- internals -------------------------------------------------------------------------

    def _handle(self, resp: Any) -> WatchBatch | None:
        """A response as a batch, or None for bookkeeping responses; raises on cancellation."""
        if resp.compact_revision:
            self._finish()
            raise Compacted(self._next_rev, int(resp.compact_revision), endpoint=self.endpoint)
        if resp.canceled:
            self._finish()
            reason = resp.cancel_reason or "watch canceled by etcd"
            if "permission denied" in reason.lower():
                raise StoreAuthError(reason, endpoint=self.endpoint)
            raise StoreRequestError(reason, endpoint=self.endpoint)
        if not resp.events:
            return None
        events = tuple(conv.event_from_pb(ev) for ev in resp.events)
        self._next_rev = events[-1].kv.mod_revision + 1
        return WatchBatch(events=events, revision=int(resp.header.revision))

    def _finish(self) -> None:
        self._cancelled = True
        if self._call is not None:
            self._call.cancel()
            self._call = None

    async def _lost(self, reason: str) -> None:
        """The stream broke: fail its endpoint over (if it is still current) and forget it."""
        conn, call = self._conn, self._call
        self._call, self._conn = None, None
        if call is not None:
            call.cancel()
        if conn is not None and not self._cancelled:
            await self._store.rotate(conn, reason)

    async def _resume(self) -> None:
        """Open a stream on the current endpoint from ``next_revision``, trying endpoints
        until ``watch_resume_timeout_s`` runs out."""
        store = self._store
        clock = store.clock
        give_up = clock.monotonic() + store.options.watch_resume_timeout_s
        backoff = 0.05
        last: BaseException | None = None
        while not self._cancelled:
            conn: Connection | None = None
            try:
                conn = await store.connection()
                await self._open(conn)
                return
            except (StoreUnavailable, TimeoutError, grpc.aio.AioRpcError) as e:
                last = e
                if conn is not None:
                    await store.rotate(conn, f"watch create: {e}")
            if clock.monotonic() >= give_up:
                raise StoreUnavailable(
                    f"watch could not resume from revision {self._next_rev}",
                    endpoints=store.endpoints,
                ) from last
            await clock.sleep(backoff)
            backoff = min(backoff * 2, 0.5)
        raise StopAsyncIteration

    async def _open(self, conn: Connection) -> None:
        create = pb.WatchCreateRequest(
            key=self._key, range_end=self._range_end, start_revision=self._next_rev,
            prev_kv=self._prev_kv,
        )
        call = conn.stubs.watch(metadata=conn.metadata)
        timeout = self._store.options.connect_timeout_s
        try:
            await self._store.clock.wait_for(call.write(pb.WatchRequest(create_request=create)),
                                             timeout)
            resp = await self._store.clock.wait_for(call.read(), timeout)
        except BaseException:
            call.cancel()
            raise
        if resp is EOF:
            call.cancel()
            raise StoreUnavailable("watch stream closed before it was created",
                                   endpoint=conn.endpoint)
        self._call, self._conn = call, conn
        if resp.created and self._next_rev == 0:
            self._next_rev = int(resp.header.revision) + 1
        self._handle(resp)  # a created response carries no events; this raises if canceled
