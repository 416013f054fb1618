"""The benchmarks' shared summary (nearest-rank percentiles) and their registry (the runs are
in tests/integration/test_bench.py)."""

from __future__ import annotations

import argparse
import importlib

import pytest

import vnfha.apps.bench
from vnfha.apps.bench import BENCHMARKS, load
from vnfha.apps.bench._common import percentile, positive_int, summary


def test_p99_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.5) == 50.0
    assert percentile(values[:20], 0.99) == 100.0  # under 100 samples: the maximum
    assert percentile([7.0], 0.99) == 7.0


def test_summary_keys_rounding_and_median() -> None:
    assert summary([1.0, 2.0, 3.0, 4.0]) == {"p50": 2.5, "p99": 4.0, "max": 4.0}
    assert summary([0.12345, 0.5], digits=3, unit="_ms") == {
        "p50_ms": 0.312, "p99_ms": 0.5, "max_ms": 0.5}
    with pytest.raises(ValueError, match="no samples"):
        summary([])


def test_positive_int_refuses_zero_and_words() -> None:
    assert positive_int("3") == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_is_a_module_documented_in_the_package(name: str) -> None:
    module = importlib.import_module(f"vnfha.apps.bench.{name}")
    assert load(name) is module.main
    assert f"``{name}``" in (vnfha.apps.bench.__doc__ or "")
    assert module.__doc__ and f"vnfha bench {name}" in module.__doc__


def test_an_unknown_benchmark_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown benchmark 'nope'; choose from store, roles"):
        load("nope")
