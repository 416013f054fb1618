"""The active side of replication: a :class:`Primary` per epoch, and the member's gRPC server.

Guarantees:

- Each standby's stream gets, in order and without gaps, every change of the epoch after the
  position it announced, or a snapshot first when its position is not in the log (another
  epoch with a different base, or too far behind): the active's memory is bounded by the log
  limits, never by a slow standby.
- A standby counts for ``Ack.ONE`` / ``Ack.ALL`` only once the active has *published* it as in
  sync in etcd (a transaction fenced by the active key's epoch), and stops counting only after
  its removal is published: etcd never lists fewer in-sync standbys than the acks relied on.
- A deposed active serves nobody: a standby that has seen a higher epoch is answered
  FAILED_PRECONDITION, and closing the Primary fails every waiting write with NotActive.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from vnfha._tasks import stop_task
from vnfha.clock import Clock
from vnfha.errors import NotActive, StoreError
from vnfha.grpc_health import HealthService
from vnfha.model import Ack
from vnfha.replication import wire
from vnfha.replication.lag import Lag, WriteStamps
from vnfha.replication.state import AckTracker, Change, CheckpointData, Limits, ReplicationLog
from vnfha.replication.wire import pb

__all__ = ["Primary", "ReplicationServer"]

log = logging.getLogger("vnfha.replication")

PublishSync = Callable[[frozenset[str]], Awaitable[frozenset[str]]]


class _Peer:
    def __init__(self, member: str, now: float) -> None:
        self.member = member
        self.wake = asyncio.Event()
        self.stopped = False
        self.last_heard = now


class Primary:
    """Replication for one epoch of an active member."""

    def __init__(self, *, member: str, epoch: int, data: CheckpointData, limits: Limits,
                 base: tuple[int, int], clock: Clock, heartbeat_s: float,
                 publish_sync: PublishSync, standby_silence_s: float) -> None:
        self.member = member
        self.epoch = epoch
        self.data = data
        self.limits = limits
        self.log = ReplicationLog(epoch, limits, base)
        self._stamps = WriteStamps(limits.max_backlog_entries)
        self.tracker = AckTracker(epoch)
        self.closed = False
        self._clock = clock
        self._heartbeat_s = heartbeat_s
        self._silence_s = standby_silence_s
        self._publish_sync = publish_sync
        self._peers: dict[str, _Peer] = {}
        self._wanted: frozenset[str] = frozenset()
        self._publish_wake = asyncio.Event()
        self._publisher = asyncio.create_task(self._run_publisher(), name=f"sync-{epoch}")
        self._order = itertools.count()
        self._waiters: dict[Ack, list[tuple[int, int, asyncio.Future[bool]]]] = {
            Ack.ONE: [], Ack.ALL: []}
        self.snapshots_sent = 0

    # -- writes ----------------------------------------------------------------------------------

    def write(self, change: Change) -> int:
        """Apply and log ``change`` (already checked); returns its sequence."""
        self.data.apply(change)
        seq = self.log.append(change)
        self._stamps.stamp(seq, self._clock.monotonic())
        for peer in self._peers.values():
            peer.wake.set()
        return seq

    async def wait_protected(self, seq: int, ack: Ack, timeout_s: float) -> bool:
        """True once ``seq`` is protected as ``ack`` asks; False after ``timeout_s``. NotActive
        if this epoch ends first."""
        if self.closed:
            raise NotActive(self.member, "deposed", self.epoch)
        if self.tracker.protected(ack) >= seq:
            return True
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters[ack], (seq, next(self._order), fut))
        try:
            return await self._clock.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            return False
        finally:
            if not fut.done():
                fut.cancel()

    def _resolve(self) -> None:
        for ack, heap in self._waiters.items():
            protected = self.tracker.protected(ack)
            while heap and (heap[0][0] <= protected or heap[0][2].done()):
                _, _, fut = heapq.heappop(heap)
                if not fut.done():
                    fut.set_result(True)

    def close(self) -> None:
        """The epoch is over (demotion): stop every stream and fail every waiting write."""
        if self.closed:
            return
        self.closed = True
        self._publisher.cancel()
        for peer in self._peers.values():
            peer.stopped = True
            peer.wake.set()
        error = NotActive(self.member, "deposed", self.epoch)
        for heap in self._waiters.values():
            for _, _, fut in heap:
                if not fut.done():
                    fut.set_exception(error)
            heap.clear()

    @property
    def in_sync(self) -> tuple[str, ...]:
        return tuple(sorted(self.tracker.in_sync))

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(sorted(self._peers))

    def lag(self) -> dict[str, Lag]:
        """Each standby streaming from this epoch, with how far it is behind now
        (:mod:`vnfha.replication.lag`)."""
        now = self._clock.monotonic()
        acked = self.tracker.acked
        return {name: self._stamps.lag(acked.get(name, 0), now)
                for name, peer in sorted(self._peers.items()) if not peer.stopped}

    # -- the in-sync set -------------------------------------------------------------------------

    def _want(self, wanted: frozenset[str]) -> None:
        if wanted != self._wanted:
            self._wanted = wanted
            self._publish_wake.set()

    async def _run_publisher(self) -> None:
        """Publish the wanted in-sync set in etcd; only then let acks count (or stop counting)."""
        while True:
            await self._publish_wake.wait()
            self._publish_wake.clear()
            wanted = self._wanted
            if wanted == self.tracker.in_sync:
                continue
            try:
                published = await self._publish_sync(wanted)
            except NotActive:
                return  # deposed: the member demotes and closes this Primary
            except StoreError as e:
                log.warning("epoch %d: publishing in-sync %s failed (%s); retrying",
                            self.epoch, sorted(wanted), e)
                await self._clock.sleep(self._heartbeat_s)
                self._publish_wake.set()
                continue
            self.tracker.in_sync = published
            log.info("epoch %d: in sync: %s", self.epoch, ", ".join(sorted(published)) or "none")
            if published != wanted:  # a member whose record we have not seen yet: try again
                await self._clock.sleep(self._heartbeat_s)
                self._publish_wake.set()
            self._resolve()

    def on_ack(self, member: str, epoch: int, seq: int) -> None:
        if epoch != self.epoch or self.closed:
            return
        self.tracker.on_ack(member, seq)
        if member in self._peers and member not in self._wanted:
            self._want(self._wanted | {member})
        self._resolve()

    # -- one standby's stream --------------------------------------------------------------------

    def _start_cursor(self, epoch: int, sequence: int) -> int | None:
        if epoch == self.epoch and sequence <= self.log.last_sequence and \
                self.log.since(sequence, 1) is not None:
            return sequence
        if (epoch, sequence) == self.log.base and self.log.first_retained == 1:
            return 0
        return None

    async def serve(self, member: str, epoch: int, sequence: int,
                    context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Stream to ``member`` (which has applied ``epoch``/``sequence``) until it goes away,
        a newer stream from it replaces this one, or this epoch ends."""
        old = self._peers.get(member)
        if old is not None:
            old.stopped = True
            old.wake.set()
        peer = self._peers[member] = _Peer(member, self._clock.monotonic())
        reader = asyncio.create_task(self._read(peer, context), name=f"acks-{member}")
        try:
            cursor = self._start_cursor(epoch, sequence)
            if cursor is None:
                cursor = await self._send_snapshot(context)
            elif (epoch, sequence) != (self.epoch, cursor):  # it is at our base
                await context.write(pb.ActiveMessage(rebase=pb.Rebase(
                    epoch=self.epoch, base_epoch=self.log.base[0],
                    base_sequence=self.log.base[1])))
            budget = self.limits.max_message_bytes
            while not (self.closed or peer.stopped):
                batch = self.log.since(cursor, budget)
                if batch is None:
                    log.info("epoch %d: %s fell behind the backlog; snapshot", self.epoch, member)
                    cursor = await self._send_snapshot(context)
                    continue
                if batch:
                    await context.write(wire.deltas_message(self.epoch, cursor + 1, batch))
                    cursor += len(batch)
                    continue
                peer.wake.clear()
                try:
                    await self._clock.wait_for(peer.wake.wait(), self._heartbeat_s)
                except TimeoutError:
                    silent = self._clock.monotonic() - peer.last_heard
                    if silent > self._silence_s:
                        # a frozen or vanished standby: its kernel may still acknowledge TCP
                        # (and gRPC's keepalive never pings while heartbeats flow), so only the
                        # missing answers to heartbeats show it; drop it from the in-sync set
                        log.warning("epoch %d: %s silent for %.3f s; dropping its stream",
                                    self.epoch, member, silent)
                        break
                    await context.write(pb.ActiveMessage(heartbeat=pb.Heartbeat(
                        epoch=self.epoch, sequence=self.log.last_sequence)))
        finally:
            await stop_task(reader)
            if self._peers.get(member) is peer:
                del self._peers[member]
                self.tracker.forget(member)
                self._want(self._wanted - {member})

    async def _send_snapshot(self, context: grpc.aio.ServicerContext[Any, Any]) -> int:
        entries = self.data.entries()  # a copy, consistent with the sequence read with it
        sequence = self.log.last_sequence
        self.snapshots_sent += 1
        budget = self.limits.max_message_bytes
        chunk: list[Change] = []
        used = 0
        for change in entries:
            size = change.wire_bytes
            if chunk and used + size > budget:
                await context.write(wire.snapshot_message(self.epoch, sequence, chunk))
                chunk, used = [], 0
            chunk.append(change)
            used += size
        await context.write(wire.snapshot_message(self.epoch, sequence, chunk, last=True))
        return sequence

    async def _read(self, peer: _Peer, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        try:
            while True:
                msg = await context.read()
                if msg is wire.EOF:
                    break
                peer.last_heard = self._clock.monotonic()
                kind = msg.WhichOneof("kind")
                if kind == "ack":
                    self.on_ack(peer.member, msg.ack.epoch, msg.ack.sequence)
                elif kind == "reject":
                    log.warning("epoch %d: %s rejected the stream (code %d): %s", self.epoch,
                                peer.member, msg.reject.code, msg.reject.detail)
                    break
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
            pass
        finally:
            peer.stopped = True
            peer.wake.set()


class ReplicationServer:
    """The member's replication endpoint. It always runs; it serves only while the member has
    a :class:`Primary` (is active), and answers FAILED_PRECONDITION otherwise. With ``health``,
    grpc.health.v1 is served on the same port (:mod:`vnfha.health.serving` says what it answers)."""

    def __init__(self, *, listen: str, group: str, member: str, limits: Limits,
                 credentials: grpc.ServerCredentials | None,
                 primary: Callable[[], Primary | None],
                 allowed_peers: Callable[[], frozenset[str]] | None,
                 on_stale: Callable[[int], None], keepalive_s: float,
                 health: HealthService | None = None) -> None:
        self._listen = listen
        self._health = health
        self._keepalive_s = keepalive_s
        self._group = group
        self._member = member
        self._limits = limits
        self._credentials = credentials
        self._primary = primary
        self._allowed = allowed_peers
        self._on_stale = on_stale
        self._server: grpc.aio.Server | None = None
        self.address = ""
        self.stale_rejections = 0

    async def start(self) -> str:
        """Bind and serve; returns the bound ``host:port``."""
        server = grpc.aio.server(options=[
            *wire.message_options(self._limits.max_message_bytes),
            *wire.keepalive_options(self._keepalive_s, server=True)])
        server.add_generic_rpc_handlers((wire.generic_handler(self._stream),))
        if self._health is not None:
            server.add_generic_rpc_handlers((self._health.handler(),))
        host = self._listen.rsplit(":", 1)[0]
        if self._credentials is None:
            port = server.add_insecure_port(self._listen)
        else:
            port = server.add_secure_port(self._listen, self._credentials)
        await server.start()
        self._server = server
        self.address = f"{host}:{port}"
        return self.address

    async def stop(self, grace_s: float = 0.2) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None

    async def _stream(self, request_iterator: Any,
                      context: grpc.aio.ServicerContext[Any, Any]) -> None:
        first = await context.read()
        if first is wire.EOF or first.WhichOneof("kind") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be a "
                                "Hello")
        hello = first.hello
        if hello.group != self._group:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"this is group {self._group!r}, not {hello.group!r}")
        if self._allowed is not None:
            names = list(context.auth_context().get("x509_common_name", []))
            peer = names[0].decode() if names else ""
            if peer != hello.member or peer not in self._allowed():
                await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                    f"certificate {peer!r} may not replicate as "
                                    f"{hello.member!r} in group {self._group!r}")
        primary = self._primary()
        if primary is None or primary.closed:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"{self._member} is not active")
            return
        if hello.highest_epoch > primary.epoch:
            self.stale_rejections += 1
            self._on_stale(hello.highest_epoch)
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"epoch {primary.epoch} is stale: {hello.member} has seen "
                                f"epoch {hello.highest_epoch}")
        await primary.serve(hello.member, hello.epoch, hello.sequence, context)
