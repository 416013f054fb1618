"""The NFVI bridge with the libvirt driver over real QEMU domains (TCG): two private libvirtds
stand in for two hosts (``host-a``, ``host-b``; one kernel and one CPU pool, honestly), real
members on a real 3-member etcd, and the bridge's gRPC server on 127.0.0.1.

The members run beside their domains, not in them (a guest here is a busybox init): a domain
is the member's VM as the bridge sees it (vnfha's metadata names the group and member), so
what the hypervisor does to the domain is real, and what it would do to the member inside is
stood in for by SIGSTOP.

- A hung active is fenced through the bridge for its standby: the active's domain is destroyed
  (observed stopped through libvirt, its QEMU process gone) and the standby takes over.
- A guest that stops kicking its i6300esb is reset by QEMU; the bridge publishes libvirt's
  watchdog event as WATCHDOG_FIRED and it reaches the other member's WatchEvents stream. When
  the guest is the active's, the event carries the active's epoch (the reset halted it) and
  the standby takes over on it as proof, without waiting for anything else.
- Placement is read from the real domains: anti-affinity holds while each member's domain is
  on its own host, and CheckPolicy names the host once both are on one.
- ``vnfha bridge serve --driver libvirt``, one ``--libvirt-host`` per daemon, as an operator
  runs it: it serves the domains, fences one, and stops on SIGTERM.
- Repairs on real domains: a REBOOT resets the domain in place, an EVACUATE restarts it on the
  other host; each ticket ends SUCCEEDED.
- The bridge's own watchdog on real domains: RESET resets the domain in place, PAUSE pauses
  it, and each WATCHDOG_FIRED reaches the group's stream with the armed epoch.

Skipped without libvirt's binding, libvirtd or QEMU, unless ``VNFHA_REQUIRE_LIBVIRT=1`` /
``VNFHA_REQUIRE_QEMU=1`` (CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "component"))
from driver_rigs import require_libvirt, require_qemu
from nfvi_rig import wait_active

from vnfha import Config, Member, Role
from vnfha.member import MemberEvent, RoleChanged
from vnfha.nfvi.model import EventKind, PlacementPolicy
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.waiting import until

BOOT_S = 90.0  # TCG on a loaded 2-core machine: typically 4-15 s
HOSTS = ("host-a", "host-b")

# the active, in a process of its own so that it can hang (SIGSTOP)
ACTIVE_SCRIPT = """
import asyncio, sys
import vnfha
async def main():
    group, member, etcd, bridge = sys.argv[1:5]
    cfg = vnfha.Config(group=group, member=member, etcd_endpoints=tuple(etcd.split(",")),
                       bridge_endpoint=bridge, priority=200)
    async with vnfha.Member(cfg) as m:
        while True:
            if m.is_active():
                await m.checkpoint.put("s", "k", str(m.epoch).encode())
            await asyncio.sleep(0.01)
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def daemons() -> Iterator[dict[str, Any]]:
    """One private libvirtd per host, and the cached guest copied where host-b's QEMUs can
    read it."""
    require_libvirt()
    require_qemu()
    from vnfha.testing.libvirtd import Libvirtd  # noqa: PLC0415
    from vnfha.testing.qemu_guest import build_guest  # noqa: PLC0415

    started = {host: Libvirtd(host) for host in HOSTS}
    try:
        for daemon in started.values():
            daemon.start()
        started["guest"] = build_guest().copy_to(started["host-b"].shared_dir("guest"))
        started["host-b"].shared_dir("guest")  # chown the copies
        yield started
    finally:
        for host in HOSTS:
            started[host].stop()


class Rig:
    """Domains on the daemons, a bridge over them, and libvirt connections of the test's own
    (to look at the domains without the driver)."""

    def __init__(self, daemons: dict[str, Any], server: Any, driver: Any) -> None:
        import libvirt  # noqa: PLC0415

        self.daemons, self.server, self.driver = daemons, server, driver
        self.conns = {host: libvirt.open(daemons[host].uri) for host in HOSTS}

    def start(self, name: str, group: str, member: str, host: str, *, boot: bool = False
              ) -> Path:
        """Define and start domain ``name`` for ``group``/``member`` on ``host`` (booting the
        guest when ``boot``, else idle firmware); returns its serial socket."""
        from vnfha.testing.qemu_guest import domain_xml  # noqa: PLC0415

        serial = self.daemons[host].shared_dir("serial") / f"{name}.sock"
        guest = self.daemons["guest"] if boot else None
        domain = self.conns[host].defineXML(domain_xml(name, guest, serial=serial, group=group,
                                                       member=member, memory_mib=128))
        domain.create()
        return serial

    def qemu_pid(self, host: str, name: str) -> int:
        return int((self.daemons[host].root / "run/libvirt/qemu/run" / f"{name}.pid")
                   .read_text())

    def state(self, host: str, name: str) -> int:
        return int(self.conns[host].lookupByName(name).state()[0])

    def close(self) -> None:
        """Destroy and undefine every domain of both hosts (a migration moves one)."""
        for conn in self.conns.values():
            for domain in conn.listAllDomains(0):
                with contextlib.suppress(Exception):
                    if domain.isActive():
                        domain.destroy()
                with contextlib.suppress(Exception):
                    domain.undefine()
            conn.close()


@pytest.fixture
async def rig(daemons: dict[str, Any]) -> AsyncIterator[Rig]:
    from vnfha.bridge.drivers.libvirt_driver import LibvirtDriver  # noqa: PLC0415
    from vnfha.bridge.server import BridgeServer  # noqa: PLC0415

    driver = await LibvirtDriver.open({host: daemons[host].uri for host in HOSTS})
    try:
        async with BridgeServer(driver) as server:
            made = Rig(daemons, server, driver)
            try:
                yield made
            finally:
                made.close()
    finally:
        await driver.close()


def config(group: str, member: str, etcd: EtcdCluster, rig: Rig, **extra: Any) -> Config:
    return Config(group=group, member=member, etcd_endpoints=etcd.endpoints,
                  bridge_endpoint=rig.server.address, **extra)


def roles_of(member: Member) -> list[RoleChanged]:
    seen: list[RoleChanged] = []

    def record(event: MemberEvent) -> None:
        if isinstance(event, RoleChanged):
            seen.append(event)
    member.add_listener(record)
    return seen


async def test_a_standby_fences_the_real_domain_of_a_hung_active(
        etcd3: EtcdCluster, group: str, rig: Rig) -> None:
    import libvirt  # noqa: PLC0415

    rig.start("vm-a", group, "a", "host-a")
    rig.start("vm-b", group, "b", "host-b")
    qemu_a = rig.qemu_pid("host-a", "vm-a")
    active = subprocess.Popen([sys.executable, "-c", ACTIVE_SCRIPT, group, "a",
                               ",".join(etcd3.endpoints), rig.server.address])
    try:
        await wait_active(etcd3, group, "a", 30)
        async with Member(config(group, "b", etcd3, rig)) as b:
            roles = roles_of(b)
            await b.wait_for_role(Role.STANDBY, 30)
            await until(lambda: b.checkpoint.get("s", "k") is not None, 30, "replication")
            first_epoch = b.epoch
            os.kill(active.pid, signal.SIGSTOP)  # the hang: nothing refuses a connection
            hung = time.monotonic()
            await b.wait_for_role(Role.ACTIVE, 15)
            took = time.monotonic() - hung
            fenced_state = rig.state("host-a", "vm-a")
            print(f"\nhung active -> standby active, through a fence of a real domain: "
                  f"{took * 1000:.0f} ms")
            assert b.epoch > first_epoch
            assert b.nfvi is not None and b.nfvi.fences == 1
            assert b.monitor is not None and not b.monitor.fence_failed
            assert [r.epoch for r in roles if r.role is Role.ACTIVE] == [b.epoch]
            # confirmed by a pause (the power-off follows): the domain is paused, being
            # destroyed (SHUTDOWN) or off, then off, as libvirt says and as the host's process
            # table says
            assert fenced_state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_SHUTDOWN,
                                    libvirt.VIR_DOMAIN_SHUTOFF), fenced_state
            await until(lambda: rig.state("host-a", "vm-a") == libvirt.VIR_DOMAIN_SHUTOFF, 10,
                        "vm-a powered off")
            assert not Path(f"/proc/{qemu_a}").exists()
            assert rig.state("host-b", "vm-b") == libvirt.VIR_DOMAIN_RUNNING  # b's own
            assert took < 5.0, took  # the lease path alone would take about 1.8 s; generous
    finally:
        active.kill()
        active.wait()


async def test_a_guest_reset_by_its_watchdog_reaches_the_groups_stream_and_is_proof(
        etcd3: EtcdCluster, group: str, rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    from vnfha.testing.qemu_guest import serial_command  # noqa: PLC0415

    rig.start("vm-a", group, "a", "host-a")
    serial = rig.start("vm-b", group, "b", "host-b", boot=True)
    await asyncio.to_thread(serial_command, serial, "ping", "pong", BOOT_S, resend_s=0.5)
    async with Member(config(group, "b", etcd3, rig, priority=200)) as b:
        await b.wait_for_role(Role.ACTIVE, 30)
        async with Member(config(group, "a", etcd3, rig)) as a:
            roles = roles_of(a)
            await a.wait_for_role(Role.STANDBY, 30)
            assert a.nfvi is not None
            # b armed the bridge's watchdog on promotion: the bridge knows its epoch
            await until(lambda: b.nfvi is not None and b.nfvi.armed_epoch == b.epoch, 15,
                        "b's watchdog armed")
            b_epoch = b.epoch
            await asyncio.to_thread(serial_command, serial, "stop-kick", "kicking stopped", 10)
            stopped = time.monotonic()

            def fired() -> Any:
                return next((e for e in a.nfvi.received  # type: ignore[union-attr]
                             if e.kind is EventKind.WATCHDOG_FIRED), None)
            await until(lambda: fired() is not None, 30, "WATCHDOG_FIRED on a's stream")
            event = fired()
            print(f"\nstop-kick -> WATCHDOG_FIRED on a standby's WatchEvents stream: "
                  f"{time.monotonic() - stopped:.1f} s")
            assert (event.member, event.instance, event.host) == ("b", "vm-b", "host-b")
            assert event.detail == "hardware watchdog expired: action reset"
            assert event.epoch == b_epoch  # the reset halted b's incarnation
            # a takes over on that proof (b's process, beside its domain, did not hang)
            await a.wait_for_role(Role.ACTIVE, 10)
            assert [r.epoch for r in roles if r.role is Role.ACTIVE] == [a.epoch]
            proof = (f"a: active b (epoch {b_epoch}) is gone: the NFVI bridge reports "
                     f"WATCHDOG_FIRED for vm-b (epoch {b_epoch})")
            assert proof in caplog.messages, caplog.messages
            assert a.nfvi.fences == 0  # no fence was needed
            await until(lambda: not b.is_active(), 10, "b deposed")


async def test_placement_is_read_from_the_real_domains(
        group: str, rig: Rig) -> None:
    from vnfha.nfvi.client import BridgeClient  # noqa: PLC0415

    rig.start("vm-a", group, "a", "host-a")
    rig.start("vm-b", group, "b", "host-b")
    async with BridgeClient(rig.server.address, group=group, member="a",
                            timeout_s=10.0) as client:
        view = await client.placement()
        assert (view.host_of("a"), view.host_of("b")) == ("host-a", "host-b")
        report = await client.check_policy(PlacementPolicy.ANTI_AFFINITY)
        assert report.satisfied, report
        await rig.driver.migrate("vm-b", "host-a")  # restarted on host-a's libvirtd
        view = await client.placement()
        assert (view.host_of("a"), view.host_of("b")) == ("host-a", "host-a")
        report = await client.check_policy(PlacementPolicy.ANTI_AFFINITY)
        assert not report.satisfied
        (violation,) = report.violations
        assert (violation.host, violation.members) == ("host-a", ("a", "b"))


async def test_vnfha_bridge_serve_runs_against_private_libvirtds(
        group: str, daemons: dict[str, Any]) -> None:
    """The operator's command of docs/nfvi-libvirt.md, one ``--libvirt-host`` per host: it
    serves the real domains, fences one, and stops on SIGTERM leaving the domains to
    libvirt."""
    import libvirt  # noqa: PLC0415

    from vnfha.nfvi.client import BridgeClient  # noqa: PLC0415
    from vnfha.nfvi.model import FenceMode  # noqa: PLC0415

    rig = Rig(daemons, None, None)
    try:
        rig.start("vm-a", group, "a", "host-a")
        rig.start("vm-b", group, "b", "host-b")
        proc = subprocess.Popen(
            [sys.executable, "-m", "vnfha", "bridge", "serve", "--driver", "libvirt",
             "--listen", "127.0.0.1:0",
             *(f"--libvirt-host={host}={daemons[host].uri}" for host in HOSTS)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            line = await asyncio.to_thread(proc.stdout.readline)
            assert "(driver libvirt," in line, (line, proc.stderr and proc.stderr.read())
            address = line.split("serving on ", 1)[1].split()[0]
            async with BridgeClient(address, group=group, member="b", timeout_s=10) as b:
                view = await b.placement()
                assert [(m.member, m.host) for m in view.members] == [("a", "host-a"),
                                                                      ("b", "host-b")]
                fenced = await b.fence("a", 1, FenceMode.KILL, "silent")
                assert (fenced.instance, fenced.host) == ("vm-a", "host-a")
            await until(lambda: rig.state("host-a", "vm-a") == libvirt.VIR_DOMAIN_SHUTOFF,
                        10, "vm-a powered off")
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 30) == 0
            assert rig.state("host-b", "vm-b") == libvirt.VIR_DOMAIN_RUNNING  # left running
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)
    finally:
        rig.close()


async def test_repairs_reboot_and_evacuate_real_domains(group: str, rig: Rig) -> None:
    """The bridge's repairs on real domains: a REBOOT resets the domain in place (its QEMU
    process stays, the guest restarts), an EVACUATE restarts it on the other host (a new QEMU
    there, none left on the first); each ticket ends SUCCEEDED."""
    import libvirt  # noqa: PLC0415

    from vnfha.nfvi.client import BridgeClient  # noqa: PLC0415
    from vnfha.nfvi.model import RepairAction, RepairState  # noqa: PLC0415

    rig.start("vm-a", group, "a", "host-a")
    rig.start("vm-b", group, "b", "host-b")
    qemu_a = rig.qemu_pid("host-a", "vm-a")

    async def repair(client: BridgeClient, key: str, action: RepairAction) -> Any:
        ticket = await client.escalate(key, "test", action, 1, target_member="a")
        seen = [ticket]
        async for update in client.watch_repair(ticket.ticket_id, timeout_s=60):
            seen.append(update)
        return seen[-1]

    async with BridgeClient(rig.server.address, group=group, member="b",
                            timeout_s=10.0) as b:
        rebooted = await repair(b, "reboot-1", RepairAction.REBOOT)
        assert (rebooted.state, rebooted.action) == (RepairState.SUCCEEDED,
                                                      RepairAction.REBOOT), rebooted
        assert rig.state("host-a", "vm-a") == libvirt.VIR_DOMAIN_RUNNING
        assert rig.qemu_pid("host-a", "vm-a") == qemu_a  # reset in place
        evacuated = await repair(b, "evacuate-1", RepairAction.EVACUATE)
        assert (evacuated.state, evacuated.action) == (RepairState.SUCCEEDED,
                                                        RepairAction.EVACUATE), evacuated
        assert rig.state("host-b", "vm-a") == libvirt.VIR_DOMAIN_RUNNING
        assert not Path(f"/proc/{qemu_a}").exists()
        assert (await b.placement()).host_of("a") == "host-b"


async def test_the_bridges_own_watchdog_acts_on_real_domains(group: str, rig: Rig) -> None:
    """The bridge's watchdog (Arm, no Kick) on real domains: RESET resets the domain in place,
    PAUSE pauses it; each WATCHDOG_FIRED reaches the group's stream with the armed epoch (the
    action was done), next to the hardware watchdog's of docs/nfvi-libvirt.md."""
    import libvirt  # noqa: PLC0415

    from vnfha.nfvi.client import BridgeClient  # noqa: PLC0415
    from vnfha.nfvi.model import WatchdogAction  # noqa: PLC0415

    rig.start("vm-a", group, "a", "host-a")
    rig.start("vm-b", group, "b", "host-b")
    qemu_a = rig.qemu_pid("host-a", "vm-a")
    async with BridgeClient(rig.server.address, group=group, member="a", timeout_s=10) as a, \
            BridgeClient(rig.server.address, group=group, member="b", timeout_s=10) as b:
        events = b.watch_events(timeout_s=60)

        async def fired() -> Any:
            async for event in events:
                if event.kind is EventKind.WATCHDOG_FIRED:
                    return event
            raise AssertionError("the stream ended")

        first = asyncio.ensure_future(fired())  # the stream opens as it is read
        await until(lambda: rig.server.core.event_watchers == 1, 10, "b's watch open")
        await a.arm_watchdog(0.5, WatchdogAction.RESET, 3)
        reset = await asyncio.wait_for(first, 30)
        assert (reset.member, reset.instance, reset.epoch) == ("a", "vm-a", 3), reset
        assert reset.detail.startswith("reset after 0.5 s without a kick"), reset.detail
        assert rig.state("host-a", "vm-a") == libvirt.VIR_DOMAIN_RUNNING
        assert rig.qemu_pid("host-a", "vm-a") == qemu_a  # reset in place, not restarted

        await a.arm_watchdog(0.5, WatchdogAction.PAUSE, 3)  # one-shot: armed again
        paused = await asyncio.wait_for(fired(), 30)
        assert (paused.instance, paused.epoch) == ("vm-a", 3), paused
        assert rig.state("host-a", "vm-a") == libvirt.VIR_DOMAIN_PAUSED
        await events.aclose()  # type: ignore[attr-defined]
