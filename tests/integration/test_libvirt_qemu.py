"""The libvirt driver on real QEMU guests (TCG) under a private libvirtd: a booted Debian
kernel with a busybox init (:mod:`vnfha.testing.qemu_guest`) that kicks an emulated i6300esb
watchdog, stops on request, and panics on request.

- A guest that stops kicking is reset by QEMU; libvirt's watchdog event reaches the driver's
  subscribers as WATCHDOG_FIRED naming the instance and the host, and the guest runs again.
- A guest that panics (pvpanic) is reported VM_CRASHED and is CRASHED afterwards.
- A fence (``power_off``) of a booted guest returns only once its QEMU process is gone.
- A listing while libvirt destroys a domain (it holds the domain's lock for at least 200 ms)
  answers within the driver's ``list_timeout_s``, from what was last seen of that host.

Skipped without libvirt's binding, libvirtd or QEMU, unless ``VNFHA_REQUIRE_LIBVIRT=1`` /
``VNFHA_REQUIRE_QEMU=1``. The measured times are printed (``-s``) for docs/nfvi-libvirt.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "component"))
from driver_rigs import require_libvirt, require_qemu

from vnfha.bridge.drivers.driver import EventKind, InfraEvent, InstanceState

BOOT_S = 90.0  # TCG on a loaded 2-core machine: typically 6-15 s


@pytest.fixture(scope="module")
def host() -> Iterator[tuple[Any, Any]]:
    """One private libvirtd and the cached guest copied where its QEMUs can read it."""
    require_libvirt()
    require_qemu()
    from vnfha.testing.libvirtd import Libvirtd  # noqa: PLC0415
    from vnfha.testing.qemu_guest import build_guest  # noqa: PLC0415

    with Libvirtd("itest") as daemon:
        guest = build_guest().copy_to(daemon.shared_dir("guest"))
        daemon.shared_dir("guest")  # chown the copies
        yield daemon, guest


@pytest.fixture
async def booted(host: tuple[Any, Any]) -> AsyncIterator[tuple[Any, Path, float]]:
    """``(driver, serial socket, seconds to boot)`` with guest ``vm-w`` (g/m) running its init."""
    libvirt = require_libvirt()
    from vnfha.bridge.drivers.libvirt_driver import LibvirtDriver  # noqa: PLC0415
    from vnfha.testing.qemu_guest import domain_xml, serial_command  # noqa: PLC0415

    daemon, guest = host
    serial = daemon.shared_dir("serial") / "vm-w.sock"
    conn = libvirt.open(daemon.uri)
    domain = conn.defineXML(domain_xml("vm-w", guest, serial=serial, group="g", member="m"))
    driver = await LibvirtDriver.open({"host-a": daemon.uri})
    try:
        began = time.monotonic()
        await driver.start("vm-w")
        await asyncio.to_thread(serial_command, serial, "ping", "pong", BOOT_S, resend_s=0.5)
        boot_s = time.monotonic() - began
        print(f"\nboot (virDomainCreate to the init's first answer): {boot_s:.1f} s")
        yield driver, serial, boot_s
    finally:
        await driver.close()
        if domain.isActive():
            domain.destroy()
        domain.undefine()
        conn.close()


async def next_of(events: AsyncIterator[InfraEvent], kind: EventKind, timeout_s: float
                  ) -> tuple[InfraEvent, float]:
    """The next event of ``kind`` and when it came (monotonic)."""
    async def wait() -> InfraEvent:
        async for event in events:
            if event.kind is kind:
                return event
        raise AssertionError("the event stream ended")
    event = await asyncio.wait_for(wait(), timeout_s)
    return event, time.monotonic()


async def test_a_guest_that_stops_kicking_is_reset_and_watchdog_fired_is_reported(
        booted: tuple[Any, Path, float]) -> None:
    from vnfha.testing.qemu_guest import serial_command  # noqa: PLC0415

    driver, serial, _ = booted
    events = driver.events()
    await asyncio.to_thread(serial_command, serial, "stop-kick", "kicking stopped", 10.0)
    last_kick = time.monotonic()  # the kicker kicks every second: at most 1 s earlier
    event, at = await next_of(events, EventKind.WATCHDOG_FIRED, 60.0)
    print(f"\nstop-kick -> WATCHDOG_FIRED: {at - last_kick:.1f} s ({event.detail})")
    assert (event.instance, event.host) == ("vm-w", "host-a")
    assert event.detail == "hardware watchdog expired: action reset"
    assert (await driver.get_instance("vm-w")).state is InstanceState.RUNNING
    await asyncio.to_thread(serial_command, serial, "ping", "pong", BOOT_S, resend_s=0.5)


async def test_a_guest_that_panics_is_reported_crashed(
        booted: tuple[Any, Path, float]) -> None:
    from vnfha.testing.qemu_guest import serial_command  # noqa: PLC0415

    driver, serial, _ = booted
    events = driver.events()
    with contextlib.suppress(TimeoutError):  # the console may not get to print it
        await asyncio.to_thread(serial_command, serial, "panic", "Kernel panic", 10.0)
    event, _ = await next_of(events, EventKind.VM_CRASHED, 60.0)
    assert (event.instance, event.host) == ("vm-w", "host-a")
    assert (await driver.get_instance("vm-w")).state is InstanceState.CRASHED


async def test_fencing_a_booted_guest_returns_once_its_qemu_is_gone(
        host: tuple[Any, Any], booted: tuple[Any, Path, float]) -> None:
    daemon, _ = host
    driver, _, _ = booted
    pid = int((daemon.root / "run/libvirt/qemu/run/vm-w.pid").read_text())
    began = time.monotonic()
    await driver.power_off("vm-w")
    print(f"\nfence (power_off of a booted guest): {time.monotonic() - began:.2f} s")
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert (await driver.get_instance("vm-w")).state is InstanceState.STOPPED


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True



async def test_a_listing_during_a_destroy_answers_from_what_was_last_seen(
        host: tuple[Any, Any]) -> None:
    libvirt = require_libvirt()
    from vnfha.bridge.drivers.libvirt_driver import LibvirtDriver  # noqa: PLC0415
    from vnfha.testing.qemu_guest import domain_xml  # noqa: PLC0415

    daemon, _ = host
    conn = libvirt.open(daemon.uri)
    domains = [conn.defineXML(domain_xml(name, None, serial=daemon.shared_dir("serial") /
                                         f"{name}.sock", group="g", member=name[-1],
                                         memory_mib=64)) for name in ("vm-x", "vm-y")]
    for domain in domains:
        domain.create()
    driver = await LibvirtDriver.open({"host-a": daemon.uri}, list_timeout_s=0.05)
    try:
        assert {i.name for i in await driver.list_instances()} == {"vm-x", "vm-y"}
        destroy = asyncio.create_task(driver.power_off("vm-x"))
        slowest, seen = 0.0, []
        while not destroy.done():
            began = time.monotonic()
            listed = await driver.list_instances()
            slowest = max(slowest, time.monotonic() - began)
            seen.append({i.name: i.state for i in listed})
            await asyncio.sleep(0.01)
        await destroy
        print(f"\nlistings during a destroy: {len(seen)}, slowest {slowest * 1000:.0f} ms, "
              f"{driver.late_listings} answered from what was last seen")
        assert driver.late_listings >= 1  # libvirt held the lock for at least 200 ms
        assert slowest < 0.05 + 0.1, slowest  # never the destroy's 200 ms
        assert all(set(s) == {"vm-x", "vm-y"} for s in seen)  # nothing vanished meanwhile
        states = {i.name: i.state for i in await driver.list_instances()}
        assert states == {"vm-x": InstanceState.STOPPED, "vm-y": InstanceState.RUNNING}
    finally:
        await driver.close()
        for domain in domains:
            with contextlib.suppress(libvirt.libvirtError):
                domain.destroy()
            domain.undefine()
        conn.close()
