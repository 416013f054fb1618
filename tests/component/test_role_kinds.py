"""Every role change carries its ReasonKind, chosen where the change is decided (the metrics'
``reason_kind`` label), not guessed from the wording of its reason; and the transition table of
the role runtime."""

from __future__ import annotations

import asyncio

import pytest

from vnfha import Config, Role
from vnfha.events import RoleChanged
from vnfha.member import Member, MemberEvent
from vnfha.model import ReasonKind
from vnfha.roles.keys import GroupKeys
from vnfha.roles.runtime import CALLBACKS, TRANSITIONS, Effect, Move, move_of
from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock

KEYS = GroupKeys("/vnfha", "vfw")


def recorder(into: list[tuple[str, Role, ReasonKind]]) -> object:
    def listen(event: MemberEvent) -> None:
        if isinstance(event, RoleChanged):
            into.append((event.member, event.role, event.kind))
    return listen


async def test_each_change_carries_the_kind_of_its_cause(clock: FakeClock,
                                                         store: MemoryStore) -> None:
    seen: list[tuple[str, Role, ReasonKind]] = []
    async with Member(Config(group="vfw", member="a"), store=store, clock=clock) as a:
        a.add_listener(recorder(seen))  # type: ignore[arg-type]
        await clock.advance_until(lambda: a.role is Role.ACTIVE)
        async with Member(Config(group="vfw", member="b"), store=store, clock=clock) as b:
            b.add_listener(recorder(seen))  # type: ignore[arg-type]
            await clock.advance_until(lambda: b.role is Role.STANDBY
                                      and a.checkpoint.in_sync == ("b",))
            task = asyncio.create_task(a.switchover(to="b"))
            await clock.advance_until(task.done)
            assert ("a", Role.QUIESCED, ReasonKind.SWITCHOVER) in seen
            assert ("b", Role.ACTIVE, ReasonKind.ELECTED) in seen
            await store.delete(KEYS.active)  # an operator deposes b
            await clock.settle()
            assert ("b", Role.QUIESCED, ReasonKind.DEPOSED) in seen
    assert ("b", Role.STANDBY, ReasonKind.ASSIGNED) in seen
    assert ("a", Role.QUIESCED, ReasonKind.STOPPED) in seen


@pytest.mark.parametrize(("previous", "role", "same", "move"), [
    (Role.STANDBY, Role.ACTIVE, False, Move.ENTER),
    (Role.QUIESCED, Role.ACTIVE, True, Move.ENTER),
    (Role.ACTIVE, Role.ACTIVE, False, Move.RENEW),
    (Role.ACTIVE, Role.ACTIVE, True, Move.OTHER),
    (Role.ACTIVE, Role.QUIESCED, True, Move.LEAVE),
    (Role.ACTIVE, Role.STANDBY, False, Move.LEAVE),
    (Role.STANDBY, Role.SPARE, True, Move.OTHER),
])
def test_moves(previous: Role, role: Role, same: bool, move: Move) -> None:
    assert move_of(previous, role, same) is move


def test_the_transition_table_keeps_its_order_rules() -> None:
    """An epoch's Primary is closed before another opens, and a grant is forgotten whenever
    its epoch ends: never active twice in one epoch."""
    for move, effects in TRANSITIONS.items():
        if Effect.CLOSE_PRIMARY in effects and Effect.OPEN_PRIMARY in effects:
            assert effects.index(Effect.CLOSE_PRIMARY) < effects.index(Effect.OPEN_PRIMARY)
        assert (Effect.FORGET_GRANT in effects) == (move in (Move.RENEW, Move.LEAVE))
    assert CALLBACKS[(Role.ACTIVE, Role.QUIESCED)] == "on_standby"  # deposed: stop serving
