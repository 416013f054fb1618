"""A built-in check run by a real member (in-memory store, fake clock): a tcp check against a real
socket on 127.0.0.1 passes, fails after ``fail_after`` periods once the socket closes (a fault
for the ladder, the check named in the member's record as ``vnfha status`` reads it), and
recovers after ``recover_after`` periods once it listens again; whether the check comes from
``Config.checks`` or from the component's ``checks()``."""

from __future__ import annotations

import asyncio

import pytest

from vnfha import CheckSpec, Component, Config, Member, Role
from vnfha.admin import group_status
from vnfha.health.ladder import Action
from vnfha.health.verdict import Health
from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock

PERIOD_S = 1.0
FAIL_AFTER, RECOVER_AFTER = 3, 2


async def listen(port: int = 0) -> asyncio.Server:
    async def on_client(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(on_client, "127.0.0.1", port)


class Registers(Component):
    """A component that registers the check from code."""

    def __init__(self, spec: CheckSpec) -> None:
        self.spec = spec

    def checks(self) -> list[CheckSpec]:
        return [self.spec]


async def published_failing(store: MemoryStore, clock: FakeClock, expected: tuple[str, ...],
                            limit_s: float = 2.0) -> None:
    """Advance the clock until the member's record (what ``vnfha status`` reads) lists
    ``expected`` as its failing checks."""
    start = clock.monotonic()
    while (await group_status(store, "/vnfha", "vfw")).members[0].failing != expected:
        assert clock.monotonic() - start < limit_s, f"the record never said {expected}"
        await clock.advance(0.05)


@pytest.mark.parametrize("source", ["config", "component"])
async def test_a_tcp_check_fails_after_fail_after_periods_and_recovers(
        clock: FakeClock, store: MemoryStore, source: str) -> None:
    server = await listen()
    port = server.sockets[0].getsockname()[1]
    spec = CheckSpec(kind="tcp", name="db", target=f"127.0.0.1:{port}", period_s=PERIOD_S,
                     timeout_s=PERIOD_S, fail_after=FAIL_AFTER, recover_after=RECOVER_AFTER)
    config = Config(group="vfw", member="a", checks=(spec,) if source == "config" else ())
    component = Registers(spec) if source == "component" else Component()
    try:
        async with Member(config, component, store=store, clock=clock) as a:
            monitor = a.supervisor.monitor
            await clock.advance_until(lambda: a.role is Role.ACTIVE)
            await clock.advance_until(lambda: monitor.states["db"].runs >= 2, limit_s=5)
            assert monitor.healthy
            await published_failing(store, clock, ())

            server.close()
            await server.wait_closed()
            runs, start = monitor.states["db"].runs, clock.monotonic()
            took = await clock.advance_until(lambda: monitor.failing == ("db",), limit_s=10,
                                             what="db failing")
            assert monitor.states["db"].runs - runs == FAIL_AFTER
            assert (FAIL_AFTER - 1) * PERIOD_S < took <= FAIL_AFTER * PERIOD_S + 0.05
            await published_failing(store, clock, ("db",))
            await clock.advance_until(lambda: bool(a.supervisor.decisions))
            decision = a.supervisor.decisions[0].decision
            assert decision.action is Action.RESTART  # the ladder's first rung, as for any fault
            assert decision.fault.source == "check:db"
            assert "connect to 127.0.0.1" in decision.fault.reason
            assert start <= monitor.states["db"].since <= clock.monotonic()  # type: ignore[operator]

            server = await listen(port)  # the same port listens again
            runs = monitor.states["db"].runs
            await clock.advance_until(lambda: monitor.healthy, limit_s=10, what="db recovered")
            assert monitor.states["db"].health is Health.HEALTHY
            assert monitor.states["db"].runs - runs == RECOVER_AFTER
            await published_failing(store, clock, ())
    finally:
        server.close()
        await server.wait_closed()
