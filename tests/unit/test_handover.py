"""The pure handover module: choosing a successor (table-driven), and the transactions on the
active key, checked by what they do to an in-memory store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from vnfha.errors import ConfigError, SwitchoverError
from vnfha.model import Redundancy
from vnfha.roles.handover import (
    best_target,
    campaign_txn,
    choose_target,
    failing_target,
    refusal_ops,
    release_txn,
    sync_txn,
    write_probe_txn,
)
from vnfha.roles.keys import (
    ActiveRecord,
    GroupKeys,
    Handover,
    SwitchoverRequest,
    SwitchoverResult,
    SyncRecord,
)
from vnfha.roles.policy import GroupView, MemberInfo
from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock

KEYS = GroupKeys("/vnfha", "vfw")
A = MemberInfo("a", lease=1)
B = MemberInfo("b", lease=2)
C = MemberInfo("c", lease=3)


def view(*members: MemberInfo, me: str = "a") -> GroupView:
    return GroupView(me=me, my_lease=1, session_valid=True, redundancy=Redundancy.N_WAY,
                     members=members)


@pytest.mark.parametrize(
    ("v", "expected"),
    [
        (view(A), None),  # alone
        (view(A, B), "b"),
        (view(A, B, C), "b"),  # same rank otherwise: by name
        (view(A, B, MemberInfo("c", priority=5)), "c"),  # higher priority
        (view(A, B, MemberInfo("c", applied=(3, 9))), "c"),  # the most recent checkpoint
        (view(A, MemberInfo("b", no_failover=True), C), "c"),  # tagged no-failover
        (view(A, MemberInfo("b", in_sync=False), C), "c"),  # not in sync
        (view(A, MemberInfo("b", in_sync=False)), None),  # nobody may take over
        (view(MemberInfo("a", priority=9), B, me="a"), "b"),  # never this member itself
        (view(A, B, me="b"), "a"),
        # health: a healthy target first, whatever the positions (it catches up before the
        # release) or the priorities; a failing one only when no healthy one is left
        (view(A, MemberInfo("b", failing=True, priority=9, applied=(3, 9)), C), "c"),
        (view(A, MemberInfo("b", failing=True)), "b"),
    ],
)
def test_best_target(v: GroupView, expected: str | None) -> None:
    assert best_target(v) == expected


@pytest.mark.parametrize(("avoid", "expected"), [
    (frozenset(), "c"),
    (frozenset({"c"}), "b"),            # the best one is on the host under maintenance
    (frozenset({"b", "c"}), None),      # every candidate is: nobody
    (frozenset({"a", "x"}), "c"),       # avoiding this member itself, or a stranger: no change
])
def test_best_target_avoids(avoid: frozenset[str], expected: str | None) -> None:
    assert best_target(view(A, B, MemberInfo("c", priority=5)), avoid=avoid) == expected


@pytest.mark.parametrize(
    ("v", "to", "expected"),
    [
        (view(A, B, C), None, "b"),
        (view(A, B, C), "c", "c"),  # asked for, even if ranked lower
        (view(A, B, MemberInfo("c", priority=5)), "b", "b"),
    ],
)
def test_choose_target_accepts(v: GroupView, to: str | None, expected: str) -> None:
    assert choose_target(v, to, "vfw") == expected


@pytest.mark.parametrize(
    ("v", "to", "problem"),
    [
        (view(A), None, "no eligible standby"),
        (view(A, MemberInfo("b", no_failover=True)), None, "no eligible standby"),
        (view(A, B), "a", "that member is already active"),
        (view(A, B), "z", "no such member in the group"),
        (view(A, MemberInfo("b", no_failover=True)), "b", "that member is tagged no-failover"),
        (view(A, MemberInfo("b", in_sync=False), C), "b", "that member is not in sync"),
        (view(A, MemberInfo("b", failing=True), C), "b", "that member's health checks are "
                                                         "failing (force the switchover to "
                                                         "hand over anyway)"),
    ],
)
def test_choose_target_refuses_with_the_reason(v: GroupView, to: str | None,
                                               problem: str) -> None:
    with pytest.raises(SwitchoverError) as e:
        choose_target(v, to, "vfw")
    assert (e.value.group, e.value.target, e.value.problem) == ("vfw", to, problem)


def test_choose_target_refuses_a_bad_name() -> None:
    with pytest.raises(ConfigError, match="to"):
        choose_target(view(A, B), "Not A Name", "vfw")


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore(FakeClock()) as s:
        yield s


async def campaign(store: MemoryStore, name: str, replace_epoch: int = 0) -> tuple[bool, int]:
    lease = (await store.grant(10)).id
    res = await store.txn(*campaign_txn(KEYS, ActiveRecord(name, f"{name}:1"), lease,
                                        replace_epoch))
    return res.succeeded, lease


async def test_campaign_creates_the_key_once_clears_the_hint_and_resets_sync(
        store: MemoryStore) -> None:
    await store.put(KEYS.handover, Handover("a", "old", 3).encode())
    await store.put(KEYS.sync, SyncRecord("old", (("b", 7),)).encode())
    won, lease = await campaign(store, "a")
    assert won
    kv = await store.get(KEYS.active)
    assert kv is not None and kv.lease == lease
    assert ActiveRecord.decode(kv.value) == ActiveRecord("a", "a:1")
    assert await store.get(KEYS.handover) is None
    sync = await store.get(KEYS.sync)
    assert sync is not None and SyncRecord.decode(sync.value) == SyncRecord("a")
    assert (await campaign(store, "b"))[0] is False  # the key exists: nobody else wins
    assert (await store.get(KEYS.active)) == kv


async def test_takeover_replaces_only_the_dead_epoch(store: MemoryStore) -> None:
    await campaign(store, "a")
    kv = await store.get(KEYS.active)
    assert kv is not None
    assert (await campaign(store, "b", replace_epoch=kv.mod_revision - 1))[0] is False
    won, lease = await campaign(store, "b", replace_epoch=kv.mod_revision)
    new = await store.get(KEYS.active)
    assert won and new is not None and new.lease == lease and new.mod_revision > kv.mod_revision


@pytest.mark.parametrize(
    ("target", "request_id"),
    [(None, None), ("b", None), ("b", "r1"), (None, "r2")],
)
async def test_release_by_the_holder(store: MemoryStore, target: str | None,
                                     request_id: str | None) -> None:
    _, lease = await campaign(store, "a")
    kv = await store.get(KEYS.active)
    assert kv is not None
    epoch = kv.mod_revision
    request = None
    if request_id is not None:
        request = SwitchoverRequest(request_id, target)
        await store.put(KEYS.switchover_request, request.encode())
    res = await store.txn(*release_txn(KEYS, "a", epoch, lease, target=target, reason="why",
                                       request=request, kind="switchover"))
    assert res.succeeded
    assert await store.get(KEYS.active) is None
    hint = await store.get(KEYS.handover)  # always written: it says a stopped acting
    assert hint is not None and Handover.decode(hint.value) == \
        Handover(target or "", "a", epoch, "switchover", "why")  # why, for the history
    answer = await store.get(KEYS.switchover_result)
    if request_id is None:
        assert answer is None
    else:
        assert await store.get(KEYS.switchover_request) is None
        assert answer is not None and SwitchoverResult.decode(answer.value) == \
            SwitchoverResult(request_id, True, "why", "a", target or "", epoch)


@pytest.mark.parametrize("stale", ["epoch", "lease"])
async def test_release_and_sync_of_a_deposed_active_change_nothing(store: MemoryStore,
                                                                   stale: str) -> None:
    _, lease = await campaign(store, "a")
    kv = await store.get(KEYS.active)
    assert kv is not None
    epoch = kv.mod_revision - 1 if stale == "epoch" else kv.mod_revision
    lease = lease + 1 if stale == "lease" else lease
    before = store.revision
    release = await store.txn(*release_txn(KEYS, "a", epoch, lease, target="b", reason="x"))
    sync = await store.txn(*sync_txn(KEYS, "a", epoch, lease, (("b", 2),)))
    assert not release.succeeded and not sync.succeeded
    assert store.revision == before and await store.get(KEYS.active) == kv


async def test_sync_by_the_holder_publishes_the_set(store: MemoryStore) -> None:
    _, lease = await campaign(store, "a")
    kv = await store.get(KEYS.active)
    assert kv is not None
    res = await store.txn(*sync_txn(KEYS, "a", kv.mod_revision, lease, (("b", 2), ("c", 3))))
    sync = await store.get(KEYS.sync)
    assert res.succeeded and sync is not None
    assert SyncRecord.decode(sync.value) == SyncRecord("a", (("b", 2), ("c", 3)))


async def test_refusal_consumes_the_request_and_says_why(store: MemoryStore) -> None:
    request = SwitchoverRequest("r9", "z")
    await store.put(KEYS.switchover_request, request.encode())
    res = await store.txn([], refusal_ops(KEYS, request, "no such member", "a", 12))
    answer = await store.get(KEYS.switchover_result)
    assert res.succeeded and await store.get(KEYS.switchover_request) is None
    assert answer is not None and SwitchoverResult.decode(answer.value) == \
        SwitchoverResult("r9", False, "no such member", "a", "z", 12)


@pytest.mark.parametrize("hint", [None, b"old hint"])
async def test_the_write_probe_changes_nothing(store: MemoryStore, hint: bytes | None) -> None:
    if hint is not None:
        await store.put(KEYS.handover, hint)
    before = store.revision
    compares, ops = write_probe_txn(KEYS)
    result = await store.txn(compares, ops)
    assert not result.succeeded and result.responses == ()
    assert store.revision == before
    kv = await store.get(KEYS.handover)
    assert (kv.value if kv is not None else None) == hint
    assert ops, "it must write, or etcd's quota would let it through"


def test_a_failing_target_is_accepted_with_force_and_warned_about() -> None:
    v = view(A, MemberInfo("b", failing=True), C)
    assert choose_target(v, "b", "vfw", force=True) == "b"
    assert "health checks are failing" in (failing_target(v, "b") or "")
    assert failing_target(v, "c") is None
    assert failing_target(v, "zz") is None


def test_a_switchover_request_carries_force_and_old_requests_do_not() -> None:
    request = SwitchoverRequest("r1", "b", force=True)
    assert SwitchoverRequest.decode(request.encode()) == request
    assert SwitchoverRequest.decode(b'{"id": "r2", "to": "b"}').force is False
    assert SwitchoverRequest.decode(b'{"id": "r3", "force": "yes"}').force is False


def test_nothing_is_handed_over_in_a_paused_group_nor_to_a_locked_member() -> None:
    paused = GroupView(me="a", my_lease=1, session_valid=True, redundancy=Redundancy.N_WAY,
                       members=(A, B), paused=True)
    with pytest.raises(SwitchoverError, match="paused"):
        choose_target(paused, None, "vfw")
    locked = view(A, MemberInfo("b", locked=True), C)
    assert best_target(locked) == "c"
    with pytest.raises(SwitchoverError, match="locked by an operator"):
        choose_target(locked, "b", "vfw")
