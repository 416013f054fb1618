"""What the benchmarks share: the argument parser, the percentile summary, the report, and a
matcher for member processes' role events.

Percentiles are nearest-rank: the p99 of n samples is the ``ceil(0.99 n)``-th smallest, so with
fewer than 100 samples it is the maximum. The median is :func:`statistics.median` (the mean of
the two middle samples when n is even).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

Event = dict[str, Any]
"""One event a member process (:mod:`vnfha.testing.member_proc`) printed."""


def parser(doc: str | None, prog: str | None) -> argparse.ArgumentParser:
    """A benchmark's parser: ``--help`` prints the module docstring (what is measured, the
    targets) as written; ``prog`` names the command that ran it (None: the script's name)."""
    return argparse.ArgumentParser(prog=prog, description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def positive_int(text: str) -> int:
    """An argparse type: a count of samples, trials or writes, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {value}: must be >= 1")
    return value


def add_paths(p: argparse.ArgumentParser, choices: Sequence[str],
              default: Sequence[str] | None = None) -> None:
    """``--paths A,B``: which of ``choices`` to run (default: ``default``, else all, in their
    order); an unknown one is a usage error naming it and the choices."""
    def paths(text: str) -> list[str]:
        chosen = text.split(",")
        unknown = [x for x in chosen if x not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown paths {unknown}; choose from "
                                             f"{','.join(choices)}")
        return chosen
    p.add_argument("--paths", type=paths, default=",".join(default or choices),
                   help="comma-separated paths to run (default: %(default)s)")


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary(values: Sequence[float], *, digits: int = 1, unit: str = "") -> dict[str, float]:
    """p50, p99 and max of ``values``, rounded to ``digits``; each key ends with ``unit``
    (``"_ms"`` gives ``p50_ms``...)."""
    if not values:
        raise ValueError("no samples to summarize")
    return {f"p50{unit}": round(statistics.median(values), digits),
            f"p99{unit}": round(percentile(values, 0.99), digits),
            f"max{unit}": round(max(values), digits)}


def is_role(role: str, above: int = 0) -> Callable[[Event], bool]:
    """Matches a member process's event: it took ``role`` at an epoch above ``above``."""
    return lambda e: e["event"] == "role" and e["role"] == role and e["epoch"] > above


def report(result: dict[str, Any], ok: bool) -> int:
    """Print ``result`` as one indented JSON object; the exit status: 0 when ``ok``, else 1."""
    print(json.dumps(result, indent=2), flush=True)
    return 0 if ok else 1
