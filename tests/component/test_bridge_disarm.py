"""A deposed active may still disarm its own watchdog after the new active armed at a higher
epoch (otherwise the bridge would later reset a healthy standby); anything else it asks with its
old epoch stays refused."""

from __future__ import annotations

import sys

import pytest

from vnfha import StaleEpochRejected
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import WatchdogAction

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


async def test_own_watchdog_disarm_with_the_armed_epoch_is_accepted() -> None:
    sim = SimDriver()
    try:
        for m in ("a", "b"):
            await sim.launch(f"vm-{m}", group="g", member=m, host=f"h-{m}", argv=SLEEPER)
        async with BridgeServer(sim) as server, \
                BridgeClient(server.address, group="g", member="a", timeout_s=5) as a, \
                BridgeClient(server.address, group="g", member="b", timeout_s=5) as b:
            await a.arm_watchdog(30, WatchdogAction.RESET, 4)
            await b.arm_watchdog(30, WatchdogAction.RESET, 10)  # the new active
            with pytest.raises(StaleEpochRejected):
                await a.kick(4)
            status = await a.disarm(4)
            assert not status.armed
            with pytest.raises(StaleEpochRejected):  # nothing armed at 4 any more: stale
                await a.disarm(4)
            assert (await b.kick(10)).armed
    finally:
        await sim.close()
