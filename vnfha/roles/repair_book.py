"""PURE: which gone members the group's active asks the NFVI bridge to repair, and when.

A member is *gone* when its record (bound to its lease) has disappeared: the active has seen
it in the group, or its ladder key records an incarnation (:mod:`vnfha.health.incarnation`),
and its record is no longer there. :class:`RepairBook` tracks the gone members of one grant of
the active role and says, for each, what to do at each look (:meth:`RepairBook.look`)::

    condition, in this order                             step    then
    no incarnation record (never ran with self-healing,  DROP    never asked (until it is back)
      or its counters were deleted)
    its last incarnation stopped cleanly                 DROP    an operator stopped it
    the group is paused / the member is locked           WAIT    look again repair_after_s later
    gone for less than repair_after_s                    WAIT    until then
    its last ticket ended less than repair_after_s ago   WAIT    it may be rejoining
    already asked max_attempts times for this            DROP    given up (logged)
      incarnation
    otherwise                                            ASK     Escalate, key repair_key(...)

An incarnation that ended by its own repair (``repairing``) is repaired like one that died: if
that repair is still open the bridge answers with its ticket (one owner per instance), and
the book waits for it. After an ASK, :meth:`RepairBook.answered` takes the bridge's answer:
an open ticket is looked at again ``repair_after_s`` later (asking again with the same key
reads its state); an ended ticket gives the member ``repair_after_s`` to rejoin, then the next
attempt asks anew; a refusal is an attempt used; no answer is no attempt.

Guarantees:

- **Idempotent.** The key of a repair is ``repair/{group}/{member}/{incarnation}/{attempt}``:
  every ask of one attempt, by this active or a later one (which reads the same incarnation
  record), gets the same ticket from the bridge, and a member that came back and died again
  (a new incarnation) gets a new one.
- **Bounded.** At most ``max_attempts`` tickets per incarnation, spaced by ``repair_after_s``
  at least; never while paused or locked; never for a member that stopped cleanly or has no
  record; never for this member itself.
- **A member that is back is forgotten** (:meth:`RepairBook.observe`), with its attempts.

No asyncio, no clock: ``now`` is passed in.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final

from vnfha.health.incarnation import Life, LifeState

__all__ = ["MAX_ATTEMPTS", "Look", "Outcome", "RepairBook", "RepairRecord", "Step",
           "repair_key", "repairs_prefix"]

MAX_ATTEMPTS: Final = 3
"""Repairs asked per incarnation of a gone member before the active gives up."""


def repair_key(group: str, member: str, incarnation: int, attempt: int) -> str:
    """The idempotency key of a repair (see the module)."""
    return f"repair/{group}/{member}/{incarnation}/{attempt}"


def repairs_prefix(key_prefix: str, group: str) -> str:
    """Where the active keeps the :class:`RepairRecord` of each of ``group``'s gone members
    (one key each, named by the member; outside the group's prefix, so that no member's watch
    wakes for it)."""
    return f"{key_prefix}/.repairs/{group}/"


class Step(enum.Enum):
    """What to do about a gone member now."""

    WAIT = "wait"
    """Nothing yet: look again at ``Look.due``."""
    ASK = "ask"
    """Ask the bridge to repair its instance, with ``Look.key``."""
    DROP = "drop"
    """Never (until the member is back): ``Look.reason`` says why."""


class Outcome(enum.Enum):
    """The bridge's answer to an ASK."""

    OPEN = "open"
    """A ticket repairs the instance (ours, or another open one)."""
    ENDED = "ended"
    """The key's ticket is terminal."""
    REFUSED = "refused"
    """Refused (placement, unknown member, ...): an attempt used."""
    UNREACHABLE = "unreachable"
    """No answer: ask again later; no attempt used."""


@dataclass(frozen=True, slots=True)
class Look:
    """The step for ``member`` now, why, and: ``due`` (WAIT: when to look again), ``key``,
    ``incarnation`` and ``attempt`` (ASK)."""

    member: str
    step: Step
    reason: str
    due: float | None = None
    key: str = ""
    incarnation: int = 0
    attempt: int = 0


@dataclass(slots=True)
class _Gone:
    since: float
    due: float
    incarnation: int = 0
    attempt: int = 0
    ended_at: float | None = None
    dropped: bool = False


class RepairBook:
    """The gone members of ``group`` as its active ``me`` tracks them (see the module)."""

    def __init__(self, *, me: str, group: str, repair_after_s: float,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        if repair_after_s <= 0 or max_attempts < 1:
            raise ValueError(f"repair_after_s={repair_after_s}, max_attempts={max_attempts}: "
                             "both must be positive")
        self.me, self.group = me, group
        self.repair_after_s = repair_after_s
        self.max_attempts = max_attempts
        self._known: set[str] = set()
        self._gone: dict[str, _Gone] = {}

    @property
    def gone(self) -> tuple[str, ...]:
        """The members tracked as gone (dropped ones included), sorted."""
        return tuple(sorted(self._gone))

    def learn(self, members: Iterable[str]) -> None:
        """Members known to belong to the group (their ladder keys), present or not."""
        self._known.update(m for m in members if m != self.me)

    def observe(self, present: Collection[str], now: float) -> tuple[list[str], list[str]]:
        """The group's member records now: returns (newly gone, back). A known member
        without a record is gone from ``now``; one with a record is forgotten."""
        self.learn(present)
        back = sorted(m for m in self._gone if m in present)
        for m in back:
            del self._gone[m]
        gone = sorted(m for m in self._known - set(present) if m not in self._gone)
        for m in gone:
            self._gone[m] = _Gone(since=now, due=now + self.repair_after_s)
        return gone, back

    def clear(self) -> None:
        """Forget everything (the grant of the active role ended)."""
        self._known.clear()
        self._gone.clear()

    def next_due(self) -> float | None:
        """When the next look is due; None when no gone member waits for one."""
        return min((g.due for g in self._gone.values() if not g.dropped), default=None)

    def due(self, now: float) -> list[str]:
        """The gone members whose look is due at ``now``, sorted."""
        return sorted(m for m, g in self._gone.items() if not g.dropped and g.due <= now)

    def look(self, member: str, life: Life | None, *, locked: bool, paused: bool,
             now: float) -> Look:
        """The step for gone ``member`` at ``now``, given its stored incarnation record
        (``life``, None: none) and whether it is locked or the group paused."""
        g = self._gone[member]
        after = self.repair_after_s

        def wait(until: float, why: str) -> Look:
            g.due = until
            return Look(member, Step.WAIT, why, due=until)

        def drop(why: str) -> Look:
            g.dropped = True
            return Look(member, Step.DROP, why)

        if life is None:
            return drop("it records no incarnation (it never ran with self-healing, or its "
                        "ladder counters were deleted)")
        if life.state is LifeState.STOPPED:
            return drop(f"its incarnation {life.incarnation} stopped cleanly")
        if paused:
            return wait(now + after, "the group is paused by an operator")
        if locked:
            return wait(now + after, "it is locked out of service by an operator")
        if now < g.since + after:
            return wait(g.since + after, f"gone for less than {after:g} s")
        if life.incarnation != g.incarnation:
            g.incarnation, g.attempt, g.ended_at = life.incarnation, 1, None
        if g.ended_at is not None:
            if now < g.ended_at + after:
                return wait(g.ended_at + after, f"its repair ended less than {after:g} s ago: "
                            "it may be rejoining")
            g.attempt, g.ended_at = g.attempt + 1, None
        if g.attempt > self.max_attempts:
            return drop(f"{self.max_attempts} repairs of its incarnation {life.incarnation} "
                        "did not bring it back: giving up (it runs without redundancy until "
                        "an operator acts)")
        return Look(member, Step.ASK, f"gone for {now - g.since:.1f} s without a clean stop "
                    f"(incarnation {life.incarnation})",
                    key=repair_key(self.group, member, life.incarnation, g.attempt),
                    incarnation=life.incarnation, attempt=g.attempt)

    def answered(self, member: str, outcome: Outcome, now: float) -> None:
        """The bridge's answer to the last ASK for ``member`` (see the module)."""
        g = self._gone.get(member)
        if g is None:
            return
        g.due = now + self.repair_after_s
        if outcome is Outcome.ENDED and g.ended_at is None:
            g.ended_at = now
        elif outcome is Outcome.REFUSED:
            g.attempt += 1


@dataclass(frozen=True, slots=True)
class RepairRecord:
    """What the active last learnt of the repair of a gone ``member`` (for ``vnfha status``):
    the ``ticket`` with its ``action``, ``state`` and ``owner``, the attempt, and who asked in
    which epoch, when (wall clock)."""

    member: str
    incarnation: int
    attempt: int
    ticket: str
    action: str
    state: str
    owner: str
    by: str
    epoch: int
    at: float

    def encode(self) -> bytes:
        """JSON."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> RepairRecord:
        """The record ``raw`` holds; ValueError, KeyError or TypeError if unreadable."""
        d: dict[str, Any] = json.loads(raw.decode())
        return cls(member=str(d["member"]), incarnation=int(d["incarnation"]),
                   attempt=int(d["attempt"]), ticket=str(d["ticket"]), action=str(d["action"]),
                   state=str(d["state"]), owner=str(d["owner"]), by=str(d["by"]),
                   epoch=int(d["epoch"]), at=float(d["at"]))

    def describe(self) -> str:
        """One line for an operator."""
        return (f"repair of {self.member} under way: ticket {self.ticket} ({self.action} by "
                f"{self.owner}, {self.state} when last asked), asked by {self.by} in epoch "
                f"{self.epoch}, attempt {self.attempt} for incarnation {self.incarnation}")
