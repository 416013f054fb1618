"""GroupWatch on the in-memory store and a fake clock: watch first then read, events applied in
order with ``on_change`` after each batch, recovery from a failed or compacted watch, the
member-list re-read and the wait for a release."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import pytest

from vnfha.errors import Compacted, StoreUnavailable, VnfhaError
from vnfha.roles.keys import ActiveRecord, GroupKeys, MemberRecord, new_secret
from vnfha.roles.watch import GroupWatch
from vnfha.store.base import WatchBatch
from vnfha.store.memory import MemoryStore, MemoryWatch
from vnfha.testing import FakeClock

KEYS = GroupKeys("/vnfha", "vfw")
RETRY_S = 0.1


class BrokenWatch:
    """A watch whose stream fails at once with ``error``."""

    def __init__(self, error: VnfhaError) -> None:
        self.error = error

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> WatchBatch:
        raise self.error

    async def cancel(self) -> None:
        return None


class FlakyStore(MemoryStore):
    """A MemoryStore whose next watches fail with the queued errors."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.errors: list[VnfhaError] = []
        self.starts: list[int] = []

    def watch(self, key: str, *, prefix: bool = False, start_revision: int = 0,
              prev_kv: bool = False) -> MemoryWatch:
        self.starts.append(start_revision)
        if self.errors:
            return BrokenWatch(self.errors.pop(0))  # type: ignore[return-value]
        return super().watch(key, prefix=prefix, start_revision=start_revision,
                             prev_kv=prev_kv)


class Env:
    def __init__(self, clock: FakeClock, store: FlakyStore) -> None:
        self.clock, self.store = clock, store
        self.changes = 0
        self.group = GroupWatch(store, KEYS, clock, member="a", retry_s=RETRY_S,
                                on_change=self.changed)

    def changed(self) -> None:
        self.changes += 1

    async def put_member(self, name: str, lease: int = 0) -> int:
        record = MemberRecord(member=name, redundancy="2n")
        return (await self.store.put(KEYS.member(name), record.encode(), lease=lease)).revision

    async def put_active(self, name: str) -> int:
        """``name`` joins with a lease and holds the active key with it, as a campaign would."""
        lease = (await self.store.grant(60)).id
        await self.put_member(name, lease)
        record = ActiveRecord(name, f"{name}:1", new_secret())
        return (await self.store.put(KEYS.active, record.encode(), lease=lease)).revision


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    clock = FakeClock()
    async with FlakyStore(clock) as store:
        e = Env(clock, store)
        yield e
        await e.group.stop()


async def test_resync_reads_the_group_then_applies_newer_events_in_order(env: Env) -> None:
    await env.put_active("a")
    await env.group.resync()
    assert set(env.group.state.members) == {"a"}
    assert env.group.state.active is not None and env.group.state.active[1].member == "a"
    assert env.changes == 1 and env.store.starts == [0]  # watched from now, before the read
    revision = await env.put_member("b")
    await env.store.delete(KEYS.active)
    await env.clock.settle()
    assert set(env.group.state.members) == {"a", "b"} and env.group.state.active is None
    assert env.group.state.revision > revision and env.changes >= 2


async def test_an_unreadable_record_is_logged_and_ignored(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "vnfha.member")
    await env.store.put(KEYS.member("x"), b"{not json")
    await env.group.resync()
    await env.put_member("b")
    await env.store.put(KEYS.member("y"), MemberRecord("z", "2n").encode())  # wrong name
    await env.clock.settle()
    assert set(env.group.state.members) == {"b"}
    assert "unreadable record ignored" in caplog.text and "record names 'z'" in caplog.text


async def test_a_failed_watch_is_reopened_after_the_last_revision_applied(env: Env) -> None:
    env.store.errors.append(StoreUnavailable("watch", endpoint="memory"))
    await env.put_member("a")
    await env.group.resync()
    floor = env.group.state.revision
    await env.clock.settle()
    await env.put_member("b")  # while the watch is down
    await env.clock.settle()
    assert "b" not in env.group.state.members
    await env.clock.advance(RETRY_S)
    assert env.store.starts == [0, floor + 1]
    assert set(env.group.state.members) == {"a", "b"}


async def test_a_compacted_watch_re_reads_the_group(env: Env) -> None:
    env.store.errors.append(Compacted(1, 5, endpoint="memory"))
    await env.group.resync()
    await env.clock.settle()  # the first watch fails, the group is read again
    assert env.store.calls["range"] == 2 and env.store.starts == [0, 0]
    await env.put_member("b")
    await env.clock.settle()
    assert set(env.group.state.members) == {"b"} and env.changes >= 3


async def test_read_members_takes_only_a_newer_list(env: Env) -> None:
    await env.put_member("a")
    await env.group.read_members()
    assert set(env.group.state.members) == {"a"}
    env.group.state.revision = env.store.revision + 10  # the snapshot is ahead of the read
    await env.put_member("b")
    await env.group.read_members()
    assert set(env.group.state.members) == {"a"}


async def test_wait_released_returns_once_the_watch_delivered_the_release(env: Env) -> None:
    await env.put_active("a")
    await env.group.resync()
    revision = (await env.store.delete(KEYS.active)).revision
    start = env.clock.monotonic()
    task = asyncio.create_task(env.group.wait_released(revision, poll_s=0.005, timeout_s=1.0))
    await env.clock.advance(0.1, step=0.005)
    assert task.done() and env.clock.monotonic() - start < 1.0
    assert env.group.state.active is None and env.group.state.revision >= revision


async def test_wait_released_applies_the_release_itself_after_the_timeout(env: Env) -> None:
    await env.put_active("a")
    await env.group.resync()
    await env.group.stop()  # the watch delivers nothing from now on
    revision = (await env.store.delete(KEYS.active)).revision
    start = env.clock.monotonic()
    task = asyncio.create_task(env.group.wait_released(revision, poll_s=0.005, timeout_s=1.0))
    await env.clock.advance(0.9, step=0.1)
    assert not task.done() and env.group.state.active is not None
    await env.clock.advance(0.2, step=0.1)
    await task
    assert env.group.state.active is None and env.group.state.revision == revision
    assert env.clock.monotonic() - start >= 1.0
