"""PURE: a member's incarnations, and what its start counts on the escalation ladder.

Every start of a member's process is an *incarnation*, numbered from 1. The member records,
in its own ladder key beside its counters (:mod:`vnfha.health.counters`), which incarnation
runs and how it ended (a :class:`Life`)::

    state       written                                    the next start
    running     at the start of incarnation n              n died (SIGKILL, crash, fence,
                                                           watchdog reset, VM reboot): counted
    repairing   before it asks the NFVI to reboot or       n ended by that repair, which the
                evacuate its own instance                  ladder counted when it asked
    stopped     at a clean stop (``Member.stop``)          nothing to count

On start, :func:`begin` counts what happened to the previous incarnation, as a fault the
ladder decides on (:func:`vnfha.health.ladder.decide`):

1. **Crash failovers.** Each failover history record (``vnfha history``) that names this
   member as the old active, with a fault cause (:data:`FAULT_CAUSES`: crash, fence,
   nfvi-event, standby-lease, lease) and an epoch above the high-water mark
   :attr:`Life.counted_epoch`, is a use of the failover rung at the record's time (wall
   clock, put back on the monotonic clock as the counters' ages are); one older than the
   failover rung's ``probation_s`` is past counting (its epoch is marked counted all the same).
   Handovers (switchover, lock, stop) are not faults, and a ladder failover was counted by the
   ladder that decided it.
2. **An unclean end.** A previous incarnation still ``running`` died: that is one fault,
   decided by the ladder at ``now`` as the member stands (its role, a bridge, a ready
   standby). Its first rung, RESTART, is already done (the process was restarted: by a
   repair, a supervisor, a VM reboot), so :func:`already_done`; a higher rung (the restarts
   are used up) is carried out as for a health fault: FAILOVER, ESCALATE (reboot, evacuate),
   ALARM.
3. **The new incarnation** is ``running`` with number n + 1 and the new high-water mark.

Guarantees (``tests/unit/test_incarnation.py``):

- **Each death and each failover epoch is counted once.** The counts and the new
  :class:`Life` are stored in one write (the caller's); a start that does not store them
  counted nothing, and the next start counts the same death and epochs (it reads the same
  record). An incarnation that died before it stored its start is not counted (it never ran
  as recorded).
- **Nothing is counted twice for one event the ladder already knew**: an end by the member's
  own repair (``repairing``) and a clean stop count nothing; ladder and handover failovers
  count nothing.
- **Deterministic**: the same record, history and time give the same :class:`Start`.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from vnfha.errors import LadderStateError
from vnfha.health.ladder import (
    Action,
    Decision,
    Fault,
    LadderHistory,
    LadderPolicy,
    Rung,
    decide,
    replay,
)
from vnfha.model import Recovery, Role

__all__ = ["DEATH_SOURCE", "FAULT_CAUSES", "Failover", "Life", "LifeState", "Start",
           "already_done", "begin", "life_from_json", "stored_life"]

FAULT_CAUSES: Final = frozenset({"crash", "fence", "nfvi-event", "standby-lease", "lease"})
"""The failover history causes (:class:`vnfha.roles.history.Cause` values) that are a fault of
the old active, and so a use of its failover rung."""

DEATH_SOURCE: Final = "restart"
"""The source of the fault an unclean end is (``Fault.source``)."""


class LifeState(enum.StrEnum):
    """How the recorded incarnation stands (see the module's table)."""

    RUNNING = "running"
    REPAIRING = "repairing"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Life:
    """What the member's ladder key says of its incarnations: the latest ``incarnation`` that
    started (0: none recorded), its ``state``, and ``counted_epoch``, the highest old-active
    epoch whose crash failover is counted."""

    incarnation: int = 0
    state: LifeState = LifeState.STOPPED
    counted_epoch: int = 0

    def as_json(self) -> dict[str, object]:
        """The stored form (the ``life`` field of the ladder record)."""
        return {"incarnation": self.incarnation, "state": self.state.value,
                "counted_epoch": self.counted_epoch}

    @property
    def ended_unclean(self) -> bool:
        """True when the recorded incarnation neither stopped cleanly nor is being repaired
        at its own request (a member that is gone so died)."""
        return self.state is LifeState.RUNNING


def stored_life(data: bytes) -> Life | None:
    """The :class:`Life` in a stored ladder record (:func:`vnfha.health.ladder.to_bytes`), None
    when it holds none (written before incarnations were recorded); LadderStateError when the
    record or its ``life`` cannot be read."""
    try:
        record = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise LadderStateError(f"not JSON: {e}") from e
    if not isinstance(record, dict):
        raise LadderStateError(f"expected an object, got {type(record).__name__}")
    return None if record.get("life") is None else life_from_json(record["life"])


def life_from_json(value: object) -> Life:
    """The :class:`Life` a stored ``life`` field holds; LadderStateError naming the problem."""
    if not isinstance(value, dict):
        raise LadderStateError(f"life must be an object, got {value!r:.80}")
    numbers = [value.get("incarnation"), value.get("counted_epoch")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        raise LadderStateError(f"life's incarnation and counted_epoch must be non-negative "
                               f"integers, got {numbers!r:.80}")
    try:
        state = LifeState(str(value.get("state")))
    except ValueError as e:
        raise LadderStateError(f"unknown life state {value.get('state')!r:.40}") from e
    return Life(int(numbers[0] or 0), state, int(numbers[1] or 0))


@dataclass(frozen=True, slots=True)
class Failover:
    """A failover history record that names this member as the old active: its epoch then,
    the cause, and when the new active took over (wall clock; 0: unknown, taken as now)."""

    from_epoch: int
    cause: str
    at_wall: float = 0.0


@dataclass(frozen=True, slots=True)
class Start:
    """What a start counts (see the module): store ``life`` and ``history`` (in one write),
    then carry out ``decision`` (None: the previous incarnation did not die) unless
    :func:`already_done`. ``failovers`` are the epochs newly counted as failovers; ``reason``
    says what was counted, for the log."""

    life: Life
    history: LadderHistory
    decision: Decision | None
    failovers: tuple[int, ...]
    reason: str


def already_done(decision: Decision) -> bool:
    """True when an unclean end's decision needs no action: RESTART, which the process's
    restart has just done."""
    return decision.action is Action.RESTART


def begin(policy: LadderPolicy, history: LadderHistory, life: Life,
          failovers: Iterable[Failover], *, now: float, wall_now: float, member: str,
          role: Role, has_bridge: bool, standby_ready: bool) -> Start:
    """What the start of ``member``'s next incarnation counts at ``now`` (wall clock
    ``wall_now``), from the stored ``history`` and ``life`` and the failover records that
    name it as the old active (see the module's rules and guarantees)."""
    named = {f.from_epoch: f for f in failovers
             if f.from_epoch > life.counted_epoch and f.cause in FAULT_CAUSES}
    fresh = [named[epoch] for epoch in sorted(named)]

    def age(f: Failover) -> float:  # as a stored counter's: 0 if the wall clock went back
        return max(0.0, wall_now - f.at_wall) if f.at_wall > 0 and math.isfinite(f.at_wall) \
            else 0.0

    window = policy.failover.probation_s
    counted = [f for f in fresh if age(f) < window]
    if counted:
        history = replay(policy, history, sorted((now - age(f), Rung.FAILOVER) for f in counted))
        history = replace(history, uses=tuple(sorted(history.uses)))
    notes = [f"failover of epoch {f.from_epoch} ({f.cause}) counted" for f in counted]
    notes += [f"failover of epoch {f.from_epoch} ({f.cause}) {age(f):.0f} s ago, past the "
              f"failover rung's {window:g} s: not counted" for f in fresh if f not in counted]
    decision = None
    if life.ended_unclean:
        fault = Fault(f"incarnation {life.incarnation} of {member} ended without a clean stop "
                      "(killed, crashed, fenced, reset by its watchdog or its VM rebooted)",
                      Recovery.NONE, DEATH_SOURCE)
        decision = decide(policy, history, fault, now, role=role, has_bridge=has_bridge,
                          standby_ready=standby_ready)
        history = decision.history
        notes.append(decision.reason)
    elif life.state is LifeState.REPAIRING:
        notes.append(f"incarnation {life.incarnation} ended by the repair it asked for "
                     "(counted when it asked)")
    top = max([life.counted_epoch, *(f.from_epoch for f in fresh)])
    reason = f"incarnation {life.incarnation + 1} starts" + (
        f": {'; '.join(notes)}" if notes else "")
    return Start(Life(life.incarnation + 1, LifeState.RUNNING, top), history, decision,
                 tuple(f.from_epoch for f in counted), reason)
