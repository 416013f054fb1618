"""The etcd adapter: vnfha's :class:`~vnfha.store.base.Store` over etcd's gRPC API (grpc.aio).

What it guarantees, beyond the Store contract:

- **Several endpoints.** Requests go to one endpoint at a time, first a random one of them, so
  the members of a fleet spread over etcd's members instead of all loading the first. When that
  endpoint fails (a connection error, a deadline exceeded, a keepalive that goes unanswered) the
  store switches to the next one, closes the old channel, and every open watch and the
  keepalive stream resume on the new endpoint (watches from the revision after the last one
  delivered).
- **No blind retry of a write.** Reads, lease grants and status are retried on the next
  endpoint within the call. A put, delete or txn is sent again only when etcd certainly did not
  apply it (it could not connect, or answered "no leader"); otherwise the caller gets
  ``StoreUnavailable(outcome_unknown=True)`` and must read back.
- **One persistent LeaseKeepAlive stream** per connection; ``keepalive()`` sends one request on it
  and waits for the matching reply. An unanswered keepalive marks the endpoint failed (that is
  how a SIGSTOPped etcd member is noticed: TCP alone never notices a paused peer).
- **TLS** (server CA, optional client certificate) and **user/password auth** (the token is sent
  as the ``token`` metadata on every call and refreshed when etcd says it is invalid).
- **Deadlines everywhere**: every unary call has ``request_timeout_s`` (or the call's own
  ``timeout_s``); connecting and authenticating have ``connect_timeout_s``.
- **No HTTP/2 ping faster than etcd allows.** etcd's default keepalive policy refuses client
  pings more often than every 5 s (GOAWAY too_many_pings), so the channel sends none of its own;
  liveness comes from the keepalive replies instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import grpc
import grpc.aio

from vnfha.clock import Clock, SystemClock
from vnfha.errors import LeaseNotFound, StoreRequestError, StoreUnavailable
from vnfha.store import _etcdconv as conv
from vnfha.store._etcdconn import Connection as _Connection
from vnfha.store._etcdconn import EtcdOptions, task_is_cancelling
from vnfha.store._etcdrpc import pb
from vnfha.store._etcdwatch import EtcdWatch
from vnfha.store.base import (
    Compare,
    DeleteResult,
    KeyValue,
    Lease,
    LeaseInfo,
    Op,
    PutResult,
    RangeResult,
    StoreStatus,
    TxnResult,
    decode_key,
    encode_key,
)

__all__ = ["EtcdOptions", "EtcdStore"]

log = logging.getLogger("vnfha.store.etcd")

_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class EtcdStore:
    """The Store over etcd (see the module docstring for what it guarantees)."""

    def __init__(self, options: EtcdOptions, *, clock: Clock | None = None) -> None:
        self._opts = options
        self._clock: Clock = clock or SystemClock()
        self._index = random.randrange(len(options.endpoints))  # spreads a fleet's load
        self._conn: _Connection | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._watches: set[EtcdWatch] = set()
        self._credentials: grpc.ChannelCredentials | None = None

    @classmethod
    def connect(cls, endpoints: Sequence[str], **kwargs: Any) -> EtcdStore:
        """Shorthand: ``EtcdStore.connect(["127.0.0.1:2379"], request_timeout_s=1.0)``."""
        clock = kwargs.pop("clock", None)
        return cls(EtcdOptions(endpoints=tuple(endpoints), **kwargs), clock=clock)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def endpoint(self) -> str:
        """The endpoint requests currently go to."""
        return self._opts.endpoints[self._index]

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every configured endpoint, in rotation order."""
        return self._opts.endpoints

    @property
    def clock(self) -> Clock:
        """The clock deadlines are measured on."""
        return self._clock

    @property
    def options(self) -> EtcdOptions:
        """The options the store was built with."""
        return self._opts

    # -- connections -----------------------------------------------------------------------

    def _channel_credentials(self) -> grpc.ChannelCredentials:
        if self._credentials is None:
            o = self._opts

            def read(path: str | None) -> bytes | None:
                return Path(path).read_bytes() if path else None

            self._credentials = grpc.ssl_channel_credentials(
                root_certificates=read(o.ca_file),
                private_key=read(o.key_file),
                certificate_chain=read(o.cert_file),
            )
        return self._credentials

    def _new_channel(self, endpoint: str) -> grpc.aio.Channel:
        options = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        if self._opts.tls or self._opts.ca_file:
            return grpc.aio.secure_channel(endpoint, self._channel_credentials(), options=options)
        return grpc.aio.insecure_channel(endpoint, options=options)

    async def _authenticate(self, conn: _Connection) -> None:
        o = self._opts
        if o.username is None:
            return
        req = pb.AuthenticateRequest(name=o.username, password=o.password or "")
        try:
            resp = await conn.stubs.authenticate(req, timeout=o.connect_timeout_s)
        except grpc.aio.AioRpcError as e:
            raise conv.translate_error(e, endpoint=conn.endpoint, write=False) from e
        conn.metadata = (("token", resp.token),)

    async def connection(self) -> _Connection:
        """The current connection, opening (and authenticating) one if needed.

        Tries each endpoint once; raises StoreUnavailable when none can be reached.
        """
        if self._closed:
            raise StoreUnavailable("the etcd store is closed", endpoints=self.endpoints)
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        async with self._lock:
            tried: list[str] = []
            last: BaseException | None = None
            for _ in self.endpoints:
                if self._conn is not None and not self._conn.closed:
                    return self._conn
                endpoint = self.endpoint
                conn = _Connection(endpoint, self._new_channel(endpoint))
                try:
                    await self._authenticate(conn)
                except StoreUnavailable as e:
                    tried.append(endpoint)
                    last = e
                    await conn.close()
                    self._index = (self._index + 1) % len(self.endpoints)
                    continue
                except BaseException:
                    await conn.close()
                    raise
                self._conn = conn
                return conn
            raise StoreUnavailable(
                "no etcd endpoint could be reached", endpoints=tuple(tried)
            ) from last

    async def rotate(self, failed: _Connection, reason: str) -> None:
        """Give up on ``failed`` (if still current) and move to the next endpoint."""
        async with self._lock:
            if self._conn is not failed:
                return
            self._conn = None
            old = self.endpoint
            self._index = (self._index + 1) % len(self.endpoints)
            log.warning("etcd endpoint %s failed (%s); switching to %s", old, reason,
                        self.endpoint)
        await failed.close()

    async def reauthenticate(self, conn: _Connection) -> None:
        """Fetch a fresh token for ``conn`` (etcd said the old one is invalid)."""
        await self._authenticate(conn)

    async def _call(
        self,
        method: str,
        request: Any,
        *,
        timeout_s: float | None,
        write: bool,
        lease_id: int = 0,
        revision: int = 0,
    ) -> Any:
        """Run one unary call, moving to the next endpoint when that is safe (module doc)."""
        timeout = timeout_s if timeout_s is not None else self._opts.request_timeout_s
        tried: list[str] = []
        reauthed = False
        last: tuple[StoreUnavailable, BaseException] | None = None
        attempts = len(self.endpoints) + 1
        for _ in range(attempts):
            conn = await self.connection()
            try:
                return await getattr(conn.stubs, method)(
                    request, timeout=timeout, metadata=conn.metadata
                )
            except asyncio.CancelledError:
                # Another task closed this connection (rotate) under our call: grpc reports
                # that as a cancellation. Only a cancellation of *this* task propagates.
                if task_is_cancelling() or not conn.closed:
                    raise
                lost = StoreUnavailable(f"{method}: connection closed under the call",
                                        endpoint=conn.endpoint, outcome_unknown=write)
                if write:
                    raise lost from None
                tried.append(conn.endpoint)
                last = (lost, lost)
                continue
            except grpc.aio.AioRpcError as e:
                if conv.is_auth_token_invalid(e) and not reauthed:
                    reauthed = True
                    await self.reauthenticate(conn)
                    continue
                err = conv.translate_error(
                    e, endpoint=conn.endpoint, write=write, lease_id=lease_id, revision=revision
                )
                if not isinstance(err, StoreUnavailable):
                    raise err from e
                tried.append(conn.endpoint)
                await self.rotate(conn, f"{method}: {e.code().name}")
                if err.outcome_unknown:
                    raise err from e
                last = (err, e)
        assert last is not None
        raise StoreUnavailable(
            f"{method}: no etcd endpoint answered within {timeout} s",
            endpoints=tuple(tried),
            endpoint=tried[-1] if tried else None,
        ) from last[1]

    # -- KV --------------------------------------------------------------------------------

    async def get(self, key: str, *, timeout_s: float | None = None) -> KeyValue | None:
        """The key's current value, or None (a linearizable read)."""
        result = await self.range(key, timeout_s=timeout_s)
        return result.kvs[0] if result.kvs else None

    async def range(
        self, key: str, *, prefix: bool = False, limit: int = 0, revision: int = 0,
        timeout_s: float | None = None,
    ) -> RangeResult:
        """Keys equal to ``key`` (or under the prefix) at ``revision`` (0 = latest)."""
        req = conv.range_request(key, prefix, limit, revision)
        resp = await self._call("range", req, timeout_s=timeout_s, write=False, revision=revision)
        return conv.range_result(resp)

    async def put(
        self, key: str, value: bytes, *, lease: int = 0, prev_kv: bool = False,
        timeout_s: float | None = None,
    ) -> PutResult:
        """Set ``key``; never retried once it may have been applied."""
        req = pb.PutRequest(key=encode_key(key), value=value, lease=lease, prev_kv=prev_kv)
        return conv.put_result(await self._call("put", req, timeout_s=timeout_s, write=True))

    async def delete(
        self, key: str, *, prefix: bool = False, prev_kv: bool = False,
        timeout_s: float | None = None,
    ) -> DeleteResult:
        """Delete ``key`` (or the prefix)."""
        req = conv.delete_request(key, prefix, prev_kv)
        resp = await self._call("delete_range", req, timeout_s=timeout_s, write=True)
        return conv.delete_result(resp)

    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op] = (),
        failure: Sequence[Op] = (), *, timeout_s: float | None = None,
    ) -> TxnResult:
        """One atomic compare-and-apply; never retried once it may have been applied."""
        req = conv.txn_request(compares, success, failure)
        return conv.txn_result(await self._call("txn", req, timeout_s=timeout_s, write=True))

    async def compact(self, revision: int, *, timeout_s: float | None = None) -> None:
        """Discard history before ``revision``."""
        req = pb.CompactionRequest(revision=revision)
        await self._call("compact", req, timeout_s=timeout_s, write=True, revision=revision)

    # -- leases ----------------------------------------------------------------------------

    async def grant(self, ttl_s: int, *, timeout_s: float | None = None) -> Lease:
        """A new lease; ``ttl_s`` of the result is what etcd granted (maybe more than asked)."""
        resp = await self._call(
            "lease_grant", pb.LeaseGrantRequest(TTL=ttl_s), timeout_s=timeout_s, write=False
        )
        if resp.error:
            raise StoreRequestError(f"lease grant refused: {resp.error}", endpoint=self.endpoint)
        return Lease(id=int(resp.ID), ttl_s=int(resp.TTL))

    async def revoke(self, lease_id: int, *, timeout_s: float | None = None) -> None:
        """Revoke the lease (its keys are deleted). LeaseNotFound if it is already gone."""
        await self._call("lease_revoke", pb.LeaseRevokeRequest(ID=lease_id),
                         timeout_s=timeout_s, write=True, lease_id=lease_id)

    async def keepalive(self, lease_id: int, *, timeout_s: float | None = None) -> int:
        """Renew once on the persistent stream; an unanswered renewal fails the endpoint over."""
        timeout = timeout_s if timeout_s is not None else self._opts.request_timeout_s
        conn = await self.connection()
        try:
            ttl = await conn.keepalive.renew(lease_id, self._clock, timeout)
        except TimeoutError as e:
            await self.rotate(conn, f"keepalive unanswered for {timeout} s")
            raise StoreUnavailable(
                f"keepalive of lease {lease_id:#x} unanswered for {timeout} s",
                endpoint=conn.endpoint, endpoints=(conn.endpoint,),
            ) from e
        except StoreUnavailable:
            await self.rotate(conn, "keepalive stream failed")
            raise
        if ttl <= 0:
            raise LeaseNotFound(lease_id, endpoint=conn.endpoint)
        return ttl

    async def time_to_live(
        self, lease_id: int, *, keys: bool = False, timeout_s: float | None = None
    ) -> LeaseInfo:
        """The lease's remaining TTL (LeaseNotFound if gone)."""
        resp = await self._call(
            "lease_time_to_live", pb.LeaseTimeToLiveRequest(ID=lease_id, keys=keys),
            timeout_s=timeout_s, write=False, lease_id=lease_id,
        )
        if resp.TTL < 0:
            raise LeaseNotFound(lease_id, endpoint=self.endpoint)
        return LeaseInfo(
            id=lease_id, ttl_s=int(resp.TTL), granted_ttl_s=int(resp.grantedTTL),
            keys=tuple(decode_key(k) for k in resp.keys),
        )

    # -- watch, status, close --------------------------------------------------------------

    def watch(
        self, key: str, *, prefix: bool = False, start_revision: int = 0, prev_kv: bool = False
    ) -> EtcdWatch:
        """A watch that resumes across endpoint failures (see :class:`EtcdWatch`)."""
        w = EtcdWatch(self, key, prefix=prefix, start_revision=start_revision, prev_kv=prev_kv)
        self._watches.add(w)
        w.on_close(self._watches.discard)
        return w

    async def status(self, *, timeout_s: float | None = None) -> StoreStatus:
        """Maintenance.Status of the endpoint that answers."""
        resp = await self._call("status", pb.StatusRequest(), timeout_s=timeout_s, write=False)
        return StoreStatus(
            endpoint=self.endpoint, version=resp.version, revision=resp.header.revision,
            member_id=resp.header.member_id, leader_id=resp.leader, raft_term=resp.raftTerm,
            errors=tuple(resp.errors),
        )

    async def close(self) -> None:
        """Stop every watch and close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for w in list(self._watches):
            await w.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
