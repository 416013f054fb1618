"""What a careless operator with ``etcdctl`` can write into a group's keys, on the in-memory store
and a fake clock (issue 12, items 2-4; the same runs on real etcd in
``tests/integration/test_careless_operator.py``).

Before the fix: garbage in the active key left the active acting although it no longer held the
key, and a standby that never took over; a valid-looking record naming another member (no lease,
or a lease that is not that member's) deposed the active and left the group without one for
good; a deleted member record was never written back.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from vnfha import Ack, Config, NotActive, Role
from vnfha.admin import group_status
from vnfha.member import Member
from vnfha.roles.keys import ActiveRecord, GroupKeys, MemberRecord, new_secret
from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock

KEYS = GroupKeys("/vnfha", "vfw")


@pytest.fixture
async def pair(clock: FakeClock, store: MemoryStore) -> AsyncIterator[tuple[Member, Member]]:
    async with Member(Config(group="vfw", member="a"), store=store, clock=clock) as a:
        await clock.advance_until(lambda: a.role is Role.ACTIVE)
        async with Member(Config(group="vfw", member="b"), store=store, clock=clock) as b:
            await clock.advance_until(lambda: b.role is Role.STANDBY
                                      and a.checkpoint.in_sync == ("b",))
            yield a, b


def actives(*members: Member) -> list[str]:
    return [m.name for m in members if m.role is Role.ACTIVE]


async def written_back(clock: FakeClock, store: MemoryStore, member: Member) -> dict[str, object]:
    """Wait until ``member``'s record is in etcd again, bound to its lease; the record."""
    for _ in range(1000):
        kv = await store.get(KEYS.member(member.name))
        if kv is not None and kv.lease == member.lease_id:
            return json.loads(kv.value)  # type: ignore[no-any-return]
        await clock.advance(0.01)
    raise AssertionError(f"{member.name}'s record was not written back")


async def recovered(clock: FakeClock, a: Member, b: Member, old_epoch: int) -> Member:
    """Wait until exactly one of them is active again, at a new epoch; that one."""
    await clock.advance_until(lambda: len(actives(a, b)) == 1
                              and max(a.epoch, b.epoch) > old_epoch, 10, what="recovery")
    return a if a.role is Role.ACTIVE else b


@pytest.mark.parametrize("value", [b"garbage", b"", b"{}", b'{"member": 7}', b"[1,2]",
                                   b'{"member":"a","listen":"x"}', b"1e999999", b"[" * 5000])
async def test_garbage_in_the_active_key_stops_the_active_and_the_group_recovers(
        clock: FakeClock, store: MemoryStore, pair: tuple[Member, Member], value: bytes) -> None:
    a, b = pair
    await a.checkpoint.put("s", "k", b"1", ack=Ack.ONE)
    old = a.epoch
    await store.put(KEYS.active, value)  # no lease: it would never expire
    await clock.settle()
    assert a.role is not Role.ACTIVE  # stopped at once: it no longer holds the key
    with pytest.raises(NotActive):
        await a.checkpoint.put("s", "k", b"late")
    new = await recovered(clock, a, b, old)
    assert new.checkpoint.get("s", "k") == b"1"  # the acknowledged write survived
    kv = await store.get(KEYS.active)
    assert kv is not None and kv.lease == new.lease_id and kv.mod_revision == new.epoch
    assert (await group_status(store, "/vnfha", "vfw")).active == new.name


@pytest.mark.parametrize("who", ["b", "a", "nobody"])
async def test_a_record_not_bound_to_its_member_s_lease_is_replaced(
        clock: FakeClock, store: MemoryStore, pair: tuple[Member, Member], who: str) -> None:
    """A valid-looking record naming a member, written without a lease (etcdctl put)."""
    a, b = pair
    old = a.epoch
    record = ActiveRecord(who, "127.0.0.1:1", new_secret())
    await store.put(KEYS.active, record.encode())
    await recovered(clock, a, b, old)


async def test_a_record_bound_to_another_member_s_lease_is_replaced(
        clock: FakeClock, store: MemoryStore, pair: tuple[Member, Member]) -> None:
    """Names b, but is bound to a's lease (etcdctl put --lease=<a's>): b must not be taken for
    the active (it would wait for itself), and the group must not stall."""
    a, b = pair
    old = a.epoch
    await store.put(KEYS.active, ActiveRecord("b", b.listen, new_secret()).encode(),
                    lease=a.lease_id)
    await recovered(clock, a, b, old)


async def test_deleted_and_overwritten_member_records_are_written_back(
        clock: FakeClock, store: MemoryStore, pair: tuple[Member, Member]) -> None:
    a, b = pair
    await store.delete(KEYS.member("b"))
    await written_back(clock, store, b)
    # overwritten without a lease, and again at once: written back, at most once per TTL
    for _ in range(2):
        await store.put(KEYS.member("b"), MemberRecord("b", "2n", role="active").encode())
    assert (await written_back(clock, store, b))["role"] == "standby"
    assert a.role is Role.ACTIVE  # none of it deposed the active
    assert {m.member for m in (await group_status(store, "/vnfha", "vfw")).members} == {"a", "b"}


async def test_status_names_a_bad_active_key(store: MemoryStore) -> None:
    lease = (await store.grant(60)).id
    await store.put(KEYS.member("a"), MemberRecord("a", "2n").encode(), lease=lease)
    await store.put(KEYS.active, b"garbage")
    status = await group_status(store, "/vnfha", "vfw")
    assert status.active is None and status.epoch == 0
    assert status.active_problem is not None and "unreadable" in status.active_problem
    await store.put(KEYS.active, ActiveRecord("a", "x", new_secret()).encode(), lease=lease)
    status = await group_status(store, "/vnfha", "vfw")
    assert status.active == "a" and status.active_problem is None
