"""A standby's lag from the active's write stamps: entries, the age of the oldest unacknowledged
write, bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.replication.lag import Lag, WriteStamps


def stamped(times: list[float], capacity: int = 100) -> WriteStamps:
    w = WriteStamps(capacity)
    for seq, t in enumerate(times, start=1):
        w.stamp(seq, t)
    return w


@pytest.mark.parametrize(("acked", "now", "expected"), [
    (5, 10.0, Lag(0, 0.0)),          # has everything
    (7, 10.0, Lag(0, 0.0)),          # acknowledged past the end (a stale view): no lag
    (4, 10.0, Lag(1, 10.0 - 5.0)),   # misses seq 5, written at 5.0
    (0, 10.0, Lag(5, 10.0 - 1.0)),   # nothing yet: the first write's age
    (2, 4.0, Lag(3, 1.0)),           # misses 3 (written at 3.0)
    (-1, 10.0, Lag(5, 9.0)),         # a negative ack is read as nothing
])
def test_lag(acked: int, now: float, expected: Lag) -> None:
    w = stamped([1.0, 2.0, 3.0, 4.0, 5.0])
    assert w.lag(acked, now) == expected


def test_no_writes_no_lag() -> None:
    assert WriteStamps(10).lag(0, 100.0) == Lag(0, 0.0)


def test_a_standby_behind_the_kept_stamps_gets_the_oldest_kept_age() -> None:
    w = stamped([float(t) for t in range(1, 11)], capacity=3)  # keeps seqs 8, 9, 10
    assert w.lag(2, 20.0) == Lag(8, 20.0 - 8.0)
    assert w.lag(8, 20.0) == Lag(2, 20.0 - 9.0)


def test_stamps_must_come_in_order() -> None:
    w = stamped([1.0, 2.0])
    with pytest.raises(ValueError, match="sequence 4 stamped after 2"):
        w.stamp(4, 3.0)
    with pytest.raises(ValueError, match="capacity"):
        WriteStamps(0)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50), st.integers(1, 60),
       st.integers(-5, 60))
def test_entries_and_seconds_are_consistent(gaps: list[float], capacity: int, acked: int) -> None:
    times, t = [], 0.0
    for g in gaps:
        t += g
        times.append(t)
    w = stamped(times, capacity)
    now = t + 1.0
    lag = w.lag(acked, now)
    assert lag.entries == max(0, len(times) - max(0, acked))
    if lag.entries == 0:
        assert lag.seconds == 0.0
        return
    truth = now - times[max(0, acked)]  # the age of seq acked+1 (0-based index acked)
    first_kept = len(times) - min(capacity, len(times)) + 1
    if max(0, acked) + 1 >= first_kept:
        assert lag.seconds == pytest.approx(truth)
    else:  # older than what is kept: a lower bound, never older than the truth
        assert 1.0 - 1e-9 <= lag.seconds <= truth + 1e-9
