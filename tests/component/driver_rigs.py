"""Driver rigs: one :class:`Rig` per NFVI driver, so that one suite checks every driver (the
``rig`` fixture in conftest.py yields each in turn).

Each rig has the same inventory: instances ``vm-a`` (g1/m-a) and ``vm-c`` (g2/m-c) on ``host-a``,
``vm-b`` (g1/m-b) on ``host-b``, and an empty ``host-c``, all running. Besides the driver it gives
the suite what only the hypervisor can tell: whether an instance can execute (checked outside the
driver), a way to stop an instance behind the driver's back, a way to take a host down, and what
the driver documents about a down host's instances (``dead`` or ``unknown``, see
:mod:`vnfha.bridge.drivers.driver`).

``libvirt``: libvirt's ``test`` hypervisor, one ``test:///<file>`` URI per host (files written by
``write_test_hosts``), plus a domain ``plain`` on host-a without vnfha metadata. Skipped when
libvirt's binding is not importable, unless ``VNFHA_REQUIRE_LIBVIRT=1`` (CI), which makes that an
error instead. A host goes down as a lost connection does: its connection's close callback is
called as libvirt's event thread would (``libvirt_double``), and reconnecting is refused for the
rest of the test. Its instances are then ``unknown``.

``qemu``: real QEMU domains (TCG) under three private libvirt daemons, one per host
(:class:`vnfha.testing.libvirtd.Libvirtd`, shared by the module: ``qemu_hosts`` in the suite).
The domains boot no guest (the firmware idles: real QEMU processes at almost no CPU; the booted
guest is for tests/integration/test_libvirt_qemu.py); ``plain`` is defined, not started.
Whether an instance can execute is read on a connection of the rig's own (libvirtd's state is
shared by every connection), or for a host whose daemon is down, from its QEMU's pid file. A
change behind the driver's back is a SIGKILL of the QEMU process (libvirt: stopped, failed:
VM_CRASHED); a host goes down as its libvirtd is SIGKILLed (its QEMUs keep running, as after a
real daemon crash), so its instances are ``unknown``. Skipped without libvirtd and QEMU unless
``VNFHA_REQUIRE_QEMU=1`` (CI), and with ``VNFHA_QEMU=0``.

``sim``: :class:`~vnfha.bridge.drivers.sim.SimDriver` with small ``python -c`` sleepers as
instances. A host goes down by ``fail_host``, which kills its instances: they are ``dead``.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vnfha.bridge.drivers.driver import Driver, EventKind, HostDown

LAYOUT: dict[str, tuple[str, str, str]] = {
    "vm-a": ("g1", "m-a", "host-a"),
    "vm-b": ("g1", "m-b", "host-b"),
    "vm-c": ("g2", "m-c", "host-a"),
}
HOSTS = ["host-a", "host-b", "host-c"]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


class DownInstances(enum.Enum):
    """What a driver says about the instances of a host that is down
    (:mod:`vnfha.bridge.drivers.driver`, "Hosts that go down")."""

    DEAD = "dead"
    """It knows they cannot execute: CRASHED, VM_CRASHED each, power_off confirms, evacuable."""
    UNKNOWN = "unknown"
    """It cannot tell: listed as last seen, HostDown for get_instance and every action."""


@dataclass
class Rig:
    """A driver with :data:`LAYOUT` running, and hypervisor-side probes."""

    driver: Driver
    probe: Callable[[str], Callable[[], bool]]
    """``probe(name)`` captures the instance as it is now (its process, its domain) and returns
    a check: can that instance execute at the time of the call?"""
    stop_behind_back: Callable[[str], EventKind]
    """Stop the instance without the driver; returns the event kind the driver must report."""
    take_host_down: Callable[[str], Awaitable[None]]
    """Make the host go down as this hypervisor's hosts do; it stays down for the test. Taking
    it down again is the same outage noticed again."""
    down_instances: DownInstances
    """What the driver documents about a down host's instances."""


def require_libvirt() -> Any:
    """The ``libvirt`` module; skip (or fail with ``VNFHA_REQUIRE_LIBVIRT=1``) without it. Works
    in a fixture and at a test module's top level."""
    try:
        import libvirt  # noqa: PLC0415 - optional dependency
    except ImportError as e:
        if os.environ.get("VNFHA_REQUIRE_LIBVIRT") == "1":
            pytest.fail(f"VNFHA_REQUIRE_LIBVIRT=1 but libvirt's binding is missing: {e}")
        pytest.skip(f"libvirt's Python binding is not installed ({e}); apt-get install "
                    "libvirt-dev pkg-config && pip install -e '.[libvirt]'",
                    allow_module_level=True)
    return libvirt


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


async def sim_rig() -> AsyncIterator[Rig]:
    from vnfha.bridge.drivers.sim import SimDriver  # noqa: PLC0415

    sim = SimDriver(hosts=HOSTS)
    try:
        for name, (group, member, host) in LAYOUT.items():
            await sim.launch(name, group=group, member=member, host=host, argv=SLEEPER)

        def probe(name: str) -> Callable[[], bool]:
            pid = sim.pid(name)
            return lambda: pid is not None and _proc_state(pid) not in ("T", "t", "Z", None)

        def stop_behind_back(name: str) -> EventKind:
            pid = sim.pid(name)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            return EventKind.VM_CRASHED

        yield Rig(sim, probe, stop_behind_back, sim.fail_host, DownInstances.DEAD)
    finally:
        await sim.close()


async def libvirt_rig(directory: Path) -> AsyncIterator[Rig]:
    libvirt = require_libvirt()
    from libvirt_double import Hypervisor  # noqa: PLC0415 - needs libvirt

    from vnfha.bridge.drivers.libvirt_driver import (  # noqa: PLC0415
        DomainSpec,
        LibvirtDriver,
        write_test_hosts,
    )
    from vnfha.clock import SystemClock  # noqa: PLC0415

    layout: dict[str, list[DomainSpec]] = {host: [] for host in HOSTS}
    for name, (group, member, host) in LAYOUT.items():
        layout[host].append(DomainSpec(name, group, member))
    layout["host-a"].append(DomainSpec("plain"))
    uris = write_test_hosts(directory, layout)
    hypervisor = Hypervisor(SystemClock())
    driver = await LibvirtDriver.open(uris, opener=hypervisor)
    executing = {libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED,
                 libvirt.VIR_DOMAIN_SHUTDOWN, libvirt.VIR_DOMAIN_NOSTATE}

    def domains(name: str) -> list[Any]:
        found, unseen = [], []
        for host in HOSTS:
            try:
                conn = driver.connection(host)
            except HostDown:
                unseen.append(host)
                continue
            with contextlib.suppress(libvirt.libvirtError):
                found.append(conn.lookupByName(name))
        assert found or not unseen, f"{name} may be on {unseen}, which cannot be looked at"
        return found

    def probe(name: str) -> Callable[[], bool]:
        return lambda: any(d.state()[0] in executing for d in domains(name))

    def stop_behind_back(name: str) -> EventKind:
        (domain,) = domains(name)
        domain.destroy()
        return EventKind.VM_STOPPED

    async def take_host_down(host: str) -> None:
        hypervisor.unreachable.add(uris[host])  # no reconnecting: it stays down
        hypervisor.last(uris[host]).close_as_libvirt_would(libvirt.VIR_CONNECT_CLOSE_REASON_EOF)

    try:
        yield Rig(driver, probe, stop_behind_back, take_host_down, DownInstances.UNKNOWN)
    finally:
        await driver.close()



def require_qemu() -> None:
    """Skip (or fail with ``VNFHA_REQUIRE_QEMU=1``) without libvirtd and QEMU; skip with
    ``VNFHA_QEMU=0`` (the QEMU tests take about 40 s)."""
    import shutil  # noqa: PLC0415

    if os.environ.get("VNFHA_QEMU") == "0" and os.environ.get("VNFHA_REQUIRE_QEMU") != "1":
        pytest.skip("VNFHA_QEMU=0: the QEMU tests are skipped")

    from vnfha.testing.libvirtd import find_libvirtd  # noqa: PLC0415

    missing = [name for name, found in (("libvirtd", find_libvirtd()),
                                        ("qemu-system-x86_64",
                                         shutil.which("qemu-system-x86_64"))) if not found]
    if not missing:
        return
    message = (f"{' and '.join(missing)} not installed: apt-get install qemu-system-x86 "
               "libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients busybox-static")
    if os.environ.get("VNFHA_REQUIRE_QEMU") == "1":
        pytest.fail(f"VNFHA_REQUIRE_QEMU=1 but {message}")
    pytest.skip(message)


def _pid_of(daemon: Any, name: str) -> int | None:
    """The pid of ``name``'s QEMU under ``daemon`` (from libvirt's pid file), None if none."""
    try:
        return int((daemon.root / "run/libvirt/qemu/run" / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None


def _kill_and_undefine(daemon: Any, domain: Any) -> None:
    """SIGKILL ``domain``'s QEMU (libvirt's destroy waits after its SIGTERM), wait until
    libvirt has seen it die, and undefine it."""
    pid = _pid_of(daemon, domain.name())
    if pid is not None and domain.isActive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(400):  # until libvirt has seen it die (a few ms)
        if not domain.isActive():
            break
        time.sleep(0.01)
    else:
        domain.destroy()
    domain.undefine()


async def qemu_rig(daemons: dict[str, Any]) -> AsyncIterator[Rig]:
    """The ``qemu`` rig on ``daemons`` (host -> a started :class:`Libvirtd`). The domains
    outlive a test: at the start of the next, each host keeps those of :data:`LAYOUT` (and
    ``plain``) that are as a fresh rig has them (running on their host; ``plain`` defined, not
    running), kills and undefines every other one, and defines and starts what is missing (a
    QEMU start is the rig's cost). Left with every daemon running again."""
    import asyncio  # noqa: PLC0415

    libvirt = require_libvirt()
    from vnfha.bridge.drivers.libvirt_driver import LibvirtDriver  # noqa: PLC0415
    from vnfha.testing.qemu_guest import domain_xml  # noqa: PLC0415

    serial = daemons["host-a"].shared_dir("serial")
    own = {host: libvirt.open(d.uri) for host, d in daemons.items()}
    down: set[str] = set()
    wanted = {host: {name: (group, member) for name, (group, member, at) in LAYOUT.items()
                     if at == host} for host in daemons}
    wanted["host-a"]["plain"] = (None, None)

    def ready(host: str) -> None:
        """``host`` as a fresh rig has it (see the docstring)."""
        conn, left = own[host], dict(wanted[host])
        for domain in conn.listAllDomains(0):
            name, state = domain.name(), domain.state()[0]
            spec = left.pop(name, None)
            if spec is not None and (state == libvirt.VIR_DOMAIN_RUNNING) == (
                    spec[0] is not None):
                continue  # as wanted: kept
            _kill_and_undefine(daemons[host], domain)
            if spec is not None:
                left[name] = spec
        for name, (group, member) in left.items():
            domain = conn.defineXML(domain_xml(name, None, serial=serial / f"{name}.sock",
                                               group=group, member=member, memory_mib=64))
            if group is not None:
                domain.create()

    await asyncio.gather(*(asyncio.to_thread(ready, host) for host in daemons))
    driver = await LibvirtDriver.open({host: d.uri for host, d in daemons.items()})
    executing = {libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED,
                 libvirt.VIR_DOMAIN_SHUTDOWN, libvirt.VIR_DOMAIN_NOSTATE}

    def probe(name: str) -> Callable[[], bool]:
        def can_execute() -> bool:
            for host, daemon in daemons.items():
                if host in down:  # no daemon to ask: is its QEMU process there?
                    pid = _pid_of(daemon, name)
                    if pid is not None and _proc_state(pid) not in (None, "Z"):
                        return True
                    continue
                with contextlib.suppress(libvirt.libvirtError):
                    if own[host].lookupByName(name).state()[0] in executing:
                        return True
            return False
        return can_execute

    def stop_behind_back(name: str) -> EventKind:
        (pid,) = [p for d in daemons.values() if (p := _pid_of(d, name)) is not None]
        os.kill(pid, signal.SIGKILL)  # the QEMU process dies: libvirt says "failed"
        return EventKind.VM_CRASHED

    async def take_host_down(host: str) -> None:
        if host not in down:  # again: the same outage, noticed again
            down.add(host)
            own[host].close()
            await asyncio.to_thread(daemons[host].kill)

    def back_up(host: str) -> None:
        if host in down:  # its connection was closed as it went down
            daemons[host].restart()
        else:
            own[host].close()

    try:
        yield Rig(driver, probe, stop_behind_back, take_host_down, DownInstances.UNKNOWN)
    finally:
        await driver.close()
        await asyncio.gather(*(asyncio.to_thread(back_up, host) for host in daemons))
