"""Self-healing (issue 17, items 2 and 3) with a real bridge (sim driver) and a real 3-member
etcd. The standby ``b`` runs in a process the sim driver launched (its "VM", ``vm-b``); the
active ``a`` runs in this process beside a sleeper VM of its own. Nobody but vnfha acts after
the kill: the active notices ``b`` gone, asks the bridge to repair ``vm-b`` (a REBOOT ticket
keyed ``repair/...``), the sim relaunches the process, and ``b`` rejoins as a standby, counts
its death on its ladder and catches up. Killed three times, ``b`` climbs to its VM reboot."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vnfha import Ack, Config, Member, Role
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.health.counters import read_life
from vnfha.health.incarnation import Life
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import RepairAction, RepairState, RepairTicket
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.waiting import until

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(120)]

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
REPAIR_AFTER_S = 2.0
"""Short for the test; it must exceed the time a member process needs to start and join (about
2 s here), or a second repair could hit a member still starting."""
LEASE_TTL_S = 2


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[tuple[SimDriver, BridgeServer]]:
    sim = SimDriver(log_dir=tmp_path)
    async with BridgeServer(sim) as server:
        try:
            yield sim, server
        finally:
            await sim.close()


async def start_pair(etcd: EtcdCluster, group: str, sim: SimDriver, server: BridgeServer,
                     *ladder: str) -> Member:
    """Launch ``vm-a`` (a sleeper, for the in-process active ``a``) and ``vm-b`` (the member
    process ``b``, with ``ladder`` settings); return ``a``, active, once ``b`` is its standby."""
    await sim.launch("vm-a", group=group, member="a", host="host-a", argv=SLEEPER)
    a = Member(Config(group=group, member="a", etcd_endpoints=etcd.endpoints, priority=200,
                      lease_ttl_s=LEASE_TTL_S, bridge_endpoint=server.address,
                      repair_after_s=REPAIR_AFTER_S))
    await a.start()
    await a.wait_for_role(Role.ACTIVE, 15)
    argv = [sys.executable, "-m", "vnfha.testing.member_proc", "--group", group, "--member",
            "b", "--etcd", ",".join(etcd.endpoints), "--lease-ttl-s", str(LEASE_TTL_S),
            "--status-interval-s", "0.2", "--quiet-acts",
            "--set", f"bridge_endpoint={server.address}",
            "--set", f"repair_after_s={REPAIR_AFTER_S}", *ladder]
    await sim.launch("vm-b", group=group, member="b", host="host-b", argv=argv)
    await until(lambda: standby_in_sync(a), 20, "b in sync as a's standby")
    return a


def standby_in_sync(a: Member) -> bool:
    """``b`` is a's in-sync standby and has acknowledged everything a wrote."""
    primary = a.checkpoint.primary
    record = a.group_state.members.get("b")
    return (primary is not None and record is not None and record[0].role == "standby"
            and "b" in primary.in_sync and primary.lag().get("b") is not None
            and primary.lag()["b"].entries == 0)


def last_position(log: Path, pid: int) -> tuple[int, int] | None:
    """The replica position ``b``'s process ``pid`` last printed (``status`` events)."""
    found = None
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == "status" and event.get("pid") == pid:
                found = tuple(event["position"])
    return found  # type: ignore[return-value]


async def tickets(server: BridgeServer, group: str) -> list[RepairTicket]:
    async with BridgeClient.operator(server.address, timeout_s=5) as ops:
        return list((await ops.list_tickets(group=group)).tickets)


async def life_of(a: Member, group: str) -> Life | None:
    return await read_life(a.store, a.config.key_prefix, group, "b")


async def kill_b(sim: SimDriver) -> tuple[int, float]:
    pid = sim.pid("vm-b")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    return pid, time.monotonic()


async def test_a_killed_standby_is_repaired_and_back_in_sync(
        etcd3: EtcdCluster, group: str, bridge: tuple[SimDriver, BridgeServer],
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim, server = bridge
    a = await start_pair(etcd3, group, sim, server)
    try:
        for i in range(50):
            await a.checkpoint.put("s", f"k{i}", b"before the kill", ack=Ack.ONE)
        first = await life_of(a, group)
        assert first is not None and first.state == "running"
        old_pid, killed = await kill_b(sim)
        for i in range(50, 100):  # written while b is gone: it must catch up with them
            await a.checkpoint.put("s", f"k{i}", b"while b is gone", ack=Ack.NONE)
        await until(lambda: a.group_state.members.get("b") is None, 10, "b's record expired")
        gone = time.monotonic()
        await until(lambda: standby_in_sync(a), 30, "b repaired and back in sync")
        synced = time.monotonic()
        new_pid = sim.pid("vm-b")
        assert new_pid not in (None, old_pid)
        found = [t for t in await tickets(server, group) if t.member == "b"]
        assert len(found) == 1, found  # one repair, no second one
        ticket = found[0]
        assert ticket.idempotency_key == f"repair/{group}/b/{first.incarnation}/1"
        assert (ticket.action, ticket.state, ticket.owner_name, ticket.epoch) == (
            RepairAction.REBOOT, RepairState.SUCCEEDED, "nfvi:sim", a.epoch)
        log = sim.log_path("vm-b")
        assert log is not None
        await until(lambda: last_position(log, new_pid) == a.checkpoint.position, 10,
                    "b's applied position is a's")
        life = await life_of(a, group)
        assert life is not None and life.incarnation == first.incarnation + 1
        assert life.state == "running"
        with capsys.disabled():
            print(f"\nSIGKILL to back in sync: {synced - killed:.2f} s (record expired after "
                  f"{gone - killed:.2f} s, repair_after_s {REPAIR_AFTER_S:g}, lease TTL "
                  f"{LEASE_TTL_S} s)")
    finally:
        await a.stop()


async def test_a_standby_killed_three_times_climbs_to_a_vm_reboot(
        etcd3: EtcdCluster, group: str, bridge: tuple[SimDriver, BridgeServer]) -> None:
    """b's ladder allows 2 restarts (within 300 s): its first two deaths are those restarts;
    the third finds them used up, failover skipped (b is a standby), and takes the next rung,
    reboot-vm: b asks the bridge to reboot its own VM. That reboot ends the incarnation by the
    repair b asked for, which is not counted again."""
    sim, server = bridge
    a = await start_pair(etcd3, group, sim, server, "--set", "ladder_restart_max_count=2",
                         "--set", "ladder_restart_probation_s=300")
    try:
        start = await life_of(a, group)
        assert start is not None
        for death in range(1, 4):
            await kill_b(sim)
            await until(lambda: a.group_state.members.get("b") is None, 10, "b gone")

            async def restarted(n: int = start.incarnation + death) -> bool:
                life = await life_of(a, group)
                return life is not None and life.incarnation >= n

            deadline = time.monotonic() + 30
            while not await restarted():
                assert time.monotonic() < deadline, f"b never restarted after death {death}"
                await asyncio.sleep(0.1)
        # the third death's decision: a REBOOT of vm-b asked by b itself, on its ladder's key
        deadline = time.monotonic() + 30
        while True:
            mine = [t for t in await tickets(server, group)
                    if t.idempotency_key.startswith(f"{group}/b/")]
            if mine and mine[0].state.terminal:
                break
            assert time.monotonic() < deadline, await tickets(server, group)
            await asyncio.sleep(0.1)
        (reboot,) = mine
        assert "/reboot-vm/1/" in reboot.idempotency_key
        assert (reboot.action, reboot.state) == (RepairAction.REBOOT, RepairState.SUCCEEDED)
        repairs = [t for t in await tickets(server, group)
                   if t.idempotency_key.startswith(f"repair/{group}/b/")]
        assert len(repairs) == 3  # one per death, asked by the active
        await until(lambda: standby_in_sync(a), 30, "b back in sync after its reboot")
        life = await life_of(a, group)
        assert life is not None and life.incarnation == start.incarnation + 4
        # the reboot's end was b's own repair: not a fourth death, so no further climb
        await asyncio.sleep(1.0)
        assert len([t for t in await tickets(server, group) if t.member == "b"]) == 4
    finally:
        await a.stop()
