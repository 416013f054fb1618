"""A standby's NFVI agent turns the real bridge's reports (BridgeServer over the sim driver, real
processes, a real BridgeClient) into proof that the active is gone: the active's VM crashing,
its host failing, or its watchdog resetting it, each in the active's epoch, reaches
``on_active_gone`` promptly; the same crash is ignored when the standby's view has a newer
grant (a stale report), and a watchdog that only reports (action NONE) proves nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.clock import SystemClock
from vnfha.config import Config
from vnfha.nfvi.agent import NfviAgent
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import BridgeEvent, EventKind, WatchdogAction
from vnfha.roles.policy import ActiveInfo
from vnfha.testing.waiting import until
from vnfha.wiring import agent_settings

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]
CALL_S = 5.0
EPOCH = 7


@dataclass
class ActiveView:
    active: tuple[object, ActiveInfo] | None


@dataclass
class Standby:
    """Member b's standby side as the agent sees it: it sees ``a`` active in ``epoch``."""

    epoch: int = EPOCH
    gone: list[tuple[int, str, float]] = field(default_factory=list)

    @property
    def state(self) -> ActiveView:
        return ActiveView((object(), ActiveInfo("a", 1, self.epoch)))

    def on_active_gone(self, epoch: int, evidence: str) -> None:
        self.gone.append((epoch, evidence, time.monotonic()))


@dataclass
class Env:
    sim: SimDriver
    bridge: BridgeServer
    active: BridgeClient
    standby: Standby
    agent: NfviAgent


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    sim = SimDriver(hosts=["h1", "h2"])
    try:
        await sim.launch("vm-a", group="vfw", member="a", host="h1", argv=SLEEPER)
        await sim.launch("vm-b", group="vfw", member="b", host="h2", argv=SLEEPER)
        async with BridgeServer(sim) as bridge, \
                BridgeClient(bridge.address, group="vfw", member="a", timeout_s=CALL_S) as a, \
                BridgeClient(bridge.address, group="vfw", member="b", timeout_s=CALL_S) as b:
            agent = NfviAgent(b, agent_settings(Config(group="vfw", member="b")),
                              SystemClock(), on_maintenance=lambda e: None)
            standby = Standby()
            agent.bind_standby(standby)  # type: ignore[arg-type]
            await agent.start()
            try:
                await until(lambda: bridge.core.event_watchers >= 1, CALL_S, "b's event watch")
                yield Env(sim, bridge, a, standby, agent)
            finally:
                await agent.close()
    finally:
        await sim.close()


async def first(events: AsyncIterator[BridgeEvent], kind: EventKind) -> BridgeEvent:
    async for event in events:
        if event.kind is kind:
            return event
    raise AssertionError(f"stream ended before {kind}")


async def test_the_active_vm_crashing_is_proof_at_once(env: Env) -> None:
    await env.active.arm_watchdog(30.0, WatchdogAction.RESET, epoch=EPOCH)  # a is active
    await env.active.kick(EPOCH)
    pid = env.sim.pid("vm-a")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    crashed = time.monotonic()
    await until(lambda: env.standby.gone, 5, "the proof")
    epoch, evidence, at = env.standby.gone[0]
    assert (epoch, evidence) == (EPOCH, "the NFVI bridge reports VM_CRASHED for vm-a (epoch 7)")
    assert at - crashed < 1.0, at - crashed  # no suspicion, no fence: the bridge's report


async def test_a_crash_of_an_earlier_grant_is_ignored(env: Env) -> None:
    await env.active.arm_watchdog(30.0, WatchdogAction.RESET, epoch=EPOCH)
    env.standby.epoch = EPOCH + 2  # b has seen a newer grant (a granted again): stale report
    async with BridgeClient(env.bridge.address, group="vfw", member="b",
                            timeout_s=CALL_S) as watcher:
        seen = asyncio.ensure_future(first(watcher.watch_events(), EventKind.VM_CRASHED))
        await until(lambda: env.bridge.core.event_watchers >= 2, CALL_S, "the second watch")
        pid = env.sim.pid("vm-a")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        event = await asyncio.wait_for(seen, 5)
    assert (event.member, event.epoch) == ("a", EPOCH)
    await asyncio.sleep(0.2)  # the agent had it too
    assert env.standby.gone == []


async def test_the_active_host_failing_is_proof_by_its_vm_crash(env: Env) -> None:
    """The simulator knows a failed host's instances died: it follows HOST_DOWN with a
    VM_CRASHED for each, and that, not the HOST_DOWN, is the proof."""
    await env.active.arm_watchdog(30.0, WatchdogAction.RESET, epoch=EPOCH)
    await env.sim.fail_host("h1")
    await until(lambda: env.standby.gone, 5, "the proof")
    evidence = {e for _, e, _ in env.standby.gone}
    assert evidence == {"the NFVI bridge reports VM_CRASHED for vm-a (epoch 7)"}
    assert {epoch for epoch, _, _ in env.standby.gone} == {EPOCH}


@pytest.mark.parametrize(("action", "proof"), [(WatchdogAction.RESET, True),
                                               (WatchdogAction.NONE, False)])
async def test_a_watchdog_reset_is_proof_a_mere_report_is_not(
        env: Env, action: WatchdogAction, proof: bool) -> None:
    async with BridgeClient(env.bridge.address, group="vfw", member="b",
                            timeout_s=CALL_S) as watcher:
        seen = asyncio.ensure_future(first(watcher.watch_events(), EventKind.WATCHDOG_FIRED))
        await until(lambda: env.bridge.core.event_watchers >= 2, CALL_S, "the second watch")
        await env.active.arm_watchdog(0.3, action, epoch=EPOCH)  # and never kicked
        event = await asyncio.wait_for(seen, 5)
    assert event.epoch == (EPOCH if proof else 0)
    if proof:
        await until(lambda: env.standby.gone, 5, "the proof")
        assert env.standby.gone[0][:2] == (
            EPOCH, "the NFVI bridge reports WATCHDOG_FIRED for vm-a (epoch 7)")
    else:
        await asyncio.sleep(0.2)
        assert env.standby.gone == []
