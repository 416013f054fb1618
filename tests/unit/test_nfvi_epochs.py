"""The bridge's epoch table: never accepts a lower epoch, never lowers its record."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.bridge.epochs import EpochTable


@pytest.mark.parametrize(("sequence", "expected"), [
    ([5], [True]),
    ([5, 5], [True, True]),
    ([5, 7, 6], [True, True, False]),
    ([7, 3, 7, 8, 7], [True, False, True, True, False]),
])
def test_table(sequence: list[int], expected: list[bool]) -> None:
    table = EpochTable()
    assert [table.check("g", e).accepted for e in sequence] == expected


def test_refusal_names_both_epochs_and_groups_are_independent() -> None:
    table = EpochTable()
    table.check("g", 9)
    verdict = table.check("g", 4)
    assert not verdict.accepted and verdict.highest == 9
    assert "epoch 4 is stale" in verdict.reason and "epoch 9" in verdict.reason
    assert table.check("other", 1).accepted
    assert table.highest("g") == 9 and table.highest("nobody") == 0


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 50)), max_size=60))
def test_invariants(requests: list[tuple[str, int]]) -> None:
    table = EpochTable()
    highest: dict[str, int] = {}
    for group, epoch in requests:
        before = table.highest(group)
        verdict = table.check(group, epoch)
        assert verdict.accepted == (epoch >= highest.get(group, 0))
        assert table.highest(group) >= before
        if verdict.accepted:
            highest[group] = epoch
        assert table.highest(group) == highest.get(group, 0)
