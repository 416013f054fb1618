"""grpc.health.v1 served by vnfha.grpc_health on a real server on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from vnfha import grpc_health as h


@pytest.fixture
async def served() -> AsyncIterator[tuple[h.HealthService, grpc.aio.Channel]]:
    health = h.HealthService()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((health.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield health, channel
    finally:
        health.close()
        await channel.close()
        await server.stop(None)


Served = tuple[h.HealthService, grpc.aio.Channel]


async def test_check_whole_server_and_named_services(served: Served) -> None:
    health, channel = served
    assert await h.probe(channel, timeout_s=5) is h.ServingStatus.SERVING
    health.set("vnfha.nfvi.v1.Fencing", h.ServingStatus.NOT_SERVING)
    status = await h.probe(channel, "vnfha.nfvi.v1.Fencing", timeout_s=5)
    assert status is h.ServingStatus.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await h.probe(channel, "nope", timeout_s=5)
    assert e.value.code() is grpc.StatusCode.NOT_FOUND


async def test_malformed_request_is_invalid_argument_and_server_keeps_serving(
        served: tuple[h.HealthService, grpc.aio.Channel]) -> None:
    _, channel = served
    raw = channel.unary_unary(f"/{h.SERVICE_NAME}/Check")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await raw(b"\x0a\x09short", timeout=5)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert await h.probe(channel, timeout_s=5) is h.ServingStatus.SERVING


async def test_watch_sends_current_then_changes(served: tuple[h.HealthService, grpc.aio.Channel]
                                                ) -> None:
    health, channel = served
    watch = channel.unary_stream(f"/{h.SERVICE_NAME}/Watch")
    call = watch(h.encode_request("svc"), timeout=10)
    seen = [h.decode_response(await call.read())]
    health.set("svc", h.ServingStatus.SERVING)
    seen.append(h.decode_response(await call.read()))
    health.set("svc", h.ServingStatus.NOT_SERVING)
    seen.append(h.decode_response(await asyncio.wait_for(call.read(), 5)))
    assert seen == [h.ServingStatus.SERVICE_UNKNOWN, h.ServingStatus.SERVING,
                    h.ServingStatus.NOT_SERVING]
    call.cancel()
