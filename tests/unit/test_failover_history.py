"""The failover history's pure parts (issue 16, item 3): the cause of a change of active, the
timeline in milliseconds, the stored record; and the reader's tolerance of bad records."""

from __future__ import annotations

import pytest

from vnfha.roles.history import (
    MAX_REASON,
    Cause,
    FailoverRecord,
    Timeline,
    cause_of,
    key_gone_timeline,
    read_history,
)
from vnfha.roles.keys import GroupKeys, GroupState, Handover, MemberRecord
from vnfha.roles.poison import FAILURE_CAUSES
from vnfha.roles.policy import ActiveInfo
from vnfha.store.memory import MemoryStore


@pytest.mark.parametrize(("kwargs", "cause"), [
    ({"evidence": "127.0.0.1:4242 refused the connection"}, Cause.CRASH),
    ({"evidence": "fenced by the NFVI bridge: powered off"}, Cause.FENCE),
    ({"evidence": "the lease deadline of vfw-a passed (etcd said TTL <= 0)"}, Cause.LEASE),
    ({"handover_kind": "switchover", "handover_reason": "switchover to b"}, Cause.SWITCHOVER),
    ({"handover_kind": "switchover", "handover_reason": "locked by an operator: handing over "
      "to b"}, Cause.LOCK),
    ({"handover_kind": "stopped", "handover_reason": "stopping"}, Cause.STOP),
    ({"handover_kind": "fault", "handover_reason": "failover 1 of 2"}, Cause.LADDER),
    ({"bad_key": True, "evidence": "x refused the connection"}, Cause.BAD_KEY),
    ({"previous": False}, Cause.ELECTION),
    ({}, Cause.LEASE),  # an active existed and its key went without a word: it expired
])
def test_cause_of(kwargs: dict[str, object], cause: Cause) -> None:
    assert cause_of(**kwargs) is cause  # type: ignore[arg-type]


def test_the_timeline_is_in_ms_after_the_fault_was_noticed_in_step_order() -> None:
    t = Timeline(noticed=10.0, proof=10.05, key_taken=10.0512, on_active=10.2)
    assert t.milliseconds() == {"proof": 50.0, "key_taken": 51.2, "on_active": 200.0}
    assert list(t.milliseconds()) == ["proof", "key_taken", "on_active"]


def test_a_record_round_trips_with_its_reason_cut() -> None:
    record = FailoverRecord(epoch=9, to_member="b", from_member="a", from_epoch=3,
                            cause="crash", at=1.5, reason="x" * 500,
                            timeline_ms={"first_write": 9.0, "proof": 1.0})
    back = FailoverRecord.decode(record.encode())
    assert back.reason == "x" * MAX_REASON and list(back.timeline_ms) == ["proof", "first_write"]
    assert (back.epoch, back.from_epoch, back.cause) == (9, 3, "crash")


async def test_unreadable_records_are_skipped_newest_first(store: MemoryStore) -> None:
    keys = GroupKeys("/vnfha", "vfw")
    for epoch in (3, 12, 7):
        await store.put(keys.history_entry(epoch), FailoverRecord(epoch, "a").encode())
    await store.put(keys.history_entry(8), b"{not json")
    await store.put(keys.history_entry(9), b'{"epoch": 9}')  # no "to"
    assert [r.epoch for r in await read_history(store, keys)] == [12, 7, 3]


KEYS_B = GroupKeys("/vnfha", "g")


def _state_after_delete(*, holder_record_kept: bool, hint: Handover | None = None) -> GroupState:
    state = GroupState(KEYS_B)
    state.last_active = ActiveInfo("a", 0x11, 7)
    if holder_record_kept:
        state.members["a"] = (MemberRecord(member="a", redundancy="2n", role="active"), 0x11)
    state.handover = hint
    return state


def test_a_deleted_key_whose_holder_still_lives_is_no_failure_of_it() -> None:
    """An expiry deletes the holder's member record in the same revision (one lease): a key
    gone while the record stays was deleted by someone, which starts no probation."""
    deleted = key_gone_timeline(_state_after_delete(holder_record_kept=True), 5.0)
    assert (deleted.cause, deleted.from_member, deleted.from_epoch) == (Cause.DELETED, "a", 7)
    assert deleted.cause.value not in FAILURE_CAUSES
    expired = key_gone_timeline(_state_after_delete(holder_record_kept=False), 5.0)
    assert expired.cause is Cause.LEASE and expired.cause.value in FAILURE_CAUSES
    handed = key_gone_timeline(_state_after_delete(
        holder_record_kept=True, hint=Handover("b", "a", 7, "switchover", "switchover to b")), 5.0)
    assert handed.cause is Cause.SWITCHOVER
