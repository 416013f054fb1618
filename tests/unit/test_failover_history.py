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
    read_history,
)
from vnfha.roles.keys import GroupKeys
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
