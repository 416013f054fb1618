"""Fuzzing the member's replication endpoint with random and mutated messages, over real gRPC on
127.0.0.1:0 (grpc.health.v1, which shares the port, is fuzzed in ``test_fuzz_health.py``).

What must hold, whatever arrives: the server does not crash; every stream ends with a status
from the documented set (never UNKNOWN or INTERNAL); the log gets at most one line per kind of
refusal per 10 s and no traceback; acks of a stream that did not authenticate never count; and a
real standby, streaming the whole time, keeps replicating.
"""

from __future__ import annotations

import asyncio
import logging
import random
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

CASES = 1000
SEED = 1212
DOCUMENTED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
              grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.FAILED_PRECONDITION,
              grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED}
"""CANCELLED: the client's own cancel after a case; RESOURCE_EXHAUSTED: over the size limit."""


def valid_messages(rng: random.Random) -> list[bytes]:
    """Messages a standby might send, serialized (the seeds of the mutations)."""
    return [m.SerializeToString() for m in (
        pb.StandbyMessage(hello=pb.Hello(group="vfw", member="b", epoch=3, sequence=1,
                                         highest_epoch=3, nonce=auth.new_nonce())),
        pb.StandbyMessage(ack=pb.Ack(epoch=3, sequence=rng.randrange(2**64))),
        pb.StandbyMessage(proof=pb.Proof(mac=rng.randbytes(32))),
        pb.StandbyMessage(reject=pb.Reject(code=rng.randrange(-5, 20), detail="x" * 50)),
    )]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random mutation: flip, insert, delete or truncate bytes, or splice two inputs."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and buf:
            del buf[pos:pos + rng.randint(1, 4)]
        elif op == 3:
            del buf[pos:]
        else:
            buf[pos:pos] = bytes([rng.randrange(256)]) * rng.randint(1, 3)
    return bytes(buf)


def case(rng: random.Random) -> list[bytes]:
    """A sequence of 1-4 messages for one stream: random bytes, mutated ones, or valid ones in
    a hostile order."""
    seeds = valid_messages(rng)
    out = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(3)
        if kind == 0:
            out.append(rng.randbytes(rng.randint(0, 64)))
        elif kind == 1:
            out.append(mutate(rng.choice(seeds), rng))
        else:
            out.append(rng.choice(seeds))
    return out


async def run_case(address: str, messages: list[bytes]) -> tuple[grpc.StatusCode, bool]:
    """Send ``messages`` on one stream: the status the client saw, and whether a write failed
    because the server had already ended the call."""
    write_failed = False
    async with grpc.aio.insecure_channel(address) as channel:
        call: Any = channel.stream_stream(wire.STREAM_METHOD, request_serializer=None,
                                          response_deserializer=None)()
        try:
            for m in messages:
                await call.write(m)
            await call.done_writing()
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
            write_failed = True
        try:
            async with asyncio.timeout(5):
                while await call.read() is not wire.EOF:
                    pass
        except grpc.aio.AioRpcError:
            pass
        except TimeoutError:  # the server waits for more (a Hello answered by a challenge)
            call.cancel()
        return await call.code(), write_failed


@pytest.fixture
async def rig() -> AsyncIterator[ReplicationRig]:
    async with ReplicationRig.start(group="vfw", member="a", epoch=3, keepalive_s=0.5) as r:
        yield r


async def test_random_and_mutated_streams(rig: ReplicationRig,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    b = rig.replica("b")  # the real standby streams throughout
    rig.follow(b)
    rng = random.Random(SEED)
    codes: dict[grpc.StatusCode, int] = {}
    written = 0
    for i in range(CASES):
        refused = len(rig.refused)
        code, write_failed = await run_case(rig.address, case(rng))
        if code is grpc.StatusCode.INTERNAL and write_failed:
            # grpc's client replaces the server's status with INTERNAL ("Internal error from
            # Core") when a write races the end of the call; the server's own answer is then
            # the refusal it counted for this case
            assert len(rig.refused) == refused + 1, f"case {i}: INTERNAL, nothing refused"
            code = grpc.StatusCode.INVALID_ARGUMENT if rig.refused[-1] in (
                "malformed", "protocol", "wrong_group") else grpc.StatusCode.UNAUTHENTICATED
        codes[code] = codes.get(code, 0) + 1
        assert code in DOCUMENTED, f"case {i}: {code}"
        if i % 25 == 0:
            written = rig.primary.write(Change("s", "k", str(i).encode()))
    # a fuzzed stream never authenticated (the odds of a random valid HMAC are nil), so only
    # the real standby's acks count, and it has everything
    await until(lambda: b.applied == (3, written), what="b caught up")
    final = rig.primary.write(Change("s", "k", b"final"))
    assert await rig.primary.wait_protected(final, Ack.ONE, timeout_s=5)
    assert set(rig.primary.peers) == {"b"}
    assert codes.get(grpc.StatusCode.INVALID_ARGUMENT, 0) > CASES // 4, codes
    assert "Traceback" not in caplog.text
    lines = [r for r in caplog.records if "refused a replication stream" in r.getMessage()]
    assert len(lines) <= len(set(rig.refused)), [r.getMessage() for r in lines]
