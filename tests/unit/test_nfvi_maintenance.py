"""The pending maintenances the bridge remembers (pure), and how a member's agent treats an
announcement it hears again (a replay to a new subscriber)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.bridge.maintenance import MaintenanceBook, Pending, replay_for
from vnfha.config import Config
from vnfha.nfvi.agent import NfviAgent
from vnfha.nfvi.client import NoBridge
from vnfha.nfvi.model import BridgeEvent, EventKind
from vnfha.testing import FakeClock
from vnfha.wiring import agent_settings

T0 = 1000.0  # the bridge's monotonic clock when the first announcement arrives


def planned(host: str, sequence: int, deadline: float = 1_900_000_000.0) -> BridgeEvent:
    return BridgeEvent(EventKind.MAINTENANCE_PLANNED, host=host, members=("x",),
                       deadline_unix_s=deadline, detail=f"planned maintenance #{sequence}",
                       sequence=sequence)


# each step: ("announce", host, sequence, remaining_s) | ("down", host) | ("at", now);
# expected: the (host, sequence) pending at the end, at the last "at" (T0 without one)
@pytest.mark.parametrize(("steps", "expected"), [
    ([("announce", "h1", 1, 60.0)], [("h1", 1)]),
    # the deadline passes: gone (exactly at the deadline too)
    ([("announce", "h1", 1, 60.0), ("at", T0 + 59.9)], [("h1", 1)]),
    ([("announce", "h1", 1, 60.0), ("at", T0 + 60.0)], []),
    # a newer announcement for the same host replaces the older, sooner or later
    ([("announce", "h1", 1, 60.0), ("announce", "h1", 2, 600.0), ("at", T0 + 61)], [("h1", 2)]),
    ([("announce", "h1", 1, 600.0), ("announce", "h1", 2, 60.0), ("at", T0 + 61)], []),
    # ... and one whose deadline already passed (or has none) leaves nothing
    ([("announce", "h1", 1, 60.0), ("announce", "h1", 2, -1.0)], []),
    ([("announce", "h1", 1, 60.0), ("announce", "h1", 2, None)], []),
    # other hosts are kept apart, in announcement order
    ([("announce", "h2", 1, 60.0), ("announce", "h1", 2, 30.0)], [("h2", 1), ("h1", 2)]),
    # the host goes down: the maintenance has begun, nothing left to announce
    ([("announce", "h1", 1, 60.0), ("announce", "h2", 2, 60.0), ("down", "h1")], [("h2", 2)]),
    ([("down", "h1"), ("announce", "h1", 1, 60.0)], [("h1", 1)]),
])
def test_the_book(steps: list[tuple[object, ...]], expected: list[tuple[str, int]]) -> None:
    book = MaintenanceBook(max_pending=10)
    now = T0
    for step in steps:
        match step:
            case ("announce", str(host), int(seq), remaining):
                assert remaining is None or isinstance(remaining, float)
                assert book.announce(planned(host, seq), now=now, remaining_s=remaining) is None
            case ("down", str(host)):
                book.host_down(host)
            case ("at", float(at)):
                now = at
    assert [(p.host, p.event.sequence) for p in book.pending(now)] == expected
    assert book.hosts(now) == {h for h, _ in expected}


def test_the_bound_evicts_the_nearest_deadline_after_pruning() -> None:
    book = MaintenanceBook(max_pending=2)
    assert book.announce(planned("h1", 1), now=T0, remaining_s=30.0) is None
    assert book.announce(planned("h2", 2), now=T0, remaining_s=10.0) is None
    evicted = book.announce(planned("h3", 3), now=T0, remaining_s=60.0)
    assert evicted is not None and evicted.host == "h2"  # its deadline came first
    assert [p.host for p in book.pending(T0)] == ["h1", "h3"]
    # replacing a host's entry, or room made by an expired one, evicts nothing
    assert book.announce(planned("h1", 4), now=T0, remaining_s=5.0) is None
    assert book.announce(planned("h4", 5), now=T0 + 6, remaining_s=5.0) is None
    assert [p.host for p in book.pending(T0 + 6)] == ["h3", "h4"]
    with pytest.raises(ValueError, match="max_pending=0"):
        MaintenanceBook(max_pending=0)


@given(st.lists(st.tuples(st.sampled_from(["h1", "h2", "h3", "h4", "h5"]),
                          st.floats(-10, 100)), max_size=30))
def test_never_more_than_the_bound_nor_two_for_one_host(
        announcements: list[tuple[str, float]]) -> None:
    book = MaintenanceBook(max_pending=3)
    for seq, (host, remaining) in enumerate(announcements, 1):
        book.announce(planned(host, seq), now=T0, remaining_s=remaining)
        assert len(book) <= 3
        pending = book.pending(T0)
        assert len({p.host for p in pending}) == len(pending)
        if T0 + remaining > T0:  # the newest word for a host is always kept
            assert pending[-1].event.sequence == seq and pending[-1].expires_at == T0 + remaining


@pytest.mark.parametrize(("placement", "expected"), [
    ({"a": "h1", "b": "h2"}, [("h1", ("a",)), ("h2", ("b",))]),
    ({"a": "h1", "b": "h1", "c": "h3"}, [("h1", ("a", "b"))]),
    ({"c": "h3"}, []),
    ({}, []),
])
def test_a_subscriber_is_sent_the_maintenance_of_its_groups_hosts(
        placement: dict[str, str], expected: list[tuple[str, tuple[str, ...]]]) -> None:
    pending = [Pending(replace(planned("h1", 4), members=()), T0 + 60),
               Pending(replace(planned("h2", 7), members=()), T0 + 60)]
    events = replay_for(pending, placement)
    assert [(e.host, e.members) for e in events] == expected
    for e in events:  # otherwise the event the live subscribers got
        assert e == replace(planned(e.host, e.sequence), members=e.members)


# -- a member hearing it again ---------------------------------------------------------------


def agent(member: str, host: str, heard: list[BridgeEvent]) -> NfviAgent:
    config = Config(group="g", member=member, etcd_endpoints=("127.0.0.1:2379",),
                    bridge_endpoint="127.0.0.1:1")
    a = NfviAgent(NoBridge(group="g", member=member), agent_settings(config), FakeClock(),
                  on_maintenance=heard.append)
    a.host = host
    return a


@pytest.mark.parametrize(("member", "host", "called"), [
    ("a", "h1", True),   # the old active, now a standby: told (Member ignores it unless active)
    ("b", "h2", False),  # the new active elsewhere: not told, so it cannot hand over again
    ("c", "h1", True),   # a member on the host that was not listed then (it moved there since)
])
def test_a_replayed_announcement_reaches_only_members_on_the_host(
        member: str, host: str, called: bool) -> None:
    heard: list[BridgeEvent] = []
    event = replace(planned("h1", 3), members=("a",))
    agent(member, host, heard).handle(event)
    assert heard == ([event] if called else [])
