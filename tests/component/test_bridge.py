"""Every bridge RPC through the SDK client against a real server on 127.0.0.1:0 over the sim
driver with real processes: watchdogs, placement, fencing, escalation and repair, events."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from vnfha import grpc_health
from vnfha.bridge.drivers.sim import SimDriver, proc_state
from vnfha.bridge.server import BridgeServer
from vnfha.errors import BridgeRequestError, RepairInProgress, StaleEpochRejected
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import (
    BridgeEvent,
    EventKind,
    FenceMode,
    InstanceState,
    PlacementPolicy,
    RepairAction,
    RepairOwner,
    RepairState,
    WatchdogAction,
)
from vnfha.nfvi.wire import SERVICES

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]
DEADLINE_S = 10.0
CALL_S = 5.0


class GatedSim(SimDriver):
    """A sim whose resets wait for the test to open ``gate`` (to hold a repair in progress)."""

    def __init__(self) -> None:
        super().__init__(hosts=["h1", "h2", "h3", "h4"])
        self.gate = asyncio.Event()
        self.gate.set()

    async def reset(self, name: str) -> None:
        await self.gate.wait()
        await super().reset(name)


@dataclass
class Env:
    sim: GatedSim
    bridge: BridgeServer

    def client(self, member: str, group: str = "vfw") -> BridgeClient:
        return BridgeClient(self.bridge.address, group=group, member=member, timeout_s=CALL_S)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    sim = GatedSim()
    try:
        for name, group, host in (("vfw-a", "vfw", "h1"), ("vfw-b", "vfw", "h2"),
                                  ("dns-a", "dns", "h3")):
            await sim.launch(f"vm-{name}", group=group, member=name, host=host, argv=SLEEPER)
        async with BridgeServer(sim) as bridge:
            yield Env(sim, bridge)
    finally:
        await sim.close()


async def first(events: AsyncIterator[BridgeEvent], kind: EventKind) -> BridgeEvent:
    async def find() -> BridgeEvent:
        async for event in events:
            if event.kind is kind:
                return event
        raise AssertionError(f"stream ended before {kind}")
    return await asyncio.wait_for(find(), DEADLINE_S)


async def test_health_serves_every_service(env: Env) -> None:
    import grpc.aio  # noqa: PLC0415

    async with grpc.aio.insecure_channel(env.bridge.address) as channel:
        for service in ("", *SERVICES):
            status = await grpc_health.probe(channel, service, timeout_s=CALL_S)
            assert status is grpc_health.ServingStatus.SERVING, service


async def test_arm_kick_disarm(env: Env) -> None:
    async with env.client("vfw-a") as c:
        armed = await c.arm_watchdog(30.0, WatchdogAction.RESET, epoch=5)
        assert armed.armed and armed.instance == "vm-vfw-a"
        assert armed.timeout_s == 30.0 and armed.action is WatchdogAction.RESET
        kicked = await c.kick(5)
        assert kicked.armed and kicked.remaining_s is not None and kicked.remaining_s > 29
        assert not (await c.disarm(5)).armed
        assert not (await c.disarm(5)).armed
        with pytest.raises(BridgeRequestError) as e:
            await c.kick(5)
        assert e.value.code == "FAILED_PRECONDITION" and e.value.reason == "not-armed"
        assert "'vm-vfw-a'" in str(e.value)


async def test_watchdog_resets_a_process_that_stopped_kicking(env: Env) -> None:
    """The sleeper is kicked on its behalf while it runs; once SIGSTOPped the kicks stop and
    the bridge resets it: a new pid, RUNNING, and a WATCHDOG_FIRED event."""
    sim = env.sim
    old = sim.pid("vm-vfw-a")
    assert old is not None
    async with env.client("vfw-a") as c:
        events = c.watch_events()
        first_event = asyncio.ensure_future(first(events, EventKind.WATCHDOG_FIRED))
        await asyncio.sleep(0.1)  # the watch is open before the watchdog can fire
        await c.arm_watchdog(0.3, WatchdogAction.RESET, epoch=1)

        async def kick_while_running() -> int:
            kicks = 0
            while proc_state(old) not in ("T", "t"):
                await c.kick(1)
                kicks += 1
                await asyncio.sleep(0.05)
            return kicks

        kicker = asyncio.ensure_future(kick_while_running())
        await asyncio.sleep(0.6)  # twice the timeout: kicks keep it alive
        assert sim.pid("vm-vfw-a") == old
        os.kill(old, signal.SIGSTOP)
        assert await asyncio.wait_for(kicker, DEADLINE_S) >= 5
        fired = await first_event
        assert fired.member == "vfw-a" and fired.instance == "vm-vfw-a"
        assert "reset" in fired.detail and "done" in fired.detail
        new = sim.pid("vm-vfw-a")
        assert new is not None and new != old
        assert (await sim.get_instance("vm-vfw-a")).state is InstanceState.RUNNING
        assert proc_state(old) in (None, "Z")
        with pytest.raises(BridgeRequestError, match="not armed"):
            await c.kick(1)  # one-shot: the reset instance must arm again


async def test_placement_and_policies(env: Env) -> None:
    async with env.client("vfw-b") as c:
        view = await c.placement()
        assert [(m.member, m.host, m.state) for m in view.members] == [
            ("vfw-a", "h1", InstanceState.RUNNING), ("vfw-b", "h2", InstanceState.RUNNING)]
        assert [h.host for h in view.hosts] == ["h1", "h2", "h3", "h4"]
        assert all(h.up for h in view.hosts)
        assert (await c.check_policy(PlacementPolicy.ANTI_AFFINITY)).satisfied
        report = await c.check_policy(PlacementPolicy.SOFT_AFFINITY)
        assert not report.satisfied
        assert [(v.host, v.members) for v in report.violations] == [("h2", ("vfw-b",))]
        await env.sim.migrate("vm-vfw-b", "h1")
        report = await c.check_policy(PlacementPolicy.ANTI_AFFINITY)
        assert [(v.host, v.members) for v in report.violations] == [("h1", ("vfw-a", "vfw-b"))]
        await env.sim.fail_host("h4")
        hosts = {h.host: h.up for h in (await c.placement()).hosts}
        assert hosts["h4"] is False


async def test_fence_stop_then_kill_is_confirmed_and_idempotent(env: Env) -> None:
    pid = env.sim.pid("vm-vfw-a")
    assert pid is not None
    async with env.client("vfw-a") as active, env.client("vfw-b") as standby:
        await active.arm_watchdog(30.0, WatchdogAction.RESET, epoch=3)
        stopped = await standby.fence("vfw-a", 3, FenceMode.STOP, "no heartbeat for 300 ms")
        assert (stopped.instance, stopped.host) == ("vm-vfw-a", "h1")
        assert stopped.applied is FenceMode.STOP and stopped.state is InstanceState.PAUSED
        assert proc_state(pid) in ("T", "t")
        again = await standby.fence("vfw-a", 3, FenceMode.STOP, "retry")
        assert again.applied is None and again.state is InstanceState.PAUSED
        killed = await standby.fence("vfw-a", 3, FenceMode.KILL, "make sure")
        assert killed.applied is FenceMode.KILL and killed.state is InstanceState.STOPPED
        assert proc_state(pid) in (None, "Z")
        # the fenced instance's watchdog was disarmed: nothing restarts it behind our back
        await env.bridge.core.close()
        assert (await env.sim.get_instance("vm-vfw-a")).state is InstanceState.STOPPED


async def test_fence_latency_on_loopback(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """About 50 real fences (SIGSTOP confirmed through /proc), each of a running instance."""
    samples = []
    async with env.client("vfw-b") as standby:
        await standby.placement()  # connect first: the channel set-up is not a fence
        for _ in range(50):
            await env.sim.resume("vm-vfw-a")
            start = time.perf_counter()
            result = await standby.fence("vfw-a", 1, FenceMode.STOP, "latency")
            samples.append(time.perf_counter() - start)
            assert result.applied is FenceMode.STOP
    median, worst = statistics.median(samples), max(samples)
    with capsys.disabled():
        print(f"\nFence(STOP) over loopback, {len(samples)} calls: median "
              f"{median * 1000:.2f} ms, max {worst * 1000:.2f} ms")
    assert median < 0.1  # the failover budget is 600 ms for detection, fence and takeover


async def test_escalate_reboot_is_idempotent_and_watched_to_the_end(env: Env) -> None:
    old = env.sim.pid("vm-vfw-a")
    async with env.client("vfw-a") as c:
        env.sim.gate.clear()  # hold the reboot in progress
        ticket = await c.escalate("vfw-a-1", "db connection lost", RepairAction.REBOOT, 2,
                                  tried=[RepairAction.RESTART_COMPONENT])
        assert ticket.owner is RepairOwner.NFVI and ticket.owner_name == "nfvi:sim"
        assert ticket.action is RepairAction.REBOOT and ticket.instance == "vm-vfw-a"
        again = await c.escalate("vfw-a-1", "db connection lost", RepairAction.REBOOT, 2)
        assert again.ticket_id == ticket.ticket_id
        with pytest.raises(RepairInProgress) as busy:
            await c.escalate("vfw-a-2", "still lost", RepairAction.EVACUATE, 2)
        assert busy.value.ticket == ticket.ticket_id and busy.value.owner == "nfvi:sim"
        assert ticket.ticket_id in str(busy.value)
        states = []

        async def follow() -> None:
            async for t in c.watch_repair(ticket.ticket_id, timeout_s=DEADLINE_S):
                states.append(t.state)
        watcher = asyncio.ensure_future(follow())
        await asyncio.sleep(0.1)
        env.sim.gate.set()
        await asyncio.wait_for(watcher, DEADLINE_S)
        assert states[-1] is RepairState.SUCCEEDED
        assert RepairState.IN_PROGRESS in states
        assert env.sim.pid("vm-vfw-a") not in (None, old)
        done = await c.escalate("vfw-a-1", "db connection lost", RepairAction.REBOOT, 2)
        assert done.ticket_id == ticket.ticket_id and done.state is RepairState.SUCCEEDED


async def test_evacuation_keeps_anti_affinity_and_a_down_host_turns_reboot_into_evacuate(
        env: Env) -> None:
    await env.sim.fail_host("h1")
    async with env.client("vfw-b") as c:
        ticket = await c.escalate("k1", "host h1 lost", RepairAction.REBOOT, 4,
                                  target_member="vfw-a",
                                  evacuation_policy=PlacementPolicy.ANTI_AFFINITY)
        assert ticket.action is RepairAction.EVACUATE and "h1 is down" in ticket.detail
        final = [t async for t in c.watch_repair(ticket.ticket_id, timeout_s=DEADLINE_S)][-1]
        assert final.state is RepairState.SUCCEEDED, final.detail
        assert final.host == "h4"  # up, not vfw-b's h2, and emptier than h3 (dns-a)
        inst = await env.sim.get_instance("vm-vfw-a")
        assert inst.host == "h4" and inst.state is InstanceState.RUNNING


async def test_a_hard_policy_that_no_host_keeps_refuses_the_evacuation(env: Env) -> None:
    for host in ("h3", "h4"):
        await env.sim.fail_host(host)
    async with env.client("vfw-a") as c:
        with pytest.raises(BridgeRequestError) as refused:
            await c.escalate("k", "broken", RepairAction.EVACUATE, 1,
                             evacuation_policy=PlacementPolicy.ANTI_AFFINITY)
        assert (refused.value.code, refused.value.reason) == ("FAILED_PRECONDITION", "placement")
        assert "no host keeps anti-affinity" in str(refused.value) and "h2" in str(refused.value)
        # the same key again, soft: nothing was opened for it; the soft policy is broken instead
        ticket = await c.escalate("k", "broken", RepairAction.EVACUATE, 1,
                                  evacuation_policy=PlacementPolicy.SOFT_ANTI_AFFINITY)
        final = [t async for t in c.watch_repair(ticket.ticket_id, timeout_s=DEADLINE_S)][-1]
        assert final.state is RepairState.SUCCEEDED and "soft policy broken" in final.detail
        assert "placement breaks soft-anti-affinity" in final.detail  # checked after it


async def test_report_only_is_owned_by_the_vnf(env: Env) -> None:
    async with env.client("vfw-a") as c:
        ticket = await c.escalate("k", "disk slow", RepairAction.NONE, 1)
        assert ticket.owner is RepairOwner.VNF and ticket.owner_name == "vfw-a"
        assert ticket.state is RepairState.RECORDED
        streamed = [t async for t in c.watch_repair(ticket.ticket_id, timeout_s=CALL_S)]
        assert [t.state for t in streamed] == [RepairState.RECORDED]


async def test_events_reach_only_the_groups_they_concern(env: Env) -> None:
    async with env.client("vfw-a") as vfw, env.client("dns-a", group="dns") as dns:
        vfw_events = vfw.watch_events()
        dns_events = dns.watch_events()
        maintenance = asyncio.ensure_future(first(vfw_events, EventKind.MAINTENANCE_PLANNED))
        dns_paused = asyncio.ensure_future(first(dns_events, EventKind.VM_PAUSED))
        await asyncio.sleep(0.1)
        env.sim.plan_maintenance("h1", 1_900_000_000.0)
        await env.sim.pause("vm-vfw-b")
        await env.sim.pause("vm-dns-a")
        event = await maintenance
        assert event.host == "h1" and event.members == ("vfw-a",)
        assert event.deadline_unix_s == 1_900_000_000.0
        paused = await first(vfw_events, EventKind.VM_PAUSED)
        assert (paused.member, paused.instance) == ("vfw-b", "vm-vfw-b")
        assert (await dns_paused).member == "dns-a"
        assert paused.sequence > event.sequence


async def test_stale_epochs_are_refused_naming_both(env: Env) -> None:
    async with env.client("vfw-a") as old, env.client("vfw-b") as new:
        await old.arm_watchdog(30.0, WatchdogAction.RESET, 7)
        await new.arm_watchdog(30.0, WatchdogAction.RESET, 9)
        with pytest.raises(StaleEpochRejected) as e:
            await old.kick(7)
        assert (e.value.epoch, e.value.highest) == (7, 9)
        assert "epoch 7" in str(e.value) and "epoch 9" in str(e.value)
        with pytest.raises(StaleEpochRejected):
            await old.fence("vfw-b", 8, FenceMode.KILL, "too late")
        assert (await env.sim.get_instance("vm-vfw-b")).state is InstanceState.RUNNING
