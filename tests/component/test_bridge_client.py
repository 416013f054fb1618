"""The client's deadlines and retries against a real bridge that is late, absent or stopping."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.errors import BridgeUnavailable
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import WatchdogAction


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_idempotent_call_retries_until_a_late_bridge_answers(sim: SimDriver) -> None:
    port = free_port()
    async with BridgeClient(f"127.0.0.1:{port}", group="g", member="a", timeout_s=10.0) as c:
        call = asyncio.ensure_future(c.arm_watchdog(30.0, WatchdogAction.NONE, 1))
        await asyncio.sleep(0.5)
        assert not call.done()
        async with BridgeServer(sim, listen=f"127.0.0.1:{port}"):
            status = await asyncio.wait_for(call, 10.0)
            assert status.armed


@pytest.mark.parametrize(("method", "unknown"), [("kick", True), ("placement", False)])
async def test_no_bridge_fails_within_the_deadline(method: str, unknown: bool) -> None:
    deadline_s = 0.3
    async with BridgeClient(f"127.0.0.1:{free_port()}", group="g", member="a",
                            timeout_s=deadline_s) as c:
        start = time.monotonic()
        with pytest.raises(BridgeUnavailable) as e:
            await (c.kick(1) if method == "kick" else c.placement())
        elapsed = time.monotonic() - start
    assert elapsed < deadline_s + 1.0  # generous slack for a loaded CI machine
    assert e.value.outcome_unknown is unknown and e.value.timeout_s == deadline_s
    assert isinstance(e.value, ConnectionError)


async def test_a_call_deadline_overrides_the_client_default(sim: SimDriver) -> None:
    async with BridgeClient(f"127.0.0.1:{free_port()}", group="g", member="a",
                            timeout_s=30.0) as c:
        start = time.monotonic()
        with pytest.raises(BridgeUnavailable):
            await c.placement(call_timeout_s=0.2)
        assert time.monotonic() - start < 5.0


async def test_watch_events_ends_when_the_bridge_stops(sim: SimDriver) -> None:
    async with BridgeServer(sim) as bridge, \
            BridgeClient(bridge.address, group="g", member="a", timeout_s=5.0) as c:
        events = c.watch_events()
        reader = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.2)
        await sim.pause("vm-a")
        first = await asyncio.wait_for(reader, 10.0)
        assert first.member == "a"
        await bridge.stop()
        rest = await asyncio.wait_for(_drain(events), 10.0)
        assert all(e.member == "a" for e in rest)


async def _drain(events: AsyncIterator[object]) -> list[object]:
    out = []
    try:
        async for e in events:
            out.append(e)
    except BridgeUnavailable:
        pass
    return out
