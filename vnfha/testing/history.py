"""Invariants I1-I8 of DESIGN.md section 10, checked over recorded member histories. PURE.

A *history* is one member process's event log as records stamped with ``t_mono``, the
``time.monotonic()`` of the process that recorded it. On Linux CLOCK_MONOTONIC is one clock for
every process on a host (network namespaces do not change it), so the logs of several processes,
and the harness's own fault times, can be merged by it. :func:`parse` turns the JSON lines of
:mod:`vnfha.testing.member_proc` into records; :func:`check` returns every
:class:`Violation`, each naming the invariant, the member, the time and the epochs/sequences:

- **I1** a receiver never accepts a lower epoch: no batch a standby applies is of an epoch lower
  than the highest it had already seen (in its own role events, which carry the epoch etcd
  told it, or in batches it applied before).
- **I2** no two epochs' actions interleave: at a receiver, once it applied a batch of epoch E2,
  nothing of an epoch E1 < E2 is applied later; and across members, no action (an ``act``, or
  the start of a write that was accepted) for E1 comes after the first action for some E2 > E1.
  A receiver that goes back to an older epoch violates I1 and I2 both.
- **I3** no acknowledged write is lost across a failover: every write of epoch E acknowledged
  with ``Ack.ONE``/``ALL`` is in the state that the active of the next epoch found in
  ``on_active``.
- **I4** a standby applies each epoch's sequence in order without gaps or duplicates: a batch
  of an epoch starts right after the last sequence applied of that epoch, or at 1 for an epoch
  new to it; a snapshot resets the expectation to its own sequence.
- **I5** each change of active raises the epoch: every grant of the active role (a member
  becoming ACTIVE with an epoch) has an epoch above every earlier grant's.
- **I6** after a fault heals there is exactly one active within the budget: at ``heal +
  budget_s``, and at every role change after it until the next fault starts (or observation
  ends), exactly one member is ACTIVE. A member whose last record is an exit is not active.
- **I7** no failover under faults below the detection threshold: every change of active (each
  grant of the active role after the first one observed: a member becoming ACTIVE with an
  epoch not granted to it before) comes after at least one fault that expects a failover
  (:attr:`Fault.expect_failover`) injected since the previous grant. A change after only
  below-threshold faults, or after none at all (a failover nobody asked for), is a violation.
- **I8** the stop-being-active path always runs: a member that leaves ACTIVE (any role record
  other than active after being active: deposed, self-demoted at its deadline, resigned for a
  switchover or a clean stop) then starts the component's callback for it, ``on_quiesce`` (a
  graceful handover) or ``on_standby`` of an epoch at or above the one it left (told it was
  deposed, or given the standby role), before it starts ``on_active`` for a later epoch (the
  callbacks run one at a time in order, so nothing queued behind that can overtake it). A
  member still ACTIVE at the end of its history after another member was granted a higher
  epoch, or that exited cleanly while ACTIVE, never ran the path. Excused: a member whose
  history ends with its kill before the callback started (a dead process runs nothing), and one
  that was frozen (SIGSTOP, the harness's ``paused`` mark with no ``resumed`` after it) when
  its history ends. A partition is not excused: an isolated active demotes itself at its own
  deadline and runs the callback locally, without the network.

The checks apply to single-active redundancy models (TWO_N, N_WAY). They see what was logged:
with writes reported every n-th, I2 and I3 are checked on the reported ones. I7 and I8 use every
record, including any after ``end``; a history that ends too soon after a deposition to show the
old active leaving is an I8 violation, as it would be an I6 one.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "INVARIANTS",
    "Acted",
    "BatchApplied",
    "CallbackStarted",
    "Exited",
    "Fault",
    "Frozen",
    "Record",
    "RoleSeen",
    "StateFound",
    "Violation",
    "WriteAcked",
    "check",
    "count",
    "parse",
]

ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class RoleSeen:
    """The member took ``role`` (``"active"``, ``"standby"``, ...) under the active grant
    ``epoch`` (its own epoch when active, the active's otherwise)."""

    t_mono: float
    role: str
    epoch: int


@dataclass(frozen=True, slots=True)
class BatchApplied:
    """A standby applied sequences ``first`` .. ``last`` of ``epoch`` (a batch of deltas), or
    replaced its whole state by a snapshot at ``last`` (``snapshot`` true)."""

    t_mono: float
    epoch: int
    first: int
    last: int
    snapshot: bool = False


@dataclass(frozen=True, slots=True)
class Acted:
    """The member acted as the active of ``epoch`` (served traffic)."""

    t_mono: float
    epoch: int


@dataclass(frozen=True, slots=True)
class WriteAcked:
    """A checkpoint write issued at ``t_start`` as the active of ``epoch`` returned at
    ``t_mono``; ``protected`` when acknowledged by a standby (``Ack.ONE``/``ALL``).
    ``index`` numbers the member's writes to ``section``, in order."""

    t_mono: float
    t_start: float
    epoch: int
    section: str
    index: int
    protected: bool


@dataclass(frozen=True, slots=True)
class StateFound:
    """What the active of ``epoch`` found in ``on_active``: per section, the highest write
    index such that it and every lower one of that section are present."""

    t_mono: float
    epoch: int
    highest: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Exited:
    """The process ended (``how``: ``"stopped"`` cleanly, ``"killed"`` by the harness)."""

    t_mono: float
    how: str


@dataclass(frozen=True, slots=True)
class CallbackStarted:
    """The component's callback ``name`` (``"on_active"``, ``"on_standby"``,
    ``"on_quiesce"``) started, for the assignment of ``epoch`` (``0`` for ``on_quiesce``,
    which has no assignment)."""

    t_mono: float
    name: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Frozen:
    """The harness froze the process (SIGSTOP: ``frozen`` true) or let it go on (SIGCONT:
    ``frozen`` false)."""

    t_mono: float
    frozen: bool


Record = (RoleSeen | BatchApplied | Acted | WriteAcked | StateFound | Exited | CallbackStarted
          | Frozen)
"""One entry of a member's history."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault injected at ``start`` and healed at ``heal`` (monotonic seconds). A fault that
    is over at once (a kill, a switchover request) has ``heal == start``.

    ``expect_failover`` is false for a fault below the detection threshold (packet loss on the
    replication link, the loss of etcd's leader, a pause shorter than the lease): no change of
    active may follow it (I7). Every fault meant to make the group fail over (a kill, a freeze
    past the lease, a partition, a switchover request) keeps the default, true."""

    start: float
    heal: float
    label: str = ""
    expect_failover: bool = True


@dataclass(frozen=True, slots=True)
class Violation:
    """One breach of invariant ``invariant`` (``"I1"`` .. ``"I8"``) seen in ``member``'s
    history at ``t_mono``, with the epochs and sequences involved."""

    invariant: str
    member: str
    t_mono: float
    detail: str
    epochs: tuple[int, ...] = ()
    sequences: tuple[int, ...] = ()


INVARIANTS = ("I1", "I2", "I3", "I4", "I5", "I6", "I7", "I8")
"""Every invariant :func:`check` checks, in order."""


# -- parsing member_proc's JSON lines ------------------------------------------------------------


def parse(events: Iterable[Mapping[str, Any]]) -> list[Record]:
    """The records in ``member_proc`` JSON events, sorted by ``t_mono``; events without
    ``t_mono`` and kinds the checks do not use are skipped."""
    records = [r for r in (_record(e) for e in events if "t_mono" in e) if r is not None]
    records.sort(key=lambda r: r.t_mono)
    return records


def _record(e: Mapping[str, Any]) -> Record | None:
    kind, t = e.get("event"), float(e["t_mono"])
    if kind == "role":
        return RoleSeen(t, str(e["role"]), int(e["epoch"]))
    if kind == "applied":
        return BatchApplied(t, int(e["epoch"]), int(e["first"]), int(e["last"]),
                            bool(e.get("snapshot", False)))
    if kind == "act":
        return Acted(t, int(e["epoch"]))
    if kind == "acked":
        return WriteAcked(t, float(e.get("t_start_mono", t)), int(e["epoch"]),
                          str(e["section"]), int(e["index"]), bool(e.get("protected", False)))
    if kind == "checkpoint" and "found" in e:
        return StateFound(t, int(e["epoch"]), {str(k): int(v) for k, v in e["found"].items()})
    if kind in ("stopped", "killed"):
        return Exited(t, str(kind))
    if kind == "callback":
        return CallbackStarted(t, str(e["name"]), int(e["epoch"]))
    if kind in ("paused", "resumed"):
        return Frozen(t, kind == "paused")
    return None


# -- the checks ----------------------------------------------------------------------------------


def check(histories: Mapping[str, Sequence[Record]], *, budget_s: float,
          faults: Sequence[Fault] = (), end: float | None = None) -> list[Violation]:
    """Every violation of I1-I8 in ``histories`` (member -> records in time order).

    ``budget_s`` bounds how long after a fault heals the group may go without exactly one
    active (I6); ``faults`` are the faults injected, in monotonic time (I6, I7); ``end`` is when
    observation ended (default: the last record). Records after ``end`` are not used for I6,
    and a fault whose ``heal + budget_s`` falls after ``end`` is a violation: the history is too
    short to show I6.
    """
    ordered = {m: sorted(rs, key=lambda r: r.t_mono) for m, rs in histories.items()}
    found: list[Violation] = []
    for member, records in ordered.items():
        found += _receiver(member, records)
    found += _actions(ordered)
    found += _acked_kept(ordered)
    found += _grants_raise_epoch(ordered)
    last = max((rs[-1].t_mono for rs in ordered.values() if rs), default=0.0)
    found += _one_active(ordered, budget_s, faults, last if end is None else end)
    found += _failovers_asked_for(ordered, faults)
    found += _stopped_being_active(ordered)
    return sorted(found, key=lambda v: (v.invariant, v.t_mono, v.member))


def count(violations: Iterable[Violation]) -> dict[str, int]:
    """Violations per invariant, every invariant listed (0 when none)."""
    counts = dict.fromkeys(INVARIANTS, 0)
    for v in violations:
        counts[v.invariant] = counts.get(v.invariant, 0) + 1
    return counts


def _receiver(member: str, records: Sequence[Record]) -> list[Violation]:
    """I1, the receiver half of I2, and I4, over one member's records in time order."""
    out: list[Violation] = []
    seen = 0  # the highest epoch this member knew of
    applied_top = 0  # the highest epoch it applied a batch of
    last: dict[int, int] = {}  # epoch -> last sequence applied
    for r in records:
        if isinstance(r, RoleSeen):
            seen = max(seen, r.epoch)
            continue
        if not isinstance(r, BatchApplied):
            continue
        seq = (r.first, r.last)
        if r.epoch < seen:
            out.append(Violation("I1", member, r.t_mono, f"applied a batch of epoch {r.epoch} "
                                 f"after seeing epoch {seen}", (r.epoch, seen), seq))
        if r.epoch < applied_top:
            out.append(Violation("I2", member, r.t_mono, f"applied epoch {r.epoch} after "
                                 f"applying epoch {applied_top}", (r.epoch, applied_top), seq))
        seen, applied_top = max(seen, r.epoch), max(applied_top, r.epoch)
        problem = _sequence_problem(r, last.get(r.epoch))
        if problem:
            out.append(Violation("I4", member, r.t_mono, problem, (r.epoch,), seq))
        if r.snapshot or r.last >= r.first:
            last[r.epoch] = r.last if r.snapshot else max(r.last, last.get(r.epoch, 0))
    return out


def _sequence_problem(batch: BatchApplied, previous: int | None) -> str:
    """Why ``batch`` breaks I4 given the last sequence applied of its epoch, or ``""``."""
    if batch.snapshot or batch.last < batch.first:  # a snapshot resets; an empty batch is no-op
        return ""
    expected = 1 if previous is None else previous + 1
    if batch.first > expected:
        return (f"gap in epoch {batch.epoch}: expected sequence {expected}, applied "
                f"{batch.first}..{batch.last}")
    if batch.first < expected:
        return (f"duplicate in epoch {batch.epoch}: sequence {batch.first} applied again "
                f"(last applied {expected - 1})")
    return ""


def _actions(histories: Mapping[str, Sequence[Record]]) -> list[Violation]:
    """The acting half of I2: no action for E1 after the first action for an E2 > E1.
    One violation per (member, epoch), at its first late action."""
    acts: list[tuple[float, str, int]] = []
    for member, records in histories.items():
        for r in records:
            if isinstance(r, Acted):
                acts.append((r.t_mono, member, r.epoch))
            elif isinstance(r, WriteAcked):
                acts.append((r.t_start, member, r.epoch))
    first: dict[int, tuple[float, str]] = {}
    for t, member, epoch in sorted(acts):
        first.setdefault(epoch, (t, member))
    starts = sorted((t, epoch, member) for epoch, (t, member) in first.items())
    times = [t for t, _, _ in starts]
    top: list[tuple[int, float, str]] = []  # prefix maximum of the epoch, by first-action time
    for t, epoch, member in starts:
        top.append(max(top[-1], (epoch, t, member)) if top else (epoch, t, member))
    out: list[Violation] = []
    reported: set[tuple[str, int]] = set()
    for t, member, epoch in sorted(acts):
        before = bisect.bisect_left(times, t)  # epochs whose first action is strictly earlier
        if before == 0 or (member, epoch) in reported:
            continue
        newer, since, by = top[before - 1]
        if newer > epoch:
            reported.add((member, epoch))
            out.append(Violation("I2", member, t, f"acted for epoch {epoch} {t - since:.6f} s "
                                 f"after {by} first acted for epoch {newer}", (epoch, newer)))
    return out


def _grants(histories: Mapping[str, Sequence[Record]]) -> list[tuple[float, str, int]]:
    """Every grant of the active role as (first time, member, epoch), in time order."""
    firsts: dict[tuple[str, int], float] = {}
    for member, records in histories.items():
        for r in records:
            if isinstance(r, RoleSeen) and r.role == ACTIVE:
                firsts.setdefault((member, r.epoch), r.t_mono)
    return sorted((t, member, epoch) for (member, epoch), t in firsts.items())


def _grants_raise_epoch(histories: Mapping[str, Sequence[Record]]) -> list[Violation]:
    """I5: each grant's epoch is above every earlier grant's."""
    out: list[Violation] = []
    top: tuple[int, str] | None = None
    for t, member, epoch in _grants(histories):
        if top is not None and epoch <= top[0]:
            out.append(Violation("I5", member, t, f"became active with epoch {epoch}, not above "
                                 f"epoch {top[0]} of {top[1]}'s earlier grant", (epoch, top[0])))
        if top is None or epoch > top[0]:
            top = (epoch, member)
    return out


def _acked_kept(histories: Mapping[str, Sequence[Record]]) -> list[Violation]:
    """I3: the next epoch's active found every protected write of the epoch before it."""
    owners = {epoch: member for _, member, epoch in _grants(histories)}
    epochs = sorted(owners)
    top: dict[tuple[int, str], WriteAcked] = {}  # (epoch, section) -> highest protected write
    for records in histories.values():
        for r in records:
            if isinstance(r, WriteAcked) and r.protected:
                key = (r.epoch, r.section)
                if key not in top or r.index > top[key].index:
                    top[key] = r
    out: list[Violation] = []
    for (epoch, section), write in sorted(top.items()):
        later = epochs[bisect.bisect_right(epochs, epoch):]
        if not later:
            continue  # no failover after this epoch: nothing to compare with
        successor, owner = later[0], owners[later[0]]
        state = next((r for r in histories[owner]
                      if isinstance(r, StateFound) and r.epoch == successor), None)
        if state is None:
            out.append(Violation("I3", owner, write.t_mono, f"took over in epoch {successor} "
                                 f"after acknowledged writes of epoch {epoch} but reported no "
                                 "state found", (epoch, successor), (write.index,)))
            continue
        have = state.highest.get(section, -1)
        if have < write.index:
            out.append(Violation("I3", owner, state.t_mono, f"found {section} up to write {have}"
                                 f" in epoch {successor}; write {write.index} of epoch {epoch} "
                                 f"was acknowledged ({write.index - have} lost)",
                                 (epoch, successor), (have, write.index)))
    return out


def _one_active(histories: Mapping[str, Sequence[Record]], budget_s: float,
                faults: Sequence[Fault], end: float) -> list[Violation]:
    """I6: exactly one active from ``heal + budget_s`` until the next fault (or ``end``)."""
    changes = sorted((r.t_mono, member, r) for member, records in histories.items()
                     for r in records if isinstance(r, (RoleSeen, Exited)))
    starts = sorted(f.start for f in faults)
    out: list[Violation] = []
    for fault in faults:
        due = fault.heal + budget_s
        if due > end:
            out.append(Violation("I6", "-", due, f"fault {fault.label or fault.start} healed at "
                                 f"{fault.heal:.3f}, observed only until {end:.3f}: too short "
                                 f"for the {budget_s} s budget"))
            continue
        stop = min([s for s in starts if s > fault.start] + [end])
        if stop < due:
            out.append(Violation("I6", "-", stop, f"the next fault came at {stop:.3f}, before "
                                 f"the {budget_s} s budget after fault {fault.label or fault.start}"
                                 " ran out: I6 cannot be shown"))
            continue
        moments = [due] + [t for t, _, _ in changes if due < t <= stop]
        for t in moments:
            actives = _actives_at(changes, t)
            if len(actives) != 1:
                out.append(Violation("I6", ",".join(actives) or "-", t,
                                     f"{len(actives)} active {budget_s} s or more after fault "
                                     f"{fault.label or fault.start} healed at {fault.heal:.3f}"))
                break
    return out


def _actives_at(changes: Sequence[tuple[float, str, Record]], t: float) -> list[str]:
    """The members whose last role change or exit at or before ``t`` made them active."""
    state: dict[str, bool] = {}
    for when, member, r in changes:
        if when > t:
            break
        state[member] = isinstance(r, RoleSeen) and r.role == ACTIVE
    return sorted(m for m, active in state.items() if active)


def _failovers_asked_for(histories: Mapping[str, Sequence[Record]],
                         faults: Sequence[Fault]) -> list[Violation]:
    """I7: each change of active follows a fault that expects a failover, injected since the
    previous grant."""
    asked = sorted(f.start for f in faults if f.expect_failover)
    grants = _grants(histories)
    out: list[Violation] = []
    for (before, _, old), (t, member, epoch) in itertools.pairwise(grants):
        i = bisect.bisect_right(asked, before)  # the first fault asking for one after `before`
        if i < len(asked) and asked[i] <= t:
            continue
        below = [f.label or f"{f.start:.3f}" for f in faults
                 if not f.expect_failover and before < f.start <= t]
        why = (f"after only faults below the detection threshold ({', '.join(below)})" if below
               else "with no fault injected")
        out.append(Violation("I7", member, t, f"became active with epoch {epoch} {why} since "
                             f"epoch {old} was granted at {before:.3f}", (old, epoch)))
    return out


_STOP_CALLBACKS = ("on_quiesce", "on_standby")


def _stopped_being_active(histories: Mapping[str, Sequence[Record]]) -> list[Violation]:
    """I8, member by member, each with the grants the others received."""
    grants = _grants(histories)
    return [v for member, records in histories.items()
            for v in _path_ran(member, records, [(t, e) for t, m, e in grants if m != member])]


def _path_ran(member: str, records: Sequence[Record],
              others: Sequence[tuple[float, int]]) -> list[Violation]:
    """I8 over one member's records in time order; ``others`` are the (time, epoch) of the
    grants to other members. Each time it leaves ACTIVE a callback is owed: callbacks run in
    order, so the owed ones are paid oldest first."""
    out: list[Violation] = []
    holding: tuple[float, int] | None = None  # (since, epoch) while its last role is ACTIVE
    owed: list[tuple[float, int]] = []  # (left at, epoch left), oldest first
    frozen = False
    exit_: Exited | None = None
    for r in records:
        if isinstance(r, Frozen):
            frozen = r.frozen
        elif isinstance(r, RoleSeen) and r.role == ACTIVE:
            holding = holding if holding is not None and holding[1] == r.epoch else (
                r.t_mono, r.epoch)
        elif isinstance(r, RoleSeen) and holding is not None:
            owed.append((r.t_mono, holding[1]))
            holding = None
        elif isinstance(r, CallbackStarted) and owed:
            if r.name == "on_quiesce" or (r.name == "on_standby" and r.epoch >= owed[0][1]):
                owed.pop(0)
            elif r.name == "on_active":
                skipped = [o for o in owed if o[1] < r.epoch]
                owed = [o for o in owed if o[1] >= r.epoch]
                out += [Violation("I8", member, left, f"left active (epoch {epoch}) and "
                                  f"started on_active for epoch {r.epoch} at {r.t_mono:.3f} "
                                  "without running on_quiesce or on_standby", (epoch, r.epoch))
                        for left, epoch in skipped]
        elif isinstance(r, Exited):
            exit_ = r
            break
    if (exit_ is not None and exit_.how == "killed") or frozen:
        return out  # killed or frozen before it could run what it owed: nothing to run it with
    out += [Violation("I8", member, left, f"left active (epoch {epoch}) and never ran "
                      "on_quiesce or on_standby", (epoch,)) for left, epoch in owed]
    if holding is None:
        return out
    since, epoch = holding
    if exit_ is not None:
        out.append(Violation("I8", member, exit_.t_mono, f"exited ({exit_.how}) while active in "
                             f"epoch {epoch}, without leaving the role", (epoch,)))
        return out
    deposed = min(((t, e) for t, e in others if e > epoch and t > since), default=None)
    if deposed is not None:
        out.append(Violation("I8", member, deposed[0], f"still active in epoch {epoch} when its"
                             f" history ends, though epoch {deposed[1]} was granted to another "
                             f"member at {deposed[0]:.3f}", (epoch, deposed[1])))
    return out
