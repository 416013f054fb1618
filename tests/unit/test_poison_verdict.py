"""Poisoned-state protection, the pure parts: the verdict (:mod:`vnfha.roles.poison`) over any
history of takeovers and failures on a fake clock, and the undo log's rollback
(:mod:`vnfha.replication.undo`), both with hypothesis."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnfha.replication.state import Change, CheckpointData
from vnfha.replication.undo import UndoLog
from vnfha.roles.keys import ActiveRecord, new_secret
from vnfha.roles.poison import (
    FAILURE_CAUSES,
    PoisonPolicy,
    PoisonSettings,
    Probation,
    Verdict,
    judge,
)

ROLLBACK = PoisonSettings(PoisonPolicy.ROLLBACK, probation_s=30.0, window_s=10.0)
HOLD = PoisonSettings(PoisonPolicy.HOLD, probation_s=30.0, window_s=10.0)
OFF = PoisonSettings(PoisonPolicy.OFF, probation_s=30.0, window_s=10.0)
T0 = 1_800_000_000.0


class Wall:
    """A fake wall clock, moved by hand."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the verdict, case by case -------------------------------------------------------------------


def test_a_first_failure_starts_probation_and_takes_over() -> None:
    j = judge(ROLLBACK, previous=None, cause="crash", now=T0, undo_since=T0 - 100)
    assert j.verdict is Verdict.TAKE_OVER
    assert j.probation == Probation(since=T0, first_failure=T0)


@pytest.mark.parametrize("cause", ["switchover", "lock", "stop", "election", "bad-key", ""])
def test_no_probation_after_a_handover_or_an_election(cause: str) -> None:
    previous = Probation(since=T0, first_failure=T0)
    j = judge(ROLLBACK, previous=previous, cause=cause, now=T0 + 1, undo_since=T0 - 100)
    assert (j.verdict, j.probation) == (Verdict.TAKE_OVER, None)


@pytest.mark.parametrize("cause", sorted(FAILURE_CAUSES))
def test_a_failure_in_probation_rolls_back_to_the_window_before_the_first_failure(
        cause: str) -> None:
    previous = Probation(since=T0 + 0.05, first_failure=T0 + 0.05)
    j = judge(ROLLBACK, previous=previous, cause=cause, now=T0 + 2, undo_since=T0 - 100)
    assert j.verdict is Verdict.ROLLBACK
    assert j.cutoff == pytest.approx(T0 + 0.05 - 10.0)
    assert j.probation == Probation(since=T0 + 2, first_failure=T0 + 0.05, failures=2,
                                    rolled_back=True)
    assert "probation" in j.reason and "rolling back" in j.reason


def test_a_failure_after_probation_starts_a_new_chain() -> None:
    previous = Probation(since=T0, first_failure=T0 - 5, failures=2, rolled_back=True)
    j = judge(ROLLBACK, previous=previous, cause="crash", now=T0 + 30.5, undo_since=T0)
    assert j.verdict is Verdict.TAKE_OVER
    assert j.probation == Probation(since=T0 + 30.5, first_failure=T0 + 30.5)


def test_a_failure_in_probation_after_a_rollback_holds() -> None:
    previous = Probation(since=T0 + 3, first_failure=T0, failures=2, rolled_back=True)
    j = judge(ROLLBACK, previous=previous, cause="fence", now=T0 + 4, undo_since=T0 - 100)
    assert (j.verdict, j.probation, j.cutoff) == (Verdict.HOLD, None, None)
    assert "already been rolled back" in j.reason


def test_hold_policy_holds_at_the_first_failure_in_probation() -> None:
    previous = Probation(since=T0, first_failure=T0)
    j = judge(HOLD, previous=previous, cause="crash", now=T0 + 1, undo_since=None)
    assert j.verdict is Verdict.HOLD and "poison_policy is hold" in j.reason


def test_off_policy_always_takes_over() -> None:
    previous = Probation(since=T0, first_failure=T0)
    assert judge(OFF, previous=previous, cause="crash", now=T0 + 1,
                 undo_since=None).verdict is Verdict.TAKE_OVER


@pytest.mark.parametrize("undo_since", [None, T0 - 9.0])
def test_a_rollback_that_cannot_be_done_whole_holds(undo_since: float | None) -> None:
    previous = Probation(since=T0, first_failure=T0)  # cutoff T0 - 10
    j = judge(ROLLBACK, previous=previous, cause="crash", now=T0 + 1, undo_since=undo_since)
    assert j.verdict is Verdict.HOLD and "cannot be done whole" in j.reason


# -- the verdict over any history ------------------------------------------------------------------

Event = tuple[float, str]
"""(seconds after the previous takeover, the cause that ended that active)."""

events = st.lists(st.tuples(st.floats(0.0, 80.0), st.sampled_from(
    sorted(FAILURE_CAUSES | {"switchover", "stop", "lock"}))), min_size=1, max_size=30)


def run_group(policy: PoisonSettings, history: list[Event], undo_reach_s: float = 1e9
              ) -> list[tuple[float, Verdict, Probation | None]]:
    """Each successor's verdict along ``history`` on a fake clock; a hold ends the run (only
    an operator goes on from there)."""
    clock = Wall(T0)
    previous: Probation | None = None
    out = []
    for gap, cause in history:
        clock.advance(gap)
        now = clock()
        j = judge(policy, previous=previous, cause=cause, now=now, undo_since=now - undo_reach_s)
        out.append((now, j.verdict, j.probation))
        if j.verdict is Verdict.HOLD:
            break
        previous = j.probation
    return out


@settings(max_examples=300, deadline=None)
@given(events, st.sampled_from([ROLLBACK, HOLD]), st.sampled_from([1e9, 5.0]))
def test_at_most_two_promotions_into_a_failing_state(history: list[Event],
                                                     policy: PoisonSettings,
                                                     reach_s: float) -> None:
    """However failures follow each other, a run of failures each within the previous
    takeover's probation promotes at most two members before it holds: the first successor,
    and (rollback only) one after a rollback."""
    run = run_group(policy, history, reach_s)
    streak = 0
    previous_at: float | None = None
    for (at, verdict, _), (gap, cause) in zip(run, history, strict=False):
        in_probation = (previous_at is not None and gap <= policy.probation_s
                        and cause in FAILURE_CAUSES)
        streak = streak + 1 if in_probation else 0
        if verdict is not Verdict.HOLD:
            assert streak <= (1 if policy.policy is PoisonPolicy.HOLD else 2)
        previous_at = at if cause in FAILURE_CAUSES else None


@settings(max_examples=300, deadline=None)
@given(events)
def test_a_chain_rolls_back_at_most_once_and_never_after_its_first_failure(
        history: list[Event]) -> None:
    run = run_group(ROLLBACK, history)
    chains: dict[float, int] = {}
    for _, verdict, probation in run:
        if verdict is Verdict.ROLLBACK:
            assert probation is not None and probation.rolled_back
            chains[probation.first_failure] = chains.get(probation.first_failure, 0) + 1
        if probation is not None:
            assert probation.first_failure <= probation.since
    assert all(n == 1 for n in chains.values())


@settings(max_examples=200, deadline=None)
@given(events)
def test_off_never_withholds_or_rolls_back(history: list[Event]) -> None:
    assert all(v is Verdict.TAKE_OVER for _, v, _ in run_group(OFF, history))


# -- the probation in the active key ---------------------------------------------------------------


def test_the_active_key_carries_its_probation() -> None:
    probation = Probation(since=T0 + 1, first_failure=T0, failures=2, rolled_back=True)
    record = ActiveRecord("b", "127.0.0.1:1", new_secret(), probation)
    assert ActiveRecord.decode(record.encode()) == record
    plain = ActiveRecord("b", "127.0.0.1:1", new_secret())
    assert ActiveRecord.decode(plain.encode()).probation is None
    assert b"probation" not in plain.encode()


@pytest.mark.parametrize("bad", [
    "x", {"since": T0}, {"since": T0, "first_failure": T0 + 1, "failures": 1},
    {"since": T0, "first_failure": T0, "failures": 0},
    {"since": T0, "first_failure": T0, "failures": True},
    {"since": math.inf, "first_failure": T0, "failures": 1},
    {"since": T0, "first_failure": T0, "failures": 1, "rolled_back": "yes"},
])
def test_a_bad_probation_makes_the_key_unreadable(bad: object) -> None:
    raw = ActiveRecord("b", "", new_secret()).encode()[:-1] + \
        b',"probation":' + __import__("json").dumps(bad).encode() + b"}"
    with pytest.raises((TypeError, ValueError, KeyError)):
        ActiveRecord.decode(raw)


# -- the undo log ------------------------------------------------------------------------------

keys = st.sampled_from(["k1", "k2", "k3", "k4"])
values = st.one_of(st.none(), st.binary(min_size=0, max_size=8))
writes = st.lists(st.tuples(st.floats(0.0, 2.0), st.sampled_from(["s", "t"]), keys, values),
                  max_size=60)


def replay(changes: list[tuple[str, str, bytes | None]]) -> dict[tuple[str, str], bytes]:
    data = CheckpointData()
    for section, key, value in changes:
        data.apply(Change(section, key, value))
    return {(s, k): v for s in data.sections() for k, v in data.items(s)}


@settings(max_examples=300, deadline=None)
@given(writes, st.floats(0.0, 60.0))
def test_a_rollback_restores_exactly_the_state_at_the_cutoff(
        history: list[tuple[float, str, str, bytes | None]], cutoff_after: float) -> None:
    """Applied through the data (as every standby and the active apply changes), then undone
    to a cutoff: the state is what the changes before the cutoff alone give. A change applied
    before the cutoff is never undone."""
    clock = Wall(T0)
    data = CheckpointData()
    data.undo = undo = UndoLog(max_entries=1000, max_bytes=1 << 20, wall=clock)
    before: list[tuple[str, str, bytes | None]] = []
    cutoff = T0 + cutoff_after
    for gap, section, key, value in history:
        clock.advance(gap)
        if clock() < cutoff:
            before.append((section, key, value))
        data.apply(Change(section, key, value))
    plan = undo.plan(cutoff)
    assert plan is not None
    for change in plan:
        data.apply(change)
    assert {(s, k): v for s in data.sections() for k, v in data.items(s)} == replay(before)


def test_the_undo_log_is_bounded_and_says_what_it_still_covers() -> None:
    clock = Wall(T0)
    undo = UndoLog(max_entries=3, max_bytes=10_000, wall=clock)
    data = CheckpointData()
    data.undo = undo
    for i in range(5):
        clock.advance(1.0)
        data.apply(Change("s", f"k{i}", b"v"))
    assert len(undo) == 3
    assert undo.plan(T0 + 2.0) is None  # the note of T0+2 is gone: it cannot be undone
    assert undo.plan(T0 + 2.5) == [Change("s", f"k{i}", None) for i in (2, 3, 4)]
    sized = UndoLog(max_entries=100, max_bytes=200, wall=clock)
    for i in range(10):
        sized.note("s", f"k{i}", b"x" * 50)
    assert sized.size <= 200 and len(sized) < 10


def test_a_snapshot_resets_what_can_be_undone() -> None:
    clock = Wall(T0)
    data = CheckpointData()
    data.undo = undo = UndoLog(max_entries=100, max_bytes=1 << 20, wall=clock)
    data.apply(Change("s", "a", b"1"))
    clock.advance(5.0)
    data.replace([Change("s", "b", b"2")])
    assert len(undo) == 0 and undo.since == T0 + 5.0
    assert undo.plan(T0 + 1.0) is None
    assert data.undo is undo  # still attached after the snapshot
