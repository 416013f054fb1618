"""Fixtures for component tests: ``rig``, every NFVI driver in turn (see driver_rigs.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from driver_rigs import Rig, libvirt_rig, sim_rig


@pytest.fixture(params=["libvirt", "sim"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    """Every driver in turn, with :data:`LAYOUT` running."""
    make = libvirt_rig(tmp_path) if request.param == "libvirt" else sim_rig()
    async for value in make:
        yield value
