"""A hostile or buggy peer on the active's replication port, with real gRPC on 127.0.0.1:0.

Regression tests for issue 12, item 1: one forged Ack made the active count writes as
replicated that no standby had (``Hello(member=<the standby>)`` then ``Ack(sequence=2**62)``).
Now a stream carries nothing and counts no ack before the standby proved it knows the grant's
secret; an ack counts only for what was sent on its own stream; a replaced stream's acks are
forgotten; a protocol violation ends the stream with INVALID_ARGUMENT and is counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

from vnfha.model import Ack
from vnfha.replication import auth, wire
from vnfha.replication.state import Change
from vnfha.replication.wire import pb
from vnfha.testing.replication import ReplicationRig, until

FORGED = 2**62


class RawStream:
    """A replication client that sends whatever it is told (bytes or messages)."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.call: Any = self.channel.stream_stream(
            wire.STREAM_METHOD, request_serializer=None, response_deserializer=None)()

    async def send(self, message: Any) -> None:
        await self.call.write(message if isinstance(message, bytes)
                              else message.SerializeToString())

    async def read(self) -> Any:
        raw = await self.call.read()
        return raw if raw is wire.EOF else pb.ActiveMessage.FromString(raw)

    async def status(self) -> grpc.StatusCode:
        """The call's final status (reading until the server ends it)."""
        async with asyncio.timeout(10):
            try:
                while await self.call.read() is not wire.EOF:
                    pass
            except grpc.aio.AioRpcError as e:
                return e.code()
            return await self.call.code()  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.channel.close()


def hello(group: str, member: str, *, nonce: bytes | None = None, epoch: int = 0,
          sequence: int = 0) -> Any:
    return pb.StandbyMessage(hello=pb.Hello(
        group=group, member=member, epoch=epoch, sequence=sequence,
        nonce=auth.new_nonce() if nonce is None else nonce))


async def authenticated(rig: ReplicationRig, member: str, *, epoch: int = 0,
                        sequence: int = 0) -> RawStream:
    """A raw stream that knows the grant's secret (a buggy member), past the handshake."""
    raw = RawStream(rig.address)
    nonce = auth.new_nonce()
    await raw.send(hello(rig.group, member, nonce=nonce, epoch=epoch, sequence=sequence))
    challenge = (await raw.read()).challenge
    mac = auth.proof(rig.secret, auth.Side.STANDBY, group=rig.group, standby=member,
                     epoch=rig.epoch, standby_nonce=nonce, active_nonce=challenge.nonce)
    await raw.send(pb.StandbyMessage(proof=pb.Proof(mac=mac)))
    return raw


@pytest.fixture
async def rig() -> AsyncIterator[ReplicationRig]:
    async with ReplicationRig.start(group="vfw", member="a", epoch=3) as r:
        yield r


async def test_the_forged_ack_of_the_issue_is_refused_and_counts_nothing(
        rig: ReplicationRig) -> None:
    """The attack as reported: Hello as the standby, then one huge Ack. Refused before any ack
    is read (an old Hello carries no nonce), and an Ack.ONE write stays unprotected."""
    b = rig.replica("b")
    follow = rig.follow(b)
    rig.primary.write(Change("s", "k", b"1"))
    await until(lambda: rig.primary.in_sync == ("b",), what="b in sync")
    follow.cancel()  # the real standby is frozen from here on
    await until(lambda: not rig.primary.peers, what="b's stream gone")

    raw = RawStream(rig.address)
    await raw.send(pb.StandbyMessage(hello=pb.Hello(group="vfw", member="b", epoch=3)))
    # the forged Ack would follow; the stream is refused at the Hello (no nonce), before any
    # ack is read. (Writing it anyway races the refusal: grpc's client may then report its
    # own INTERNAL instead of the server's status, so the test waits for the answer.)
    assert await raw.status() is grpc.StatusCode.INVALID_ARGUMENT
    await raw.close()

    seq = rig.primary.write(Change("s", "k", b"2"))
    assert not await rig.primary.wait_protected(seq, Ack.ONE, timeout_s=0.3)
    assert rig.refused == ["malformed"]


async def test_a_standby_without_the_secret_is_unauthenticated(rig: ReplicationRig) -> None:
    """A Hello with a nonce but a wrong proof: UNAUTHENTICATED, and its acks never count."""
    raw = RawStream(rig.address)
    await raw.send(hello("vfw", "b"))
    assert (await raw.read()).WhichOneof("kind") == "challenge"  # nothing of the state yet
    await raw.send(pb.StandbyMessage(proof=pb.Proof(mac=b"\0" * auth.PROOF_BYTES)))
    assert await raw.status() is grpc.StatusCode.UNAUTHENTICATED  # no ack is read after it
    await raw.close()
    seq = rig.primary.write(Change("s", "k", b"1"))
    assert not await rig.primary.wait_protected(seq, Ack.ONE, timeout_s=0.2)
    assert rig.refused == ["unauthenticated"]


async def test_a_replica_with_the_wrong_secret_gets_nothing(rig: ReplicationRig) -> None:
    """The endpoint's own proof does not match the secret the standby was given: the standby
    rejects it (it may be something else listening at that address) and applies nothing."""
    rig.primary.write(Change("s", "k", b"state"))
    b = rig.replica("b")
    await b.session(rig.address, rig.epoch, "00" * 32)  # it rejects, cancels and returns
    assert b.data.get("s", "k") is None and b.applied == (0, 0) and not b.connected
    assert rig.primary.in_sync == ()


async def test_an_ack_above_what_was_sent_ends_the_stream(rig: ReplicationRig) -> None:
    """A member that knows the secret (a buggy one, or any holder of a valid certificate under
    mTLS) acks a sequence never sent on its stream: INVALID_ARGUMENT, counted, not recorded."""
    rig.primary.write(Change("s", "k", b"1"))
    raw = await authenticated(rig, "b")
    assert (await raw.read()).WhichOneof("kind") == "rebase"  # (0, 0) is the log's base
    assert (await raw.read()).deltas.first_sequence == 1  # then sequence 1, all there is
    await raw.send(pb.StandbyMessage(ack=pb.Ack(epoch=3, sequence=FORGED)))
    assert await raw.status() is grpc.StatusCode.INVALID_ARGUMENT
    await raw.close()
    assert rig.primary.tracker.acked.get("b", 0) == 0
    assert rig.refused == ["protocol"]
    seq = rig.primary.write(Change("s", "k", b"2"))
    assert not await rig.primary.wait_protected(seq, Ack.ONE, timeout_s=0.2)


async def test_an_ack_for_another_epoch_ends_the_stream(rig: ReplicationRig) -> None:
    raw = await authenticated(rig, "b")
    await raw.read()  # the rebase
    await raw.send(pb.StandbyMessage(ack=pb.Ack(epoch=4, sequence=0)))
    assert await raw.status() is grpc.StatusCode.INVALID_ARGUMENT
    await raw.close()
    assert rig.refused == ["protocol"]


async def test_a_replaced_stream_s_acks_are_forgotten(rig: ReplicationRig) -> None:
    """The standby's stream acks a write; a second stream in its name (with the secret)
    replaces it: from then on only what the new stream acks counts, so a write after it is not
    protected by the old stream's record."""
    b = rig.replica("b")
    rig.follow(b)
    first = rig.primary.write(Change("s", "k", b"1"))
    await until(lambda: rig.primary.in_sync == ("b",), what="b in sync")
    assert await rig.primary.wait_protected(first, Ack.ONE, timeout_s=5)

    rogue = await authenticated(rig, "b", epoch=3, sequence=first)  # at b's position: no data
    await until(lambda: rig.primary.tracker.acked.get("b", 0) == 0, what="b's acks forgotten")
    # the rogue stream acks nothing; the real standby's reconnect may replace it again, which
    # must also start from nothing: either way, no write is protected without a fresh ack
    later = rig.primary.write(Change("s", "k", b"2"))
    protected = await rig.primary.wait_protected(later, Ack.ONE, timeout_s=5)
    assert protected and b.data.get("s", "k") == b"2"  # only the real standby can ack it
    await rogue.close()


async def test_a_second_hello_is_a_protocol_violation(rig: ReplicationRig) -> None:
    raw = await authenticated(rig, "b")
    await raw.read()
    await raw.send(hello("vfw", "b"))
    assert await raw.status() is grpc.StatusCode.INVALID_ARGUMENT
    await raw.close()
    assert rig.refused == ["protocol"]


async def test_a_stream_closed_before_its_hello_is_not_a_refusal(
        rig: ReplicationRig, caplog: pytest.LogCaptureFixture) -> None:
    """A standby that stops while connecting half-closes before its Hello: that is no attack,
    so no refusal is counted or logged (a stopping fleet raised VnfhaReplicationRefusals)."""
    raw = RawStream(rig.address)
    await raw.call.done_writing()
    assert await raw.status() is grpc.StatusCode.OK
    await raw.close()
    assert rig.refused == []
    assert "refused a replication stream" not in caplog.text


async def test_malformed_bytes_get_invalid_argument_and_one_log_line(
        rig: ReplicationRig, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12 item 5: five malformed messages gave UNKNOWN and 60 lines of tracebacks."""
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        raw = RawStream(rig.address)
        await raw.send(b"\xff\xff\xff\xff garbage")
        assert await raw.status() is grpc.StatusCode.INVALID_ARGUMENT
        await raw.close()
    assert rig.refused == ["malformed"] * 5
    assert "Traceback" not in caplog.text
    refusals = [r for r in caplog.records if "refused a replication stream" in r.getMessage()]
    assert len(refusals) == 1  # rate-limited: one line per kind per 10 s
    b = rig.replica("b")  # and a real standby is still served
    rig.follow(b)
    rig.primary.write(Change("s", "k", b"1"))
    await until(lambda: b.data.get("s", "k") == b"1", what="b replicates")
