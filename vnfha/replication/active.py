"""The active side of replication: a :class:`Primary` per epoch (the member's gRPC server is
:mod:`vnfha.replication.server`).

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
- **Only a standby that proves it knows this grant's secret is served**
  (:mod:`vnfha.replication.auth`): before the proof, the stream carries nothing of the
  checkpoint and no ack counts. A wrong proof is UNAUTHENTICATED.
- **An ack counts only for what was sent on its own stream**: for this epoch, never above the
  last sequence sent on that stream, recorded for that stream alone, and forgotten when the
  stream ends or a newer stream of the same standby replaces it. Anything else the standby
  sends after its Hello besides acks and a Reject (an ack out of range, a second Hello,
  undecodable bytes) is a protocol violation: the stream ends with INVALID_ARGUMENT.
- **The standby lease** (:mod:`vnfha.replication.promise`): every Heartbeat and Deltas carries
  its send stamp; an ack's promise counts from the stamp it echoes (never above the last stamp
  sent on its stream). While the standby lease is on, a standby is published as in sync only
  while its promise holds, dropped from the set half a lease after its last promise, and
  :meth:`Primary.lapse` says when the active must stop: at the earliest bound of the standbys
  it counts (``on_lapse`` is called then, from the epoch's timer).
- **Bad input costs one log line per kind per 10 s** (:class:`~vnfha._ratelog.RateLimitedLog`),
  never a traceback, and is counted in :attr:`ReplicationServer.refusals`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from vnfha._tasks import stop_task
from vnfha.clock import Clock
from vnfha.errors import NotActive, StoreError
from vnfha.model import Ack
from vnfha.replication import wire
from vnfha.replication.lag import Lag, WriteStamps
from vnfha.replication.promise import OFF, PromiseLedger, PromiseTimers
from vnfha.replication.state import (
    AckTracker,
    Change,
    CheckpointData,
    Entry,
    Limits,
    ReplicationLog,
)
from vnfha.replication.wire import pb

__all__ = ["BATCH_BYTES", "Primary"]

log = logging.getLogger("vnfha.replication")

PublishSync = Callable[[frozenset[str]], Awaitable[frozenset[str]]]


class _Peer:
    """One standby's stream: what was sent on it, and why it ended if the standby broke the
    protocol."""

    def __init__(self, member: str, now: float) -> None:
        self.member = member
        self.wake = asyncio.Event()
        self.stopped = False
        self.last_heard = now
        self.last_sent = now
        """When a message was last sent on this stream (a heartbeat is due a heartbeat after)."""
        self.heartbeat_due = False
        self.sent = 0
        """The highest sequence of this epoch sent on this stream (acks above it are refused)."""
        self.stamp = 0
        """The latest send stamp on this stream (an ack echoing a later one is refused)."""
        self.violation: str | None = None


BATCH_BYTES = 64 << 10
"""The most one Deltas message carries (a single bigger change still goes alone): some 500 small
changes, which the active encodes in well under a millisecond and the standby applies in about
one and a half. When a standby fell behind, batches of the whole message limit (4 MiB, some
36,000 small changes) held the active's event loop for 20-40 ms, a stall for every writer on
it, and the standby's as long (issue 14). Throughput is the same: a message's own cost is
spread over hundreds of changes either way."""

_BEHIND: Any = object()
"""What :meth:`Primary._next_deltas` returns when the log no longer holds what a standby needs."""


class Primary:
    """Replication for one epoch of an active member."""

    def __init__(self, *, member: str, epoch: int, data: CheckpointData, limits: Limits,
                 base: tuple[int, int], clock: Clock, heartbeat_s: float,
                 publish_sync: PublishSync, standby_silence_s: float, secret: str,
                 promises: PromiseTimers = OFF,
                 on_lapse: Callable[[], None] | None = None) -> None:
        self.member = member
        self.epoch = epoch
        self.secret = secret
        """This grant's replication secret, as published in the active key's record."""
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
        self.promises = PromiseLedger(promises)
        self._on_lapse = on_lapse
        self._lapse_told = False
        self._peers: dict[str, _Peer] = {}
        self._wanted: frozenset[str] = frozenset()
        self._publish_wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._publisher = asyncio.create_task(self._run_publisher(), name=f"sync-{epoch}")
        self._order = itertools.count()
        self._waiters: dict[Ack, list[tuple[int, int, float, asyncio.Future[bool]]]] = {
            Ack.ONE: [], Ack.ALL: []}
        """Writes waiting for their acks, by mode: (sequence, order, deadline, future) heaps."""
        self._timer_at = clock.monotonic()
        self._timer_wake = asyncio.Event()
        self._timer = asyncio.create_task(self._run_timer(), name=f"timer-{epoch}")
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
        # one future per write, resolved by _resolve (True) or by the timer task (False): no
        # timer, shield or timeout scope of its own, which cost more than the rest of the
        # write's way on the active
        fut: asyncio.Future[bool] = self._loop.create_future()
        deadline = self._clock.monotonic() + timeout_s
        heapq.heappush(self._waiters[ack], (seq, next(self._order), deadline, fut))
        if deadline < self._timer_at:
            self._timer_wake.set()
        try:
            return await fut
        finally:
            if not fut.done():  # the writer was cancelled
                fut.cancel()

    def _resolve(self) -> None:
        for ack, heap in self._waiters.items():
            if not heap:
                continue
            protected = self.tracker.protected(ack)
            while heap and (heap[0][0] <= protected or heap[0][3].done()):
                fut = heapq.heappop(heap)[3]
                if not fut.done():
                    fut.set_result(True)

    async def _run_timer(self) -> None:
        """The epoch's one timer: flags the heartbeat of every stream that sent nothing for a
        heartbeat interval, and fails every write whose ack did not come by its deadline.
        Wakes at the earliest of those times (about once a heartbeat interval)."""
        heartbeat_s, clock = self._heartbeat_s, self._clock
        while True:
            now = clock.monotonic()
            nxt = now + heartbeat_s
            for peer in self._peers.values():
                due = peer.last_sent + heartbeat_s
                if due <= now:
                    peer.heartbeat_due = True
                    peer.wake.set()
                else:
                    nxt = min(nxt, due)
            for heap in self._waiters.values():
                for _, _, deadline, fut in heap:
                    if fut.done():
                        continue
                    if deadline <= now:
                        fut.set_result(False)
                    else:
                        nxt = min(nxt, deadline)
            nxt = min(nxt, self._check_promises(now))
            self._timer_at = nxt
            self._timer_wake.clear()
            with contextlib.suppress(TimeoutError):
                await clock.wait_for(self._timer_wake.wait(), nxt - now)

    def _check_promises(self, now: float) -> float:
        """Drop the standbys whose promises are about to run out from the in-sync set, and
        tell the member once the acting deadline passed; when to look again."""
        ledger = self.promises
        if not ledger.timers.on:
            return math.inf
        due = ledger.due_drops(self._wanted, now)
        if due:
            log.warning("epoch %d: no fresh promise from %s for %.0f ms; dropping it from the "
                        "in-sync set", self.epoch, ", ".join(sorted(due)),
                        1000 * (now - min(ledger.bound(m) for m in due)
                                + ledger.timers.lease_s - ledger.timers.margin_s))
            self._want(self._wanted - due)
        deadline = ledger.acting_deadline()
        if now >= deadline:
            if not self._lapse_told and self._on_lapse is not None:
                self._lapse_told = True
                self._on_lapse()
            return math.inf
        return min(deadline, ledger.next_drop(self._wanted))

    def lapse(self, now: float) -> str | None:
        """Why this active must stop acting at ``now`` on the standby lease, or None while the
        promises of every standby it counts hold."""
        deadline = self.promises.acting_deadline()
        if now < deadline:
            return None
        late = [m for m in sorted(self.promises.counted) if self.promises.bound(m) <= now]
        return (f"the standby lease lapsed {1000 * (now - deadline):.0f} ms ago: no fresh "
                f"promise from in-sync {', '.join(late)}, and etcd has not confirmed dropping it")

    def close(self) -> None:
        """The epoch is over (demotion): stop every stream and fail every waiting write."""
        if self.closed:
            return
        self.closed = True
        self._publisher.cancel()
        self._timer.cancel()
        for peer in self._peers.values():
            peer.stopped = True
            peer.wake.set()
        error = NotActive(self.member, "deposed", self.epoch)
        for heap in self._waiters.values():
            for _, _, _, fut in heap:
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
            self.promises.publishing(wanted)
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
            self.promises.published(published)
            self._timer_wake.set()  # the bounds that count changed
            log.info("epoch %d: in sync: %s", self.epoch, ", ".join(sorted(published)) or "none")
            if published != wanted:  # a member whose record we have not seen yet: try again
                await self._clock.sleep(self._heartbeat_s)
                self._publish_wake.set()
            self._resolve()

    def _on_ack(self, peer: _Peer, ack: Any) -> str | None:
        """Count ``peer``'s ack (its sequence, and its promise); a protocol violation is
        returned, not counted."""
        epoch, seq = ack.epoch, ack.sequence
        if epoch != self.epoch:
            return f"ack for epoch {epoch} on a stream of epoch {self.epoch}"
        if seq > peer.sent:
            return f"ack for sequence {seq}, but only up to {peer.sent} was sent on this stream"
        if ack.echo_us > peer.stamp:
            return f"ack echoing stamp {ack.echo_us}, but only up to {peer.stamp} was sent"
        if self.closed or self._peers.get(peer.member) is not peer:
            return None  # a replaced stream's late ack: it no longer counts
        self.tracker.on_ack(peer.member, seq)
        if ack.promise_ms and ack.echo_us:
            self.promises.promised(peer.member, wire.stamp_time(ack.echo_us),
                                   ack.promise_ms / 1000)
        if peer.member not in self._wanted and \
                self.promises.may_count(peer.member, self._clock.monotonic()):
            self._want(self._wanted | {peer.member})
        self._resolve()
        return None

    # -- one standby's stream --------------------------------------------------------------------

    def _start_cursor(self, epoch: int, sequence: int) -> int | None:
        if epoch == self.epoch and self.log.retains(sequence):
            return sequence
        if (epoch, sequence) == self.log.base and self.log.first_retained == 1:
            return 0
        return None

    async def serve(self, member: str, epoch: int, sequence: int,
                    context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
        """Stream to ``member`` (which has applied ``epoch``/``sequence``, and has proved it
        knows the secret) until it goes away, a newer stream from it replaces this one, or this
        epoch ends. Returns the protocol violation that ended the stream, if one did."""
        old = self._peers.get(member)
        if old is not None:
            old.stopped = True
            old.wake.set()
            self.tracker.forget(member)  # the new stream's acks start from nothing
        peer = self._peers[member] = _Peer(member, self._clock.monotonic())
        reader = asyncio.create_task(self._read(peer, context), name=f"acks-{member}")
        try:
            cursor = self._start_cursor(epoch, sequence)
            if cursor is None:
                await self._send_snapshot(peer, context)
            else:
                peer.sent = cursor
                if (epoch, sequence) != (self.epoch, cursor):  # it is at our base
                    await self._send(peer, context, pb.ActiveMessage(rebase=pb.Rebase(
                        epoch=self.epoch, base_epoch=self.log.base[0],
                        base_sequence=self.log.base[1])))
            while not (self.closed or peer.stopped):
                msg = self._next_deltas(peer)
                if msg is _BEHIND:
                    log.info("epoch %d: %s fell behind the backlog; snapshot", self.epoch, member)
                    await self._send_snapshot(peer, context)
                elif msg is not None:
                    msg.deltas.sent_us = self._stamp(peer)
                    await self._send(peer, context, msg)
                elif peer.heartbeat_due:
                    silent = self._clock.monotonic() - peer.last_heard
                    if silent > self._silence_s:
                        # a frozen or vanished standby: its kernel may still acknowledge TCP
                        # (and gRPC's keepalive never pings while heartbeats flow), so only the
                        # missing answers to heartbeats show it; drop it from the in-sync set
                        log.warning("epoch %d: %s silent for %.3f s; dropping its stream",
                                    self.epoch, member, silent)
                        break
                    await self._send(peer, context, pb.ActiveMessage(heartbeat=pb.Heartbeat(
                        epoch=self.epoch, sequence=self.log.last_sequence,
                        sent_us=self._stamp(peer))))
                else:
                    peer.wake.clear()
                    await peer.wake.wait()  # a write, the timer, or the stream's end
        finally:
            await stop_task(reader)
            if self._peers.get(member) is peer:
                del self._peers[member]
                self.tracker.forget(member)
                self._want(self._wanted - {member})
        return peer.violation

    def _next_deltas(self, peer: _Peer) -> Any:
        """The next Deltas message for ``peer`` (what was sent to it advances), None when it
        has everything, or _BEHIND when the log no longer holds what it needs."""
        if peer.sent >= self.log.last_sequence:
            return None
        batch = self.log.batch(peer.sent, min(BATCH_BYTES, self.limits.max_message_bytes))
        if batch is None:
            return _BEHIND
        peer.sent += len(batch)  # before the write: its ack may come before it returns
        return wire.deltas_message(self.epoch, batch.first, batch)

    def _stamp(self, peer: _Peer) -> int:
        """A send stamp for the next message on ``peer``'s stream (taken before the write, so
        it never names a later time than the send)."""
        peer.stamp = wire.stamp_us(self._clock.monotonic())
        return peer.stamp

    async def _send(self, peer: _Peer, context: grpc.aio.ServicerContext[Any, Any],
                    msg: Any) -> None:
        peer.last_sent = self._clock.monotonic()
        peer.heartbeat_due = False  # any message tells the standby this active is alive
        await context.write(msg)

    async def _send_snapshot(self, peer: _Peer,
                             context: grpc.aio.ServicerContext[Any, Any]) -> None:
        entries = self.data.entries()  # a copy, consistent with the sequence read with it
        sequence = self.log.last_sequence
        self.snapshots_sent += 1
        peer.sent = sequence
        budget = self.limits.max_message_bytes
        chunk: list[Entry] = []
        used = 0
        for change in entries:
            size = change.wire_bytes
            if chunk and used + size > budget:
                await self._send(peer, context, wire.snapshot_message(self.epoch, sequence, chunk))
                chunk, used = [], 0
            chunk.append((change.section, change.key, change.value))
            used += size
        await self._send(peer, context,
                         wire.snapshot_message(self.epoch, sequence, chunk, last=True))

    async def _read(self, peer: _Peer, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Take the standby's acks until it closes, rejects the stream or breaks the protocol
        (then :attr:`_Peer.violation` says how)."""
        try:
            while True:
                msg = wire.decode(pb.StandbyMessage, await context.read())
                if msg is wire.EOF:
                    break
                peer.last_heard = self._clock.monotonic()
                kind = msg.WhichOneof("kind")
                if kind == "ack":
                    peer.violation = self._on_ack(peer, msg.ack)
                    if peer.violation is not None:
                        break
                elif kind == "reject":
                    log.warning("epoch %d: %s rejected the stream (code %d): %.200s", self.epoch,
                                peer.member, msg.reject.code, msg.reject.detail)
                    break
                else:
                    peer.violation = f"unexpected {kind or 'empty'} message after the Hello"
                    break
        except wire.Malformed as e:
            peer.violation = str(e)
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
            pass
        finally:
            peer.stopped = True
            peer.wake.set()
