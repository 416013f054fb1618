"""Shared fixtures: real etcd clusters on loopback (started once per session), and the logs of
every cluster a failed test used, attached to its report."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings

from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock
from vnfha.testing.etcd import EtcdCluster

# Property tests explore new examples on every local run. CI runs a fixed set of them
# (HYPOTHESIS_PROFILE=ci, set by .ci/run), so that a rare example found there cannot block a
# landing unseen: found locally, it is kept in .hypothesis/ and replayed first. "deep" is for
# bug hunts: HYPOTHESIS_PROFILE=deep pytest tests/unit (tests that set their own max_examples
# keep it).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("deep", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="also run the long soak tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="soak test: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None]:
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for name, value in funcargs.items():
            if isinstance(value, EtcdCluster):
                report.sections.append((f"etcd logs ({name})", value.logs()))
    return report


@pytest.fixture(scope="session")
def etcd1() -> Iterator[EtcdCluster]:
    """A single-member etcd, shared by the whole run (tests use their own key prefixes)."""
    with EtcdCluster(1) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def etcd3() -> Iterator[EtcdCluster]:
    """A 3-member etcd, shared by the whole run. Tests that kill or pause members start
    their own cluster instead."""
    with EtcdCluster(3) as cluster:
        yield cluster


@pytest.fixture
def own_etcd3() -> Iterator[EtcdCluster]:
    """A 3-member etcd for one test, which may kill, pause and restart its members."""
    with EtcdCluster(3) as cluster:
        yield cluster


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock (``advance``, ``advance_until``): most tests of the runtime run on it."""
    return FakeClock()


@pytest.fixture
async def store(clock: FakeClock) -> AsyncIterator[MemoryStore]:
    """An in-memory store on :func:`clock` (tests that need a real etcd take ``etcd1``)."""
    async with MemoryStore(clock) as s:
        yield s

