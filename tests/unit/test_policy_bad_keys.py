"""What the pure layers make of keys someone else wrote: which active records are trusted
(:func:`vnfha.roles.keys.active_problem`, :class:`GroupState`), and what the policy decides about a
bad key, a key that names a member that did not write it, and a last active that may still act."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.model import Redundancy, Role
from vnfha.roles.keys import ActiveRecord, GroupKeys, GroupState, MemberRecord, new_secret
from vnfha.roles.policy import Action, ActiveInfo, BadActive, GroupView, MemberInfo, decide
from vnfha.store.base import KeyValue, RangeResult

KEYS = GroupKeys("/vnfha", "vfw")
SECRET = new_secret()


def kv(key: str, value: bytes, lease: int, revision: int) -> KeyValue:
    return KeyValue(key=key, value=value, create_revision=revision, mod_revision=revision,
                    version=1, lease=lease)


def state(*, a_lease: int = 10, b_lease: int = 20) -> GroupState:
    s = GroupState(KEYS)
    s.apply(KEYS.member("a"), kv(KEYS.member("a"), MemberRecord("a", "2n").encode(), a_lease, 1),
            1)
    s.apply(KEYS.member("b"), kv(KEYS.member("b"), MemberRecord("b", "2n").encode(), b_lease, 2),
            2)
    return s


def put_active(s: GroupState, value: bytes, lease: int, revision: int) -> str | None:
    return s.apply(KEYS.active, kv(KEYS.active, value, lease, revision), revision)


@pytest.mark.parametrize(("value", "lease", "why"), [
    (ActiveRecord("a", "x", SECRET).encode(), 10, None),
    (ActiveRecord("a", "x", SECRET).encode(), 0, "not bound to a lease"),
    (ActiveRecord("a", "x", SECRET).encode(), 20, "not to a's lease"),
    (ActiveRecord("a", "x", "").encode(), 10, "no valid replication secret"),
    (ActiveRecord("a", "x", "zz" * 32).encode(), 10, "no valid replication secret"),
    (ActiveRecord("c", "x", SECRET).encode(), 10, "published no member record"),
    (ActiveRecord("A!", "x", SECRET).encode(), 10, "not a member name"),
    (b"garbage", 10, "unreadable"),
    (b'{"member": ["a"]}', 10, "unreadable"),
    (b"9" * 5000 + b"e9999", 10, "unreadable"),
    (b"[" * 100000, 10, "unreadable"),
])
def test_which_active_records_are_trusted(value: bytes, lease: int, why: str | None) -> None:
    s = state()
    put_active(s, value, lease, 5)
    if why is None:
        assert s.active is not None and s.active[1] == ActiveInfo("a", 10, 5)
        assert s.bad_active is None
    else:
        assert s.active is None
        assert s.bad_active is not None and why in s.bad_active.why and s.bad_active.epoch == 5


def test_a_deleted_member_record_keeps_its_lease_known() -> None:
    """Deleting the active's member record (etcdctl del) does not make its key bad; a record
    rewritten without a lease says nothing about leases either."""
    s = state()
    put_active(s, ActiveRecord("a", "x", SECRET).encode(), 10, 5)
    s.apply(KEYS.member("a"), None, 6)
    assert s.active is not None
    s.apply(KEYS.member("a"), kv(KEYS.member("a"), MemberRecord("a", "2n").encode(), 0, 7), 7)
    assert s.active is not None
    # a re-read keeps what was learnt
    again, _ = GroupState.read(KEYS, RangeResult(kvs=(), revision=s.revision, count=0), earlier=s)
    assert again.leases == {"a": 10, "b": 20}


def test_the_last_trusted_active_is_remembered() -> None:
    s = state()
    put_active(s, ActiveRecord("a", "x", SECRET).encode(), 10, 5)
    put_active(s, b"garbage", 0, 6)
    assert s.last_active == ActiveInfo("a", 10, 5)
    v = s.view("b", 20, True, Redundancy.TWO_N)
    assert v.previous_active == ActiveInfo("a", 10, 5) and v.bad_active is not None


def test_a_key_naming_me_that_i_did_not_write_is_bad_for_me() -> None:
    s = state()
    put_active(s, ActiveRecord("a", "x", SECRET).encode(), 10, 5)
    mine = s.view("a", 10, True, Redundancy.TWO_N, my_grants=frozenset({5}))
    assert mine.active == ActiveInfo("a", 10, 5)
    foreign = s.view("a", 10, True, Redundancy.TWO_N, my_grants=frozenset({3}))
    assert foreign.active is None and foreign.bad_active is not None
    assert "did not write it" in foreign.bad_active.why
    assert decide(foreign).role is not Role.ACTIVE
    other = s.view("b", 20, True, Redundancy.TWO_N, my_grants=frozenset())
    assert other.active == ActiveInfo("a", 10, 5)  # others cannot tell, and follow it


A = MemberInfo("a", lease=10, in_sync=True)
B = MemberInfo("b", lease=20, in_sync=True)
BAD = BadActive("", 0, 9, "holds an unreadable record")


def view(me: str, members: tuple[MemberInfo, ...], **kw: object) -> GroupView:
    lease = next(m.lease for m in members if m.name == me)
    return GroupView(me=me, my_lease=lease, session_valid=True, redundancy=Redundancy.TWO_N,
                     members=members, current_role=Role.STANDBY, **kw)  # type: ignore[arg-type]


def test_a_bad_key_is_replaced_after_the_final_positions() -> None:
    d = decide(view("b", (A, B), bad_active=BAD))
    assert d.action is Action.NONE and "final position" in d.reason  # b reports first
    b = MemberInfo("b", lease=20, applied=(5, 7), final_for=9)
    d = decide(view("b", (A, b), bad_active=BAD))
    assert d.action is Action.TAKEOVER and d.epoch == 9  # compare-and-swap on revision 9
    assert d.delay_steps == 1  # a has not reported: one step for it
    a = MemberInfo("a", lease=10, applied=(5, 3), final_for=9)
    d = decide(view("b", (a, b), bad_active=BAD))
    assert (d.action, d.delay_steps) == (Action.TAKEOVER, 0)  # b applied more: first


def test_nobody_campaigns_while_the_last_active_still_says_it_acts() -> None:
    acting = MemberInfo("a", lease=10, acting_epoch=5)
    previous = ActiveInfo("a", 10, 5)
    d = decide(view("b", (acting, B), previous_active=previous))
    assert d.action is Action.NONE and "stopped acting" in d.reason
    b = MemberInfo("b", lease=20, applied=(5, 7), final_for=9)
    d = decide(view("b", (acting, b), previous_active=previous, bad_active=BAD))
    assert d.action is Action.NONE and "stopped acting" in d.reason
    stopped = MemberInfo("a", lease=10, acting_epoch=0)
    assert decide(view("b", (stopped, B), previous_active=previous)).action is Action.CAMPAIGN
    # gone with its lease (no record), or a new incarnation (another lease): not acting
    assert decide(view("b", (B,), previous_active=previous)).action is Action.CAMPAIGN
    reborn = MemberInfo("a", lease=11, acting_epoch=5)
    assert decide(view("b", (reborn, B), previous_active=previous)).action is Action.CAMPAIGN


@given(st.binary(max_size=200), st.integers(0, 30), st.sampled_from(["a", "b"]))
def test_no_view_of_an_untrusted_key_makes_anyone_active(value: bytes, lease: int,
                                                         me: str) -> None:
    s = state()
    put_active(s, value, lease, 5)
    if s.active is None:
        assert s.bad_active is not None
        v = s.view(me, 10 if me == "a" else 20, True, Redundancy.TWO_N, my_grants=frozenset())
        assert decide(v).role is not Role.ACTIVE


def test_a_candidate_that_missed_the_epoch_never_takes_over() -> None:
    """Regression (found by the chaos soak): b reported its final position for epoch 7, but it
    is of epoch 3 (it had not received epoch 7's snapshot); c, which has epoch 7's changes, had
    not reported yet. b must wait for c, not take over a step later: the writes c acknowledged
    in epoch 7 would be lost."""
    b = MemberInfo("b", lease=20, applied=(3, 100), final_for=7)
    c = MemberInfo("c", lease=30)
    gone = view("b", (A, b, c), active=ActiveInfo("a", 10, 7), active_gone=True)
    d = decide(gone)
    assert d.action is Action.NONE and "has not applied epoch 7" in d.reason
    c = MemberInfo("c", lease=30, applied=(7, 50), final_for=7)
    d = decide(view("c", (A, b, c), active=ActiveInfo("a", 10, 7), active_gone=True))
    assert (d.action, d.delay_steps) == (Action.TAKEOVER, 0)
