"""The pure role policy: table-driven cases and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.model import Redundancy, Role
from vnfha.roles.policy import (
    Action,
    ActiveInfo,
    GroupView,
    MemberInfo,
    decide,
    eligible,
    rank,
)

A, B, C = MemberInfo("a", lease=1), MemberInfo("b", lease=2), MemberInfo("c", lease=3)


def view(me: str, *, model: Redundancy = Redundancy.TWO_N, members: tuple[MemberInfo, ...] = (A, B),
         active: ActiveInfo | None = None, valid: bool = True,
         handover_to: str | None = None, current: Role | None = None) -> GroupView:
    lease = next((m.lease for m in members if m.name == me), 99)
    return GroupView(me=me, my_lease=lease, session_valid=valid, redundancy=model,
                     members=members, active=active, handover_to=handover_to,
                     current_role=current)


@pytest.mark.parametrize(
    ("v", "role", "action", "delay"),
    [
        # no active: the best-ranked campaigns at once, the next after one step
        (view("a"), Role.STANDBY, Action.CAMPAIGN, 0),
        (view("b"), Role.SPARE, Action.CAMPAIGN, 1),  # TWO_N: b ranks below a, so a spare
        # the holder of the key with its own lease is active; others follow it
        (view("a", active=ActiveInfo("a", 1, 7)), Role.ACTIVE, Action.NONE, 0),
        (view("b", active=ActiveInfo("a", 1, 7)), Role.STANDBY, Action.NONE, 0),
        # the key under our name but another lease (an earlier incarnation): wait, not active
        (view("a", active=ActiveInfo("a", 55, 7)), Role.STANDBY, Action.NONE, 0),
        # a lost session quiesces, whatever the key says
        (view("a", active=ActiveInfo("a", 1, 7), valid=False), Role.QUIESCED, Action.NONE, 0),
        # handover: the target campaigns first, even when ranked lower
        (view("b", handover_to="b"), Role.SPARE, Action.CAMPAIGN, 0),
        (view("a", handover_to="b"), Role.STANDBY, Action.CAMPAIGN, 1),
        # TWO_N with three: the third is spare
        (view("c", members=(A, B, C), active=ActiveInfo("a", 1, 7)), Role.SPARE, Action.NONE, 0),
        # N_WAY: every non-active is a standby
        (view("c", model=Redundancy.N_WAY, members=(A, B, C), active=ActiveInfo("a", 1, 7)),
         Role.STANDBY, Action.NONE, 0),
        (view("c", model=Redundancy.N_WAY, members=(A, B, C)), Role.STANDBY, Action.CAMPAIGN, 2),
        # N_WAY_ACTIVE: all active, no campaign; unless the session is gone
        (view("b", model=Redundancy.N_WAY_ACTIVE, active=ActiveInfo("a", 1, 7)),
         Role.ACTIVE, Action.NONE, 0),
        (view("b", model=Redundancy.N_WAY_ACTIVE, valid=False), Role.QUIESCED, Action.NONE, 0),
        # NO_REDUNDANCY: one active, the others spares that take over cold
        (view("b", model=Redundancy.NO_REDUNDANCY, active=ActiveInfo("a", 1, 7)),
         Role.SPARE, Action.NONE, 0),
        (view("b", model=Redundancy.NO_REDUNDANCY), Role.SPARE, Action.CAMPAIGN, 1),
        # between two actives a standby stays a standby (no flip to spare and back) ...
        (view("b", current=Role.STANDBY), Role.STANDBY, Action.CAMPAIGN, 1),
        # ... but a resigning active takes the role its rank gives
        (view("b", current=Role.QUIESCED), Role.SPARE, Action.CAMPAIGN, 1),
    ],
)
def test_table(v: GroupView, role: Role, action: Action, delay: int) -> None:
    d = decide(v)
    assert (d.role, d.action, d.delay_steps) == (role, action, delay), d.reason
    assert d.reason


def test_no_failover_and_out_of_sync_members_do_not_campaign() -> None:
    members = (MemberInfo("a", lease=1, no_failover=True), MemberInfo("b", lease=2, in_sync=False),
               MemberInfo("c", lease=3))
    for me, why in (("a", "no-failover"), ("b", "not in sync")):
        d = decide(view(me, model=Redundancy.N_WAY, members=members))
        assert d.action is Action.NONE and why in d.reason
    d = decide(view("c", model=Redundancy.N_WAY, members=members))
    assert (d.action, d.delay_steps) == (Action.CAMPAIGN, 0)


def test_epoch_reported_from_the_active_key() -> None:
    assert decide(view("b", active=ActiveInfo("a", 1, 41))).epoch == 41
    assert decide(view("a", active=ActiveInfo("a", 1, 41))).epoch == 41


def test_rank_prefers_sync_then_checkpoint_then_priority_then_name() -> None:
    members = [
        MemberInfo("z", priority=9, applied=(3, 1)),
        MemberInfo("y", applied=(3, 5)),
        MemberInfo("x", priority=100, in_sync=False, applied=(9, 9)),
        MemberInfo("w", applied=(3, 5)),
        MemberInfo("v", priority=5, applied=(2, 99)),
    ]
    assert [m.name for m in rank(members)] == ["w", "y", "z", "v", "x"]
    assert [m.name for m in eligible(members)] == ["w", "y", "z", "v"]


# -- properties ----------------------------------------------------------------------------------

names = st.sampled_from(["a", "b", "c", "d", "e"])
member_infos = st.builds(
    MemberInfo, name=names, priority=st.integers(0, 3), no_failover=st.booleans(),
    applied=st.tuples(st.integers(0, 3), st.integers(0, 3)), in_sync=st.booleans(),
    lease=st.integers(1, 6),
)
groups = st.lists(member_infos, min_size=1, max_size=5, unique_by=lambda m: m.name)


@given(groups, st.randoms())
def test_ranking_is_independent_of_input_order(members: list[MemberInfo], rnd: object) -> None:
    shuffled = list(members)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert rank(shuffled) == rank(members)


@given(
    groups,
    st.sampled_from(list(Redundancy)),
    st.one_of(st.none(), st.builds(ActiveInfo, member=names, lease=st.integers(1, 6),
                                   epoch=st.integers(1, 100))),
    st.one_of(st.none(), names),
    st.lists(st.booleans(), min_size=5, max_size=5),
    st.lists(st.one_of(st.none(), st.sampled_from(list(Role))), min_size=5, max_size=5),
)
def test_never_two_actives(
    members: list[MemberInfo], model: Redundancy, active: ActiveInfo | None,
    handover: str | None, valid: list[bool], current: list[Role | None],
) -> None:
    """Every member decides from the same view; only the model's allowed actives result."""
    decisions = {
        m.name: decide(GroupView(me=m.name, my_lease=m.lease, session_valid=valid[i],
                                 redundancy=model, members=tuple(members), active=active,
                                 handover_to=handover, current_role=current[i]))
        for i, m in enumerate(members)
    }
    actives = [n for n, d in decisions.items() if d.role is Role.ACTIVE]
    if model is Redundancy.N_WAY_ACTIVE:
        assert actives == [m.name for i, m in enumerate(members) if valid[i]]
    else:
        assert len(actives) <= 1
        for n in actives:
            assert active is not None and active.member == n
    # nobody without a valid session does anything
    for i, m in enumerate(members):
        if not valid[i]:
            assert decisions[m.name].role is Role.QUIESCED
            assert decisions[m.name].action is Action.NONE
    # campaigners are eligible and have distinct delays (the best one first)
    delays = [d.delay_steps for d in decisions.values() if d.action is Action.CAMPAIGN]
    assert len(delays) == len(set(delays))
    if model is Redundancy.TWO_N and active is not None:
        standbys = [n for n, d in decisions.items() if d.role is Role.STANDBY]
        assert len(standbys) <= 1


# -- takeover of an active that can no longer act, ranked by final position ----------------------

def gone_view(me: str, *members: MemberInfo, model: Redundancy = Redundancy.N_WAY) -> GroupView:
    lease = next((m.lease for m in members if m.name == me), 99)
    return GroupView(me=me, my_lease=lease, session_valid=True, redundancy=model,
                     members=(MemberInfo("a", lease=1), *members),
                     active=ActiveInfo("a", 1, 7), current_role=Role.STANDBY, active_gone=True)


@pytest.mark.parametrize(("v", "action", "delay", "why"), [
    # nobody has published a final position: each first publishes its own
    (gone_view("b", MemberInfo("b", lease=2), MemberInfo("c", lease=3)), Action.NONE, 0,
     "publishing"),
    # b published, c not yet: b waits one step for c
    (gone_view("b", MemberInfo("b", lease=2, applied=(7, 10)), MemberInfo("c", lease=3)),
     Action.TAKEOVER, 1, "waiting a step"),
    # both published: the one that applied more goes first, whatever the priority
    (gone_view("c", MemberInfo("b", lease=2, applied=(7, 10), priority=9),
               MemberInfo("c", lease=3, applied=(7, 12))), Action.TAKEOVER, 0, "ranked 1 of 2"),
    (gone_view("b", MemberInfo("b", lease=2, applied=(7, 10), priority=9),
               MemberInfo("c", lease=3, applied=(7, 12))), Action.TAKEOVER, 1, "ranked 2 of 2"),
    # equal positions: priority decides
    (gone_view("b", MemberInfo("b", lease=2, applied=(7, 12), priority=9),
               MemberInfo("c", lease=3, applied=(7, 12))), Action.TAKEOVER, 0, "ranked 1 of 2"),
    # a member that is out of sync or tagged no-failover neither takes over nor is waited for
    (gone_view("b", MemberInfo("b", lease=2, applied=(7, 3)),
               MemberInfo("c", lease=3, in_sync=False)), Action.TAKEOVER, 0, "ranked 1 of 1"),
    (gone_view("c", MemberInfo("b", lease=2, applied=(7, 3)),
               MemberInfo("c", lease=3, no_failover=True, applied=(7, 9))), Action.NONE, 0,
     "may not take over"),
    # a position from an earlier epoch is not a final position for this one
    (gone_view("b", MemberInfo("b", lease=2, applied=(5, 99))), Action.NONE, 0, "publishing"),
    # without replication there are no positions to wait for
    (gone_view("b", MemberInfo("b", lease=2), model=Redundancy.NO_REDUNDANCY),
     Action.TAKEOVER, 0, "ranked 1 of 1"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_takeover_ranks_by_final_position(v: GroupView, action: Action, delay: int,
                                          why: str) -> None:
    d = decide(v)
    assert (d.action, d.delay_steps) == (action, delay), d.reason
    assert why in d.reason
    assert d.epoch == 7


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(-3, 3), st.booleans()),
                min_size=1, max_size=5))
def test_takeover_goes_first_to_the_most_applied(specs: list[tuple[int, int, bool]]) -> None:
    members = tuple(MemberInfo(f"m{i}", lease=10 + i, applied=(7, seq), priority=prio,
                               in_sync=sync)
                    for i, (seq, prio, sync) in enumerate(specs))
    immediate = [m for m in members
                 if decide(gone_view(m.name, *members)).action is Action.TAKEOVER
                 and decide(gone_view(m.name, *members)).delay_steps == 0]
    synced = [m for m in members if m.in_sync]
    if not synced:
        assert immediate == []
        return
    assert len(immediate) == 1
    assert immediate[0].applied[1] == max(m.applied[1] for m in synced)


def test_rank_puts_healthy_first_among_equal_positions_but_the_data_first() -> None:
    ill = MemberInfo("a", priority=9, failing=True)
    assert [m.name for m in rank([ill, B])] == ["b", "a"]  # health before priority and name
    ahead = MemberInfo("a", applied=(4, 2), failing=True)
    assert [m.name for m in rank([ahead, MemberInfo("b", applied=(4, 1))])] == ["a", "b"]


def takeover_view(me: str, *members: MemberInfo) -> GroupView:
    return GroupView(me=me, my_lease=next(m.lease for m in members if m.name == me),
                     session_valid=True, redundancy=Redundancy.N_WAY,
                     members=(MemberInfo("x", lease=9), *members),
                     active=ActiveInfo("x", 9, 7), active_gone=True, current_role=Role.STANDBY)


def test_a_takeover_passes_over_a_failing_standby_at_the_same_position() -> None:
    b = MemberInfo("b", lease=2, applied=(7, 5), final_for=7, priority=10, failing=True)
    c = MemberInfo("c", lease=3, applied=(7, 5), final_for=7)
    first, second = decide(takeover_view("c", b, c)), decide(takeover_view("b", b, c))
    assert (first.action, first.delay_steps) == (Action.TAKEOVER, 0)
    assert (second.action, second.delay_steps) == (Action.TAKEOVER, 1)
    assert "WARNING" not in first.reason


def test_a_failing_standby_that_holds_more_still_takes_over_and_says_so() -> None:
    b = MemberInfo("b", lease=2, applied=(7, 6), final_for=7, failing=True)
    c = MemberInfo("c", lease=3, applied=(7, 5), final_for=7)
    d = decide(takeover_view("b", b, c))
    assert (d.action, d.delay_steps) == (Action.TAKEOVER, 0)
    assert "WARNING: its health checks are failing" in d.reason and "c behind" in d.reason


def admin_view(me: str, *members: MemberInfo, active: ActiveInfo | None = None,
               gone: bool = False, paused: bool = False, locked: bool = False) -> GroupView:
    return GroupView(me=me, my_lease=next(m.lease for m in members if m.name == me),
                     session_valid=True, redundancy=Redundancy.TWO_N, members=members,
                     active=active, active_gone=gone, paused=paused, me_locked=locked,
                     current_role=Role.STANDBY)


def test_a_locked_member_holds_no_role_and_is_never_chosen() -> None:
    b, c = MemberInfo("b", lease=2, locked=True), MemberInfo("c", lease=3)
    d = decide(admin_view("b", b, c, locked=True))
    assert (d.role, d.action) == (Role.SPARE, Action.NONE) and "locked" in d.reason
    assert [m.name for m in eligible([b, c])] == ["c"]
    d = decide(admin_view("c", b, c))  # the locked one takes no standby slot, nor the lead
    assert (d.role, d.action, d.delay_steps) == (Role.STANDBY, Action.CAMPAIGN, 0)


def test_a_locked_active_stays_active_until_it_has_handed_over() -> None:
    a = MemberInfo("a", lease=1, locked=True)
    d = decide(admin_view("a", a, B, active=ActiveInfo("a", 1, 7), locked=True))
    assert d.role is Role.ACTIVE  # the handover (its duties) ends it, not a demotion


def test_a_paused_group_neither_takes_over_nor_elects() -> None:
    x = MemberInfo("x", lease=9)
    b = MemberInfo("b", lease=2, applied=(7, 5), final_for=7)
    d = decide(admin_view("b", x, b, active=ActiveInfo("x", 9, 7), gone=True, paused=True))
    assert (d.role, d.action) == (Role.STANDBY, Action.NONE) and "paused" in d.reason
    d = decide(admin_view("b", b, paused=True))
    assert d.action is Action.NONE and "paused" in d.reason
    d = decide(admin_view("b", x, b, active=ActiveInfo("x", 9, 7), gone=True))
    assert d.action is Action.TAKEOVER  # and without the pause it would
