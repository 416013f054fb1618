"""The invariant checker (vnfha.testing.history) on handcrafted histories: for each of I1-I8 one
history that holds and at least one that breaks it, plus generated standby logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.testing.history import (
    Acted,
    BatchApplied,
    CallbackStarted,
    Exited,
    Fault,
    Frozen,
    Record,
    RoleSeen,
    StateFound,
    Violation,
    WriteAcked,
    check,
    count,
    parse,
)

Histories = Mapping[str, Sequence[Record]]


def only(invariant: str, histories: Histories, *, budget_s: float = 1.0,
         faults: Sequence[Fault] = (), end: float | None = None) -> list[Violation]:
    found = check(histories, budget_s=budget_s, faults=faults, end=end)
    return [v for v in found if v.invariant == invariant]


def failover(*, found_upto: int = 9, b_acts_at: float = 3.0) -> dict[str, list[Record]]:
    """a active in epoch 5 writes 0..9 (acked by b), b takes over in epoch 8 at t=2.5; a,
    deposed at 2.0, runs on_standby."""
    a: list[Record] = [RoleSeen(1.0, "active", 5), Acted(1.1, 5)]
    a += [WriteAcked(1.2 + i / 100, 1.19 + i / 100, 5, "w1", i, True) for i in range(10)]
    a += [RoleSeen(2.0, "quiesced", 5), CallbackStarted(2.01, "on_standby", 5),
          RoleSeen(2.6, "standby", 8), CallbackStarted(2.61, "on_standby", 8)]
    b: list[Record] = [RoleSeen(1.05, "standby", 5),
                       BatchApplied(1.3, 5, 1, 10),
                       RoleSeen(2.5, "active", 8),
                       StateFound(2.55, 8, {"w1": found_upto}),
                       Acted(b_acts_at, 8)]
    return {"a": a, "b": b}


def test_a_clean_failover_breaks_nothing() -> None:
    assert check(failover(), budget_s=1.0, faults=[Fault(1.9, 1.9, "kill")], end=4.0) == []
    assert count([]) == {f"I{i}": 0 for i in range(1, 9)}


# -- I1 ------------------------------------------------------------------------------------------


def test_i1_a_standby_applying_below_the_epoch_etcd_showed_it_is_a_violation() -> None:
    ok = {"b": [RoleSeen(1.0, "standby", 7), BatchApplied(1.1, 7, 1, 3)]}
    assert only("I1", ok) == []
    bad = {"b": [RoleSeen(1.0, "standby", 7), BatchApplied(1.1, 5, 4, 6)]}
    [v] = only("I1", bad)
    assert (v.member, v.t_mono, v.epochs, v.sequences) == ("b", 1.1, (5, 7), (4, 6))
    assert only("I2", bad) == []  # it had not applied epoch 7 yet: no interleaving


def test_i1_and_i2_going_back_to_an_older_epoch_breaks_both() -> None:
    bad = {"b": [BatchApplied(1.0, 5, 1, 2), BatchApplied(1.1, 7, 1, 1),
                 BatchApplied(1.2, 5, 3, 3)]}
    assert [v.epochs for v in only("I1", bad)] == [(5, 7)]
    assert [v.epochs for v in only("I2", bad)] == [(5, 7)]


# -- I2 ------------------------------------------------------------------------------------------


def test_i2_an_old_active_acting_after_the_new_one_started_is_a_violation() -> None:
    h = failover()
    assert only("I2", h) == []
    late = failover()
    late["a"].append(Acted(3.5, 5))  # after b's first act, at 3.0
    [v] = only("I2", late)
    assert (v.member, v.t_mono, v.epochs) == ("a", 3.5, (5, 8))


def test_i2_a_write_counts_from_when_it_was_issued_not_when_it_returned() -> None:
    h = failover(b_acts_at=2.6)
    h["a"].append(WriteAcked(2.7, 1.95, 5, "w1", 10, True))  # issued before b acted
    assert only("I2", h) == []
    h["a"].append(WriteAcked(2.8, 2.65, 5, "w1", 11, True))  # issued after
    [v] = only("I2", h)
    assert v.t_mono == 2.65 and v.epochs == (5, 8)


def test_i2_each_late_member_epoch_is_reported_once() -> None:
    h = failover()
    h["a"] += [Acted(3.5 + i, 5) for i in range(5)]
    assert len(only("I2", h)) == 1


# -- I3 ------------------------------------------------------------------------------------------


def test_i3_an_acknowledged_write_missing_at_the_next_active_is_a_violation() -> None:
    assert only("I3", failover(found_upto=9)) == []
    [v] = only("I3", failover(found_upto=6))
    assert (v.member, v.epochs, v.sequences) == ("b", (5, 8), (6, 9))
    assert "3 lost" in v.detail


def test_i3_unprotected_writes_may_be_lost() -> None:
    h = failover(found_upto=9)
    h["a"].append(WriteAcked(1.5, 1.5, 5, "w1", 20, False))
    assert only("I3", h) == []


def test_i3_a_successor_that_reports_no_state_cannot_be_checked_and_says_so() -> None:
    h = failover()
    h["b"] = [r for r in h["b"] if not isinstance(r, StateFound)]
    [v] = only("I3", h)
    assert "no state found" in v.detail


def test_i3_without_a_failover_there_is_nothing_to_lose() -> None:
    h = {"a": [RoleSeen(1.0, "active", 5), WriteAcked(1.2, 1.1, 5, "w1", 0, True)]}
    assert only("I3", h) == []


# -- I4 ------------------------------------------------------------------------------------------


def test_i4_in_order_batches_and_snapshots_pass() -> None:
    h = {"b": [BatchApplied(1.0, 5, 1, 3), BatchApplied(1.1, 5, 4, 4),
               BatchApplied(1.2, 5, 40, 40, snapshot=True), BatchApplied(1.3, 5, 41, 50),
               BatchApplied(1.4, 8, 1, 2)]}
    assert check(h, budget_s=1.0) == []


def test_i4_a_gap_is_a_violation() -> None:
    [v] = only("I4", {"b": [BatchApplied(1.0, 5, 1, 3), BatchApplied(1.1, 5, 5, 6)]})
    assert (v.epochs, v.sequences) == ((5,), (5, 6)) and "gap" in v.detail


def test_i4_a_duplicate_is_a_violation() -> None:
    [v] = only("I4", {"b": [BatchApplied(1.0, 5, 1, 3), BatchApplied(1.1, 5, 3, 4)]})
    assert "duplicate" in v.detail and v.sequences == (3, 4)


def test_i4_a_new_epoch_without_a_snapshot_starts_at_one() -> None:
    [v] = only("I4", {"b": [BatchApplied(1.0, 5, 1, 3), BatchApplied(1.1, 8, 2, 2)]})
    assert v.epochs == (8,)


@st.composite
def standby_log(draw: st.DrawFn) -> list[BatchApplied]:
    """A valid standby log: epochs rising, each epoch's sequences cut into batches, sometimes
    a snapshot that jumps ahead."""
    out: list[BatchApplied] = []
    t, epoch = 1.0, 0
    for _ in range(draw(st.integers(1, 4))):
        epoch += draw(st.integers(1, 50))
        seq = 0
        for size in draw(st.lists(st.integers(1, 20), min_size=1, max_size=15)):
            t += 0.01
            if draw(st.booleans()) and draw(st.booleans()):
                seq += draw(st.integers(1, 100))
                out.append(BatchApplied(t, epoch, seq, seq, snapshot=True))
            else:
                out.append(BatchApplied(t, epoch, seq + 1, seq + size))
                seq += size
    return out


@given(standby_log())
def test_i4_generated_valid_logs_pass(log: list[BatchApplied]) -> None:
    assert check({"b": log}, budget_s=1.0) == []


@given(standby_log(), st.data())
def test_i4_dropping_or_repeating_a_batch_is_caught(log: list[BatchApplied],
                                                    data: st.DataObject) -> None:
    deltas = [i for i, b in enumerate(log) if not b.snapshot]
    # a batch followed by another delta batch of its epoch: dropping it leaves a gap
    droppable = [i for i in deltas if i + 1 < len(log) and not log[i + 1].snapshot
                 and log[i + 1].epoch == log[i].epoch]
    if droppable:
        i = data.draw(st.sampled_from(droppable))
        assert only("I4", {"b": log[:i] + log[i + 1:]})
    i = data.draw(st.sampled_from(deltas)) if deltas else None
    if i is not None:
        again = BatchApplied(log[i].t_mono + 0.001, log[i].epoch, log[i].first, log[i].last)
        later = [BatchApplied(b.t_mono + 0.001, b.epoch, b.first, b.last, b.snapshot)
                 for b in log[i + 1:]]
        assert only("I4", {"b": [*log[:i + 1], again, *later]})


# -- I5 ------------------------------------------------------------------------------------------


def test_i5_a_new_active_with_a_lower_or_equal_epoch_is_a_violation() -> None:
    assert only("I5", failover()) == []
    same = {"a": [RoleSeen(1.0, "active", 5)], "b": [RoleSeen(2.0, "active", 5)]}
    [v] = only("I5", same)
    assert (v.member, v.epochs) == ("b", (5, 5))
    lower = {"a": [RoleSeen(1.0, "active", 9)], "b": [RoleSeen(2.0, "active", 7)]}
    assert [v.epochs for v in only("I5", lower)] == [(7, 9)]


def test_i5_the_same_grant_reported_twice_is_not_a_change() -> None:
    h = {"a": [RoleSeen(1.0, "active", 5), RoleSeen(1.5, "quiesced", 5),
               RoleSeen(1.6, "active", 5)]}
    assert only("I5", h) == []


@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=12, unique=True))
def test_i5_grants_in_rising_epoch_order_pass_and_any_other_order_fails(
        epochs: list[int]) -> None:
    def grants(order: list[int]) -> Histories:
        return {f"m{i}": [RoleSeen(float(i), "active", e)] for i, e in enumerate(order)}

    assert only("I5", grants(sorted(epochs))) == []
    if sorted(epochs) != epochs:
        assert only("I5", grants(epochs))


# -- I6 ------------------------------------------------------------------------------------------


def test_i6_one_active_within_the_budget_after_the_heal() -> None:
    h = failover()
    assert only("I6", h, faults=[Fault(1.9, 2.0)], end=5.0, budget_s=1.0) == []


def test_i6_no_active_after_the_budget_is_a_violation() -> None:
    h = failover()
    h["b"].append(Exited(3.2, "killed"))
    [v] = only("I6", h, faults=[Fault(1.9, 2.0)], end=5.0, budget_s=1.0)
    assert v.t_mono == 3.2 and v.member == "-"


def test_i6_two_actives_after_the_budget_is_a_violation() -> None:
    h = failover()
    h["a"] = [r for r in h["a"] if not isinstance(r, RoleSeen) or r.role == "active"]
    [v] = only("I6", h, faults=[Fault(1.9, 2.0)], end=5.0, budget_s=1.0)
    assert v.member == "a,b" and v.t_mono == 3.0


def test_i6_a_takeover_slower_than_the_budget_is_a_violation() -> None:
    # a steps down at 2.0 and b takes over at 2.5: too late for a 0.3 s budget
    [v] = only("I6", failover(), faults=[Fault(2.0, 2.0)], end=5.0, budget_s=0.3)
    assert v.t_mono == 2.3 and "0 active" in v.detail


def test_i6_needs_a_history_that_covers_the_budget() -> None:
    [v] = only("I6", failover(), faults=[Fault(1.9, 2.0)], end=2.5, budget_s=1.0)
    assert "too short" in v.detail
    h = failover()
    [v] = only("I6", h, faults=[Fault(1.9, 2.0), Fault(2.2, 2.2)], end=9.0, budget_s=1.0)
    assert "next fault" in v.detail


def test_i6_a_later_fault_ends_the_window_of_the_earlier_one() -> None:
    h = failover()
    h["b"].append(Exited(4.0, "killed"))
    faults = [Fault(1.9, 2.0), Fault(3.9, 3.9)]  # b's kill is the second fault
    assert [v.t_mono for v in only("I6", h, faults=faults, end=6.0, budget_s=1.0)] == [4.9]


# -- I7 ------------------------------------------------------------------------------------------

LOSS = Fault(1.9, 2.4, "30% loss", expect_failover=False)
KILL = Fault(1.9, 1.9, "kill")


@pytest.mark.parametrize(("faults", "caught"), [
    pytest.param([KILL], "", id="a fault asking for the failover"),
    pytest.param([LOSS, KILL], "", id="below-threshold and asking faults together"),
    pytest.param([], "with no fault injected", id="a failover nobody asked for"),
    pytest.param([LOSS], "below the detection threshold (30% loss)",
                 id="a failover under a below-threshold fault"),
    pytest.param([Fault(0.5, 0.5, "kill before a's grant")], "with no fault injected",
                 id="a fault before the previous grant does not count"),
    pytest.param([Fault(2.7, 2.7, "kill after b's grant")], "with no fault injected",
                 id="a fault after the grant does not count"),
])
def test_i7_a_change_of_active_needs_a_fault_asking_for_it(faults: list[Fault],
                                                           caught: str) -> None:
    found = only("I7", failover(), faults=faults, end=9.0)
    if not caught:
        assert found == []
    else:
        [v] = found
        assert (v.member, v.t_mono, v.epochs) == ("b", 2.5, (5, 8))
        assert caught in v.detail


@pytest.mark.parametrize(("histories", "flagged"), [
    pytest.param({"a": [RoleSeen(1.0, "active", 5)], "b": [RoleSeen(1.1, "standby", 5)]}, [],
                 id="the first grant is no change"),
    pytest.param({"a": [RoleSeen(1.0, "active", 5), RoleSeen(1.5, "quiesced", 5),
                        RoleSeen(1.6, "active", 5)]}, [],
                 id="the same grant reported again is no change"),
    pytest.param({"a": [RoleSeen(1.6, "active", 5), RoleSeen(2.0, "quiesced", 5),
                        RoleSeen(2.1, "active", 9)]}, [("a", (5, 9))],
                 id="the same member granted a new epoch is a change"),
    pytest.param({"a": [RoleSeen(1.0, "active", 5)], "b": [RoleSeen(2.0, "active", 7)],
                  "c": [RoleSeen(3.0, "active", 9)]}, [("c", (7, 9))],
                 id="one fault answers one change only"),
])
def test_i7_which_grants_are_changes_of_active(histories: Histories,
                                               flagged: list[tuple[str, tuple[int, ...]]]) -> None:
    faults = [LOSS, Fault(1.5, 1.5, "kill a")]  # only the kill, between 1.0 and 2.0, asks
    assert [(v.member, v.epochs) for v in only("I7", histories, faults=faults)] == flagged


# -- I8 ------------------------------------------------------------------------------------------


def active_then(*after: Record, epoch: int = 5) -> list[Record]:
    """A member active in ``epoch`` from t=1.0, then ``after``."""
    return [RoleSeen(1.0, "active", epoch), CallbackStarted(1.01, "on_active", epoch), *after]


DEPOSED = RoleSeen(2.0, "quiesced", 5)
TAKEOVER = [RoleSeen(0.5, "standby", 5), RoleSeen(2.5, "active", 8)]


@pytest.mark.parametrize(("a", "caught"), [
    pytest.param(active_then(DEPOSED, CallbackStarted(2.01, "on_standby", 5),
                             RoleSeen(2.6, "standby", 8)), "", id="deposed, runs on_standby"),
    pytest.param(active_then(RoleSeen(2.0, "quiesced", 5), CallbackStarted(2.01, "on_quiesce", 0),
                             RoleSeen(2.6, "standby", 8), CallbackStarted(2.61, "on_standby", 8)),
                 "", id="switchover, runs on_quiesce"),
    pytest.param(active_then(DEPOSED, RoleSeen(2.6, "standby", 8),
                             CallbackStarted(2.61, "on_standby", 8)), "",
                 id="deposed, on_standby only as the new standby"),
    pytest.param([RoleSeen(1.0, "active", 5), DEPOSED, CallbackStarted(2.01, "on_active", 5),
                  CallbackStarted(2.02, "on_standby", 5)], "",
                 id="the queued on_active of the grant it left runs first"),
    pytest.param(active_then(DEPOSED, Exited(2.01, "killed")), "", id="killed before the callback"),
    pytest.param(active_then(Frozen(1.5, frozen=True)), "", id="frozen when the history ends"),
    pytest.param(active_then(Exited(3.0, "killed")), "", id="killed while active"),
    pytest.param(active_then(DEPOSED, RoleSeen(2.6, "standby", 8), Acted(3.0, 8)),
                 "never ran on_quiesce or on_standby", id="deposed, no callback"),
    pytest.param([RoleSeen(0.1, "standby", 3), RoleSeen(1.0, "active", 5), DEPOSED,
                  CallbackStarted(2.01, "on_standby", 3)],
                 "never ran on_quiesce or on_standby", id="a stale on_standby does not count"),
    pytest.param(active_then(DEPOSED, RoleSeen(2.6, "standby", 8), RoleSeen(4.0, "active", 11),
                             CallbackStarted(4.01, "on_active", 11),
                             CallbackStarted(4.02, "on_standby", 11)),
                 "started on_active for epoch 11", id="active again before the callback"),
    pytest.param(active_then(), "still active in epoch 5", id="never left after the takeover"),
    pytest.param(active_then(Frozen(1.5, frozen=True), Frozen(3.0, frozen=False)),
                 "still active in epoch 5", id="resumed, never left"),
    pytest.param(active_then(DEPOSED, Frozen(2.005, frozen=True), Frozen(3.0, frozen=False)),
                 "never ran", id="resumed after leaving, no callback"),
    pytest.param(active_then(Exited(3.0, "stopped")), "exited (stopped) while active",
                 id="stopped cleanly without leaving"),
    pytest.param(active_then(DEPOSED, Exited(3.0, "stopped")), "never ran",
                 id="stopped cleanly, callback never started"),
])
def test_i8_a_member_that_stops_being_active_runs_its_callback(a: list[Record],
                                                                caught: str) -> None:
    found = [v for v in only("I8", {"a": a, "b": TAKEOVER}) if v.member == "a"]
    if not caught:
        assert found == []
    else:
        [v] = found
        assert v.member == "a" and v.epochs[0] == 5 and caught in v.detail, v


def test_i8_an_active_nobody_deposed_owes_nothing() -> None:
    assert only("I8", {"a": active_then(), "b": [RoleSeen(1.5, "standby", 5)]}) == []
    # another member's older grant does not depose it
    assert only("I8", {"a": active_then(epoch=9), "b": TAKEOVER}) == []


# -- parsing member_proc's events ----------------------------------------------------------------


def test_parse_reads_member_proc_events_in_time_order() -> None:
    events = [
        {"event": "acked", "t_mono": 2.0, "t_start_mono": 1.9, "epoch": 5, "section": "w1",
         "index": 3, "protected": True, "first": False},
        {"event": "role", "t_mono": 1.0, "role": "active", "previous": "standby", "epoch": 5,
         "reason": "won"},
        {"event": "applied", "t_mono": 1.5, "epoch": 4, "first": 1, "last": 3,
         "snapshot": False},
        {"event": "checkpoint", "t_mono": 1.1, "epoch": 5, "count": 0, "found": {"w1": 2}},
        {"event": "act", "t_mono": 1.2, "epoch": 5},
        {"event": "killed", "t_mono": 3.0},
        {"event": "status", "t_mono": 1.3, "role": "active"},
        {"event": "callback", "t_mono": 1.05, "name": "on_active", "epoch": 5},
        {"event": "paused", "t_mono": 2.5},
        {"event": "resumed", "t_mono": 2.6},
        {"event": "role", "t": 0.5, "role": "active", "epoch": 1},  # no t_mono: skipped
    ]
    assert parse(events) == [
        RoleSeen(1.0, "active", 5), CallbackStarted(1.05, "on_active", 5),
        StateFound(1.1, 5, {"w1": 2}), Acted(1.2, 5), BatchApplied(1.5, 4, 1, 3),
        WriteAcked(2.0, 1.9, 5, "w1", 3, True), Frozen(2.5, frozen=True),
        Frozen(2.6, frozen=False), Exited(3.0, "killed"),
    ]
