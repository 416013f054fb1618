"""One connection to one etcd endpoint, and how to reach etcd: the parts of the etcd adapter
that its store (:mod:`vnfha.store.etcd`) and its watches (:mod:`vnfha.store._etcdwatch`) share,
so neither imports the other.

- :class:`EtcdOptions`: endpoints, TLS, auth and timeouts, checked when built.
- :class:`Connection`: one channel, its stubs and auth metadata, and its one
  :class:`KeepAliveStream` (requests out, replies matched by lease id); closing it ends every
  call still running on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio

from vnfha._tasks import stop_task
from vnfha.clock import Clock
from vnfha.errors import StoreError, StoreUnavailable
from vnfha.store import _etcdconv as conv
from vnfha.store._etcdrpc import EOF, EtcdStubs, pb

__all__ = ["Connection", "EtcdOptions", "KeepAliveStream", "task_is_cancelling"]

log = logging.getLogger("vnfha.store.etcd")


@dataclass(frozen=True)
class EtcdOptions:
    """How to reach etcd. Files are read when the store opens its first connection."""

    endpoints: tuple[str, ...] = ("127.0.0.1:2379",)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    request_timeout_s: float = 0.5
    connect_timeout_s: float = 1.0
    watch_resume_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("etcd endpoints: at least one is needed")
        if (self.username is None) != (self.password is None):
            raise ValueError("etcd username and password go together")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("etcd cert_file and key_file go together")


class Connection:
    """One channel to one endpoint, its stubs, auth metadata and keepalive stream."""

    def __init__(self, endpoint: str, channel: grpc.aio.Channel) -> None:
        self.endpoint = endpoint
        self.channel = channel
        self.stubs = EtcdStubs.bind(channel)
        self.metadata: tuple[tuple[str, str], ...] = ()
        self.keepalive = KeepAliveStream(self)
        self.closed = False

    async def close(self) -> None:
        """Close the channel: every call still running on it ends with an error."""
        self.closed = True
        await self.keepalive.close()
        await self.channel.close(grace=None)


def task_is_cancelling() -> bool:
    """True when the running task itself is being cancelled (as opposed to a grpc call that was
    cancelled under it because its channel closed)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class KeepAliveStream:
    """The connection's one LeaseKeepAlive stream: requests out, replies matched by lease id."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, deque[asyncio.Future[int]]] = {}

    def _open(self) -> None:
        self._call = self._conn.stubs.lease_keepalive(metadata=self._conn.metadata)
        self._reader = asyncio.get_running_loop().create_task(
            self._read(self._call), name=f"etcd-keepalive-{self._conn.endpoint}"
        )

    async def renew(self, lease_id: int, clock: Clock, timeout_s: float) -> int:
        """Send one keepalive and wait for its reply; returns the TTL etcd renewed to."""
        if self._call is None:
            self._open()
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(lease_id, deque()).append(fut)
        try:
            await clock.wait_for(self._call.write(pb.LeaseKeepAliveRequest(ID=lease_id)),
                                 timeout_s)
            return await clock.wait_for(fut, timeout_s)
        except grpc.aio.AioRpcError as e:
            raise conv.translate_error(e, endpoint=self._conn.endpoint, write=False) from e
        except (asyncio.InvalidStateError, grpc.aio.UsageError) as e:
            raise StoreUnavailable("keepalive stream closed", endpoint=self._conn.endpoint) from e
        except asyncio.CancelledError:
            if task_is_cancelling():
                raise
            raise StoreUnavailable(
                "keepalive stream closed", endpoint=self._conn.endpoint
            ) from None
        finally:
            queue = self._pending.get(lease_id)
            if queue is not None and fut in queue:
                queue.remove(fut)
            if fut.done() and not fut.cancelled():
                fut.exception()  # failed by close() after we stopped waiting: already handled
            else:
                fut.cancel()

    async def _read(self, call: Any) -> None:
        error: StoreError = StoreUnavailable("keepalive stream ended", endpoint=self._conn.endpoint)
        try:
            while True:
                resp = await call.read()
                if resp is EOF:
                    break
                queue = self._pending.get(resp.ID)
                while queue:
                    fut = queue.popleft()
                    if not fut.done():
                        fut.set_result(int(resp.TTL))
                        break
        except grpc.aio.AioRpcError as e:
            error = conv.translate_error(e, endpoint=self._conn.endpoint, write=False)
        except asyncio.CancelledError:
            error = StoreUnavailable("keepalive stream cancelled", endpoint=self._conn.endpoint)
        finally:
            if self._call is call:
                self._call = None
            self.fail(error)

    async def close(self) -> None:
        """Fail waiting renewals, cancel the stream and wait for its reader to finish."""
        self.fail(StoreUnavailable("connection closed", endpoint=self._conn.endpoint))
        reader, self._reader = self._reader, None
        await stop_task(reader)

    def fail(self, error: StoreError) -> None:
        """Fail every waiting renewal with ``error`` and drop the stream."""
        for queue in self._pending.values():
            for fut in queue:
                if not fut.done():
                    fut.set_exception(error)
        self._pending.clear()
        if self._call is not None:
            self._call.cancel()
            self._call = None
