"""Fixtures most unit tests share: a fake clock and an in-memory store on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(clock: FakeClock) -> AsyncIterator[MemoryStore]:
    async with MemoryStore(clock) as s:
        yield s
