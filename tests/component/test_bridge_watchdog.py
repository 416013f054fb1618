"""Watchdog expiry on a fake clock through the real server: exactly at the deadline, each
action performed on the sim, WATCHDOG_FIRED published, and the watchdog one-shot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import BridgeEvent, EventKind, InstanceState, WatchdogAction
from vnfha.testing.clock import FakeClock


async def settle(sim: SimDriver, name: str, state: InstanceState) -> None:
    """Wait (real time) for the bridge's action on the sim to finish."""
    async def wait() -> None:
        while (await sim.get_instance(name)).state is not state:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(wait(), 10.0)


@pytest.mark.parametrize(("action", "after"), [
    (WatchdogAction.POWEROFF, InstanceState.STOPPED),
    (WatchdogAction.PAUSE, InstanceState.PAUSED),
    (WatchdogAction.NONE, InstanceState.RUNNING),
    (WatchdogAction.RESET, InstanceState.RUNNING),
])
async def test_expiry_at_the_deadline_performs_the_action(
        sim: SimDriver, action: WatchdogAction, after: InstanceState) -> None:
    clock = FakeClock()
    pid = sim.pid("vm-a")
    async with BridgeServer(sim, clock=clock) as bridge, \
            BridgeClient(bridge.address, group="g", member="a", timeout_s=5.0) as c:
        events = c.watch_events()
        fired = asyncio.ensure_future(_first_fired(events))
        await asyncio.sleep(0.1)
        await c.arm_watchdog(1.0, action, 1)
        await clock.advance(0.9)
        await c.kick(1)  # deadline now 1.9
        await clock.advance(0.95)
        assert (await c.kick(1)).remaining_s == 1.0  # deadline now 2.85
        await clock.advance(0.99)
        assert not fired.done() and sim.pid("vm-a") == pid
        await clock.advance(0.02)
        event = await asyncio.wait_for(fired, 10.0)
        assert str(action) in event.detail and event.member == "a"
        await settle(sim, "vm-a", after)
        if action is WatchdogAction.RESET:
            assert sim.pid("vm-a") != pid
        status = await c.disarm(1)
        assert not status.armed


async def _first_fired(events: AsyncIterator[BridgeEvent]) -> BridgeEvent:
    async for event in events:
        if event.kind is EventKind.WATCHDOG_FIRED:
            return event
    raise AssertionError("events ended")
