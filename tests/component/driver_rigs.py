"""Driver rigs: one :class:`Rig` per NFVI driver, so that one suite checks every driver (the
``rig`` fixture in conftest.py yields each in turn).

Each rig has the same inventory: instances ``vm-a`` (g1/m-a) and ``vm-c`` (g2/m-c) on ``host-a``,
``vm-b`` (g1/m-b) on ``host-b``, and an empty ``host-c``, all running. Besides the driver it gives
the suite what only the hypervisor can tell: whether an instance can execute (checked outside the
driver) and a way to stop an instance behind the driver's back.

``libvirt``: libvirt's ``test`` hypervisor, one ``test:///<file>`` URI per host (files written by
``write_test_hosts``), plus a domain ``plain`` on host-a without vnfha metadata. Skipped when
libvirt's binding is not importable, unless ``VNFHA_REQUIRE_LIBVIRT=1`` (CI), which makes that an
error instead.

``sim``: :class:`~vnfha.nfvi.sim.SimDriver` with small ``python -c`` sleepers as instances.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vnfha.nfvi.driver import Driver, EventKind

LAYOUT: dict[str, tuple[str, str, str]] = {
    "vm-a": ("g1", "m-a", "host-a"),
    "vm-b": ("g1", "m-b", "host-b"),
    "vm-c": ("g2", "m-c", "host-a"),
}
HOSTS = ["host-a", "host-b", "host-c"]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


@dataclass
class Rig:
    """A driver with :data:`LAYOUT` running, and hypervisor-side probes."""

    driver: Driver
    probe: Callable[[str], Callable[[], bool]]
    """``probe(name)`` captures the instance as it is now (its process, its domain) and returns
    a check: can that instance execute at the time of the call?"""
    stop_behind_back: Callable[[str], EventKind]
    """Stop the instance without the driver; returns the event kind the driver must report."""


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
    from vnfha.nfvi.sim import SimDriver  # noqa: PLC0415

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

        yield Rig(sim, probe, stop_behind_back)
    finally:
        await sim.close()


async def libvirt_rig(directory: Path) -> AsyncIterator[Rig]:
    libvirt = require_libvirt()
    from vnfha.nfvi.libvirt_driver import (  # noqa: PLC0415
        DomainSpec,
        LibvirtDriver,
        write_test_hosts,
    )

    layout: dict[str, list[DomainSpec]] = {host: [] for host in HOSTS}
    for name, (group, member, host) in LAYOUT.items():
        layout[host].append(DomainSpec(name, group, member))
    layout["host-a"].append(DomainSpec("plain"))
    driver = await LibvirtDriver.open(write_test_hosts(directory, layout))
    executing = {libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED,
                 libvirt.VIR_DOMAIN_SHUTDOWN, libvirt.VIR_DOMAIN_NOSTATE}

    def domains(name: str) -> list[Any]:
        found = []
        for host in HOSTS:
            with contextlib.suppress(libvirt.libvirtError):
                found.append(driver.connection(host).lookupByName(name))
        return found

    def probe(name: str) -> Callable[[], bool]:
        return lambda: any(d.state()[0] in executing for d in domains(name))

    def stop_behind_back(name: str) -> EventKind:
        (domain,) = domains(name)
        domain.destroy()
        return EventKind.VM_STOPPED

    try:
        yield Rig(driver, probe, stop_behind_back)
    finally:
        await driver.close()

