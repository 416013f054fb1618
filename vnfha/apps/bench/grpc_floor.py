"""The transport's floor for ``vnfha bench checkpoint``: a bare grpc.aio bidirectional stream
between two processes on loopback, in replication's shape, with none of vnfha in it.

This process serves the stream and writes a message of the size of one write's deltas; a child
process (``python -m vnfha.apps.bench.grpc_floor PORT REPLY_BYTES``) is the client, which
answers each with a message of an ack's size, as a standby does. One message in flight at a
time, timed from the write to the answer: what one writer's ``Ack.ONE`` round trip would cost
if vnfha added nothing. Both ends use grpc's defaults, as vnfha's members do.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio

from vnfha.apps.bench._common import summary

__all__ = ["measure", "main"]

SERVICE = "vnfha.bench.Floor"
WARM_UP = 500
_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]


def _raw(data: bytes) -> bytes:
    return data


def _handler(stream: Any) -> grpc.GenericRpcHandler[Any, Any]:
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Stream": grpc.stream_stream_rpc_method_handler(
            stream, request_deserializer=_raw, response_serializer=_raw)})


async def measure(samples: int, *, message_bytes: int, reply_bytes: int) -> dict[str, Any]:
    """``samples`` round trips of ``message_bytes`` out and ``reply_bytes`` back: writes/s and
    p50/p99/max in ms."""
    result: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    message = b"x" * message_bytes

    async def stream(_: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        try:
            await context.read()  # the client's first message: it is there
            for _ in range(WARM_UP):
                await context.write(message)
                await context.read()
            lat: list[float] = []
            clock = time.perf_counter
            start = clock()
            for _ in range(samples):
                t = clock()
                await context.write(message)
                await context.read()
                lat.append((clock() - t) * 1000)
            result.set_result({"n": samples, "per_s": round(samples / (clock() - start)),
                               **summary(lat, digits=3, unit="_ms")})
        except Exception as e:  # handed to the waiting caller as it is
            result.set_exception(e)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_handler(stream),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnfha.apps.bench.grpc_floor", str(port), str(reply_bytes))
    try:
        return await result
    finally:
        await server.stop(0)
        await client.wait()


async def _answer(port: int, reply_bytes: int) -> None:
    reply = b"a" * reply_bytes
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        method = channel.stream_stream(f"/{SERVICE}/Stream", request_serializer=_raw,
                                       response_deserializer=_raw)
        call: Any = method()  # type: ignore[call-arg]  # its requests are written later
        await call.write(reply)
        try:
            while await call.read() is not _EOF:
                await call.write(reply)
        except grpc.aio.AioRpcError:
            pass  # the server stopped at the end of the measurement


def main(argv: Sequence[str] | None = None) -> None:
    """The client end: ``PORT REPLY_BYTES``."""
    port, reply_bytes = (int(a) for a in (argv if argv is not None else sys.argv[1:]))
    asyncio.run(_answer(port, reply_bytes))


if __name__ == "__main__":
    main()
