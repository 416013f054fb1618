"""A member's watchdog stays armed whatever happens to the bridge: an arm that did not reach it
is sent again at a later confirmed keepalive, and a bridge that restarted (and forgot every
watchdog) is armed again. Real bridge servers with the sim driver on 127.0.0.1, real time."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from vnfha import Config
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.clock import SystemClock
from vnfha.errors import BridgeRequestError
from vnfha.nfvi.agent import NfviAgent
from vnfha.nfvi.client import BridgeClient
from vnfha.wiring import agent_settings, bridge_client

EPOCH = 7


@pytest.fixture
def address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
async def agent(address: str) -> AsyncIterator[NfviAgent]:
    cfg = Config(group="g", member="a", bridge_endpoint=address, bridge_timeout_s=0.3)
    client = bridge_client(cfg, SystemClock())
    assert client is not None
    agent = NfviAgent(client, agent_settings(cfg), SystemClock(), on_maintenance=lambda event: None)
    async with client:
        await agent.start()
        try:
            yield agent
        finally:
            await agent.close()


async def keepalives_until_armed(agent: NfviAgent, timeout_s: float = 10) -> None:
    """Confirmed keepalives every 50 ms (as a session would), until the watchdog is armed."""
    async with asyncio.timeout(timeout_s):
        while agent.armed_epoch != EPOCH:
            agent.keepalive_confirmed()
            await asyncio.sleep(0.05)


async def bridge_has_it_armed(address: str) -> bool:
    """Whether the bridge holds an armed watchdog of member a for EPOCH (a kick succeeds)."""
    async with BridgeClient(address, group="g", member="a", timeout_s=2) as c:
        try:
            await c.kick(EPOCH)
        except BridgeRequestError as e:
            assert e.reason == "not-armed", e
            return False
        return True


async def test_an_arm_that_did_not_reach_the_bridge_is_retried(
        sim: SimDriver, address: str, agent: NfviAgent) -> None:
    agent.promoted(EPOCH)  # no bridge listens yet: the arm fails
    for _ in range(10):
        agent.keepalive_confirmed()
        await asyncio.sleep(0.1)
    assert agent.armed_epoch == 0 and agent.rearms >= 1
    async with BridgeServer(sim, listen=address):
        await keepalives_until_armed(agent)
        assert await bridge_has_it_armed(address)


async def test_a_restarted_bridge_gets_the_watchdog_armed_again(
        sim: SimDriver, address: str, agent: NfviAgent) -> None:
    async with BridgeServer(sim, listen=address):
        agent.promoted(EPOCH)
        await keepalives_until_armed(agent)
        kicks = agent.kicks
        for _ in range(3):
            agent.keepalive_confirmed()
            await asyncio.sleep(0.05)
        assert agent.kicks > kicks
    async with BridgeServer(sim, listen=address):  # a new bridge: it knows no watchdog
        assert not await bridge_has_it_armed(address)
        rearms = agent.rearms
        async with asyncio.timeout(10):
            while agent.rearms == rearms or agent.armed_epoch != EPOCH:
                agent.keepalive_confirmed()
                await asyncio.sleep(0.05)
        assert await bridge_has_it_armed(address)


async def test_a_demoted_member_does_not_arm_again(
        sim: SimDriver, address: str, agent: NfviAgent) -> None:
    agent.promoted(EPOCH)  # fails: no bridge
    await asyncio.sleep(0.5)
    agent.demoted(EPOCH)
    async with BridgeServer(sim, listen=address):
        for _ in range(10):
            agent.keepalive_confirmed()
            await asyncio.sleep(0.05)
        assert agent.armed_epoch == 0
        assert not await bridge_has_it_armed(address)
