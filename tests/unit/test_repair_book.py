"""The pure repair decisions of the group's active (issue 17, item 2): who is gone, when its
repair is asked and with which key, when never, and how the bridge's answers move it on.
Plain numbers for time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.health.incarnation import Life, LifeState
from vnfha.roles.repair_book import (
    MAX_ATTEMPTS,
    Outcome,
    RepairBook,
    RepairRecord,
    Step,
    repair_key,
)

AFTER = 10.0
RUNNING = Life(3, LifeState.RUNNING)


def book_with_b_gone_at(t: float) -> RepairBook:
    book = RepairBook(me="a", group="vfw", repair_after_s=AFTER)
    assert book.observe({"a", "b"}, 0.0) == ([], [])
    assert book.observe({"a"}, t) == (["b"], [])
    return book


def test_a_member_is_gone_when_its_record_goes_and_forgotten_when_it_is_back() -> None:
    book = book_with_b_gone_at(5.0)
    assert book.gone == ("b",) and book.next_due() == 15.0 and book.due(14.9) == []
    assert book.observe({"a"}, 6.0) == ([], [])  # still gone: noticed once
    assert book.observe({"a", "b"}, 7.0) == ([], ["b"])
    assert book.gone == () and book.next_due() is None


def test_members_learnt_from_their_ladder_keys_count_too_but_never_me() -> None:
    book = RepairBook(me="a", group="vfw", repair_after_s=AFTER)
    book.learn(["a", "c"])
    assert book.observe({"a"}, 1.0) == (["c"], [])


@pytest.mark.parametrize(("life", "locked", "paused", "step", "why"), [
    (None, False, False, Step.DROP, "records no incarnation"),
    (Life(3, LifeState.STOPPED), False, False, Step.DROP, "stopped cleanly"),
    (RUNNING, False, True, Step.WAIT, "paused"),
    (RUNNING, True, False, Step.WAIT, "locked"),
    (RUNNING, False, False, Step.ASK, "gone for 10.0 s without a clean stop (incarnation 3)"),
    (Life(3, LifeState.REPAIRING), False, False, Step.ASK, "without a clean stop"),
])
def test_the_step_at_the_deadline(life: Life | None, locked: bool, paused: bool, step: Step,
                                  why: str) -> None:
    book = book_with_b_gone_at(0.0)
    look = book.look("b", life, locked=locked, paused=paused, now=AFTER)
    assert look.step is step and why in look.reason
    if step is Step.ASK:
        assert look.key == repair_key("vfw", "b", 3, 1) == "repair/vfw/b/3/1"
    if step is Step.WAIT:
        assert look.due == 2 * AFTER
    if step is Step.DROP:
        assert book.next_due() is None and book.due(1e9) == []


def test_nothing_before_repair_after_s() -> None:
    book = book_with_b_gone_at(0.0)
    look = book.look("b", RUNNING, locked=False, paused=False, now=3.0)
    assert (look.step, look.due) == (Step.WAIT, AFTER)


def test_an_open_ticket_is_asked_again_then_the_member_may_rejoin_then_a_new_attempt() -> None:
    book = book_with_b_gone_at(0.0)
    keys = []

    def ask(now: float) -> Step:
        look = book.look("b", RUNNING, locked=False, paused=False, now=now)
        keys.append(look.key)
        return look.step

    assert ask(10.0) is Step.ASK
    book.answered("b", Outcome.OPEN, 10.0)
    assert book.next_due() == 20.0 and ask(20.0) is Step.ASK  # same key: reads its state
    book.answered("b", Outcome.ENDED, 20.0)  # repaired: give it repair_after_s to rejoin
    look = book.look("b", RUNNING, locked=False, paused=False, now=25.0)
    assert look.step is Step.WAIT and "rejoining" in look.reason and look.due == 30.0
    assert ask(30.0) is Step.ASK  # not back: a new attempt, a new ticket
    assert keys == ["repair/vfw/b/3/1", "repair/vfw/b/3/1", "repair/vfw/b/3/2"]


def test_attempts_are_bounded_per_incarnation_and_a_new_incarnation_starts_again() -> None:
    book = book_with_b_gone_at(0.0)
    now = AFTER
    for attempt in range(1, MAX_ATTEMPTS + 1):
        look = book.look("b", RUNNING, locked=False, paused=False, now=now)
        assert (look.step, look.attempt) == (Step.ASK, attempt)
        book.answered("b", Outcome.REFUSED, now)  # e.g. a hard placement policy
        now += AFTER
    look = book.look("b", RUNNING, locked=False, paused=False, now=now)
    assert look.step is Step.DROP and "giving up" in look.reason
    book.observe({"a", "b"}, now)  # it came back (an operator), and died again
    book.observe({"a"}, now + 1)
    look = book.look("b", Life(4, LifeState.RUNNING), locked=False, paused=False,
                     now=now + 1 + AFTER)
    assert (look.step, look.key) == (Step.ASK, "repair/vfw/b/4/1")


def test_no_answer_is_not_an_attempt() -> None:
    book = book_with_b_gone_at(0.0)
    for now in (10.0, 20.0, 30.0, 40.0):
        look = book.look("b", RUNNING, locked=False, paused=False, now=now)
        assert look.key == "repair/vfw/b/3/1"
        book.answered("b", Outcome.UNREACHABLE, now)


def test_a_bad_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        RepairBook(me="a", group="g", repair_after_s=0.0)


def test_the_record_round_trips_and_reads_for_an_operator() -> None:
    record = RepairRecord("b", 3, 1, "t-4", "reboot", "queued", "nfvi:sim", "a", 9, 1.5)
    assert RepairRecord.decode(record.encode()) == record
    assert record.describe() == ("repair of b under way: ticket t-4 (reboot by nfvi:sim, queued "
                                 "when last asked), asked by a in epoch 9, attempt 1 for "
                                 "incarnation 3")


@given(st.lists(st.tuples(st.floats(0.0, 30.0), st.sampled_from(list(Outcome)),
                          st.booleans()), max_size=40))
def test_bounded_whatever_the_bridge_answers(steps: list[tuple[float, Outcome, bool]]) -> None:
    """At most MAX_ATTEMPTS tickets per incarnation, none before repair_after_s, none while
    locked, and a new key no sooner than repair_after_s after the previous one's answer."""
    book = book_with_b_gone_at(0.0)
    now, keys, last_new = 0.0, [], -1e9
    for dt, outcome, locked in steps:
        now += dt
        if book.due(now) != ["b"]:
            continue
        look = book.look("b", RUNNING, locked=locked, paused=False, now=now)
        if look.step is not Step.ASK:
            continue
        assert not locked and now >= AFTER
        if look.key not in keys:
            assert now - last_new >= AFTER
            keys.append(look.key)
            last_new = now
        book.answered("b", outcome, now)
    assert len(keys) <= MAX_ATTEMPTS
