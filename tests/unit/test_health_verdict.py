"""Health-check hysteresis (vnfha.health.verdict): table-driven cases and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.errors import ConfigError
from vnfha.health.verdict import (
    Change,
    CheckPolicy,
    CheckState,
    Health,
    Transition,
    initial,
    observe,
    rearm,
)

T0 = 1000.0  # FakeClock's default start


def run(policy: CheckPolicy, results: str, state: CheckState | None = None,
        ) -> tuple[CheckState, list[tuple[int, Change]]]:
    """Feed results ("x" = failure or timeout, "." = ok) one period apart; return the final
    state and (index, change) of every transition."""
    s = state or initial()
    seen: list[tuple[int, Change]] = []
    for i, c in enumerate(results):
        s, t = observe(policy, s, c == ".", T0 + i * policy.period_s)
        if t is not None:
            seen.append((i, t.change))
    return s, seen


N3M2 = CheckPolicy(fail_after=3, recover_after=2, period_s=5.0, timeout_s=2.0)


@pytest.mark.parametrize(
    ("policy", "results", "health", "changes"),
    [
        (N3M2, "", Health.HEALTHY, []),
        (N3M2, "xx", Health.HEALTHY, []),  # below N: still healthy
        (N3M2, "xxx", Health.FAILING, [(2, Change.FAILED)]),
        (N3M2, "xx.xx.xx", Health.HEALTHY, []),  # a success resets the failure streak
        (N3M2, "xxx.", Health.FAILING, [(2, Change.FAILED)]),  # one success is not M
        (N3M2, "xxx..", Health.HEALTHY, [(2, Change.FAILED), (4, Change.RECOVERED)]),
        (N3M2, "xxx.x.x.", Health.FAILING, [(2, Change.FAILED)]),  # never M in a row
        # still failing: reported again after each further N failures in a row
        (N3M2, "xxxxxx", Health.FAILING, [(2, Change.FAILED), (5, Change.STILL_FAILING)]),
        (N3M2, "xxxxx.xxx", Health.FAILING, [(2, Change.FAILED), (8, Change.STILL_FAILING)]),
        (CheckPolicy(1, 1, 1.0, 1.0), "x.x", Health.FAILING,
         [(0, Change.FAILED), (1, Change.RECOVERED), (2, Change.FAILED)]),
        (CheckPolicy(1, 3, 1.0, 0.5), "xx", Health.FAILING,
         [(0, Change.FAILED), (1, Change.STILL_FAILING)]),
    ],
)
def test_table(policy: CheckPolicy, results: str, health: Health,
               changes: list[tuple[int, Change]]) -> None:
    state, seen = run(policy, results)
    assert state.health is health
    assert seen == changes
    assert state.runs == len(results)


def test_transition_carries_time_and_streak() -> None:
    s, t = observe(N3M2, CheckState(failures=2), False, 1234.5)
    assert t == Transition(Change.FAILED, Health.FAILING, 1234.5, 3)
    assert s.since == 1234.5 and s.health is Health.FAILING and (s.failures, s.successes) == (0, 0)
    s, t = observe(N3M2, CheckState(Health.FAILING, successes=1, since=1.0), True, 2000.0)
    assert t == Transition(Change.RECOVERED, Health.HEALTHY, 2000.0, 2)
    assert s.since == 2000.0


def test_rearm_gives_a_recovery_n_fresh_periods() -> None:
    state, _ = run(N3M2, "xxxxx")  # FAILED at 2, two more failures counted
    assert state.failures == 2
    state = rearm(state)
    assert state.health is Health.FAILING and state.failures == 0
    state, seen = run(N3M2, "xx", state)
    assert seen == []  # without the rearm this would have been STILL_FAILING
    _, seen = run(N3M2, "x", state)
    assert seen == [(0, Change.STILL_FAILING)]
    healthy, _ = run(N3M2, "xx")
    assert rearm(healthy) == CheckState(runs=2)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"fail_after": 0}, "fail_after"),
        ({"recover_after": 1001}, "recover_after"),
        ({"fail_after": 2.0}, "fail_after"),
        ({"fail_after": True}, "fail_after"),
        ({"period_s": 0}, "period_s"),
        ({"period_s": float("nan")}, "period_s"),
        ({"timeout_s": float("inf")}, "timeout_s"),
        ({"timeout_s": -1.0}, "timeout_s"),
        ({"timeout_s": "2"}, "timeout_s"),
        ({"period_s": 1.0, "timeout_s": 2.0}, "timeout_s"),  # runs would overlap
    ],
)
def test_policy_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        CheckPolicy(**kwargs)  # type: ignore[arg-type]
    assert e.value.field == field
    assert str(e.value).startswith(f"{field}={kwargs[field]!r}: ")


policies = st.builds(CheckPolicy, fail_after=st.integers(1, 6), recover_after=st.integers(1, 6),
                     period_s=st.just(5.0), timeout_s=st.just(1.0))
results = st.lists(st.booleans(), max_size=60)


@given(policies, results)
def test_transitions_alternate_and_follow_exact_streaks(policy: CheckPolicy, oks: list[bool],
                                                        ) -> None:
    s = initial()
    last: Change | None = None
    history: list[bool] = []
    for i, ok in enumerate(oks):
        prev = s
        s, t = observe(policy, s, ok, T0 + i)
        history.append(ok)
        if t is None:
            assert s.health is prev.health
            continue
        assert t.health is s.health and t.at == T0 + i
        if t.change is Change.FAILED:
            assert last in (None, Change.RECOVERED) and prev.health is Health.HEALTHY
            assert history[-policy.fail_after:] == [False] * policy.fail_after
        elif t.change is Change.RECOVERED:
            assert last in (Change.FAILED, Change.STILL_FAILING)
            assert history[-policy.recover_after:] == [True] * policy.recover_after
        else:
            assert last in (Change.FAILED, Change.STILL_FAILING)
            assert history[-policy.fail_after:] == [False] * policy.fail_after
        last = t.change
    assert s.runs == len(oks)
    assert 0 <= s.failures < policy.fail_after and 0 <= s.successes < policy.recover_after


@given(st.integers(2, 8), st.integers(2, 8), st.booleans(), st.integers(0, 50))
def test_alternating_results_never_flap(n: int, m: int, start_ok: bool, length: int) -> None:
    policy = CheckPolicy(n, m, 5.0, 1.0)
    for start in (initial(), CheckState(Health.FAILING, since=T0)):
        s = start
        for i in range(length):
            s, t = observe(policy, s, (i % 2 == 0) == start_ok, T0 + i)
            assert t is None
        assert s.health is start.health


@given(policies, st.lists(st.booleans(), min_size=1, max_size=30))
def test_deterministic(policy: CheckPolicy, oks: list[bool]) -> None:
    a, b = initial(), initial()
    for i, ok in enumerate(oks):
        a, ta = observe(policy, a, ok, T0 + i)
        b, tb = observe(policy, b, ok, T0 + i)
        assert (a, ta) == (b, tb)
