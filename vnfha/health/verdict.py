"""Hysteresis of one health check: pure state, results in, transitions out.

Nothing here does I/O or reads a clock. The monitor runs a check, turns its outcome into
``ok`` (a check that raised *or overran its timeout* is a failure), and calls :func:`observe`,
which returns the next :class:`CheckState` and, when the verdict changes, a frozen
:class:`Transition` that the runtime logs and acts on.

State table (N = ``fail_after``, M = ``recover_after``)::

    health    result   streak after              transition
    HEALTHY   ok       failures = 0              -
    HEALTHY   fail     failures + 1              FAILED when it reaches N (failures -> 0)
    FAILING   ok       successes + 1, failures 0 RECOVERED when it reaches M (successes -> 0)
    FAILING   fail     failures + 1, successes 0 STILL_FAILING when it reaches N (failures -> 0)

Guarantees (tested table-driven and with hypothesis in ``tests/unit/test_health_verdict.py``):

- **Hysteresis.** HEALTHY becomes FAILING only after exactly N consecutive failures, FAILING
  becomes HEALTHY only after exactly M consecutive successes. With N, M >= 2, results that
  alternate (ok, fail, ok, ...) never change the verdict.
- **Transitions alternate** FAILED, (STILL_FAILING)*, RECOVERED, FAILED, ...: a check never
  recovers without having failed, and never fails twice without recovering in between.
- **Still failing is reported again.** A check that stays FAILING reports STILL_FAILING after
  each further N consecutive failures, so a recovery that did not help is noticed (the ladder
  climbs). :func:`rearm` restarts that count, which the monitor does when a recovery action
  ends, so each recovery is given N periods to prove itself.
- **Deterministic**: the same state, result and time give the same answer.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from vnfha.errors import ConfigError

__all__ = [
    "Change",
    "CheckPolicy",
    "CheckState",
    "Health",
    "Transition",
    "initial",
    "observe",
    "rearm",
]

MAX_STREAK = 1000
"""The largest ``fail_after`` / ``recover_after`` accepted (a bound, not a recommendation)."""


class Health(enum.StrEnum):
    """A check's verdict."""

    HEALTHY = "healthy"
    """Passing, or failing fewer than ``fail_after`` times in a row. Every check starts here."""
    FAILING = "failing"
    """Failed ``fail_after`` times in a row and not yet passed ``recover_after`` times in a row."""


class Change(enum.StrEnum):
    """What a :class:`Transition` reports."""

    FAILED = "failed"
    """HEALTHY -> FAILING: a fault for the ladder."""
    STILL_FAILING = "still-failing"
    """FAILING, and ``fail_after`` more failures in a row since it failed or was re-armed: the
    recovery did not help; another fault for the ladder."""
    RECOVERED = "recovered"
    """FAILING -> HEALTHY."""


@dataclass(frozen=True, slots=True)
class CheckPolicy:
    """How one check is run and judged. Built only valid (:class:`vnfha.ConfigError` names the
    field and the value otherwise).

    ``fail_after`` (N) consecutive failures make it FAILING, ``recover_after`` (M) consecutive
    successes make it HEALTHY again; it runs every ``period_s`` and one run may take at most
    ``timeout_s`` (which must not exceed the period, so runs never overlap).
    """

    fail_after: int = 3
    recover_after: int = 2
    period_s: float = 5.0
    timeout_s: float = 2.0

    def __post_init__(self) -> None:
        for name in ("fail_after", "recover_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(name, value, "must be an integer")
            if not 1 <= value <= MAX_STREAK:
                raise ConfigError(name, value, f"must be between 1 and {MAX_STREAK}")
        for name in ("period_s", "timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(name, value, "must be a number of seconds")
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(name, value, "must be a positive, finite number of seconds")
        if self.timeout_s > self.period_s:
            raise ConfigError("timeout_s", self.timeout_s,
                              f"must not exceed period_s={self.period_s} (runs would overlap)")


@dataclass(frozen=True, slots=True)
class CheckState:
    """One check's verdict and the streaks that lead to the next one.

    ``failures`` / ``successes`` are the current runs of consecutive results that count towards
    the next transition (see the module's state table); ``since`` is when the verdict last
    changed (None: never, the check is HEALTHY since it started); ``runs`` counts observations.
    """

    health: Health = Health.HEALTHY
    failures: int = 0
    successes: int = 0
    since: float | None = None
    runs: int = 0


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of verdict at ``at``, after ``streak`` consecutive results of the same kind."""

    change: Change
    health: Health
    at: float
    streak: int


def initial() -> CheckState:
    """The state of a check that has not run yet: HEALTHY, no streak."""
    return CheckState()


def observe(policy: CheckPolicy, state: CheckState, ok: bool, now: float,
            ) -> tuple[CheckState, Transition | None]:
    """Feed one result (``ok`` false for a failure or a timeout) observed at ``now``.

    Returns the next state and the transition it caused, if any (see the state table).
    """
    runs = state.runs + 1
    if state.health is Health.HEALTHY:
        if ok:
            return replace(state, failures=0, successes=0, runs=runs), None
        failures = state.failures + 1
        if failures < policy.fail_after:
            return replace(state, failures=failures, runs=runs), None
        return (CheckState(Health.FAILING, 0, 0, now, runs),
                Transition(Change.FAILED, Health.FAILING, now, failures))
    if ok:
        successes = state.successes + 1
        if successes < policy.recover_after:
            return replace(state, failures=0, successes=successes, runs=runs), None
        return (CheckState(Health.HEALTHY, 0, 0, now, runs),
                Transition(Change.RECOVERED, Health.HEALTHY, now, successes))
    failures = state.failures + 1
    if failures < policy.fail_after:
        return replace(state, failures=failures, successes=0, runs=runs), None
    return (replace(state, failures=0, successes=0, runs=runs),
            Transition(Change.STILL_FAILING, Health.FAILING, now, failures))


def rearm(state: CheckState) -> CheckState:
    """Restart the failure count (after a recovery action has run), so that the next FAILED or
    STILL_FAILING comes only after ``fail_after`` further failures in a row: failures seen
    while the recovery ran do not count against it. The verdict is kept: a FAILING check
    recovers only by passing ``recover_after`` times."""
    return replace(state, failures=0)
