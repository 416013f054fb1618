"""The bridge's state file: the pure format (round trip, refusals that name the field), the
books restored from it (open tickets FAILED, keys kept, ids not reused; epochs; maintenance
deadlines back from the wall clock, expired ones dropped), and the store (atomic, durable
writes; a missing file is a first start; a bad one is refused naming the path)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.bridge.drivers.driver import InfraEvent, Instance, InstanceState
from vnfha.bridge.epochs import EpochTable
from vnfha.bridge.routing import EventRouter
from vnfha.bridge.state import (
    STATE_VERSION,
    BridgeState,
    StateFileError,
    StateFormatError,
    StateStore,
    from_dict,
    to_dict,
)
from vnfha.bridge.tickets import RESTARTED, Opened, RepairPlan, TicketBook
from vnfha.nfvi.model import (
    BridgeEvent,
    EventKind,
    RepairAction,
    RepairOwner,
    RepairState,
    RepairTicket,
)
from vnfha.testing import FakeClock

WALL = 1_750_000_000.0


def ticket(n: int, state: RepairState = RepairState.SUCCEEDED, key: str = "",
           member: str = "a", version: int = 3) -> RepairTicket:
    return RepairTicket(f"t-{n}", key or f"k{n}", "vfw", member, f"vm-{member}",
                        RepairAction.REBOOT, RepairOwner.NFVI, "nfvi:sim", state,
                        f"detail {n}", "h1", 7, version)


def maintenance(host: str, deadline: float, sequence: int) -> BridgeEvent:
    return BridgeEvent(EventKind.MAINTENANCE_PLANNED, host=host, deadline_unix_s=deadline,
                       detail=f"planned maintenance: {host}", sequence=sequence)


STATE = BridgeState(
    epochs={"vfw": 7, "dns": 2},
    tickets=(ticket(1), ticket(2, RepairState.IN_PROGRESS, member="b", version=2)),
    next_ticket=3,
    maintenance=(maintenance("h1", WALL + 600, 4), maintenance("h2", WALL + 60.5, 5)))


def test_round_trip_through_json() -> None:
    data = json.loads(json.dumps(to_dict(STATE)))
    assert data["version"] == STATE_VERSION
    assert data["tickets"][1]["state"] == "in-progress"
    assert from_dict(data) == STATE


def test_an_empty_state_round_trips() -> None:
    empty = BridgeState(epochs={})
    assert from_dict(json.loads(json.dumps(to_dict(empty)))) == empty


def edit(path: str, value: object) -> dict[str, Any]:
    """The JSON form of STATE with ``path`` (keys and list indices, dotted) set to ``value``;
    the value ``...`` deletes the field."""
    data = json.loads(json.dumps(to_dict(STATE)))
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = data
    for p in parents:
        node = node[p]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return data  # type: ignore[no-any-return]


@pytest.mark.parametrize(("path", "value", "field", "problem"), [
    ("version", 2, "version=2", "reads version 1 only"),
    ("version", "1", "version='1'", "reads version 1"),
    ("version", ..., "version=None", "reads version 1"),
    ("epochs", [1], "epochs=[1]", "must be an object"),
    ("epochs.vfw", -1, "epochs['vfw']=-1", "integer >= 0"),
    ("epochs.vfw", True, "epochs['vfw']=True", "integer >= 0"),
    ("epochs.vfw", 7.0, "epochs['vfw']=7.0", "integer >= 0"),
    ("next_ticket", 0, "next_ticket=0", "integer >= 1"),
    ("next_ticket", 2, "tickets[1].ticket_id='t-2'", "below next_ticket (2)"),
    ("tickets", {}, "tickets={}", "must be a list"),
    ("tickets.0", "t-1", "tickets[0]='t-1'", "JSON object"),
    ("tickets.1.state", "done", "tickets[1].state='done'", "queued, in-progress"),
    ("tickets.1.action", 3, "tickets[1].action=3", "must be one of"),
    ("tickets.0.owner", "ops", "tickets[0].owner='ops'", "nfvi, vnf"),
    ("tickets.0.epoch", -3, "tickets[0].epoch=-3", "integer >= 0"),
    ("tickets.0.version", 0, "tickets[0].version=0", "integer >= 1"),
    ("tickets.0.host", None, "tickets[0].host=None", "must be a string"),
    ("tickets.0.ticket_id", "x-1", "tickets[0].ticket_id='x-1'", "t-<n>"),
    ("tickets.0.ticket_id", "t-2", "tickets[1].ticket_id='t-2'", "appears twice"),
    ("tickets.1.idempotency_key", "k1", "tickets[1].group/idempotency_key='vfw/k1'",
     "appears twice"),
    ("tickets.0.member", ..., "tickets[0].member=None", "is missing"),
    ("tickets.0.colour", "red", "tickets[0].colour='red'", "unknown field"),
    ("maintenance.0.deadline_unix_s", "soon", "maintenance[0].deadline_unix_s='soon'",
     "finite number"),
    ("maintenance.0.deadline_unix_s", None, "maintenance[0].deadline_unix_s=None", "finite"),
    ("maintenance.0.host", "", "maintenance[0].host=''", "must not be empty"),
    ("maintenance.1.host", "h1", "maintenance[1].host='h1'", "appears twice"),
    ("maintenance.0.sequence", 0, "maintenance[0].sequence=0", "integer >= 1"),
    ("maintenance", ..., "state.maintenance=None", "is missing"),
    ("armed", {}, "state.armed={}", "unknown field"),
])
def test_refusals_name_the_field_and_value(path: str, value: object, field: str,
                                           problem: str) -> None:
    with pytest.raises(StateFormatError) as caught:
        from_dict(edit(path, value))
    message = str(caught.value)
    assert message.startswith(field + ":"), message
    assert problem in caught.value.problem


def test_another_version_is_named_whatever_else_the_file_holds() -> None:
    with pytest.raises(StateFormatError, match=r"^version=2: this bridge reads version 1 only"):
        from_dict({"version": 2, "groups": []})


@pytest.mark.parametrize("data", [None, [], "state", 3])
def test_a_document_that_is_not_an_object_is_refused(data: object) -> None:
    with pytest.raises(StateFormatError, match=r"^state=.*must be a JSON object"):
        from_dict(data)


def test_infinite_and_nan_deadlines_are_refused() -> None:
    for bad in (float("inf"), float("nan")):
        with pytest.raises(StateFormatError, match="deadline_unix_s"):
            from_dict(edit("maintenance.0.deadline_unix_s", bad))


names = st.text(min_size=1, max_size=8)


@st.composite
def states(draw: st.DrawFn) -> BridgeState:
    count = draw(st.integers(0, 6))
    keys = draw(st.lists(names, min_size=count, max_size=count, unique=True))
    tickets = tuple(RepairTicket(
        f"t-{n + 1}", key, "vfw", draw(names), draw(st.text(max_size=8)),
        draw(st.sampled_from(RepairAction)), draw(st.sampled_from(RepairOwner)),
        draw(st.text(max_size=8)), draw(st.sampled_from(RepairState)), draw(st.text()),
        draw(st.text(max_size=8)), draw(st.integers(0, 2**62)), draw(st.integers(1, 99)))
        for n, key in enumerate(keys))
    hosts = draw(st.lists(names, max_size=4, unique=True))
    pending = tuple(maintenance(h, draw(st.floats(-1e12, 1e12)), draw(st.integers(1, 10**9)))
                    for h in hosts)
    epochs = draw(st.dictionaries(st.text(max_size=8), st.integers(0, 2**62), max_size=5))
    return BridgeState(epochs, tickets, count + draw(st.integers(1, 5)), pending)


@given(states())
def test_any_state_round_trips(state: BridgeState) -> None:
    assert from_dict(json.loads(json.dumps(to_dict(state)))) == state


# -- the books, restored ---------------------------------------------------------------------------


def test_open_tickets_come_back_failed_with_their_keys() -> None:
    book = TicketBook()
    saved = (ticket(1), ticket(2, RepairState.IN_PROGRESS, member="b", version=2),
             ticket(3, RepairState.QUEUED, member="c", version=1))
    interrupted = book.restore(saved, next_number=9)
    assert [(t.ticket_id, t.state, t.detail, t.version) for t in interrupted] == [
        ("t-2", RepairState.FAILED, RESTARTED, 3), ("t-3", RepairState.FAILED, RESTARTED, 2)]
    assert book.get("t-1") == saved[0] and book.get("t-2") == interrupted[0]
    plan = RepairPlan(RepairAction.REBOOT, RepairOwner.NFVI, "reboot requested")

    def escalate(key: str, member: str) -> Opened:
        out = book.open(key=key, group="vfw", member=member, instance=f"vm-{member}",
                        host="h1", epoch=7, plan=plan, owner_name="nfvi:sim")
        assert isinstance(out, Opened)
        return out

    again = escalate("k2", "b")  # the duplicate: the ticket as it now stands, not a new repair
    assert not again.new and again.ticket == interrupted[0]
    fresh = escalate("k-new", "b")  # nothing is open for vm-b any more
    assert fresh.new and fresh.ticket.ticket_id == "t-9" and book.next_number == 10


def test_restore_keeps_at_most_max_tickets_and_needs_an_empty_book() -> None:
    book = TicketBook(max_tickets=2)
    book.restore([ticket(n) for n in (1, 2, 3)], next_number=4)
    assert [t.ticket_id for t in book.tickets()] == ["t-2", "t-3"]
    with pytest.raises(ValueError, match="holding 2"):
        book.restore([], next_number=4)


def test_epochs_restored_and_rises_flagged() -> None:
    table = EpochTable({"vfw": 7})
    assert not table.check("vfw", 6).accepted
    assert [table.check("vfw", e).raised for e in (7, 8, 8)] == [False, True, False]
    assert table.check("new", 1).raised
    assert table.snapshot() == {"vfw": 8, "new": 1}


def router(clock: FakeClock, wall: list[float]) -> EventRouter:
    return EventRouter(clock=clock, wall_clock=lambda: wall[0], max_queued=10,
                       max_pending_maintenance=10, lagged=RuntimeError)


def test_maintenance_deadlines_come_back_on_the_monotonic_clock() -> None:
    clock, wall = FakeClock(), [WALL]
    events = router(clock, wall)
    events.restore([maintenance("h1", WALL + 600, 4), maintenance("h2", WALL - 1, 9),
                    maintenance("h3", WALL + 60, 5)])
    assert [(e.host, e.sequence) for e in events.pending()] == [("h1", 4), ("h3", 5)]
    clock.jump(60)  # h3's deadline, on the monotonic clock now
    assert [e.host for e in events.pending()] == ["h1"]
    wall[0] += 3600  # a wall-clock step does not end it: it is on the monotonic clock
    assert [e.host for e in events.pending()] == ["h1"]
    vm = Instance("vm-a", "vfw", "a", "h1", InstanceState.RUNNING)
    # numbered above every restored event, the expired one too
    assert events.route(InfraEvent(EventKind.HOST_UP, host="h1"), [vm]) == 10


# -- the store ------------------------------------------------------------------------------------


def save(store: StateStore, state: BridgeState) -> None:
    asyncio.run(store.save(lambda: state))


def test_a_missing_file_is_a_first_start_and_a_save_is_read_back(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "bridge.json")
    assert store.load() is None
    save(store, STATE)
    assert store.load() == STATE
    assert json.loads((tmp_path / "bridge.json").read_text())["version"] == STATE_VERSION
    save(store, BridgeState(epochs={"vfw": 8}))
    assert StateStore(tmp_path / "bridge.json").load() == BridgeState(epochs={"vfw": 8})
    assert [p.name for p in tmp_path.iterdir()] == ["bridge.json"]  # no temporary left


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "not valid JSON"),
    (b'{"version": 1, "epochs": {', "not valid JSON"),
    (b"\xff\xfe", "cannot read it"),
    (json.dumps(edit("version", 99)).encode(), "version=99: this bridge reads version 1"),
    (json.dumps(edit("tickets.0.state", "lost")).encode(), "tickets[0].state='lost'"),
])
def test_a_bad_file_is_refused_naming_the_path(tmp_path: Path, content: bytes,
                                               problem: str) -> None:
    path = tmp_path / "bridge.json"
    path.write_bytes(content)
    with pytest.raises(StateFileError) as caught:
        StateStore(path).load()
    assert str(caught.value).startswith(f"state file {path}: ")
    assert problem in str(caught.value) and caught.value.path == path


def test_an_unreadable_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StateFileError, match="cannot read it"):
        StateStore(tmp_path).load()  # a directory


def test_a_failed_write_leaves_the_old_file_and_says_why(tmp_path: Path) -> None:
    lost = StateStore(tmp_path / "missing" / "bridge.json")
    with pytest.raises(StateFileError, match="cannot write it"):
        save(lost, STATE)
    assert lost.behind  # the change is not on disk: the next request must save again
    store = StateStore(tmp_path / "bridge.json")
    save(store, STATE)
    assert not store.behind
    if os.geteuid() == 0:
        pytest.skip("running as root: directory permissions are not enforced")
    tmp_path.chmod(0o500)  # no temporary file can be made beside it
    try:
        with pytest.raises(StateFileError, match="cannot write it"):
            save(store, BridgeState(epochs={}))
    finally:
        tmp_path.chmod(0o700)
    assert store.load() == STATE
    assert [p.name for p in tmp_path.iterdir()] == ["bridge.json"]


def test_the_file_is_to_dict_whichever_tickets_were_encoded_before(tmp_path: Path) -> None:
    """The store reuses the JSON of tickets it wrote before: a changed ticket (a new object) is
    encoded again, a forgotten one leaves the file."""
    path = tmp_path / "bridge.json"
    store = StateStore(path)
    save(store, STATE)
    assert json.loads(path.read_text()) == to_dict(STATE)
    changed = replace(STATE, tickets=(
        replace(STATE.tickets[1], state=RepairState.SUCCEEDED, version=3), ticket(3)),
        next_ticket=4)
    save(store, changed)
    assert json.loads(path.read_text()) == to_dict(changed)
    assert store.load() == changed


def test_saves_made_together_share_a_write_and_the_last_state_wins(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "bridge.json")
    snapshots: list[int] = []
    current = [0]

    def snapshot() -> Callable[[], BridgeState]:
        def take() -> BridgeState:
            snapshots.append(current[0])
            return BridgeState(epochs={"vfw": current[0]})
        return take

    async def main() -> None:
        async def change(epoch: int) -> None:
            current[0] = epoch  # the change, then its save (as the core does)
            await store.save(snapshot())
        await asyncio.gather(*(change(e) for e in range(1, 21)))

    asyncio.run(main())
    assert store.load() == BridgeState(epochs={"vfw": 20})
    assert len(snapshots) < 20 and snapshots[-1] == 20


def test_an_older_write_never_replaces_a_newer_one(tmp_path: Path) -> None:
    """A save cancelled while its thread writes must not let that write land after the next
    save's (the store's generations decide)."""
    store = StateStore(tmp_path / "bridge.json")
    store.write(BridgeState(epochs={"vfw": 5}), 2)
    store.write(replace(STATE, epochs={"vfw": 4}), 1)  # late: skipped
    assert store.load() == BridgeState(epochs={"vfw": 5})


def test_one_claim_per_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first, second = StateStore(path), StateStore(path)
    first.claim()
    first.claim()  # idempotent
    assert first.lock_path.read_text().strip() == str(os.getpid())
    with pytest.raises(StateFileError, match=rf"in use by another bridge \(pid {os.getpid()}"):
        second.claim()
    first.release()
    second.claim()  # free again
    second.release()
    second.release()  # idempotent


def test_a_lock_file_left_behind_without_its_lock_does_not_block(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    (tmp_path / "state.json.lock").write_text("999999\n")  # a dead bridge's leftover
    store = StateStore(path)
    store.claim()
    assert store.lock_path.read_text() == f"{os.getpid()}\n"
    store.release()
