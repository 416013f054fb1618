"""Poisoned-state protection: the pure decision whether the next active may simply take over.

vnfha copies the active's state to its standbys faithfully, so it copies a state that makes
the active fail too (the seed document's "fault for the active VM can also be copied to the
standby VM"). Without protection a group promotes member after member into the same crash.

The rule (``docs/failover.md``, "Poisoned-state protection"):

- **Probation.** An active that took over after a *failure* of its predecessor (a crash, a
  fence, a hang, an NFVI report, an expired lease, a ladder resignation; not a switchover, a
  lock, a clean stop or a first election) is on probation for ``probation_s`` from its takeover.
  Its active key carries a :class:`Probation`: when it took over, when the chain of failures
  began, how many failures the chain has seen and whether it already rolled back. The key is
  written in the campaign's own transaction, so the record exists as soon as the grant does,
  even if the new active dies inside ``on_active``.
- **A failure in probation** makes the successor suspect the inherited state. By policy:
  ``rollback`` undoes the checkpoint changes applied from ``window_s`` before the chain's first
  failure, once per chain; a second failure in probation after a rollback escalates to
  ``hold``. ``hold`` takes no automatic takeover at all: the group is paused with an alarm
  until an operator releases it. ``off`` promotes as always.
- **A rollback that cannot be done whole is not done**: when the successor's undo information
  no longer reaches back to the window's start (its bounds dropped older entries, or a snapshot
  replaced its state), the verdict is ``hold``.

Guarantees of :func:`judge` (tested with hypothesis on a fake clock, ``tests/unit``):

- Pure: the predecessor's :class:`Probation` (None: it was not on probation), the cause of its
  end, the time and the policy in; a :class:`Judgement` out.
- A chain rolls back at most once, and a failure in probation after it always holds: under any
  sequence of failures at most two actives are promoted into a state that fails them (the
  first successor, and the one after a rollback that did not reach far enough).
- It never *adds* a takeover: it keeps the one the role policy decided, changes what the new
  active starts from, or withholds it. So it cannot cause two actives.
- The rollback's cutoff is ``window_s`` before the chain's first failure, never later: a write
  acknowledged before the window is never rolled back (the undo log's guarantee,
  :mod:`vnfha.replication.undo`).
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["FAILURE_CAUSES", "Judgement", "PoisonPolicy", "PoisonSettings", "Probation",
           "Verdict", "judge"]

FAILURE_CAUSES = frozenset({"crash", "fence", "nfvi-event", "standby-lease", "lease", "ladder"})
"""The history causes (:class:`vnfha.roles.history.Cause` values) that end an active by a
failure: a takeover after one starts (or continues) probation."""


class PoisonPolicy(enum.StrEnum):
    """What a failure in probation leads to (``Config.poison_policy``)."""

    ROLLBACK = "rollback"
    HOLD = "hold"
    OFF = "off"


class Verdict(enum.StrEnum):
    """What the successor does."""

    TAKE_OVER = "take over"
    """Take over as always (the inherited state is not suspected)."""
    ROLLBACK = "roll back"
    """Take over, undoing the changes applied since the cutoff first."""
    HOLD = "hold"
    """Do not take over: pause the group with an alarm until an operator releases it."""


@dataclass(frozen=True, slots=True)
class PoisonSettings:
    """The policy and its times (from ``Config.poison_*``)."""

    policy: PoisonPolicy = PoisonPolicy.HOLD
    probation_s: float = 10.0
    window_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Probation:
    """An active's probation, carried in its active key (wall-clock seconds since the epoch)."""

    since: float
    """When it took over."""
    first_failure: float
    """When the chain of failures began: the first failure's successor's takeover."""
    failures: int = 1
    """Failures in the chain, the one before this takeover included."""
    rolled_back: bool = False
    """This chain already rolled back once."""

    def as_json(self) -> dict[str, object]:
        """The stored form (in the active key; :meth:`from_json` reads it back)."""
        return {"since": self.since, "first_failure": self.first_failure,
                "failures": self.failures, "rolled_back": self.rolled_back}

    @classmethod
    def from_json(cls, d: Any) -> Probation:
        """The probation ``d`` describes; TypeError or ValueError if it is not one."""
        if not isinstance(d, dict):
            raise TypeError(f"probation must be an object, got {type(d).__name__}")
        since, first, failures = float(d["since"]), float(d["first_failure"]), d["failures"]
        rolled_back = d.get("rolled_back", False)
        if not (math.isfinite(since) and math.isfinite(first)) or first > since:
            raise ValueError(f"probation times {since!r}, {first!r} are not in order")
        if not isinstance(failures, int) or isinstance(failures, bool) or failures < 1:
            raise ValueError(f"probation failures {failures!r} must be a positive integer")
        if not isinstance(rolled_back, bool):
            raise TypeError("probation rolled_back must be a boolean")
        return cls(since, first, failures, rolled_back)


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict, the probation the new active's key carries (None: none), the rollback's
    cutoff (wall time; None unless ROLLBACK) and why, for the log, the history and status."""

    verdict: Verdict
    probation: Probation | None
    cutoff: float | None
    reason: str


def judge(settings: PoisonSettings, *, previous: Probation | None, cause: str, now: float,
          undo_since: float | None) -> Judgement:
    """The successor's verdict, at wall time ``now``, when the active it replaces ended with
    history cause ``cause`` while carrying ``previous`` (see the module docstring).
    ``undo_since``: from when the successor's undo information covers every change it applied
    (None: it keeps none)."""
    if cause not in FAILURE_CAUSES:
        return Judgement(Verdict.TAKE_OVER, None, None, "")
    fresh = Probation(since=now, first_failure=now)
    policy = settings.policy
    if previous is None or now - previous.since > settings.probation_s \
            or policy is PoisonPolicy.OFF:
        return Judgement(Verdict.TAKE_OVER, fresh, None, "")
    failures = previous.failures + 1
    age = max(0.0, now - previous.since)
    why = (f"the active failed ({cause}) {age:.1f} s after it took over after a failure, "
           f"within its {settings.probation_s:g} s probation ({failures} failures since "
           f"{_clock(previous.first_failure)}): its inherited state is suspected")
    if policy is PoisonPolicy.HOLD:
        return Judgement(Verdict.HOLD, None, None, f"{why}; poison_policy is hold")
    if previous.rolled_back:
        return Judgement(Verdict.HOLD, None, None, f"{why}, and it had already been rolled "
                         "back once")
    cutoff = previous.first_failure - settings.window_s
    if undo_since is None or undo_since > cutoff:
        covered = "keeps no undo information" if undo_since is None else \
            f"keeps undo information only from {_clock(undo_since)}"
        return Judgement(Verdict.HOLD, None, None, f"{why}; a rollback to {_clock(cutoff)} "
                         f"cannot be done whole (this member {covered})")
    return Judgement(Verdict.ROLLBACK, Probation(since=now, first_failure=previous.first_failure,
                                                 failures=failures, rolled_back=True),
                     cutoff, f"{why}; rolling back the changes applied since {_clock(cutoff)} "
                     f"({settings.window_s:g} s before the first failure)")


def _clock(t: float) -> str:
    """A wall time as UTC hh:mm:ss.mmm, for reasons."""
    return time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"
