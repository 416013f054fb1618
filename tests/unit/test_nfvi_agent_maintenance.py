"""NfviAgent.maintenance_move: which standby an active hands over to before its host's planned
maintenance, driven through the agent's own event watch on a fake port and a fake wall clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from vnfha.bridge.drivers.driver import EventKind
from vnfha.config import Config
from vnfha.model import Redundancy
from vnfha.nfvi.agent import NfviAgent
from vnfha.nfvi.client import NoBridge
from vnfha.nfvi.model import BridgeEvent
from vnfha.roles.policy import GroupView, MemberInfo
from vnfha.testing import FakeClock
from vnfha.wiring import agent_settings

CONFIG = Config(group="vfw", member="a")
NOW = 1_000_000.0


class EventPort(NoBridge):
    """NoBridge whose event watch delivers ``events`` and then stays open."""

    def __init__(self, events: list[BridgeEvent]) -> None:
        super().__init__(group="vfw", member="a")
        self.events = events

    async def watch_events(self, *, timeout_s: float | None = None
                           ) -> AsyncIterator[BridgeEvent]:
        for event in self.events:
            yield event
        await asyncio.Event().wait()


def planned(host: str = "h1", members: tuple[str, ...] = ("a",), in_s: float = 60.0
            ) -> BridgeEvent:
    return BridgeEvent(EventKind.MAINTENANCE_PLANNED, host=host, members=members,
                       deadline_unix_s=NOW + in_s, detail="kernel update")


def view(*members: MemberInfo) -> GroupView:
    return GroupView(me="a", my_lease=1, session_valid=True, redundancy=Redundancy.N_WAY,
                     members=(MemberInfo("a", lease=1), *members))


async def agent_after(events: list[BridgeEvent], wall: list[float]) -> NfviAgent:
    seen: list[BridgeEvent] = []
    agent = NfviAgent(EventPort(events), agent_settings(CONFIG), FakeClock(),
                      on_maintenance=seen.append, wall_clock=lambda: wall[0])
    await agent.start()
    for _ in range(100):
        if len(seen) == sum(e.kind is EventKind.MAINTENANCE_PLANNED for e in events):
            break
        await asyncio.sleep(0)
    return agent


@pytest.mark.parametrize(("on_host", "members", "expected"), [
    (("a",), (MemberInfo("b", lease=2),), "b"),
    # b is on the same host (named in the announcement): c, though ranked lower
    (("a", "b"), (MemberInfo("b", lease=2, priority=5), MemberInfo("c", lease=3)), "c"),
    (("a",), (MemberInfo("b", lease=2, in_sync=False), MemberInfo("c", lease=3)), "c"),
    (("a",), (MemberInfo("b", lease=2, no_failover=True),), None),
    (("a", "b"), (MemberInfo("b", lease=2),), None),
    (("a",), (), None),
])
async def test_moves_to_the_best_standby_off_the_host(
    on_host: tuple[str, ...], members: tuple[MemberInfo, ...], expected: str | None,
) -> None:
    agent = await agent_after([planned(members=on_host)], [NOW])
    try:
        move = agent.maintenance_move(view(*members))
        assert (move[1] if move else None) == expected
        assert move is None or move[0].host == "h1"
    finally:
        await agent.close()


async def test_no_move_without_a_maintenance_or_after_its_deadline() -> None:
    wall = [NOW]
    agent = await agent_after([], wall)
    try:
        assert agent.maintenance_move(view(MemberInfo("b", lease=2))) is None
    finally:
        await agent.close()
    agent = await agent_after([planned(in_s=5)], wall)
    try:
        assert agent.maintenance_move(view(MemberInfo("b", lease=2))) is not None
        wall[0] = NOW + 5  # the deadline: the host is gone or back, nothing to move for
        assert agent.maintenance_move(view(MemberInfo("b", lease=2))) is None
    finally:
        await agent.close()


async def test_other_hosts_maintenance_is_not_ours() -> None:
    agent = await agent_after([planned(host="h2", members=("x",))], [NOW])
    try:
        assert agent.maintenance_move(view(MemberInfo("b", lease=2))) is None
    finally:
        await agent.close()


async def test_warns_once_per_announcement_while_nobody_can_take_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = await agent_after([planned()], [NOW])
    try:
        with caplog.at_level(logging.WARNING, "vnfha"):
            for _ in range(3):
                assert agent.maintenance_move(view()) is None
        warned = [r for r in caplog.records if "no eligible standby on another host" in
                  r.getMessage()]
        assert len(warned) == 1 and "h1" in warned[0].getMessage()
    finally:
        await agent.close()
