"""The escalation ladder (vnfha.health.ladder): table-driven timelines on FakeClock times, and
hypothesis properties (bounded counts, climbing order, floors, determinism)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnfha.errors import ConfigError
from vnfha.health.ladder import (
    DEFAULT_POLICY,
    LADDER,
    MAX_REASON_CHARS,
    NFVI_RUNGS,
    Action,
    Decision,
    Fault,
    LadderHistory,
    LadderPolicy,
    Rung,
    RungPolicy,
    Use,
    decide,
    floor,
    merge,
    replay,
)
from vnfha.model import Recovery, Role
from vnfha.testing.clock import FakeClock

R, F, RB, EV, AL = Rung.RESTART, Rung.FAILOVER, Rung.REBOOT_VM, Rung.EVACUATE_VM, Rung.ALARM
WAIT = None
ACTIVE, STANDBY = Role.ACTIVE, Role.STANDBY


@dataclass(frozen=True)
class Situation:
    role: Role = ACTIVE
    bridge: bool = True
    recommended: Recovery = Recovery.NONE
    repair: str | None = None
    ready: bool = True


def timeline(steps: list[tuple[float, Situation]], policy: LadderPolicy = DEFAULT_POLICY,
             ) -> list[Decision]:
    """Faults at FakeClock times (each step: seconds after the previous fault, situation)."""
    clock = FakeClock()
    history = LadderHistory()
    out = []
    for dt, s in steps:
        clock.jump(dt)
        d = decide(policy, history, Fault("boom", s.recommended), clock.monotonic(),
                   role=s.role, has_bridge=s.bridge, open_repair=s.repair, standby_ready=s.ready)
        history = d.history
        out.append(d)
    return out


def every(dt: float, n: int, s: Situation = Situation()) -> list[tuple[float, Situation]]:
    return [(dt, s)] * n


STANDBY_S = Situation(role=STANDBY)
NO_BRIDGE = Situation(bridge=False)


@pytest.mark.parametrize(
    ("steps", "rungs"),
    [
        # the full ladder of an active with a bridge, faults 10 s apart
        (every(10, 9), [R, R, R, F, F, RB, EV, AL, AL]),
        # a standby never fails over: restart, then the NFVI
        (every(10, 7, STANDBY_S), [R, R, R, RB, EV, AL, AL]),
        # no bridge: the NFVI rungs are skipped
        (every(10, 7, NO_BRIDGE), [R, R, R, F, F, AL, AL]),
        (every(10, 5, Situation(role=STANDBY, bridge=False)), [R, R, R, AL, AL]),
        # no standby ready to take over: failover skipped
        (every(10, 5, Situation(ready=False)), [R, R, R, RB, EV]),
        # recommendations are floors
        (every(10, 4, Situation(recommended=Recovery.REPAIR_VM)), [RB, EV, AL, AL]),
        (every(10, 2, Situation(recommended=Recovery.REPAIR_VM, bridge=False)), [AL, AL]),
        (every(10, 5, Situation(recommended=Recovery.FAILOVER)), [F, F, RB, EV, AL]),
        (every(10, 3, Situation(recommended=Recovery.RESTART)), [R, R, R]),
        # ... a standby's failover recommendation falls back to restart
        (every(10, 4, Situation(role=STANDBY, recommended=Recovery.FAILOVER)), [R, R, R, RB]),
        # a restart recommendation never skips to the VM: it climbs from restart
        (every(10, 3) + every(10, 2, Situation(recommended=Recovery.RESTART)), [R, R, R, F, F]),
        # the bridge owns a repair: wait, and count nothing
        (every(10, 2) + every(10, 3, Situation(repair="T-9")) + every(10, 2), [R, R, WAIT, WAIT,
                                                                               WAIT, R, F]),
        # a clean window of 300 s resets restart; faults closer together keep climbing
        (every(10, 3) + every(300, 1), [R, R, R, R]),
        (every(10, 3) + every(299.9, 1), [R, R, R, F]),
        # restart resets after 300 s, failover only after 600 s: its count is kept
        (every(10, 4) + every(400, 1) + every(10, 4), [R, R, R, F, R, R, R, F, RB]),
        (every(10, 5) + every(600, 1) + every(10, 3), [R, R, R, F, F, R, R, R, F]),
        # after everything, an hour of calm resets the whole ladder
        (every(10, 8) + every(3600, 2), [R, R, R, F, F, RB, EV, AL, R, R]),
        # faults every 200 s never give restart its clean window: the ladder climbs
        (every(200, 5), [R, R, R, F, F]),
    ],
)
def test_timelines(steps: list[tuple[float, Situation]], rungs: list[Rung | None]) -> None:
    decisions = timeline(steps)
    assert [d.rung for d in decisions] == rungs, [d.reason for d in decisions]
    for d in decisions:
        assert d.reason.endswith("fault: boom (report_fault" + (
            f", recommended {d.fault.recommended})" if d.fault.recommended is not Recovery.NONE
            else ")"))


def test_reasons_say_what_and_why() -> None:
    d = timeline(every(10, 6, STANDBY_S))
    assert d[0].reason == "restart 1 of 3 within 300 s; fault: boom (report_fault)"
    assert d[0].action is Action.RESTART and d[0].attempt == 1
    assert d[3].reason == ("reboot-vm 1 of 1 within 1800 s (restart used 3 of 3 within 300 s; "
                           "failover skipped: member is standby, not active); "
                           "fault: boom (report_fault)")
    assert d[3].action is Action.ESCALATE
    assert d[5].action is Action.ALARM and d[5].attempt == 0
    assert d[5].reason.startswith("alarm only, no recovery left (restart used 3 of 3")
    assert "evacuate-vm used 1 of 1 within 3600 s" in d[5].reason
    nb = timeline(every(10, 6, NO_BRIDGE))
    assert "reboot-vm skipped: no NFVI bridge" in nb[5].reason
    w = timeline([(0, Situation(repair="T-17"))])[0]
    assert w.action is Action.WAIT and w.reason.startswith("bridge owns repair T-17")
    fb = timeline([(0, Situation(role=STANDBY, recommended=Recovery.FAILOVER))])[0]
    assert "recommended failover does not apply to a standby member" in fb.reason


def test_history_records_uses_and_last_fault() -> None:
    d = timeline([(0, Situation()), (10, Situation()), (5, Situation(repair="T"))])
    assert d[1].history == LadderHistory((Use(1000.0, R), Use(1010.0, R)), 1010.0)
    assert d[2].history == LadderHistory((Use(1000.0, R), Use(1010.0, R)), 1015.0)
    assert d[1].attempt == 2
    assert d[0].key == "restart/1/1000.0"


def test_disabled_rungs_are_skipped() -> None:
    policy = LadderPolicy(restart=RungPolicy(0, 300), failover=RungPolicy(1, 60))
    decisions = timeline(every(1, 3), policy)
    assert [d.rung for d in decisions] == [F, RB, EV]
    assert "restart disabled (max_count 0)" in decisions[0].reason


def test_floor_and_merge() -> None:
    assert [floor(r) for r in Recovery] == [R, R, F, RB]
    a = Fault("a", Recovery.RESTART, "check:x")
    b = Fault("b", Recovery.REPAIR_VM)
    m = merge(merge(a, Fault("c")), b)
    assert m == Fault("a", Recovery.REPAIR_VM, "check:x", coalesced=2)
    assert merge(b, a).recommended is Recovery.REPAIR_VM  # never lowered
    assert m.describe() == "a (check:x, recommended repair-vm, +2 coalesced)"
    long = Fault("x" * 10_000).describe()
    assert long == "x" * (MAX_REASON_CHARS - 3) + "... (report_fault)"


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: RungPolicy(-1, 10), "max_count"),
        (lambda: RungPolicy(1001, 10), "max_count"),
        (lambda: RungPolicy(1.5, 10), "max_count"),  # type: ignore[arg-type]
        (lambda: RungPolicy(1, 0), "probation_s"),
        (lambda: RungPolicy(1, float("inf")), "probation_s"),
        (lambda: RungPolicy(1, 31 * 24 * 3600), "probation_s"),
        (lambda: RungPolicy(1, "5"), "probation_s"),  # type: ignore[arg-type]
        (lambda: LadderPolicy(failover=(2, 600)), "failover"),  # type: ignore[arg-type]
    ],
)
def test_policy_validation_names_the_field(make: object, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        make()  # type: ignore[operator]
    assert e.value.field == field


# -- properties ----------------------------------------------------------------------------

rung_policies = st.builds(RungPolicy, st.integers(0, 4),
                          st.sampled_from([1.0, 5.0, 30.0, 300.0, 1000.0]))
ladder_policies = st.builds(LadderPolicy, rung_policies, rung_policies, rung_policies,
                            rung_policies)
situations = st.builds(Situation, st.sampled_from(list(Role)), st.booleans(),
                       st.sampled_from(list(Recovery)), st.sampled_from([None, None, "T-1"]),
                       st.booleans())
gaps = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 5.0, 30.0, 300.0, 1000.0]),
                 st.floats(0, 2000, allow_nan=False))


@settings(max_examples=300)
@given(ladder_policies, st.lists(st.tuples(gaps, situations), max_size=40))
def test_any_fault_sequence_keeps_every_bound(policy: LadderPolicy,
                                              steps: list[tuple[float, Situation]]) -> None:
    decisions = timeline(steps, policy)
    used: dict[Rung, list[float]] = {r: [] for r in LADDER}
    for d, (_, s) in zip(decisions, steps, strict=True):
        assert (d.action is Action.WAIT) == (s.repair is not None)
        if d.rung is None:
            continue
        assert d.rung in LADDER  # nothing above ALARM
        if d.rung is AL:
            assert d.attempt == 0
            continue
        rp = policy.of(d.rung)
        assert rp is not None
        assert LADDER.index(d.rung) >= LADDER.index(floor(s.recommended)) or (
            s.recommended is Recovery.FAILOVER and s.role is not ACTIVE)
        assert s.bridge or d.rung not in NFVI_RUNGS
        assert d.rung is not F or (s.role is ACTIVE and s.ready)
        assert 1 <= d.attempt <= rp.max_count
        assert d.history.last_fault_at is not None
        used[d.rung].append(d.history.last_fault_at)
        for r in LADDER[:-1]:
            p = policy.of(r)
            assert p is not None and d.history.count(r) <= p.max_count
    # within any window of a rung's probation_s, at most max_count uses of it
    for rung, times in used.items():
        rp = policy.of(rung)
        for t in times:
            assert rp is not None
            assert sum(1 for u in times if t <= u < t + rp.probation_s) <= rp.max_count


@settings(max_examples=300)
@given(ladder_policies, situations.filter(lambda s: s.repair is None), st.data())
def test_rungs_climb_in_order_while_faults_keep_coming(policy: LadderPolicy, s: Situation,
                                                       data: st.DataObject) -> None:
    shortest = min(p.probation_s for r in LADDER[:-1] if (p := policy.of(r)) is not None)
    # below the window with room for float rounding of the clock (1000.0 + 0.99999999999999994
    # is 1001.0)
    dts = data.draw(st.lists(st.floats(0, shortest * 0.999, allow_nan=False), max_size=20))
    decisions = timeline([(dt, s) for dt in dts], policy)
    index = [LADDER.index(d.rung) for d in decisions if d.rung is not None]
    assert index == sorted(index)
    # no gap is a clean window, so no count resets: the counted rungs together allow at most the
    # sum of their max_counts, and every fault beyond that is answered with ALARM
    capacity = sum(p.max_count for r in LADDER[:-1] if (p := policy.of(r)) is not None)
    assert sum(1 for d in decisions if d.rung is not AL) <= capacity
    assert len(decisions) <= capacity or decisions[-1].rung is AL


@given(ladder_policies, st.lists(st.tuples(gaps, situations), min_size=1, max_size=20))
def test_deterministic(policy: LadderPolicy, steps: list[tuple[float, Situation]]) -> None:
    assert timeline(steps, policy) == timeline(steps, policy)


@given(ladder_policies, st.lists(st.tuples(gaps, situations), min_size=1, max_size=20),
       st.integers(0, 20))
def test_replay_rebuilds_the_history_decide_built(policy: LadderPolicy,
                                                  steps: list[tuple[float, Situation]],
                                                  split: int) -> None:
    decisions = timeline(steps, policy)
    events = [(d.history.last_fault_at or 0.0, d.rung if d.attempt else None) for d in decisions]
    assert replay(policy, LadderHistory(), events) == decisions[-1].history
    # replaying the tail onto the history at any point gives the same
    split = min(split, len(decisions) - 1)
    assert replay(policy, decisions[split].history, events[split + 1:]) == decisions[-1].history
