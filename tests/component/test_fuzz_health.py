"""Fuzzing grpc.health.v1 as vnfha serves it (:class:`vnfha.grpc_health.HealthService` on a real
grpc.aio server on 127.0.0.1:0, grpc's default message limit): Check and Watch get random bytes,
mutated valid requests, ``service`` sent with every other wire type, unknown fields of every
wire type and number (0 and past the largest included), over-long varints, invalid UTF-8, huge
names (under and over the message limit), while a prober keeps checking the server.

The oracle is protobuf's own parser of the standard ``HealthCheckRequest``. For every request:

- over the server's message limit: RESOURCE_EXHAUSTED (grpc's, before the handler);
- protobuf refuses it: INVALID_ARGUMENT (vnfha must never serve what protobuf cannot read);
- protobuf reads service S: the answer for S (Check: its status, or NOT_FOUND with a short
  message; Watch: its status first, or SERVICE_UNKNOWN), or INVALID_ARGUMENT where vnfha is
  stricter than protobuf (``service`` with another wire type, groups);
- never any other code, never a hang; the prober's checks all succeed; the log holds no
  traceback or error and at most one refusal line per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import grpc.aio
import pytest
import test_fuzz_bridge as fz
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from vnfha import grpc_health as h

SERVER_MAX_BYTES = 4 * 1024 * 1024
"""grpc's default limit on a received message (the server below sets none)."""
STATUSES = {"": h.ServingStatus.SERVING, "vnfha.nfvi.v1.Fencing": h.ServingStatus.SERVING,
            "app": h.ServingStatus.NOT_SERVING, "é/ü": h.ServingStatus.SERVING}
MAX_DETAILS = 2000
"""A NOT_FOUND message quotes at most 128 characters of the name (each at most 10 as a repr)."""


def standard_request() -> type:
    """The standard ``HealthCheckRequest``, built from its schema in a private pool."""
    f = descriptor_pb2.FileDescriptorProto(name="fuzz_health.proto", package="grpc.health.v1",
                                           syntax="proto3")
    req = f.message_type.add(name="HealthCheckRequest")
    req.field.add(name="service", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    message: type = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest"))
    return message


REQUEST = standard_request()


def protobuf_reads(data: bytes) -> str | None:
    """The service protobuf reads from ``data``; None if protobuf refuses it."""
    try:
        service: str = REQUEST.FromString(data).service  # type: ignore[attr-defined]
    except DecodeError:
        return None
    return service


def health_cases(rng: random.Random, count: int) -> list[bytes]:
    """Requests: generic byte mutations and the health message's own hostile shapes."""
    names = [*STATUSES, "nope", "x" * 300, "\0", "\U0001f600"]
    out = []
    for i in range(count):
        valid = h.encode_request(rng.choice(names))
        kind = i % 9
        if kind == 0:
            data = fz.random_bytes(rng)
        elif kind in (1, 2):
            data = fz.mutate_bytes(rng, valid)
        elif kind == 3:  # service with another wire type (or a group), before or after
            wrong = fz.field(1, rng.choice([fz.VARINT, fz.FIXED64, fz.FIXED32, fz.GROUP_START,
                                            fz.GROUP_END]), rng.randbytes(8))
            data = rng.choice([wrong + valid, valid + wrong])
        elif kind == 4:  # invalid UTF-8 in service
            data = fz.field(1, fz.LENGTH, rng.choice(
                [b"\xff", b"ok\xc3", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80"]))
        elif kind == 5:  # unknown fields, of any number (0 and past 2^29 - 1 too) and type
            number = rng.choice([0, 2, 15, 16, (1 << 29) - 1, 1 << 29, (1 << 32) - 1, 1 << 40])
            extra = fz.field(number, rng.randrange(8), rng.randbytes(rng.choice([0, 4, 8])))
            data = rng.choice([extra + valid, valid + extra])
        elif kind == 6:  # over-long and oversized varints (tag, length)
            data = rng.choice([b"\x8a\x80\x80\x80\x80\x80\x80\x80\x80\x00" + b"\x00",
                               b"\x0a" + b"\xff" * 9 + b"\x01", b"\x0a" + b"\x80" * 10 + b"\x00",
                               b"\xff" * 5 + b"\x0f\x00", b"\x08" + b"\xff" * 9 + b"\x7f"])
        elif kind == 7:  # huge names: under the limit (NOT_FOUND) and over it
            size = rng.choice([70_000, 1_000_000, SERVER_MAX_BYTES + 1])
            data = h.encode_request(rng.choice("xé") * size)
        else:
            data = valid + valid if rng.random() < 0.5 else valid
        out.append(data)
    return out


@dataclass
class Served:
    health: h.HealthService
    channel: grpc.aio.Channel


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    health = h.HealthService()
    for service, status in STATUSES.items():
        health.set(service, status)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((health.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(
                f"127.0.0.1:{port}",
                options=[("grpc.max_send_message_length", 2 * SERVER_MAX_BYTES)]) as channel:
            yield Served(health, channel)
    finally:
        health.close()
        await server.stop(None)


async def check(channel: grpc.aio.Channel, data: bytes) -> tuple[grpc.StatusCode, str, bytes]:
    call = channel.unary_unary(f"/{h.SERVICE_NAME}/Check", request_serializer=None,
                               response_deserializer=None)
    try:
        reply: bytes = await call(data, timeout=fz.CALL_S)
    except grpc.aio.AioRpcError as e:
        return e.code(), e.details() or "", b""
    return grpc.StatusCode.OK, "", reply


async def watch(channel: grpc.aio.Channel, data: bytes) -> tuple[grpc.StatusCode, str, bytes]:
    """The first reply of a Watch (always sent at once when accepted), then cancelled."""
    call = channel.unary_stream(f"/{h.SERVICE_NAME}/Watch", request_serializer=None,
                                response_deserializer=None)(data, timeout=fz.CALL_S)
    try:
        reply = await call.read()
    except grpc.aio.AioRpcError as e:
        return e.code(), e.details() or "", b""
    finally:
        call.cancel()
    if reply is grpc.aio.EOF:  # type: ignore[attr-defined] # (not in grpc-stubs)
        return await call.code(), await call.details(), b""
    assert isinstance(reply, bytes)
    return grpc.StatusCode.OK, "", reply


def judge(method: str, data: bytes, code: grpc.StatusCode, details: str,
          reply: bytes) -> str | None:
    """What is wrong with this answer to ``data`` (None: nothing)."""
    if len(data) > SERVER_MAX_BYTES:
        return None if code is grpc.StatusCode.RESOURCE_EXHAUSTED else "over the limit"
    service = protobuf_reads(data)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return None  # required when protobuf refuses; vnfha may be stricter
    if service is None:
        return "served a request protobuf refuses"
    status = STATUSES.get(service)
    if method == "Watch":
        expected = status if status is not None else h.ServingStatus.SERVICE_UNKNOWN
        ok = code is grpc.StatusCode.OK and h.decode_response(reply) is expected
        return None if ok else f"expected {expected.name} first"
    if status is None:
        ok = code is grpc.StatusCode.NOT_FOUND and len(details) <= MAX_DETAILS
        return None if ok else f"expected NOT_FOUND with a short message for {service[:40]!r}"
    ok = code is grpc.StatusCode.OK and h.decode_response(reply) is status
    return None if ok else f"expected {status.name}"


async def prober(channel: grpc.aio.Channel, stop: asyncio.Event) -> int:
    rounds = 0
    while not stop.is_set():
        assert await h.probe(channel, timeout_s=fz.CALL_S) is h.ServingStatus.SERVING
        assert await h.probe(channel, "app", timeout_s=fz.CALL_S) is h.ServingStatus.NOT_SERVING
        rounds += 1
        with contextlib.suppress(TimeoutError):  # a round every 20 ms at most
            await asyncio.wait_for(stop.wait(), 0.02)
    return rounds


async def test_fuzzing_check_and_watch(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rng = random.Random(fz.SEED)
    requests = health_cases(rng, 3 * fz.PER_TARGET)
    stop = asyncio.Event()
    probing = asyncio.create_task(prober(served.channel, stop))
    seen: Counter[str] = Counter()
    failures = []
    began = time.monotonic()
    try:
        for index, data in enumerate(requests):
            for method, send in (("Check", check), ("Watch", watch)):
                code, details, reply = await send(served.channel, data)
                seen[f"{method} {code.name}"] += 1
                problem = judge(method, data, code, details, reply)
                if problem is not None:
                    failures.append(f"{method} answered {code.name} ({details[:80]!r}): "
                                    f"{problem}; seed {fz.SEED} case {index}, {len(data)} bytes "
                                    f"{data[:60].hex()}")
    finally:
        stop.set()
        rounds = await probing
    elapsed_s = time.monotonic() - began
    assert failures == [], "\n".join(failures[:30])
    assert rounds > 0
    assert await h.probe(served.channel, timeout_s=fz.CALL_S) is h.ServingStatus.SERVING
    invalid = seen["Check INVALID_ARGUMENT"] + seen["Watch INVALID_ARGUMENT"]
    assert served.health.refusals == {"INVALID_ARGUMENT": invalid}

    log = fz.sort_log(caplog.records, ("vnfha.grpc_health",))
    assert log.bad == [], "\n".join(log.bad[:20])
    assert log.grpc_loud == [], "\n".join(log.grpc_loud[:20])
    assert 0 < log.refusal_lines["vnfha.grpc_health", "INVALID_ARGUMENT"] \
        <= fz.max_lines_per_kind(elapsed_s), (log.refusal_lines, elapsed_s)
    print(f"\n{len(requests)} requests, each to Check and Watch, in {elapsed_s:.1f} s, "
          f"{rounds} rounds of the prober; answers {dict(sorted(seen.items()))}")


async def test_a_huge_unknown_name_gets_not_found_with_a_short_message(served: Served) -> None:
    """The name used to be quoted whole: a 100,000-character name made trailers the client
    refuses (RESOURCE_EXHAUSTED, "metadata size exceeds hard limit") instead of NOT_FOUND."""
    code, details, _ = await check(served.channel, h.encode_request("x" * 100_000))
    assert code is grpc.StatusCode.NOT_FOUND, (code, details[:200])
    assert details.startswith("unknown service 'xxx") and "(100000 characters)" in details
    assert len(details) < 200


@pytest.mark.parametrize("data", [
    b"\x00\x00",  # field number 0
    b"\x02\x00",
    b"\x05\x00\x00\x00\x00",
    b"\x8a\x80\x80\x80\x80\x00\x00",  # the tag of field 1 in 6 bytes (at most 5)
    b"\xf8\xff\xff\xff\x7f\x00",  # a 5-byte tag over 32 bits (field number 2**32 - 1)
    b"\x0a\x03ap\x90\x0a\x03app",  # the last service is valid, an earlier one is not UTF-8
], ids=["field-0-varint", "field-0-length", "field-0-fixed32", "tag-6-bytes", "tag-over-32-bits",
        "earlier-invalid-utf8"])
async def test_what_protobuf_refuses_is_refused(served: Served, data: bytes) -> None:
    """The hand-written decoder used to serve each of these (as a request for ``""`` or for
    ``"app"``), which protobuf's parser refuses: found by the fuzzing above."""
    assert protobuf_reads(data) is None
    for send in (check, watch):
        code, _, _ = await send(served.channel, data)
        assert code is grpc.StatusCode.INVALID_ARGUMENT
