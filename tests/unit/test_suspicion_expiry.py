"""The pure detection pieces: k-of-n silence suspicion and the lease-expiry proof."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnfha.roles.expiry import ExpiryProof, ExpiryTracker, Poll
from vnfha.roles.suspicion import SilenceDetector, Suspicion, SuspicionPolicy

# -- suspicion ------------------------------------------------------------------------------


def test_policy_from_default_timers() -> None:
    p = SuspicionPolicy.from_timers(0.05, 0.3)
    assert (p.k, p.n, p.recover_after) == (6, 9, 3)


@pytest.mark.parametrize(("k", "n", "r"), [(0, 1, 1), (3, 2, 1), (2, 3, 0)])
def test_policy_refuses_nonsense(k: int, n: int, r: int) -> None:
    with pytest.raises(ValueError, match="="):
        SuspicionPolicy(k, n, r)


def run(detector: SilenceDetector, pattern: str) -> str:
    """Feed '.' (heard) / 'x' (missed); returns 'T'/'S' per slot."""
    return "".join("S" if detector.slot(c == ".") is Suspicion.SUSPECTED else "T"
                   for c in pattern)


@pytest.mark.parametrize(("pattern", "states"), [
    ("......", "TTTTTT"),
    ("xxxxx.", "TTTTTT"),                    # five misses: not yet
    ("xxxxxx", "TTTTTS"),                    # six in a row: suspected on the sixth
    ("xx.xxxx", "TTTTTTS"),                  # six of the last nine, the last one missed
    ("xxx.x.", "TTTTTT"),                    # the latest heard: never suspect on a heard slot
    ("xxx.xxx.", "TTTTTTSS"),                # six of seven, and one heard does not clear
    ("xxxxxx.xx", "TTTTTSSSS"),              # one lucky message does not clear it
    ("xxxxxx...", "TTTTTSSST"),              # three heard in a row do
    ("x.x.x.x.x.x.x.", "TTTTTTTTTTTTTT"),    # half the slots: never six of nine
], ids=lambda v: v)
def test_k_of_n_with_hysteresis(pattern: str, states: str) -> None:
    assert run(SilenceDetector(SuspicionPolicy(6, 9, 3)), pattern) == states


def test_reset_forgets() -> None:
    d = SilenceDetector(SuspicionPolicy(2, 3, 2))
    assert run(d, "xx") == "TS"
    d.reset()
    assert d.state is Suspicion.TRUSTED
    assert run(d, "x") == "T"


@given(st.lists(st.booleans(), max_size=200), st.integers(1, 8), st.integers(0, 6),
       st.integers(1, 5))
def test_suspicion_needs_k_misses_within_n(slots: list[bool], k: int, extra: int, r: int) -> None:
    n = k + extra
    d = SilenceDetector(SuspicionPolicy(k, n, r))
    trusted_before = True
    for i, heard in enumerate(slots):
        state = d.slot(heard)
        if trusted_before and state is Suspicion.SUSPECTED:
            window = slots[max(0, i + 1 - n):i + 1]
            assert not heard
            assert window.count(False) >= k
        trusted_before = state is Suspicion.TRUSTED


@given(st.integers(1, 10), st.integers(0, 5))
def test_silence_is_suspected_after_exactly_k_slots(k: int, extra: int) -> None:
    d = SilenceDetector(SuspicionPolicy(k, k + extra, 2))
    assert run(d, "." * 20 + "x" * k) == "T" * (20 + k - 1) + "S"


# -- expiry proof ---------------------------------------------------------------------------

TTL = 2
MARGIN = 0.2
GUARD = 0.05


def answer(expiry: float, at: float) -> int:
    """etcd's LeaseTimeToLive: whole seconds, truncated toward zero (int() of a float)."""
    return int(expiry - at)


def test_regular_polls_prove_just_after_the_deadline() -> None:
    expiry = 10.0  # last keepalive processed at 8.0
    t = ExpiryTracker(MARGIN, GUARD)
    now = 8.3
    while t.state is not ExpiryProof.PROVEN:
        t.observe(Poll(now, now + 0.001, answer(expiry, now), TTL))
        now = round(now + 0.05, 6)
        assert now < 11
    proven_at = now - 0.05
    # the bound is loose by up to one poll interval (the drop 1 -> 0 is seen at the next poll),
    # and the proof comes at the first poll past it: at most two intervals late
    assert expiry - MARGIN + GUARD <= proven_at <= expiry - MARGIN + GUARD + 2 * 0.05 + 0.01
    assert t.bound is not None and expiry <= t.bound <= expiry + 0.06


def test_a_refresh_restarts_the_run() -> None:
    t = ExpiryTracker(MARGIN, GUARD)
    t.observe(Poll(9.0, 9.001, answer(10.0, 9.0), TTL))       # 1 s left: bounds nothing
    assert t.state is ExpiryProof.UNKNOWN and t.bound is None
    t.observe(Poll(9.05, 9.051, answer(10.0, 9.05), TTL))     # 0: bound 10.051
    assert t.state is ExpiryProof.BOUNDED and t.bound == pytest.approx(10.051)
    # the active's keepalive lands at 9.07: expiry moves to 11.07
    t.observe(Poll(9.1, 9.101, answer(11.07, 9.1), TTL))      # 1 s left: inconsistent
    assert "refreshed" in t.reason
    assert t.state is ExpiryProof.UNKNOWN and t.bound is None  # and 1 s left bounds nothing


def test_an_answer_of_granted_minus_one_never_bounds() -> None:
    """Found by hypothesis: with a 2 s TTL, an answer of 1 s bounds the expiry only to within
    2 s of the poll, and a keepalive 0.25 s later moves the expiry past that bound while every
    later answer (1, then 0) still looks consistent with it. The proof came at 2.25 while the
    active's deadline was 2.3. Only answers of at most granted - 2 may bound."""
    t = ExpiryTracker(MARGIN, GUARD)
    events = [(0.25, 2.25), (0.5, 2.5)]  # keepalives processed at 0.25 and 0.5
    deadline = 0.5 + TTL - MARGIN
    now = 0.375
    for gap in (0.25, 0.375, 0.125, 0.0625, 0.0625, 0.375, 0.375, 0.25, 0.25, 0.05, 0.05):
        expiry = max(e for p, e in events if p <= now)
        if t.observe(Poll(now, now, answer(expiry, now), TTL)) is ExpiryProof.PROVEN:
            assert deadline <= now, (deadline, now)
            return
        now += gap
    raise AssertionError(f"never proven; last: {t.reason}")


def test_polls_too_far_apart_restart_the_run() -> None:
    t = ExpiryTracker(MARGIN, GUARD)
    t.observe(Poll(9.0, 9.001, 0, TTL))
    t.observe(Poll(10.0, 10.001, 0, TTL))
    assert "apart" in t.reason


def test_a_one_second_ttl_never_proves() -> None:
    t = ExpiryTracker(MARGIN, GUARD)
    for i in range(40):
        now = 5 + i * 0.05
        assert t.observe(Poll(now, now + 0.001, answer(6.0, now), 1)) is not ExpiryProof.PROVEN


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="guard_s=0"):
        ExpiryTracker(0.2, 0)


@settings(max_examples=1500)
@given(
    first_keepalive=st.floats(0, 1),
    keepalive_gaps=st.lists(st.floats(0.01, 1.2), max_size=6),
    latencies=st.lists(st.floats(0, 0.3), min_size=6, max_size=6),
    extensions=st.lists(st.floats(0, 3), max_size=2),
    poll_start=st.floats(0, 3),
    poll_gaps=st.lists(st.floats(0.005, 0.4), min_size=5, max_size=80),
    rtt=st.floats(0, 0.02),
)
def test_never_proven_while_the_active_may_still_act(
        first_keepalive: float, keepalive_gaps: list[float], latencies: list[float],
        extensions: list[float], poll_start: float, poll_gaps: list[float], rtt: float) -> None:
    """A simulated active and etcd lease: keepalives sent at s, processed by etcd at s + lat,
    acknowledged at once; etcd leader changes that extend the lease without the active knowing;
    a standby polling on an arbitrary schedule. A proof must never come while the active's
    local deadline lies ahead of the proving poll's send time."""
    # etcd's view: (processing time, new expiry); the active's: its deadline
    sends = [first_keepalive]
    for gap in keepalive_gaps:
        sends.append(sends[-1] + gap)
    expiry = first_keepalive + TTL
    deadline = first_keepalive + TTL - MARGIN
    events: list[tuple[float, float]] = [(first_keepalive, expiry)]
    for s, lat in zip(sends[1:], latencies, strict=False):
        processed = s + lat
        if s >= deadline or processed >= expiry:  # LOST already, or the lease expired
            break
        expiry = processed + TTL
        if processed < deadline:  # acknowledged (at once) before the deadline: it counts
            deadline = max(deadline, s + TTL - MARGIN)
        events.append((processed, expiry))
    for at in extensions:  # leader changes: the lease is extended, the active knows nothing
        current = max((e for p, e in events if p <= at), default=expiry)
        if at < current:
            events.append((at, at + TTL + 1))
    events.sort()

    def expiry_at(t: float) -> float:
        return max(e for p, e in events if p <= t) if any(p <= t for p, _ in events) else expiry

    tracker = ExpiryTracker(MARGIN, GUARD)
    now = poll_start
    for gap in poll_gaps:
        processed = now + rtt / 2
        state = tracker.observe(Poll(now, now + rtt, answer(expiry_at(processed), processed), TTL))
        if state is ExpiryProof.PROVEN:
            assert deadline <= now, (deadline, now, events)
            break
        now += gap


def test_expiry_arithmetic_matches_etcd_truncation() -> None:
    assert answer(10.0, 8.5) == 1
    assert answer(10.0, 9.5) == 0
    assert answer(10.0, 10.5) == 0   # expired but not yet revoked: -0.5 truncates to 0
    assert answer(10.0, 11.5) == -1
    assert math.trunc(-0.5) == 0
