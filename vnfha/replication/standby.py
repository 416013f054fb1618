"""The standby side of replication: follow the active's stream, apply, acknowledge.

Guarantees:

- Changes of an epoch are applied in sequence order, each exactly once (duplicates skipped, a
  gap answered with a resync); a snapshot replaces the state whole, atomically.
- A message of an epoch lower than the highest this standby has seen is never applied: the
  stream is rejected (FAILED_PRECONDITION) and the rejection counted.
- The standby acknowledges only what it has applied.
- It streams only from the holder of the grant it follows: the endpoint must first prove it
  knows that grant's secret (:mod:`vnfha.replication.auth`), then the standby proves it too.
  An endpoint that cannot is rejected (UNAUTHENTICATED) before anything is applied.
- Bytes from the endpoint that are not a message are rejected (INVALID_ARGUMENT), never applied.
- **The standby lease** (:mod:`vnfha.replication.promise`): each ack echoes the send stamp of
  the latest Heartbeat or Deltas received on its stream and carries the promise
  :attr:`Replica.promises` grants at that moment (none while a takeover resting on a lapsed
  promise is under way). Promises are kept per epoch, across reconnects.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from vnfha.clock import Clock
from vnfha.errors import CheckpointLimitError, ConfigError
from vnfha.replication import auth, wire
from vnfha.replication.promise import StandbyPromises
from vnfha.replication.state import (
    Change,
    CheckpointData,
    Limits,
    Verdict,
    check_deltas,
    check_shape,
)
from vnfha.replication.wire import pb

__all__ = ["QUICK_RETRIES", "QUICK_RETRY_S", "Applied", "Replica", "reconnect_delay"]

log = logging.getLogger("vnfha.replication")

_FAILED_PRECONDITION = 9
_INVALID_ARGUMENT = 3
_OUT_OF_RANGE = 11
_UNAUTHENTICATED = 16


@dataclass(frozen=True, slots=True)
class Applied:
    """Changes a standby applied: a batch of deltas ending at ``sequence``, or a whole
    snapshot (``snapshot`` true: the state was replaced by ``changes``)."""

    epoch: int
    sequence: int
    changes: tuple[Change, ...]
    snapshot: bool = False


QUICK_RETRY_S = 0.005
QUICK_RETRIES = 10
"""After a delivering stream breaks, a reconnect that fails without a refusal is tried again
every ``QUICK_RETRY_S``, this many times, before the usual retry step. A process killed with
SIGKILL keeps its listening socket for a moment while the kernel tears it down: a connection
made then is accepted into the backlog and reset, not refused, and waiting a whole step (two
heartbeats) for the refusal made one crash failover in about twenty take 110-130 ms instead of
about 12 (seen in ``vnfha bench fleet``)."""


def reconnect_delay(was_streaming: bool, quick_left: int, retry_s: float) -> tuple[float, int]:
    """How long to wait before the next attempt to stream from the active, and the quick
    retries left after it: none after a stream that was delivering (and ``QUICK_RETRIES`` from
    then on), ``QUICK_RETRY_S`` while quick retries are left, else ``retry_s``."""
    if was_streaming:
        return 0.0, QUICK_RETRIES
    if quick_left > 0:
        return QUICK_RETRY_S, quick_left - 1
    return retry_s, 0


class _Reject(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class Replica:
    """A standby's copy of the checkpoint and its position."""

    def __init__(self, *, group: str, member: str, data: CheckpointData, limits: Limits,
                 clock: Clock, credentials: grpc.ChannelCredentials | None,
                 retry_s: float, keepalive_s: float, standby_lease_s: float = 0.0) -> None:
        self.group = group
        self.member = member
        self.data = data
        self.limits = limits
        self.applied: tuple[int, int] = (0, 0)
        self.highest_epoch = 0
        self.listeners: list[Callable[[Applied], None]] = []
        self.last_heard = 0.0
        self.messages = 0
        """Messages received from any active so far: the liveness signal the member samples once
        per heartbeat interval (:mod:`vnfha.roles.suspicion`)."""
        self.connected = False
        self.sessions = 0
        """Streams opened to an active so far (each reconnect opens one)."""
        self.stale_rejections = 0
        self.resyncs = 0
        self.on_gone: Callable[[int, str], None] | None = None
        """Called with (epoch, evidence) when the active's endpoint refuses connections: its
        process is gone (a live process on a live host accepts, a frozen one does not answer)."""
        self.promises: StandbyPromises | None = None
        """The promises made to the active of the epoch followed (or last followed)."""
        self._clock = clock
        self._credentials = credentials
        self._retry_s = retry_s
        self._keepalive_s = keepalive_s
        self._lease_s = standby_lease_s
        self._stamp = 0
        """The send stamp of the latest Heartbeat or Deltas of the current stream (0: none)."""

    def observe_epoch(self, epoch: int) -> None:
        """An epoch seen elsewhere (etcd): anything older is stale from now on."""
        self.highest_epoch = max(self.highest_epoch, epoch)

    async def follow(self, target: str, epoch: int, secret: str) -> None:
        """Replicate from the active at ``target`` (epoch ``epoch``, whose grant carries
        ``secret``) until cancelled. After a stream that was delivering breaks, it reconnects at
        once, and a few more times quickly (:func:`reconnect_delay`): a refusal then is the
        proof the active's process died (a live process accepts; a frozen one does not
        answer)."""
        self.observe_epoch(epoch)
        if self.promises is None or self.promises.epoch != epoch:
            self.promises = StandbyPromises(epoch, self._lease_s)
        quick = 0
        while True:
            try:
                await self.session(target, epoch, secret)
            except grpc.aio.AioRpcError as e:
                details = e.details() or ""
                if e.code() is grpc.StatusCode.UNAVAILABLE and "refused" in details.lower():
                    log.warning("%s: the active's endpoint %s refuses connections (epoch %d): "
                                "%.300s", self.member, target, epoch, details)
                    if self.on_gone is not None:
                        self.on_gone(epoch, f"{target} refused the connection")
                else:
                    log.info("%s: replication from %s: %s %s", self.member, target,
                             e.code().name, details)
            finally:
                was_streaming, self.connected = self.connected, False
            delay, quick = reconnect_delay(was_streaming, quick, self._retry_s)
            if delay:
                await self._clock.sleep(delay)

    def _channel(self, target: str) -> grpc.aio.Channel:
        # A channel of its own per attempt, with its own subchannel: gRPC otherwise shares
        # subchannels between channels to one address, and a new channel inherits the old
        # one's reconnect backoff (up to a second), which delayed crash detection by 0.2-0.5 s.
        options: list[tuple[str, int]] = [
            *wire.message_options(self.limits.max_message_bytes),
            *wire.keepalive_options(self._keepalive_s, server=False),
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.initial_reconnect_backoff_ms", 20),
            ("grpc.min_reconnect_backoff_ms", 20),
            ("grpc.max_reconnect_backoff_ms", 500),
        ]
        if self._credentials is None:
            return grpc.aio.insecure_channel(target, options=options)
        return grpc.aio.secure_channel(target, self._credentials, options=options)

    async def session(self, target: str, epoch: int, secret: str) -> None:
        """One stream from the active at ``target`` (grant ``epoch`` with ``secret``), until it
        ends; grpc.aio.AioRpcError if the endpoint refuses it. :meth:`follow` reconnects around
        it; tests call it to see a single attempt's outcome."""
        self.sessions += 1
        async with self._channel(target) as channel:
            call = wire.open_stream(channel)
            applied_epoch, seq = self.applied
            nonce = auth.new_nonce()
            await call.write(pb.StandbyMessage(hello=pb.Hello(
                group=self.group, member=self.member, epoch=applied_epoch, sequence=seq,
                highest_epoch=self.highest_epoch, nonce=nonce)))
            parts: list[Change] = []
            self._stamp = 0
            promises = self.promises if self.promises is not None and \
                self.promises.epoch == epoch else None
            try:
                msg = wire.decode(pb.ActiveMessage, await call.read())
                if msg is wire.EOF:
                    return
                mac = self._answer(msg, target, epoch, secret, nonce)
                await call.write(pb.StandbyMessage(proof=pb.Proof(mac=mac)))
                while True:
                    msg = wire.decode(pb.ActiveMessage, await call.read())
                    if msg is wire.EOF:
                        return
                    self.connected = True
                    self.messages += 1
                    self.last_heard = self._clock.monotonic()
                    ack = self._handle(msg, parts)
                    if ack is not None:
                        promise_ms = 0
                        if promises is not None and self._stamp:
                            promise_ms = int(promises.grant(self._clock.monotonic()) * 1000)
                        await call.write(wire.ack_message(*ack, self._stamp, promise_ms))
            except (_Reject, wire.Malformed) as r:
                code, detail = (r.code, r.detail) if isinstance(r, _Reject) else \
                    (_INVALID_ARGUMENT, f"malformed message: {r}")
                log.warning("%s: rejecting the stream from %s: %s", self.member, target, detail)
                with contextlib.suppress(grpc.aio.AioRpcError, grpc.aio.UsageError):
                    await call.write(pb.StandbyMessage(reject=pb.Reject(code=code,
                                                                        detail=detail)))
                call.cancel()

    def _answer(self, msg: Any, target: str, epoch: int, secret: str, nonce: bytes) -> bytes:
        """Check the endpoint's Challenge (it must prove it holds grant ``epoch``); this
        standby's proof to send back."""
        if msg.WhichOneof("kind") != "challenge":
            raise _Reject(_INVALID_ARGUMENT, f"expected a Challenge, got "
                          f"{msg.WhichOneof('kind') or 'an empty message'}")
        challenge = msg.challenge
        binding = {"group": self.group, "standby": self.member, "epoch": epoch,
                   "standby_nonce": nonce, "active_nonce": challenge.nonce}
        if challenge.epoch != epoch or len(challenge.nonce) != auth.NONCE_BYTES or \
                not auth.verify(auth.proof(secret, auth.Side.ACTIVE, **binding), challenge.proof):
            raise _Reject(_UNAUTHENTICATED, f"{target} did not prove it holds the grant of "
                          f"epoch {epoch} (challenge for epoch {challenge.epoch})")
        return auth.proof(secret, auth.Side.STANDBY, **binding)

    def _handle(self, msg: Any, parts: list[Change]) -> tuple[int, int] | None:
        """Apply one message; the position to acknowledge, if any."""
        kind = msg.WhichOneof("kind")
        if kind == "deltas":
            d = msg.deltas
            self._check_epoch(d.epoch)
            verdict, skip = check_deltas(self.applied, self.highest_epoch, d.epoch,
                                         d.first_sequence, len(d.changes))
            if verdict is Verdict.DUPLICATE:
                self._stamp = d.sent_us or self._stamp
                return None
            if verdict is Verdict.GAP:
                self.resyncs += 1
                raise _Reject(_OUT_OF_RANGE, f"gap: have {self.applied}, got epoch {d.epoch} "
                              f"from sequence {d.first_sequence}")
            self._stamp = d.sent_us or self._stamp
            changes = tuple(self._checked(d.changes[skip:] if skip else d.changes))
            apply = self.data.apply
            for change in changes:
                apply(change)
            self.applied = (d.epoch, d.first_sequence + len(d.changes) - 1)
            if self.listeners:
                self._notify(Applied(d.epoch, self.applied[1], changes))
            return self.applied
        if kind == "snapshot":
            s = msg.snapshot
            self._check_epoch(s.epoch)
            parts.extend(self._checked(s.entries))
            if not s.last:
                return None
            self.data.replace(parts)
            self.applied = (s.epoch, s.sequence)
            self.highest_epoch = max(self.highest_epoch, s.epoch)
            self._notify(Applied(s.epoch, s.sequence, tuple(parts), snapshot=True))
            parts.clear()
            return self.applied
        if kind == "rebase":
            r = msg.rebase
            self._check_epoch(r.epoch)
            if self.applied != (r.base_epoch, r.base_sequence):
                self.resyncs += 1
                raise _Reject(_OUT_OF_RANGE, f"rebase from {(r.base_epoch, r.base_sequence)} "
                              f"but this standby is at {self.applied}")
            self.applied = (r.epoch, 0)
            return self.applied
        if kind == "heartbeat":
            self._check_epoch(msg.heartbeat.epoch)
            self._stamp = msg.heartbeat.sent_us or self._stamp
            return self.applied  # answered, so the active sees this standby is alive
        raise _Reject(_INVALID_ARGUMENT, f"unknown message kind {kind!r}")

    def _check_epoch(self, epoch: int) -> None:
        if epoch < self.highest_epoch:
            self.stale_rejections += 1
            raise _Reject(_FAILED_PRECONDITION, f"epoch {epoch} is stale: this standby has "
                          f"seen epoch {self.highest_epoch}")
        self.highest_epoch = epoch

    def _checked(self, messages: Any) -> list[Change]:
        """The changes in ``messages``, each checked on its own (names and sizes)."""
        changes = wire.changes_from_pb(messages)
        limits = self.limits
        try:
            for change in changes:
                check_shape(change, limits)
        except (ConfigError, CheckpointLimitError) as e:
            raise _Reject(_INVALID_ARGUMENT, f"bad change from the active: {e}") from e
        return changes

    def _notify(self, applied: Applied) -> None:
        for listener in list(self.listeners):
            try:
                listener(applied)
            except Exception:
                log.exception("%s: checkpoint tracking callback %r failed", self.member,
                              listener)
