"""Fixtures for component tests: ``rig``, every NFVI driver in turn (see driver_rigs.py), and
``sim``, a sim driver running one instance (``vm-a``, member ``a`` of group ``g`` on ``h1``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from driver_rigs import SLEEPER, Rig, libvirt_rig, sim_rig

from vnfha.bridge.drivers.sim import SimDriver


@pytest.fixture(params=["libvirt", "sim"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    """Every driver in turn, with :data:`LAYOUT` running."""
    make = libvirt_rig(tmp_path) if request.param == "libvirt" else sim_rig()
    async for value in make:
        yield value


@pytest.fixture
async def sim() -> AsyncIterator[SimDriver]:
    """A sim driver running ``vm-a`` (member ``a`` of group ``g``, host ``h1``)."""
    driver = SimDriver()
    try:
        await driver.launch("vm-a", group="g", member="a", host="h1", argv=SLEEPER)
        yield driver
    finally:
        await driver.close()
