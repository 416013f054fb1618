"""RecordKeeper: a member's record is written when it changes and written back when someone
else deletes or overwrites it, but never for the member's own writes seen late by its watch."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from vnfha._ratelog import RateLimitedLog
from vnfha.roles.keys import GroupKeys, MemberRecord
from vnfha.roles.record import RecordKeeper
from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock

KEYS = GroupKeys("/vnfha", "vfw")
TTL_S = 2.0


def keeper(store: MemoryStore, clock: FakeClock, pokes: list[int],
           tasks: list[asyncio.Task[Any]]) -> RecordKeeper:
    return RecordKeeper(me="a", keys=KEYS, store=store, clock=clock, rewrite_every_s=TTL_S,
                        warn=RateLimitedLog(logging.getLogger("test"), monotonic=clock.monotonic),
                        poke=lambda: pokes.append(1), adopt=tasks.append)


async def test_late_echoes_of_our_own_writes_are_not_overwrites(store: MemoryStore,
                                                                clock: FakeClock) -> None:
    pokes: list[int] = []
    records = keeper(store, clock, pokes, [])
    lease = (await store.grant(60)).id
    first, second = MemberRecord("a", "2n", role="standby"), MemberRecord("a", "2n", role="active")
    await records.publish(first, lease=lease)
    await records.publish(second, lease=lease)
    records.check((first, lease), lease=lease)  # the watch delivers the first put after the second
    records.check((second, lease), lease=lease)
    await records.publish(second, lease=lease)
    assert store.calls["put"] == 2  # nothing was written back


async def test_an_overwrite_is_written_back_at_once_then_at_most_once_per_ttl(
        store: MemoryStore, clock: FakeClock) -> None:
    pokes: list[int] = []
    tasks: list[asyncio.Task[Any]] = []
    records = keeper(store, clock, pokes, tasks)
    lease = (await store.grant(60)).id
    mine = MemberRecord("a", "2n", role="standby")
    await records.publish(mine, lease=lease)
    records.check((MemberRecord("a", "2n", role="active"), 0), lease=lease)  # etcdctl put
    await records.publish(mine, lease=lease)  # the loop publishes again: written back at once
    assert store.calls["put"] == 2
    records.check(None, lease=lease)  # deleted right after: written back only after the TTL
    assert tasks and not pokes
    await clock.advance(TTL_S)
    assert pokes == [1]
    await records.publish(mine, lease=lease)
    assert store.calls["put"] == 3
