"""The pure session-state functions: deadline anchoring, transitions, and their invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.store.session_state import (
    SessionState,
    SessionView,
    on_ack,
    on_failure,
    on_lease_gone,
    on_tick,
    started,
)

C, S, L = SessionState.CONNECTED, SessionState.SUSPENDED, SessionState.LOST


def fresh(ttl: int = 2, margin: float = 0.2, t0: float = 100.0) -> SessionView:
    return started(lease_id=7, granted_ttl_s=ttl, margin_s=margin, send_time=t0)


def test_started_anchors_the_deadline_at_the_grant_send_time() -> None:
    v = fresh(ttl=2, margin=0.2, t0=100.0)
    assert v.state is C
    assert v.deadline == pytest.approx(101.8)


@pytest.mark.parametrize(("ttl", "margin"), [(0, 0.1), (2, -0.1), (2, 2.0), (1, 1.5)])
def test_started_refuses_impossible_ttl_or_margin(ttl: int, margin: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        started(1, ttl, margin, 0.0)


@pytest.mark.parametrize(
    ("events", "state", "deadline"),
    [
        # the ack's deadline comes from its SEND time, not from when the reply arrived
        ([("ack", 100.5, 2, 100.9)], C, 102.3),
        # a failure suspends, the deadline stays where it was
        ([("fail", 100.6)], S, 101.8),
        # a failure then an ack before the deadline: connected again, deadline moved on
        ([("fail", 100.6), ("ack", 100.7, 2, 100.8)], C, 102.5),
        # nothing acknowledged before the deadline: lost, by the clock alone
        ([("tick", 101.8)], L, 101.8),
        ([("fail", 100.6), ("tick", 101.79)], S, 101.8),
        ([("fail", 100.6), ("tick", 101.81)], L, 101.8),
        # an ack that arrives after the deadline does not resurrect the session
        ([("ack", 100.1, 2, 101.9)], L, 101.8),
        # a late reply to an OLD request cannot move the deadline backwards
        ([("ack", 100.9, 2, 101.0), ("ack", 100.5, 2, 101.1)], C, 102.7),
        # etcd says TTL <= 0: the lease is gone
        ([("ack", 100.5, 0, 100.6)], L, 101.8),
        # etcd granted more than we asked: the deadline uses what etcd says
        ([("ack", 100.5, 5, 100.6)], C, 105.3),
        # once lost, always lost
        ([("gone",), ("ack", 100.5, 2, 100.6)], L, 101.8),
        ([("tick", 102.0), ("ack", 101.9, 2, 102.0)], L, 101.8),
    ],
)
def test_transitions(events: list[tuple[object, ...]], state: SessionState,
                     deadline: float) -> None:
    v = fresh()
    for ev in events:
        kind = ev[0]
        if kind == "ack":
            _, send, ttl, now = ev
            v = on_ack(v, float(send), int(ttl), float(now))  # type: ignore[arg-type]
        elif kind == "fail":
            v = on_failure(v, float(ev[1]), "unanswered")  # type: ignore[arg-type]
        elif kind == "tick":
            v = on_tick(v, float(ev[1]))  # type: ignore[arg-type]
        else:
            v = on_lease_gone(v, "revoked")
    assert v.state is state, v.reason
    assert v.deadline == pytest.approx(deadline)


def test_reasons_say_what_happened() -> None:
    v = on_failure(fresh(), 100.5, "deadline exceeded on 127.0.0.1:2379")
    assert "127.0.0.1:2379" in v.reason
    v = on_tick(v, 200.0)
    assert "deadline passed" in v.reason


# Any sequence of events, each at a time no earlier than the last.
_event = st.one_of(
    st.tuples(st.just("ack"), st.floats(0, 3), st.integers(-1, 4), st.floats(0, 0.5)),
    st.tuples(st.just("fail"), st.floats(0, 3)),
    st.tuples(st.just("tick"), st.floats(0, 3)),
    st.tuples(st.just("gone")),
)


@given(st.lists(_event, max_size=30))
def test_invariants_hold_for_any_history(events: list[tuple[object, ...]]) -> None:
    v = fresh(ttl=2, margin=0.2, t0=0.0)
    now = 0.0
    last_send = 0.0
    was_lost = False
    for ev in events:
        before = v
        if ev[0] == "ack":
            # a request is sent at a time <= now, the reply arrives later
            _, dt, ttl, delay = ev
            send = now + float(dt)  # type: ignore[arg-type]
            now = send + float(delay)  # type: ignore[arg-type]
            last_send = max(last_send, send)
            v = on_ack(v, send, int(ttl), now)  # type: ignore[arg-type]
        elif ev[0] == "fail":
            now += float(ev[1])  # type: ignore[arg-type]
            v = on_failure(v, now, "x")
        elif ev[0] == "tick":
            now += float(ev[1])  # type: ignore[arg-type]
            v = on_tick(v, now)
        else:
            v = on_lease_gone(v, "gone")
        # the deadline never moves backwards
        assert v.deadline >= before.deadline
        # the deadline is never later than the newest acknowledged send time allows
        assert v.deadline <= max(0.0, last_send) + 4 - 0.2 + 1e-9
        # LOST is final
        if was_lost:
            assert v.state is L
        was_lost = v.state is L
        # past the deadline there is no state but LOST
        if now >= v.deadline:
            assert on_tick(v, now).state is L
