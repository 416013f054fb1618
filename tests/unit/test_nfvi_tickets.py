"""Repair tickets: who repairs what, idempotency keys, one owner per instance, bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.bridge.tickets import Busy, KeyConflict, Opened, RepairPlan, TicketBook, plan_repair
from vnfha.nfvi.model import RepairAction as A
from vnfha.nfvi.model import RepairOwner, RepairState


@pytest.mark.parametrize(("requested", "tried", "host_up", "action", "owner", "why"), [
    (A.NONE, [], True, A.NONE, RepairOwner.VNF, "VNF owns"),
    (A.REBOOT, [], True, A.REBOOT, RepairOwner.NFVI, "reboot requested"),
    (A.REBOOT, [A.RESTART_COMPONENT, A.FAILOVER], True, A.REBOOT, RepairOwner.NFVI, "reboot"),
    (A.REBOOT, [A.REBOOT], True, A.EVACUATE, RepairOwner.NFVI, "already tried"),
    (A.REBOOT, [], False, A.EVACUATE, RepairOwner.NFVI, "host h1 is down"),
    (A.EVACUATE, [], False, A.EVACUATE, RepairOwner.NFVI, "evacuation requested"),
])
def test_who_repairs_what(requested: A, tried: list[A], host_up: bool, action: A,
                          owner: RepairOwner, why: str) -> None:
    plan = plan_repair(requested, tried, host="h1", host_up=host_up)
    assert (plan.action, plan.owner) == (action, owner)
    assert why in plan.reason


@pytest.mark.parametrize("requested", [A.RESTART_COMPONENT, A.FAILOVER])
def test_the_vnf_rungs_cannot_be_requested(requested: A) -> None:
    with pytest.raises(ValueError, match=str(requested)):
        plan_repair(requested, [], host="h", host_up=True)


REBOOT = RepairPlan(A.REBOOT, RepairOwner.NFVI, "reboot requested")
RECORD = RepairPlan(A.NONE, RepairOwner.VNF, "report only")


def escalate(book: TicketBook, key: str, member: str = "a", plan: RepairPlan = REBOOT,
             group: str = "g") -> Opened | Busy | KeyConflict:
    return book.open(key=key, group=group, member=member, instance=f"vm-{member}", host="h1",
                     epoch=3, plan=plan, owner_name="nfvi:sim")


def test_same_key_same_ticket_other_key_busy_then_free() -> None:
    book = TicketBook()
    first = escalate(book, "k1")
    assert isinstance(first, Opened) and first.new
    assert first.ticket.state is RepairState.QUEUED and first.ticket.owner is RepairOwner.NFVI
    again = escalate(book, "k1")
    assert isinstance(again, Opened) and not again.new and again.ticket == first.ticket
    busy = escalate(book, "k2")
    assert isinstance(busy, Busy) and busy.ticket.ticket_id == first.ticket.ticket_id
    assert isinstance(escalate(book, "k1", member="b"), KeyConflict)
    assert isinstance(escalate(book, "k1", group="other"), Busy)  # keys are per group
    book.update(first.ticket.ticket_id, RepairState.IN_PROGRESS, "rebooting")
    done = book.update(first.ticket.ticket_id, RepairState.SUCCEEDED, "running", host="h2")
    assert done.version == 3 and done.host == "h2"
    assert book.open_for("vm-a") is None
    later = escalate(book, "k2")
    assert isinstance(later, Opened) and later.new
    assert later.ticket.ticket_id != first.ticket.ticket_id
    with pytest.raises(ValueError, match="cannot change"):
        book.update(first.ticket.ticket_id, RepairState.FAILED, "no")


def test_recorded_tickets_belong_to_the_vnf_and_never_block() -> None:
    book = TicketBook()
    rec = escalate(book, "k1", plan=RECORD)
    assert isinstance(rec, Opened) and rec.ticket.state is RepairState.RECORDED
    assert rec.ticket.owner is RepairOwner.VNF
    assert isinstance(escalate(book, "k2"), Opened)


def test_memory_is_bounded_by_forgetting_old_terminal_tickets() -> None:
    book = TicketBook(max_tickets=3)
    ids = []
    for i in range(5):
        opened = escalate(book, f"k{i}", member=f"m{i}", plan=RECORD)
        assert isinstance(opened, Opened)
        ids.append(opened.ticket.ticket_id)
    assert len(book) == 3
    assert book.get(ids[0]) is None and book.get(ids[4]) is not None
    again = escalate(book, "k0", member="m0", plan=RECORD)
    assert isinstance(again, Opened) and again.new  # forgotten key: a new ticket


@given(st.lists(st.tuples(st.sampled_from(["k1", "k2", "k3", "k4"]),
                          st.sampled_from(["a", "b"]), st.booleans()), max_size=40))
def test_never_two_open_nfvi_tickets_for_one_instance(
        ops: list[tuple[str, str, bool]]) -> None:
    book = TicketBook()
    keys: dict[str, str] = {}
    for key, member, finish in ops:
        out = escalate(book, key, member=member)
        if isinstance(out, Opened):
            keys.setdefault(key, out.ticket.ticket_id)
            assert out.ticket.ticket_id == keys[key]
            if out.new:
                assert out.ticket.state is RepairState.QUEUED
        elif isinstance(out, KeyConflict):
            assert out.ticket.member != member
        else:  # Busy: the one open ticket of that instance, and a new key
            assert out.ticket == book.open_for(f"vm-{member}")
            assert key not in keys
        if finish:
            for inst in ("vm-a", "vm-b"):
                ticket = book.open_for(inst)
                if ticket is not None:
                    book.update(ticket.ticket_id, RepairState.SUCCEEDED, "done")


# -- listing (TicketBook.query) -------------------------------------------------------------------


def listing_book() -> TicketBook:
    """t-1 g/a recorded, t-2 g/b open (queued), t-3 h/a open, t-4 g/a succeeded, t-5 h/b
    recorded."""
    book = TicketBook()
    for key, member, plan, group in (("k1", "a", RECORD, "g"), ("k2", "b", REBOOT, "g"),
                                     ("k3", "a", REBOOT, "h"), ("k4", "a", REBOOT, "g"),
                                     ("k5", "b", RECORD, "h")):
        assert isinstance(book.open(key=key, group=group, member=member,
                                    instance=f"vm-{group}-{member}", host="h1", epoch=1,
                                    plan=plan, owner_name="nfvi:sim"), Opened)
    book.update("t-4", RepairState.SUCCEEDED, "rebooted")
    return book


@pytest.mark.parametrize(("group", "open_only", "limit", "ids", "matched"), [
    (None, False, 100, ["t-5", "t-4", "t-3", "t-2", "t-1"], 5),  # newest first
    (None, False, 2, ["t-5", "t-4"], 5),                          # the newest are kept
    (None, True, 100, ["t-3", "t-2"], 2),                         # not terminal only
    ("g", False, 100, ["t-4", "t-2", "t-1"], 3),
    ("g", True, 100, ["t-2"], 1),
    ("h", True, 1, ["t-3"], 1),
    ("nobody", False, 100, [], 0),                                # an unknown group: empty
])
def test_query_filters_newest_first_and_counts_every_match(
        group: str | None, open_only: bool, limit: int, ids: list[str], matched: int) -> None:
    listing = listing_book().query(group=group, open_only=open_only, limit=limit)
    assert [t.ticket_id for t in listing.tickets] == ids
    assert listing.matched == matched
    assert listing.complete is (len(ids) == matched)


def test_query_reads_the_current_version_and_changes_nothing() -> None:
    book = listing_book()
    before = book.tickets()
    (t4,) = [t for t in book.query(limit=10).tickets if t.ticket_id == "t-4"]
    assert (t4.state, t4.version, t4.detail) == (RepairState.SUCCEEDED, 2, "rebooted")
    assert book.tickets() == before and book.next_number == 6


def test_query_after_a_restore_keeps_the_saved_order() -> None:
    saved = listing_book()
    book = TicketBook()
    book.restore(saved.tickets(), next_number=saved.next_number)
    listing = book.query(limit=100)
    assert [t.ticket_id for t in listing.tickets] == ["t-5", "t-4", "t-3", "t-2", "t-1"]
    assert book.query(open_only=True, limit=100).matched == 0  # the open ones FAILED on restore


@pytest.mark.parametrize("limit", [0, -1])
def test_query_refuses_a_limit_below_one(limit: int) -> None:
    with pytest.raises(ValueError, match=f"limit={limit}"):
        TicketBook().query(limit=limit)


def test_a_recorded_plan_says_what_was_reported() -> None:
    plan = plan_repair(A.NONE, (), host="h1", host_up=True, fault="ALARM: no recovery left")
    assert (plan.action, plan.owner) == (A.NONE, RepairOwner.VNF)
    assert plan.reason.startswith("report only") and plan.reason.endswith(
        ": ALARM: no recovery left")
    assert plan_repair(A.REBOOT, (), host="h1", host_up=True, fault="x").reason == \
        "reboot requested"
