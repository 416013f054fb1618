"""RateLimitedLog on a fake monotonic clock: the first line of a kind is logged, repeats within
the interval are only counted, the next line after it says how many were suppressed, kinds are
independent and bounded, and every call is counted."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha._ratelog import RateLimitedLog

INTERVAL_S = 10.0


class Recorder(logging.Handler):
    """Keeps the formatted lines (formatting as a real handler would)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.levels: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.levels.append(record.levelno)


class Rig:
    """A RateLimitedLog on its own logger and a fake clock (``now``)."""

    def __init__(self, name: str, **kwargs: object) -> None:
        self.now = 0.0
        self.logger = logging.getLogger(f"tests.ratelog.{name}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.recorder = Recorder()
        self.logger.handlers[:] = [self.recorder]
        self.log = RateLimitedLog(self.logger, interval_s=INTERVAL_S, monotonic=self.clock,
                                  **kwargs)  # type: ignore[arg-type]

    def clock(self) -> float:
        return self.now

    @property
    def lines(self) -> list[str]:
        return self.recorder.lines


@pytest.fixture
def rig(request: pytest.FixtureRequest) -> Rig:
    return Rig(request.node.name)


def test_the_first_is_logged_repeats_are_counted_and_reported_after_the_interval(
        rig: Rig) -> None:
    assert rig.log("bad", "refused %s", "first")
    for i in range(5):
        rig.now = i + 1.0
        assert not rig.log("bad", "refused %s", f"repeat {i}")
    assert rig.lines == ["refused first"]
    assert rig.log.counts == {"bad": 6}
    rig.now = INTERVAL_S  # exactly one interval after the logged line: logged again
    assert rig.log("bad", "refused %s", "later")
    assert rig.lines == ["refused first",
                         "refused later (and 5 more like it suppressed in the last 10 s)"]
    rig.now = 2 * INTERVAL_S + 1
    assert rig.log("bad", "refused %s", "again")  # nothing suppressed since: no suffix
    assert rig.lines[-1] == "refused again"
    assert rig.log.counts == {"bad": 8}


def test_just_before_the_interval_is_still_suppressed(rig: Rig) -> None:
    rig.log("bad", "x")
    rig.now = INTERVAL_S - 1e-9
    assert not rig.log("bad", "x")
    assert rig.lines == ["x"]


def test_kinds_are_limited_independently(rig: Rig) -> None:
    assert rig.log("INVALID_ARGUMENT", "a")
    assert rig.log("NOT_FOUND", "b")
    assert not rig.log("INVALID_ARGUMENT", "a")
    assert not rig.log("NOT_FOUND", "b")
    assert rig.log("PERMISSION_DENIED", "c")
    assert rig.lines == ["a", "b", "c"]
    assert rig.log.counts == {"INVALID_ARGUMENT": 2, "NOT_FOUND": 2, "PERMISSION_DENIED": 1}


def test_kinds_past_the_bound_share_one_bucket() -> None:
    rig = Rig("bounded", max_kinds=3)
    for i in range(1000):  # a peer inventing a new kind per request
        rig.log(f"kind-{i}", "refused %d", i)
    assert len(rig.log.counts) == 4  # three kinds, then one bucket for all the others
    assert rig.log.counts["(other)"] == 997
    assert rig.lines == ["refused 0", "refused 1", "refused 2", "refused 3"]
    rig.now = INTERVAL_S
    rig.log("kind-999", "refused %d", 999)
    assert rig.lines[-1] == "refused 999 (and 996 more like it suppressed in the last 10 s)"


def test_the_level_is_the_one_given() -> None:
    rig = Rig("level", level=logging.WARNING)
    rig.log("k", "x")
    assert rig.recorder.levels == [logging.WARNING]


def test_a_message_without_arguments_keeps_its_percent_signs(rig: Rig) -> None:
    """A pre-formatted message may hold '%': the suppression suffix must not turn it into a
    format (it used to raise in logging, which lost the line and printed a traceback)."""
    rig.log("k", "100% garbage")
    rig.log("k", "100% garbage")
    rig.now = INTERVAL_S
    rig.log("k", "100% garbage")
    assert rig.lines == ["100% garbage",
                         "100% garbage (and 1 more like it suppressed in the last 10 s)"]


def test_a_fractional_interval_is_reported_as_it_is() -> None:
    rig = Rig("fraction")
    rig.log = RateLimitedLog(rig.logger, interval_s=0.5, monotonic=rig.clock)
    rig.log("k", "x")
    rig.log("k", "x")
    rig.now = 0.5
    rig.log("k", "x")
    assert rig.lines[-1] == "x (and 1 more like it suppressed in the last 0.5 s)"


@pytest.mark.parametrize("interval_s", [0.0, -1.0])
def test_the_interval_must_be_positive(interval_s: float) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        RateLimitedLog(logging.getLogger("tests.ratelog"), interval_s=interval_s)


CALLS = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]),
                           st.floats(min_value=0, max_value=30, allow_nan=False)),
                 max_size=200)


@given(CALLS)
def test_lines_are_bounded_and_no_refusal_goes_uncounted(
        calls: list[tuple[str, float]]) -> None:
    """Whatever the arrivals: at most one line per kind per interval (so at most
    ``span / interval + 1`` lines per kind), every call counted, and once each kind logs
    again after the run, the lines account for every call."""
    rig = Rig("property")
    logged: Counter[str] = Counter()
    for kind, step in calls:
        rig.now += step
        logged[kind] += rig.log(kind, "%s", kind)
    span = rig.now
    for kind in logged:
        assert logged[kind] <= span // INTERVAL_S + 1
    assert rig.log.counts == Counter(kind for kind, _ in calls)
    rig.now += 2 * INTERVAL_S  # past every kind's interval, whatever the rounding
    for kind in sorted(logged):
        rig.log(kind, "%s", kind)
    reported = Counter[str]()
    for line in rig.lines:
        kind, _, rest = line.partition(" ")
        reported[kind] += 1 + (int(rest.split()[1]) if rest else 0)
    assert reported == rig.log.counts
