"""The pure counting of a member's incarnations (issue 17, item 3): an unclean end is one
restart, a crash failover of the member as the old active is one failover (each epoch once),
a clean stop and an end by the member's own repair count nothing, and a start whose record is
not stored counts again at the next start, never twice. Table-driven and hypothesis, on plain
numbers for time."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.errors import LadderStateError
from vnfha.health.incarnation import (
    Failover,
    Life,
    LifeState,
    Start,
    already_done,
    begin,
    life_from_json,
    stored_life,
)
from vnfha.health.ladder import (
    DEFAULT_POLICY,
    Action,
    LadderHistory,
    LadderPolicy,
    Rung,
    RungPolicy,
    to_bytes,
)
from vnfha.model import Role

RUNNING, REPAIRING, STOPPED = LifeState.RUNNING, LifeState.REPAIRING, LifeState.STOPPED
WALL = 1_718_000_000.0
TWO_RESTARTS = LadderPolicy(restart=RungPolicy(2, 300.0))


EMPTY = LadderHistory()


def start(life: Life, history: LadderHistory = EMPTY, failovers: tuple[Failover, ...] = (), *,
          now: float = 1000.0, policy: LadderPolicy = DEFAULT_POLICY, role: Role = Role.STANDBY,
          bridge: bool = True, ready: bool = True) -> Start:
    return begin(policy, history, life, failovers, now=now, wall_now=WALL + now, member="b",
                 role=role, has_bridge=bridge, standby_ready=ready)


@pytest.mark.parametrize(("life", "counted"), [
    (Life(), False),                      # first start: nothing recorded
    (Life(3, STOPPED), False),            # a clean stop
    (Life(3, REPAIRING), False),          # ended by the repair it asked for
    (Life(3, RUNNING), True),             # died
])
def test_only_an_unclean_end_is_a_death(life: Life, counted: bool) -> None:
    s = start(life)
    assert s.life == Life(life.incarnation + 1, RUNNING, 0)
    assert (s.decision is not None) is counted
    assert s.history.count(Rung.RESTART) == int(counted)
    if s.decision is not None:
        assert already_done(s.decision) and s.decision.action is Action.RESTART
        assert "incarnation 3 of b ended without a clean stop" in s.decision.reason
        assert s.decision.fault.source == "restart"


def test_deaths_climb_restart_restart_then_the_vm_reboot() -> None:
    """Three deaths within the restart window with 2 restarts allowed: the third asks the NFVI
    (a standby skips failover); without a bridge it is an alarm."""
    life, history, actions = Life(1, RUNNING), LadderHistory(), []
    for i in range(3):
        s = start(life, history, now=1000.0 + 10 * i, policy=TWO_RESTARTS)
        assert s.decision is not None
        actions.append((s.decision.action, s.decision.rung))
        life, history = s.life, s.history
    assert actions == [(Action.RESTART, Rung.RESTART), (Action.RESTART, Rung.RESTART),
                       (Action.ESCALATE, Rung.REBOOT_VM)]
    assert "failover skipped: member is standby" in s.decision.reason  # type: ignore[union-attr]
    assert not already_done(s.decision)  # type: ignore[arg-type]
    no_bridge = start(Life(3, RUNNING), history, now=1020.0, policy=TWO_RESTARTS, bridge=False)
    assert no_bridge.decision is not None and no_bridge.decision.action is Action.ALARM


def test_a_clean_window_forgets_old_deaths() -> None:
    s = start(Life(1, RUNNING), policy=TWO_RESTARTS, now=1000.0)
    s = start(s.life, s.history, policy=TWO_RESTARTS, now=1010.0)
    later = start(s.life, s.history, policy=TWO_RESTARTS, now=1010.0 + 300.0)
    assert later.decision is not None and later.decision.reason.startswith("restart 1 of 2")


def test_crash_failovers_count_once_each_and_handovers_not_at_all() -> None:
    records = (Failover(7, "crash", WALL + 990.0), Failover(9, "switchover", WALL + 995.0),
               Failover(11, "fence", WALL + 998.0), Failover(12, "ladder", WALL + 999.0),
               Failover(5, "lease", WALL + 900.0))
    s = start(Life(2, RUNNING, counted_epoch=5), failovers=records)
    assert s.failovers == (7, 11) and s.life.counted_epoch == 11
    assert s.history.count(Rung.FAILOVER) == 2 and s.history.count(Rung.RESTART) == 1
    assert sorted(s.history.uses) == list(s.history.uses)
    assert s.history.times(Rung.FAILOVER) == (990.0, 998.0)  # when they happened
    again = start(Life(3, STOPPED, s.life.counted_epoch), s.history, records, now=1100.0)
    assert again.failovers == () and again.history.count(Rung.FAILOVER) == 2


def test_an_old_failover_is_past_counting_but_marked_counted() -> None:
    old = Failover(4, "crash", WALL + 1000.0 - 700.0)  # failover's window is 600 s
    s = start(Life(1, STOPPED), failovers=(old,))
    assert s.failovers == () and s.life.counted_epoch == 4
    assert s.history.count(Rung.FAILOVER) == 0 and "not counted" in s.reason


def test_a_failover_with_no_time_counts_now() -> None:
    s = start(Life(1, STOPPED), failovers=(Failover(4, "nfvi-event"),), now=50.0)
    assert s.history.times(Rung.FAILOVER) == (50.0,)


def test_the_life_round_trips_through_the_stored_record() -> None:
    life = Life(4, REPAIRING, 17)
    data = to_bytes(LadderHistory(), 0.0, WALL, life=life.as_json())
    assert stored_life(data) == life
    assert stored_life(to_bytes(LadderHistory(), 0.0, WALL)) is None  # an older writer's


@pytest.mark.parametrize("bad", [
    [], {"incarnation": -1, "state": "running", "counted_epoch": 0},
    {"incarnation": 1, "state": "dead", "counted_epoch": 0},
    {"incarnation": True, "state": "running", "counted_epoch": 0},
    {"incarnation": 1, "state": "running"},
])
def test_a_bad_life_is_refused_by_name(bad: object) -> None:
    with pytest.raises(LadderStateError):
        life_from_json(bad)
    with pytest.raises(LadderStateError):
        stored_life(json.dumps({"v": 1, "life": bad}).encode())
    with pytest.raises(LadderStateError, match="not JSON"):
        stored_life(b"{")


# -- exactly once, whatever fails ---------------------------------------------------------------

EVENTS = st.lists(st.sampled_from(["die", "die-unstored", "stop", "repair", "crash-failover"]),
                  max_size=30)


@given(EVENTS)
def test_each_death_and_failover_is_counted_exactly_once(events: list[str]) -> None:
    """A model of a member's life against the store: each start reads what the last stored
    start (or stop) left, and stores its own start unless the event says it died before. Every
    death of an incarnation that stored its start, and every crash failover epoch, is counted
    exactly once (the policy never resets: one long window)."""
    policy = LadderPolicy(restart=RungPolicy(1000, 1e6), failover=RungPolicy(1000, 1e6),
                          reboot_vm=RungPolicy(0, 1e6), evacuate_vm=RungPolicy(0, 1e6))
    stored_life_, stored_history = Life(), LadderHistory()
    failovers: list[Failover] = []
    deaths = crash_epochs = 0
    now = 0.0
    for event in [*events, "die"]:
        now += 1.0
        s = start(stored_life_, stored_history, tuple(failovers), now=now, policy=policy,
                  role=Role.ACTIVE)
        if event == "die-unstored":  # died before its start was stored: nothing changes
            continue
        stored_life_, stored_history = s.life, s.history
        if event == "die":
            deaths += 1
        elif event == "stop":
            stored_life_ = Life(s.life.incarnation, STOPPED, s.life.counted_epoch)
        elif event == "repair":
            stored_life_ = Life(s.life.incarnation, REPAIRING, s.life.counted_epoch)
        else:  # it was the active and crashed: a failover record, and a death
            crash_epochs += 1
            failovers.append(Failover(100 + crash_epochs, "crash", WALL + now))
            deaths += 1
    final = start(stored_life_, stored_history, tuple(failovers), now=now + 1, policy=policy)
    assert final.history.count(Rung.RESTART) == deaths
    assert final.history.count(Rung.FAILOVER) == crash_epochs
