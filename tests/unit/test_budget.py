"""The pure failover-budget model (vnfha.budget): each path's worst case, checked table-driven,
against the measured figures of docs/failover.md, with hypothesis for its properties and
against the pure detectors it bounds (suspicion, expiry proof); and Config refusing a budget
its timers cannot meet."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from pathlib import Path as FilePath
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vnfha.budget import (
    BUDGET_FIELDS,
    RECONNECT_QUICK_RETRIES,
    RECONNECT_QUICK_RETRY_S,
    FailoverTimers,
    Path,
    budget_path,
    format_ms,
    judge_budgets,
    worst_cases,
)
from vnfha.config import Config, load_config
from vnfha.errors import ConfigError
from vnfha.model import Redundancy
from vnfha.replication.standby import QUICK_RETRIES, QUICK_RETRY_S
from vnfha.roles.expiry import ExpiryProof, ExpiryTracker, Poll
from vnfha.roles.suspicion import SilenceDetector, Suspicion, SuspicionPolicy

DEFAULTS = FailoverTimers.of(Config(group="vfw", member="vfw-a"))


def ms(timers: FailoverTimers = DEFAULTS, **changes: Any) -> dict[Path, Fraction]:
    cases = worst_cases(dataclasses.replace(timers, **changes))
    return {path: case.ms for path, case in cases.items()}


# -- the paths, table-driven ------------------------------------------------------------------


def test_the_defaults_worst_cases_and_their_terms() -> None:
    cases = worst_cases(DEFAULTS)
    assert {p: format_ms(c.ms) for p, c in cases.items()} == {
        Path.CRASH: "1250", Path.HANG_BRIDGE: "1650", Path.HANG_STANDBY: "1450",
        Path.HANG_LEASE: "4000", Path.SWITCHOVER: "8000"}
    # the silence (350) and the promise seen at the next slot (300 + 50) tie: the silence
    assert cases[Path.HANG_STANDBY].breakdown() == (
        "heartbeat slot under way 50 + silence: 6 missed heartbeat slots 300 + final-position "
        "put 500 + other candidates' positions (a backoff step) 100 + takeover transaction 500")
    assert cases[Path.CRASH].breakdown() == (
        "10 quick reconnects 50 + reconnect after a backoff step 100 + final-position put 500 "
        "+ other candidates' positions (a backoff step) 100 + takeover transaction 500")
    assert cases[Path.HANG_BRIDGE].breakdown().startswith(
        "heartbeat slot under way 50 + silence: 6 missed heartbeat slots 300 + Fence 200 + ")
    # polls may lie 2 x 0.05 + 2 x 0.5 = 1.1 s apart: no proof can be counted on
    assert cases[Path.HANG_LEASE].breakdown() == (
        "lease TTL 2000 + etcd's revocation loop 500 + record updates 1000 + campaign "
        "transaction 500")
    assert "cannot be relied on" in cases[Path.HANG_LEASE].note
    assert cases[Path.SWITCHOVER].breakdown() == (
        "member list read 500 + write probe 500 + on_quiesce 5000 + successor's catch-up 1000 "
        "+ release transaction 500 + successor's campaign 500")


def test_a_longer_standby_lease_than_the_silence_is_waited_for() -> None:
    case = worst_cases(dataclasses.replace(DEFAULTS, standby_lease_s=0.5,
                                           etcd_request_timeout_s=0.001))[Path.HANG_STANDBY]
    assert case.breakdown() == (
        "the standby's last promise 500 + monitor slot (a heartbeat) 50 + final-position put 1 "
        "+ other candidates' positions (a backoff step) 100 + takeover transaction 1")


def test_with_the_standby_lease_off_a_hang_takes_the_etcd_lease() -> None:
    cases = worst_cases(dataclasses.replace(DEFAULTS, standby_lease_s=0.0))
    assert cases[Path.HANG_STANDBY].ms == cases[Path.HANG_LEASE].ms
    assert "standby lease is off" in cases[Path.HANG_STANDBY].note


def test_a_fast_etcd_makes_the_expiry_proof_the_worst_case() -> None:
    case = worst_cases(dataclasses.replace(DEFAULTS, etcd_request_timeout_s=0.02))[
        Path.HANG_LEASE]
    # 2000 - 200 + 50 guard + 90 bound + 90 proving poll + 20 + 100 + 20 takeover + 20 update
    assert case.ms == 2190
    assert case.breakdown() == (
        "lease TTL 2000 - active's margin 200 + proof guard (a heartbeat) 50 + expiry bound, up "
        "to a poll late 90 + proving poll 90 + final-position put 20 + other candidates' "
        "positions (a backoff step) 100 + takeover transaction 20 + record update if etcd "
        "revokes meanwhile 20")
    assert case.note == "the expiry proof, before etcd revokes the lease (2560 ms)"


def test_a_late_suspicion_loosens_the_expiry_bound() -> None:
    # suspected 1.5 + 0.1 s after the freeze, its first poll answered by 1.61 s: inside the
    # last second of a 2 s lease, so the bound is that reply + 1 s, 0.61 s past the lease
    case = worst_cases(dataclasses.replace(DEFAULTS, etcd_request_timeout_s=0.01,
                                           heartbeat_interval_s=0.1, suspicion_s=1.5,
                                           lease_margin_s=0.9))[Path.HANG_LEASE]
    bound = next(t for t in case.terms if t.label.startswith("expiry bound"))
    assert (bound.label, bound.ms) == ("expiry bound, polling started late", 610)


def test_the_revocation_bounds_the_proof() -> None:
    case = worst_cases(dataclasses.replace(DEFAULTS, etcd_request_timeout_s=0.3))[
        Path.HANG_LEASE]
    assert case.ms == 2000 + 500 + 3 * 300
    assert case.note == "etcd revokes the lease before the expiry proof's bound (4150 ms)"


def test_a_one_second_lease_is_never_proven_expired() -> None:
    case = worst_cases(dataclasses.replace(DEFAULTS, lease_ttl_s=1))[Path.HANG_LEASE]
    assert case.breakdown() == "lease TTL 1000 + etcd's revocation loop 500 + campaign " \
                               "transaction 500"
    assert "with a TTL of 1 s" in case.note


def test_no_redundancy_waits_for_the_lease_and_has_no_catch_up() -> None:
    cases = worst_cases(dataclasses.replace(DEFAULTS, redundancy=Redundancy.NO_REDUNDANCY))
    assert {cases[p].ms for p in (Path.CRASH, Path.HANG_BRIDGE, Path.HANG_STANDBY,
                                  Path.HANG_LEASE)} == {3000}
    assert "nobody follows the active" in cases[Path.CRASH].note
    assert cases[Path.SWITCHOVER].ms == 7000
    assert "catch-up" not in cases[Path.SWITCHOVER].breakdown()


def test_n_way_active_never_fails_over() -> None:
    cases = worst_cases(dataclasses.replace(DEFAULTS, redundancy=Redundancy.N_WAY_ACTIVE))
    assert {c.ms for c in cases.values()} == {0}
    assert all(c.breakdown() == "nothing" and "n-way-active" in c.note for c in cases.values())


def test_the_reconnect_constants_are_the_standbys() -> None:
    assert (RECONNECT_QUICK_RETRIES, RECONNECT_QUICK_RETRY_S) == (QUICK_RETRIES, QUICK_RETRY_S)


def test_each_budget_bounds_its_path() -> None:
    assert budget_path("failover_budget_crash_ms", bridge=False) is Path.CRASH
    assert budget_path("failover_budget_hang_ms", bridge=True) is Path.HANG_BRIDGE
    assert budget_path("failover_budget_hang_ms", bridge=False) is Path.HANG_LEASE
    assert budget_path("failover_budget_hang_ms", bridge=False,
                       standby_lease=True) is Path.HANG_STANDBY
    assert budget_path("failover_budget_hang_ms", bridge=True,
                       standby_lease=True) is Path.HANG_BRIDGE
    assert budget_path("failover_budget_switchover_ms", bridge=True) is Path.SWITCHOVER
    with pytest.raises(ValueError, match="not a budget field"):
        budget_path("lease_ttl_s", bridge=False)


# -- against what was measured ----------------------------------------------------------------

MEASURED_MS = {
    # docs/failover.md, the maxima of every run it reports (benchmarks, soak): a worst case
    # below any of them would be wrong
    Path.SWITCHOVER: 137.0,  # one trial of the 2026-11-25 run; p99 44.9 since
    Path.CRASH: 120.0,  # the soak's longest takeover after a kill; benchmark max 25.2
    Path.HANG_BRIDGE: 350.5,  # vnfha bench fence, first write
    Path.HANG_STANDBY: 383.0,  # the soak's longest after a long freeze; benchmark max 359.4
    Path.HANG_LEASE: 1941.0,  # the soak's longest after a long freeze; partition max 1893
}


@pytest.mark.parametrize("request_timeout_s", [0.5, 0.05, 0.001])
def test_every_measured_figure_lies_below_the_worst_case(request_timeout_s: float) -> None:
    """Even with an etcd that answers at once, the rest of the model covers the measurements
    (made with the default timers and a loopback etcd answering in about a millisecond)."""
    worst = ms(etcd_request_timeout_s=request_timeout_s)
    for path, measured in MEASURED_MS.items():
        assert worst[path] >= Fraction(repr(measured)), path


# -- properties -------------------------------------------------------------------------------

decimals = st.integers(1, 2000).map(lambda n: n / 1000)  # 0.001 .. 2 s, as an operator writes
timers = st.builds(
    FailoverTimers, heartbeat_interval_s=decimals, suspicion_s=decimals,
    lease_ttl_s=st.integers(1, 10), lease_margin_s=decimals, etcd_request_timeout_s=decimals,
    callback_timeout_s=decimals, checkpoint_ack_timeout_s=decimals, bridge_timeout_s=decimals,
    redundancy=st.sampled_from(Redundancy), standby_lease_s=st.sampled_from([0.0, 0.3]) | decimals)

GROWING = ["suspicion_s", "etcd_request_timeout_s", "callback_timeout_s",
           "checkpoint_ack_timeout_s", "bridge_timeout_s"]


@given(timers, st.sampled_from(GROWING), st.integers(1, 2000))
def test_a_longer_timer_never_shortens_a_worst_case(t: FailoverTimers, name: str,
                                                    extra_ms: int) -> None:
    longer = dataclasses.replace(t, **{name: (round(getattr(t, name) * 1000) + extra_ms) / 1000})
    before, after = ms(t), ms(longer)
    assert all(after[p] >= before[p] for p in Path)


@given(timers, st.integers(1, 5))
def test_a_longer_lease_never_shortens_a_worst_case(t: FailoverTimers, extra_s: int) -> None:
    # from 1 s to 2 s it may: a 2 s lease can be proven expired early, a 1 s lease cannot
    t = dataclasses.replace(t, lease_ttl_s=max(2, t.lease_ttl_s))
    before, after = ms(t), ms(t, lease_ttl_s=t.lease_ttl_s + extra_s)
    assert all(after[p] >= before[p] for p in Path)


@given(timers, st.integers(1, 500))
def test_a_wider_margin_never_lengthens_a_worst_case(t: FailoverTimers, extra_ms: int) -> None:
    wider = (round(t.lease_margin_s * 1000) + extra_ms) / 1000
    before, after = ms(t), ms(t, lease_margin_s=wider)
    assert all(after[p] <= before[p] for p in Path)


@given(timers, st.booleans())
def test_a_budget_equal_to_the_worst_case_is_met(t: FailoverTimers, bridge: bool) -> None:
    cases = worst_cases(t)
    for name in BUDGET_FIELDS:
        worst = cases[budget_path(name, bridge=bridge, standby_lease=t.standby_lease_on)].ms
        assume(worst > 0)
        exactly = float(format_ms(worst))  # the decimal an operator would write
        [met] = judge_budgets(t, {name: exactly}, bridge=bridge)
        assert met.met and met.over_ms == 0
        [missed] = judge_budgets(t, {name: exactly - 0.001}, bridge=bridge)
        assert not missed.met and missed.over_ms == Fraction(1, 1000)
        assert f"{format_ms(worst)} ms" in missed.message


# -- against the detectors it bounds ----------------------------------------------------------


def _monitor(hb: float, k: int, ttl: int, margin: float, req: float, phase: float,
             expiry: float, latencies: list[float]) -> tuple[float, float | None]:
    """A standby's monitor (vnfha.roles.monitor) over a frozen active whose last message
    arrived at 0 and whose lease expires at ``expiry``: slots every ``hb`` from ``phase``, then
    one lease poll per slot once suspected, each taking ``latencies[i] * req`` and processed
    at a point within it. Returns when it suspected and when it proved the expiry (None: it
    did not before the lease expired)."""
    detector = SilenceDetector(SuspicionPolicy.from_timers(hb, k * hb))
    tracker = ExpiryTracker(margin, guard_s=hb)
    t, suspected, i = phase, None, 0
    while t < expiry + 5:
        before, t = t, t + hb
        if detector.slot(before < 0 <= t) is Suspicion.TRUSTED:
            continue
        suspected = t if suspected is None else suspected
        took = latencies[i % len(latencies)] * req
        processed = t + latencies[(i + 1) % len(latencies)] * took
        i += 1
        if processed >= expiry:
            break
        poll = Poll(t, t + took, math.floor(expiry - processed), ttl)
        t += took
        if tracker.observe(poll) is ExpiryProof.PROVEN:
            return suspected, t
    assert suspected is not None
    return suspected, None


@settings(deadline=None)  # a few hundred simulated polls: slow on a loaded host, never stuck
@given(hb=st.sampled_from([0.01, 0.02, 0.05, 0.1]), k=st.integers(2, 10),
       ttl=st.integers(2, 4), margin_share=st.floats(0.01, 0.49),
       req=st.floats(0.0005, 0.3), phase_share=st.floats(0, 0.999),
       early=st.sampled_from([0.0, 0.0, 0.2, 0.45]),
       latencies=st.lists(st.floats(0, 1), min_size=1, max_size=6))
def test_the_lease_terms_bound_the_detectors(hb: float, k: int, ttl: int, margin_share: float,
                                             req: float, phase_share: float, early: float,
                                             latencies: list[float]) -> None:
    """Suspicion comes within the slot under way plus k slots; with polls close enough for a
    run to hold, the expiry proof comes by the bound the module docstring states (the model's
    terms, when it counts the proof), and does whenever that bound lies before the lease's
    expiry."""
    assume(2 * hb + 2 * req < 1 and k * hb < ttl)
    margin = round(margin_share * ttl, 3)
    poll = hb + 2 * req
    proof_at = max(ttl + poll, (k + 1) * hb + req + 1) - margin + hb + poll
    case = worst_cases(dataclasses.replace(
        DEFAULTS, heartbeat_interval_s=hb, suspicion_s=k * hb, lease_ttl_s=ttl,
        lease_margin_s=margin, etcd_request_timeout_s=req))[Path.HANG_LEASE]
    if case.note.startswith("the expiry proof"):
        proof_terms = ("lease TTL", "active's margin", "proof guard", "expiry bound", "proving")
        assert float(sum(t.seconds for t in case.terms if t.label.startswith(proof_terms))) \
            == pytest.approx(proof_at)
    suspected, proven = _monitor(hb, k, ttl, margin, req, -phase_share * hb, ttl - early,
                                 latencies)
    assert suspected <= (k + 1) * hb + 1e-9
    if proven is not None:
        assert proven <= proof_at + 1e-9
    assert proven is not None or proof_at >= ttl - early - 1e-9


# -- Config refuses what it cannot meet -------------------------------------------------------


def make(**changes: Any) -> Config:
    return Config(**{"group": "vfw", "member": "vfw-a", **changes})


def test_a_config_that_cannot_meet_its_budget_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        make(failover_budget_hang_ms=2300, standby_lease_s=0)
    e = info.value
    assert (e.field, e.value) == ("failover_budget_hang_ms", 2300)
    assert str(e) == (
        "failover_budget_hang_ms=2300: the worst case of a hang without a bridge (etcd lease) is "
        "4000 ms (lease TTL 2000 + etcd's revocation loop 500 + record updates 1000 + campaign "
        "transaction 500), 1700 ms over the budget; to meet it, lower lease_ttl_s or "
        "etcd_request_timeout_s, or set bridge_endpoint (a fenced hang: 1650 ms)")


def test_the_standby_lease_bounds_a_hang_without_a_bridge() -> None:
    assert make(failover_budget_hang_ms=1450).failover_budget_hang_ms == 1450
    with pytest.raises(ConfigError, match=r"a hang without a bridge \(standby lease\) is 1450"):
        make(failover_budget_hang_ms=1400)


def test_a_budget_met_exactly_is_accepted_and_a_hair_less_is_not() -> None:
    assert make(failover_budget_crash_ms=1250).failover_budget_crash_ms == 1250
    with pytest.raises(ConfigError, match=r"0\.001 ms over the budget"):
        make(failover_budget_crash_ms=1249.999)


def test_every_missed_budget_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        make(failover_budget_crash_ms=100, failover_budget_switchover_ms=100,
             failover_budget_hang_ms=5000)
    e = info.value
    assert (e.field, e.value) == ("failover_budget_crash_ms", 100)
    assert e.problem.startswith("2 failover budgets missed: (1) failover_budget_crash_ms=100: ")
    assert "(2) failover_budget_switchover_ms=100: the worst case of a switchover is 8000 ms" \
        in e.problem
    assert "lower callback_timeout_s or checkpoint_ack_timeout_s" in e.problem


def test_a_bridge_makes_the_hang_budget_bound_the_fence() -> None:
    fenced = make(bridge_endpoint="127.0.0.1:7500", failover_budget_hang_ms=1650)
    assert fenced.failover_budget_hang_ms == 1650
    with pytest.raises(ConfigError, match="the worst case of a hang with a bridge"):
        fenced.replace(failover_budget_hang_ms=1600)
    with pytest.raises(ConfigError, match="a hang without a bridge"):
        fenced.replace(bridge_endpoint=None, standby_lease_s=0)


def test_faster_timers_meet_tight_budgets() -> None:
    cfg = make(etcd_request_timeout_s=0.02, callback_timeout_s=0.05,
               checkpoint_ack_timeout_s=0.05, failover_budget_crash_ms=290,
               failover_budget_hang_ms=2190, failover_budget_switchover_ms=180)
    assert cfg.failover_budget_switchover_ms == 180


def test_budgets_load_from_a_file_and_the_environment(tmp_path: FilePath) -> None:
    path = tmp_path / "vnfha.toml"
    path.write_text('group = "vfw"\nmember = "vfw-a"\nfailover_budget_crash_ms = 1300\n'
                    'failover_budget_switchover_ms = 8000.5\n')
    cfg = load_config(path, environ={"VNFHA_FAILOVER_BUDGET_HANG_MS": "4000"})
    assert (cfg.failover_budget_crash_ms, cfg.failover_budget_hang_ms,
            cfg.failover_budget_switchover_ms) == (1300, 4000.0, 8000.5)
    unset = load_config(path, environ={"VNFHA_FAILOVER_BUDGET_CRASH_MS": ""})
    assert unset.failover_budget_crash_ms is None
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"VNFHA_FAILOVER_BUDGET_CRASH_MS": "1000"})
    assert info.value.field == "failover_budget_crash_ms"
    assert info.value.problem.endswith("(set in environment variable "
                                       "VNFHA_FAILOVER_BUDGET_CRASH_MS)")
    with pytest.raises(ConfigError, match="expected a number of milliseconds"):
        load_config(path, environ={"VNFHA_FAILOVER_BUDGET_CRASH_MS": "soon"})
    path.write_text('group = "vfw"\nmember = "vfw-a"\nfailover_budget_crash_ms = 1000\n')
    with pytest.raises(ConfigError, match=rf"\(set in {path}\)$"):
        load_config(path, environ={})
