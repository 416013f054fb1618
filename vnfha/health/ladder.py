"""The escalation ladder: which recovery a fault gets, as a pure decision.

Nothing here does I/O or reads a clock. :func:`decide` takes the policy, the member's
:class:`LadderHistory` (recent uses of each rung), the :class:`Fault`, ``now`` and the member's
situation, and returns a frozen :class:`Decision` whose ``reason`` the runtime logs verbatim and
whose ``history`` it stores (``vnfha.health.counters``) before acting.

The rungs, lowest first (``docs/ladder.md`` has the defaults and a worked timeline)::

    rung          action     what the runtime does                          default
    RESTART       RESTART    await component.restart()                      3 in 300 s
    FAILOVER      FAILOVER   resign the active role; the best standby takes 2 in 600 s
    REBOOT_VM     ESCALATE   ask the NFVI bridge to reboot the instance     1 in 1800 s
    EVACUATE_VM   ESCALATE   ask the bridge to rebuild it (on another host) 1 in 3600 s
    ALARM         ALARM      raise an alarm; no automatic recovery left     unlimited

Rules, in the order :func:`decide` applies them:

1. **Counters reset after a clean probation window.** A rung's uses are forgotten when a fault
   arrives ``probation_s`` (that rung's) or more after the previous fault. Otherwise they
   accumulate: a fault that keeps coming back at shorter intervals climbs the ladder.
2. **The bridge owns an open repair**: the decision is WAIT, reason ``"bridge owns repair
   <ticket>"``; vnfha never starts a recovery of its own while the NFVI repairs.
3. **The recommendation is a floor.** ``Recovery.RESTART`` (or NONE) starts at RESTART,
   ``FAILOVER`` at FAILOVER, ``REPAIR_VM`` at REBOOT_VM. A rung below the floor is never used,
   whatever the counters say; climbing above it follows the usual order.
4. **From the floor up, the first usable rung is taken.** A rung is skipped (and the reason
   says why) when its count since its last reset has reached ``max_count`` (0 disables it),
   when it is FAILOVER and the member is not ACTIVE or no standby is ready, or when it is an
   NFVI rung and there is no bridge. A non-active member's FAILOVER recommendation falls back
   to the floor RESTART (there is nothing to fail over). If no rung is usable: ALARM.

Guarantees (table-driven and hypothesis tests in ``tests/unit/test_ladder.py``):

- **Bounded.** Within any window of a rung's ``probation_s``, that rung is used at most
  ``max_count`` times, whatever the faults, situations and timing.
- **Climbs in order.** For one situation and recommendation, while faults keep arriving within
  the shortest probation window, the rungs used never go down; ALARM, once reached, stays.
- **Nothing above ALARM**, nothing below the floor, no NFVI rung without a bridge, no FAILOVER
  by a member that is not ACTIVE, no action while the bridge owns a repair.
- **Deterministic**: the same inputs give the same decision.

Serialization (:func:`to_bytes` / :func:`from_bytes`) stores times as *ages* relative to a
wall-clock write time, so counters survive a restart of the member and even a reboot of its VM,
where the monotonic clock starts again from zero (see :func:`from_bytes`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from vnfha.errors import ConfigError, LadderStateError
from vnfha.model import LadderAction, Recovery, Role, Rung

__all__ = [
    "DEFAULT_POLICY",
    "FORMAT_VERSION",
    "LADDER",
    "MAX_REASON_CHARS",
    "NFVI_RUNGS",
    "Action",
    "Decision",
    "Fault",
    "LadderHistory",
    "LadderPolicy",
    "Rung",
    "RungPolicy",
    "Use",
    "decide",
    "floor",
    "from_bytes",
    "stored_policy",
    "merge",
    "replay",
    "to_bytes",
]


LADDER: Final = (Rung.RESTART, Rung.FAILOVER, Rung.REBOOT_VM, Rung.EVACUATE_VM, Rung.ALARM)
"""Every rung, lowest first."""

NFVI_RUNGS: Final = frozenset({Rung.REBOOT_VM, Rung.EVACUATE_VM})
"""Rungs that only the NFVI bridge can carry out."""


Action = LadderAction
"""What the runtime does to carry out a :class:`Decision` (:class:`vnfha.model.LadderAction`;
for an ESCALATE, the idempotency key is :attr:`Decision.key`)."""


_ACTION_OF: Final = {
    Rung.RESTART: Action.RESTART,
    Rung.FAILOVER: Action.FAILOVER,
    Rung.REBOOT_VM: Action.ESCALATE,
    Rung.EVACUATE_VM: Action.ESCALATE,
    Rung.ALARM: Action.ALARM,
}

_MAX_COUNT: Final = 1000
_MAX_PROBATION_S: Final = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class RungPolicy:
    """A rung may be used ``max_count`` times before a clean window of ``probation_s`` seconds
    (no fault at all) resets its count. ``max_count`` 0 disables the rung. Built only valid:
    :class:`vnfha.ConfigError` names the field and the value otherwise."""

    max_count: int
    probation_s: float

    def __post_init__(self) -> None:
        if isinstance(self.max_count, bool) or not isinstance(self.max_count, int):
            raise ConfigError("max_count", self.max_count, "must be an integer")
        if not 0 <= self.max_count <= _MAX_COUNT:
            raise ConfigError("max_count", self.max_count,
                              f"must be between 0 (rung disabled) and {_MAX_COUNT}")
        p = self.probation_s
        if isinstance(p, bool) or not isinstance(p, int | float):
            raise ConfigError("probation_s", p, "must be a number of seconds")
        if not (math.isfinite(p) and 0 < p <= _MAX_PROBATION_S):
            raise ConfigError("probation_s", p,
                              f"must be positive and at most {_MAX_PROBATION_S:g} s (30 days)")


DEFAULT_RESTART: Final = RungPolicy(3, 300.0)
"""Restart: 3 times within 5 minutes."""
DEFAULT_FAILOVER: Final = RungPolicy(2, 600.0)
"""Fail over: 2 times within 10 minutes (a pair that ping-pongs stops after two)."""
DEFAULT_REBOOT_VM: Final = RungPolicy(1, 1800.0)
"""Reboot the VM: once within 30 minutes."""
DEFAULT_EVACUATE_VM: Final = RungPolicy(1, 3600.0)
"""Rebuild or evacuate the VM: once within an hour."""


@dataclass(frozen=True, slots=True)
class LadderPolicy:
    """One :class:`RungPolicy` per counted rung (ALARM has none: it is unlimited). The order of
    the rungs is fixed by meaning (:data:`LADDER`); disable a rung with ``max_count=0``."""

    restart: RungPolicy = DEFAULT_RESTART
    failover: RungPolicy = DEFAULT_FAILOVER
    reboot_vm: RungPolicy = DEFAULT_REBOOT_VM
    evacuate_vm: RungPolicy = DEFAULT_EVACUATE_VM

    def __post_init__(self) -> None:
        for name in ("restart", "failover", "reboot_vm", "evacuate_vm"):
            value = getattr(self, name)
            if not isinstance(value, RungPolicy):
                raise ConfigError(name, value, "must be a RungPolicy(max_count, probation_s)")

    def of(self, rung: Rung) -> RungPolicy | None:
        """The policy of ``rung``; None for ALARM."""
        return {
            Rung.RESTART: self.restart,
            Rung.FAILOVER: self.failover,
            Rung.REBOOT_VM: self.reboot_vm,
            Rung.EVACUATE_VM: self.evacuate_vm,
        }.get(rung)


DEFAULT_POLICY: Final = LadderPolicy()
"""The defaults: restart 3 in 300 s, failover 2 in 600 s, reboot 1 in 1800 s, evacuate 1 in
3600 s, then alarm."""


MAX_REASON_CHARS: Final = 500
"""The longest fault reason that goes into a decision's reason (and so into the log)."""


@dataclass(frozen=True, slots=True)
class Fault:
    """Something is wrong with this member's component.

    ``reason`` is what the reporter said; ``recommended`` is the floor of the recovery
    (rule 3); ``source`` names the reporter (``"report_fault"``, ``"check:<name>"``,
    ``"callback:<name>"``); ``coalesced`` counts later faults merged into this one while it
    waited (:func:`merge`).
    """

    reason: str
    recommended: Recovery = Recovery.NONE
    source: str = "report_fault"
    coalesced: int = 0

    def describe(self) -> str:
        """``"<reason> (<source>[, recommended <r>][, +n coalesced])"`` for reasons and logs;
        a reason longer than :data:`MAX_REASON_CHARS` is cut there (with "...")."""
        reason = self.reason if len(self.reason) <= MAX_REASON_CHARS else \
            self.reason[:MAX_REASON_CHARS - 3] + "..."
        extra = [self.source]
        if self.recommended is not Recovery.NONE:
            extra.append(f"recommended {self.recommended}")
        if self.coalesced:
            extra.append(f"+{self.coalesced} coalesced")
        return f"{reason} ({', '.join(extra)})"


_STRENGTH: Final = {Recovery.NONE: 0, Recovery.RESTART: 0, Recovery.FAILOVER: 1,
                    Recovery.REPAIR_VM: 2}


def merge(waiting: Fault, later: Fault) -> Fault:
    """One fault standing for ``waiting`` and a ``later`` one that arrived before it was
    handled: the first reason and source, the stronger recommendation, and the count of merged
    faults. Merging never lowers a floor, so coalescing cannot weaken a recovery."""
    recommended = max(waiting.recommended, later.recommended, key=lambda r: _STRENGTH[r])
    return replace(waiting, recommended=recommended,
                   coalesced=waiting.coalesced + later.coalesced + 1)


@dataclass(frozen=True, slots=True, order=True)
class Use:
    """Rung ``rung`` was decided at time ``at``."""

    at: float
    rung: Rung


@dataclass(frozen=True, slots=True)
class LadderHistory:
    """What the ladder remembers: each counted rung's uses since its last reset (in time
    order; never ALARM), and the time of the last fault (None: no fault yet). Times are on the
    caller's clock; :func:`from_bytes` maps stored ones onto it."""

    uses: tuple[Use, ...] = ()
    last_fault_at: float | None = None

    def times(self, rung: Rung) -> tuple[float, ...]:
        """When ``rung`` was used since its last reset, oldest first."""
        return tuple(u.at for u in self.uses if u.rung is rung)

    def count(self, rung: Rung) -> int:
        """How many times ``rung`` was used since its last reset."""
        return sum(1 for u in self.uses if u.rung is rung)


@dataclass(frozen=True, slots=True)
class Decision:
    """The recovery for ``fault``: ``action`` to carry out, the ``rung`` it is (None for
    WAIT), why, the ``history`` to store *before* acting, and ``attempt``: the how-many-th use
    of the rung since its last reset (0 for WAIT and ALARM)."""

    action: Action
    rung: Rung | None
    reason: str
    history: LadderHistory
    fault: Fault
    attempt: int = 0

    @property
    def key(self) -> str:
        """A stable id for this decision (``"<rung>/<attempt>/<time>"``), for the idempotency
        key of an escalation: a retry of the same decision sends the same key."""
        return f"{self.rung}/{self.attempt}/{self.history.last_fault_at!r}"


def floor(recommended: Recovery) -> Rung:
    """The lowest rung a recommendation allows (rule 3)."""
    if recommended is Recovery.FAILOVER:
        return Rung.FAILOVER
    if recommended is Recovery.REPAIR_VM:
        return Rung.REBOOT_VM
    return Rung.RESTART


def _reset(policy: LadderPolicy, history: LadderHistory, now: float) -> LadderHistory:
    """Forget the uses of every rung whose clean window has passed since the last fault."""
    last = history.last_fault_at
    gap = 0.0 if last is None else max(0.0, now - last)
    kept = tuple(u for u in history.uses
                 if (p := policy.of(u.rung)) is not None and gap < p.probation_s)
    return LadderHistory(kept, now if last is None else max(last, now))


def _unusable(rung: Rung, rp: RungPolicy, history: LadderHistory, *, role: Role,
              has_bridge: bool, standby_ready: bool) -> str | None:
    """Why ``rung`` cannot be used now, or None if it can."""
    if rp.max_count == 0:
        return f"{rung} disabled (max_count 0)"
    if rung is Rung.FAILOVER and role is not Role.ACTIVE:
        return f"failover skipped: member is {role}, not active"
    if rung is Rung.FAILOVER and not standby_ready:
        return "failover skipped: no standby ready to take over"
    if rung in NFVI_RUNGS and not has_bridge:
        return f"{rung} skipped: no NFVI bridge"
    used = history.count(rung)
    if used >= rp.max_count:
        return f"{rung} used {used} of {rp.max_count} within {rp.probation_s:g} s"
    return None


def decide(policy: LadderPolicy, history: LadderHistory, fault: Fault, now: float, *,
           role: Role, has_bridge: bool, open_repair: str | None = None,
           standby_ready: bool = True) -> Decision:
    """The recovery for ``fault`` at ``now`` (see the module's rules and guarantees).

    ``role`` is this member's role, ``has_bridge`` whether an NFVI bridge is configured,
    ``open_repair`` the ticket of a repair of this instance the bridge owns (None: none),
    ``standby_ready`` whether some standby is eligible to take over from this member.
    """
    history = _reset(policy, history, now)
    cause = fault.describe()
    if open_repair is not None:
        return Decision(Action.WAIT, None, f"bridge owns repair {open_repair}: no recovery of "
                        f"vnfha's own; fault: {cause}", history, fault)
    notes: list[str] = []
    start = floor(fault.recommended)
    if start is Rung.FAILOVER and role is not Role.ACTIVE:
        notes.append(f"recommended failover does not apply to a {role} member")
        start = Rung.RESTART
    for rung in LADDER[LADDER.index(start):-1]:
        rp = policy.of(rung)
        assert rp is not None  # every rung below ALARM has a policy
        why_not = _unusable(rung, rp, history, role=role, has_bridge=has_bridge,
                            standby_ready=standby_ready)
        if why_not is not None:
            notes.append(why_not)
            continue
        attempt = history.count(rung) + 1
        after = f" ({'; '.join(notes)})" if notes else ""
        reason = (f"{rung} {attempt} of {rp.max_count} within {rp.probation_s:g} s{after}; "
                  f"fault: {cause}")
        used = replace(history, uses=(*history.uses, Use(now, rung)))
        return Decision(_ACTION_OF[rung], rung, reason, used, fault, attempt)
    after = f" ({'; '.join(notes)})" if notes else ""
    return Decision(Action.ALARM, Rung.ALARM, f"alarm only, no recovery left{after}; "
                    f"fault: {cause}", history, fault)


def replay(policy: LadderPolicy, history: LadderHistory,
           faults: Iterable[tuple[float, Rung | None]]) -> LadderHistory:
    """``history`` followed by ``faults``, each (time, rung it used or None), in time order:
    the same history :func:`decide` would have built had it seen them. Used when decisions had
    to be made before the stored history could be read: they are replayed onto it, with the
    clean-window resets falling where they belong."""
    for at, rung in faults:
        history = _reset(policy, history, at)
        if rung is not None and rung is not Rung.ALARM:
            history = replace(history, uses=(*history.uses, Use(at, rung)))
    return history


# -- storage -------------------------------------------------------------------------------

FORMAT_VERSION: Final = 1
"""The version of the stored form; :func:`from_bytes` refuses any other."""

MAX_STORED_BYTES: Final = 64 * 1024
"""The largest stored history :func:`from_bytes` reads."""

_MAX_USES: Final = 4 * _MAX_COUNT


def to_bytes(history: LadderHistory, now: float, wall_now: float,
             policy: LadderPolicy | None = None,
             life: Mapping[str, object] | None = None) -> bytes:
    """The stored form: versioned JSON with each time as its age at ``now`` (the caller's
    clock) and the wall-clock time ``wall_now`` (seconds since the Unix epoch) of the write,
    and, for operators (``vnfha ladder``), the member's ``policy``: each counted rung's
    ``[max_count, probation_s]``; ``life``, the member's incarnation record
    (:mod:`vnfha.health.incarnation`), is stored as given::

        {"v": 1, "written_at": 1718000000.0, "last_fault_age_s": 12.5,
         "uses": [["restart", 40.0], ["restart", 12.5]], "policy": {"restart": [3, 300.0]},
         "life": {"incarnation": 3, "state": "running", "counted_epoch": 0}}
    """
    last = history.last_fault_at
    record: dict[str, object] = {
        "v": FORMAT_VERSION,
        "written_at": wall_now,
        "last_fault_age_s": None if last is None else max(0.0, now - last),
        "uses": [[u.rung.value, max(0.0, now - u.at)] for u in history.uses],
    }
    if policy is not None:
        record["policy"] = {rung.value: [p.max_count, p.probation_s] for rung in Rung
                            if (p := policy.of(rung)) is not None}
    if life is not None:
        record["life"] = dict(life)
    return json.dumps(record, separators=(",", ":"), allow_nan=False).encode()


def stored_policy(data: bytes) -> dict[str, tuple[int, float]]:
    """The policy a stored history carries (rung value to ``(max_count, probation_s)``), or an
    empty dict if it carries none or it cannot be read (the history's own reading is
    :func:`from_bytes`)."""
    try:
        raw = json.loads(data.decode()).get("policy", {})
        return {str(rung): (int(v[0]), float(v[1])) for rung, v in dict(raw).items()}
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, UnicodeDecodeError):
        return {}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number vnfha stores")


def _age(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0:
        raise LadderStateError(f"{what} must be a non-negative number of seconds, got {value!r}")
    return float(value)


def from_bytes(data: bytes, now: float, wall_now: float) -> LadderHistory:
    """Read a stored history onto the caller's clock at ``now`` (wall clock ``wall_now``).

    The time that passed while nothing ran (a restart, a VM reboot) is ``wall_now -
    written_at``, counted as zero if the wall clock went back, so a clock step can only keep
    counts longer, never forget them early. Anything malformed (not UTF-8 JSON, another
    version, a missing or ill-typed field, an unknown rung, a negative or non-finite time,
    more than ``MAX_STORED_BYTES``) raises :class:`vnfha.errors.LadderStateError` naming the
    problem; nothing else is raised.
    """
    if len(data) > MAX_STORED_BYTES:
        raise LadderStateError(f"{len(data)} bytes, over the {MAX_STORED_BYTES} accepted")
    try:
        record = json.loads(data.decode(), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise LadderStateError(f"not JSON: {e}") from e
    if not isinstance(record, dict):
        raise LadderStateError(f"expected an object, got {type(record).__name__}")
    version = record.get("v")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise LadderStateError(f"format version {version!r}, this vnfha reads {FORMAT_VERSION}")
    written_at = record.get("written_at")
    if isinstance(written_at, bool) or not isinstance(written_at, int | float) \
            or not math.isfinite(written_at):
        raise LadderStateError(f"written_at must be a wall-clock time, got {written_at!r}")
    offline = max(0.0, wall_now - written_at)
    raw_last = record.get("last_fault_age_s")
    last = None if raw_last is None else now - offline - _age(raw_last, "last_fault_age_s")
    raw_uses = record.get("uses")
    if not isinstance(raw_uses, list) or len(raw_uses) > _MAX_USES:
        raise LadderStateError(f"uses must be a list of at most {_MAX_USES}, got {raw_uses!r:.80}")
    uses = []
    for item in raw_uses:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise LadderStateError(f"a use must be [rung, age_s], got {item!r:.80}")
        try:
            rung = Rung(item[0])
        except ValueError as e:
            raise LadderStateError(f"unknown rung {item[0]!r:.40}") from e
        if rung is Rung.ALARM:
            raise LadderStateError("alarm is never counted")
        uses.append(Use(now - offline - _age(item[1], "a use's age"), rung))
    if uses and last is None:
        raise LadderStateError("uses recorded without a last fault")
    return LadderHistory(tuple(sorted(uses)), last)
