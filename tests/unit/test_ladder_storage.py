"""The stored form of ladder counters: round trips, time across a restart, refusal of bad bytes."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.errors import LadderStateError
from vnfha.health.ladder import (
    MAX_STORED_BYTES,
    LadderHistory,
    Rung,
    Use,
    from_bytes,
    to_bytes,
)

WALL = 1_718_000_000.0
H = LadderHistory((Use(960.0, Rung.RESTART), Use(990.0, Rung.FAILOVER)), 990.0)


def test_format_is_versioned_json_of_ages() -> None:
    assert json.loads(to_bytes(H, 1000.0, WALL)) == {
        "v": 1, "written_at": WALL, "last_fault_age_s": 10.0,
        "uses": [["restart", 40.0], ["failover", 10.0]]}
    assert from_bytes(to_bytes(LadderHistory(), 5.0, WALL), 7.0, WALL) == LadderHistory()


def test_round_trip_in_the_same_process() -> None:
    assert from_bytes(to_bytes(H, 1000.0, WALL), 1000.0, WALL) == H


def test_after_a_restart_times_move_onto_the_new_clock() -> None:
    """A VM reboot: the monotonic clock restarts near 0, 120 s of wall time passed."""
    h = from_bytes(to_bytes(H, 1000.0, WALL), 3.0, WALL + 120.0)
    assert h == LadderHistory((Use(3.0 - 120 - 40, Rung.RESTART),
                               Use(3.0 - 120 - 10, Rung.FAILOVER)), 3.0 - 120 - 10)


def test_a_wall_clock_step_back_counts_as_no_time_passed() -> None:
    h = from_bytes(to_bytes(H, 1000.0, WALL), 50.0, WALL - 3600)
    assert h.last_fault_at == 40.0 and h.times(Rung.RESTART) == (10.0,)


def test_uses_come_back_in_time_order() -> None:
    raw = json.dumps({"v": 1, "written_at": WALL, "last_fault_age_s": 1,
                      "uses": [["restart", 1], ["restart", 9], ["reboot-vm", 5]]}).encode()
    h = from_bytes(raw, 100.0, WALL)
    assert [u.at for u in h.uses] == [91.0, 95.0, 99.0]


def good(**change: object) -> bytes:
    record: dict[str, object] = {"v": 1, "written_at": WALL, "last_fault_age_s": 1.0,
                                 "uses": [["restart", 1.0]]}
    record.update(change)
    return json.dumps(record, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"{", "not JSON"),
        (b"[1, 2]", "expected an object, got list"),
        (b'{"v": 1, "written_at": NaN, "uses": []}', "not JSON"),
        (good(v=2), "format version 2, this vnfha reads 1"),
        (good(v=True), "format version True"),
        (good(v=None), "format version None"),
        (good(written_at="yesterday"), "written_at must be a wall-clock time"),
        (b'{"v": 1, "written_at": 1e400, "uses": []}', "written_at must be a wall-clock time"),
        (b'{"v": 1, "written_at": Infinity, "uses": []}', "Infinity is not a number"),
        (good(last_fault_age_s=-1), "last_fault_age_s must be a non-negative number"),
        (good(last_fault_age_s="1"), "last_fault_age_s must be a non-negative number"),
        (good(uses={"restart": 1}), "uses must be a list"),
        (good(uses=[["restart"]]), "a use must be [rung, age_s]"),
        (good(uses=[[1, 1]]), "a use must be [rung, age_s]"),
        (good(uses=[["reload", 1]]), "unknown rung 'reload'"),
        (good(uses=[["alarm", 1]]), "alarm is never counted"),
        (good(uses=[["restart", -0.5]]), "a use's age must be a non-negative number"),
        (good(uses=[["restart", False]]), "a use's age must be a non-negative number"),
        (good(last_fault_age_s=None), "uses recorded without a last fault"),
        (good(uses=[["restart", 1]] * 4001), "uses must be a list of at most 4000"),
        (b" " * (MAX_STORED_BYTES + 1), f"over the {MAX_STORED_BYTES} accepted"),
        (b"[" * 100_000, "bytes"),
    ],
)
def test_bad_bytes_are_refused_with_a_clear_error(data: bytes, problem: str) -> None:
    with pytest.raises(LadderStateError) as e:
        from_bytes(data, 100.0, WALL)
    assert problem in e.value.problem


millis = st.integers(0, 10**9).map(lambda ms: ms / 1000)  # distinct times stay distinct
uses = st.lists(st.builds(Use, millis, st.sampled_from(list(Rung)[:-1])), max_size=20,
                unique_by=lambda u: u.at)


@given(uses, millis, millis)
def test_round_trip_keeps_every_use_to_rounding(us: list[Use], extra: float, offline: float,
                                                ) -> None:
    now = max([u.at for u in us], default=0.0) + extra
    h = LadderHistory(tuple(sorted(us)), now - extra if us else None)
    back = from_bytes(to_bytes(h, now, WALL), now + 5.0, WALL + offline)
    assert [u.rung for u in back.uses] == [u.rung for u in h.uses]
    for a, b in zip(back.uses, h.uses, strict=True):
        assert a.at == pytest.approx(b.at + 5.0 - offline, abs=1e-6)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(LadderStateError):
        from_bytes(data, 100.0, WALL)


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c,
                                                                         max_size=4),
                    max_leaves=12))
def test_arbitrary_json_never_crashes(value: object) -> None:
    with contextlib.suppress(LadderStateError):
        from_bytes(json.dumps(value).encode(), 100.0, WALL)
