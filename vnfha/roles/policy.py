"""Who should hold which role: pure decisions from a snapshot of the group.

Nothing here does I/O or reads a clock. :func:`decide` takes a :class:`GroupView` (what etcd
said, plus whether this member's session is still valid) and returns a frozen
:class:`Decision` whose ``reason`` the runtime logs verbatim.

Invariants (tested table-driven and with hypothesis in ``tests/unit/test_policy.py``):

- **One active per group** under TWO_N, N_WAY and NO_REDUNDANCY: a member decides ACTIVE only
  when the view's active key names it with its own current lease, so at most one member can,
  whatever the views say about everything else.
- **No campaign while the last active may still act.** After its key was deleted or went bad
  (an operator's ``etcdctl``), the last trusted active stops when its own watch shows it; until
  its record says so (or its lease is gone, record and all), nobody campaigns or replaces the
  key: the handshake a graceful handover gets, for a change nobody announced.
- **A bad active key is replaced, never followed.** A key the view could not trust
  (:class:`BadActive`: unreadable, no lease, a lease that is not the named member's) makes
  nobody ACTIVE; the eligible members replace it exactly as they take over from a dead active
  (final positions first), so a group recovers from whatever was written into its key.
- **No action without a valid session**: with ``session_valid`` false the decision is QUIESCED
  and nothing else, under every model.
- **Ranking is a total order** on distinct names, so it does not depend on the order members
  were listed in: every member computes the same ranking from the same view.
- **Only eligible members campaign** (not tagged no-failover, and in sync where the view says
  sync matters); the best-ranked campaigns at once, the k-th after k backoff steps, and the
  target of a handover first of all. The same holds for a **takeover** of an active whose
  process is known to be gone, which only a member with that proof attempts.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vnfha.model import ReasonKind, Redundancy, Role

__all__ = [
    "Action",
    "ActiveInfo",
    "BadActive",
    "Decision",
    "GroupView",
    "MemberInfo",
    "decide",
    "eligible",
    "final_position_for",
    "rank",
]


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """What a member published about itself (its record under ``members/``).

    ``applied`` is the (epoch, sequence) of the last checkpoint it applied; ``in_sync`` whether
    the active counts it as in sync. Both are (0, 0) / True until replication exists.
    """

    name: str
    priority: int = 0
    no_failover: bool = False
    applied: tuple[int, int] = (0, 0)
    in_sync: bool = True
    lease: int = 0
    final_for: int = 0
    """The epoch whose end ``applied`` is this member's final position for (0: none)."""
    acting_epoch: int = 0
    """The epoch in which this member's record says it is acting as the active (0: it says it
    is not active)."""
    failing: bool = False
    """Its record says some of its health checks are failing."""
    locked: bool = False
    """An operator locked it out of service: it holds no role and is never chosen."""


@dataclass(frozen=True, slots=True)
class ActiveInfo:
    """The active key: who holds it, under which lease, and the revision that wrote it (the
    epoch)."""

    member: str
    lease: int
    epoch: int


@dataclass(frozen=True, slots=True)
class BadActive:
    """An active key that must not be trusted: what it names (maybe nothing), its lease, its
    revision (replaced by compare-and-swap on it), and why it is not trusted."""

    member: str
    lease: int
    epoch: int
    why: str


@dataclass(frozen=True, slots=True)
class GroupView:
    """One member's snapshot of its group, as of etcd ``revision``.

    ``handover_to`` names the member a resigning active chose (switchover), if any;
    ``current_role`` is the role this member holds now (None before its first decision);
    ``active_gone`` says this member has proof that the active can no longer act (its endpoint
    refused a connection, the NFVI bridge fenced it, or its lease deadline provably passed),
    which allows a takeover before etcd deletes its key. ``bad_active`` is the active key when
    it exists but must not be trusted (``active`` is then None).
    """

    me: str
    my_lease: int
    session_valid: bool
    redundancy: Redundancy
    members: tuple[MemberInfo, ...]
    active: ActiveInfo | None = None
    handover_to: str | None = None
    revision: int = 0
    current_role: Role | None = None
    active_gone: bool = False
    bad_active: BadActive | None = None
    previous_active: ActiveInfo | None = None
    paused: bool = False
    """An operator paused the group: no election, takeover or switchover until unpaused."""
    me_locked: bool = False
    """An operator locked this member out of service (it may not be listed in ``members``
    yet)."""
    handover_from: tuple[str, int] | None = None
    """(member, epoch) of the active that released the key gracefully with the handover hint:
    it had stopped acting before it released it."""
    """The last trusted active key seen before the key was deleted or went bad (None while the
    key is trusted): until that member's record says it stopped acting (or is gone with its
    lease), nobody campaigns or replaces a bad key, so two members never act at once."""

    def member(self, name: str) -> MemberInfo | None:
        """The named member's record, or None."""
        return next((m for m in self.members if m.name == name), None)


class Action(enum.Enum):
    """What the runtime should do besides holding the role."""

    NONE = "none"
    CAMPAIGN = "campaign"
    """Try to create the active key (compare-and-swap on its absence) after ``delay_steps``."""
    TAKEOVER = "takeover"
    """Replace the active key of a dead active (compare-and-swap on its epoch) after
    ``delay_steps``."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The role this member should hold now, what to do about it, and why."""

    role: Role
    action: Action = Action.NONE
    delay_steps: int = 0
    epoch: int = 0
    reason: str = ""
    kind: ReasonKind = ReasonKind.ASSIGNED
    """Why, as the bounded label of the role change this decision makes (if it makes one)."""


def _rank_key(m: MemberInfo) -> tuple[int, int, int, int, int, str]:
    # best first: in sync, latest applied checkpoint, healthy, higher priority, then name (a
    # total order)
    return (0 if m.in_sync else 1, -m.applied[0], -m.applied[1], 1 if m.failing else 0,
            -m.priority, m.name)


def rank(members: Iterable[MemberInfo]) -> tuple[MemberInfo, ...]:
    """Members best first: in sync, then the most recent applied checkpoint (epoch, sequence),
    then healthy before failing, then the higher ``priority``, then the name. Independent of
    input order.

    Health comes after the data on purpose: a takeover must go to the candidate that applied
    the most, or a write that only it acknowledged (``Ack.ONE``) is lost. In-sync standbys
    usually stand at the same position, and then a healthy one goes first; a failing one that
    holds more is still chosen (availability and the data first), and says so."""
    return tuple(sorted(members, key=_rank_key))


def eligible(members: Iterable[MemberInfo], *, require_sync: bool = True) -> tuple[MemberInfo, ...]:
    """Members that may take the active role, ranked: not tagged no-failover and, when
    ``require_sync``, in sync."""
    return rank(m for m in members if not m.no_failover and not m.locked
                and (m.in_sync or not require_sync))


def _holds_active(view: GroupView) -> bool:
    a = view.active
    return a is not None and a.member == view.me and a.lease == view.my_lease


def _standby_or_spare(view: GroupView, others: Sequence[MemberInfo]) -> Role:
    """STANDBY, or SPARE when the model has no room for this member as a standby."""
    if view.redundancy is Redundancy.NO_REDUNDANCY:
        return Role.SPARE
    if view.redundancy is Redundancy.TWO_N:
        ranked = rank(m for m in others if not m.locked)
        if ranked and ranked[0].name != view.me:
            return Role.SPARE
    return Role.STANDBY


def final_position_for(view: GroupView) -> int:
    """The epoch whose end this member must report its final applied position for, before
    anyone takes over (:func:`_takeover` waits for every eligible member's report): that of an
    active it knows cannot act any more, or of an active key it finds bad; 0 when it need not
    report (it is the active itself, or the active is alive and trusted)."""
    if view.current_role is Role.ACTIVE:
        return 0
    if view.active is not None:
        return view.active.epoch if view.active_gone else 0
    return view.bad_active.epoch if view.bad_active is not None else 0


def _takeover(view: GroupView, role: Role, epoch: int, subject: str,
              non_active: Sequence[MemberInfo], *, data_epoch: int) -> Decision:
    """Replace the active key of ``epoch`` (``subject`` says why it has to go: its active can no
    longer act, or the key is bad). With replication, candidates first publish the position they
    finally applied; the one that applied the most goes first, so a write that only one standby
    acknowledged (``Ack.ONE``) survives (it is on the best-placed candidate). Only a candidate
    that has applied changes of ``data_epoch`` (the epoch whose writes are at stake) may take
    over: one that reported an older position has missed that epoch's snapshot, and taking over
    from it would lose what the others acknowledged."""
    replicated = view.redundancy in (Redundancy.TWO_N, Redundancy.N_WAY)
    ranked = eligible(non_active, require_sync=replicated)
    names = [m.name for m in ranked]
    if view.me not in names:
        return Decision(role, epoch=epoch, reason=f"{subject}, but this member may not take over")
    if replicated:
        unreported = [m.name for m in ranked if max(m.applied[0], m.final_for) < epoch]
        if view.me in unreported:
            return Decision(role, epoch=epoch,
                            reason=f"{subject}; publishing this member's final position")
        me = next(m for m in ranked if m.name == view.me)
        if me.applied[0] < data_epoch:
            return Decision(role, epoch=epoch, reason=f"{subject}; this member has not applied "
                            f"epoch {data_epoch}'s changes: waiting for one that has")
        if unreported:  # they are ranked as if they had applied nothing: give them a step
            position = names.index(view.me) + 1
            return Decision(role, Action.TAKEOVER, position, epoch=epoch,
                            reason=f"{subject}; waiting a step for the final positions of "
                            f"{', '.join(unreported)}")
    position = names.index(view.me)
    return Decision(role, Action.TAKEOVER, position, epoch=epoch,
                    reason=f"{subject}; take over, ranked {position + 1} of {len(names)} "
                    f"eligible by final position{_failing_note(ranked, view.me)}")


def _failing_note(ranked: Sequence[MemberInfo], me: str) -> str:
    """What a decision's reason adds when this member goes first though its checks fail."""
    mine = next((m for m in ranked if m.name == me), None)
    if mine is None or not mine.failing or ranked[0].name != me:
        return ""
    healthy = [m.name for m in ranked if not m.failing]
    return (f"; WARNING: its health checks are failing, and no healthy eligible member has "
            f"applied as much ({', '.join(healthy) or 'none'} behind)")


def _still_acting(view: GroupView) -> str | None:
    """Why this member must wait for the last trusted active to stop acting, or None."""
    p = view.previous_active
    if p is None or p.member == view.me:  # our own stop is synchronous: we know we stopped
        return None
    if view.handover_from == (p.member, p.epoch):  # released gracefully, after quiescing
        return None
    record = view.member(p.member)
    if record is None or record.lease != p.lease or record.acting_epoch != p.epoch:
        return None
    return f"waiting for {p.member} (epoch {p.epoch}) to show it stopped acting"


def decide(view: GroupView) -> Decision:
    """This member's role and next action from ``view`` (see the module invariants)."""
    if not view.session_valid:
        return Decision(Role.QUIESCED, reason="session lost or past its deadline: stop acting",
                        kind=ReasonKind.SESSION_LOST)
    active = view.active
    if view.me_locked and not (_holds_active(view) and view.redundancy is not
                               Redundancy.N_WAY_ACTIVE):
        return Decision(Role.SPARE, epoch=active.epoch if active else 0,
                        reason="locked by an operator: out of service until unlocked")
    if view.redundancy is Redundancy.N_WAY_ACTIVE:
        return Decision(Role.ACTIVE, reason="n-way-active: every member with a session is active",
                        kind=ReasonKind.ELECTED)

    if _holds_active(view):  # locked too: it hands over (as a switchover) before it leaves
        assert active is not None
        return Decision(Role.ACTIVE, epoch=active.epoch, kind=ReasonKind.ELECTED,
                        reason=f"holds the active key (epoch {active.epoch})")
    # the holder is the member whose *current* lease the key carries; a record of an earlier
    # incarnation under the same name is not it, so every member computes the same set here
    non_active = [m for m in view.members
                  if active is None or (m.name, m.lease) != (active.member, active.lease)]
    if view.member(view.me) is None:
        non_active.append(MemberInfo(view.me, lease=view.my_lease))
    role = _standby_or_spare(view, non_active)
    if active is None and view.current_role in (Role.STANDBY, Role.SPARE):
        role = view.current_role  # between two actives, nobody flips standby <-> spare

    if active is not None:
        if active.member == view.me:  # our name, but an old lease: a previous incarnation
            return Decision(role, reason=f"active key held by an earlier session of {view.me} "
                            f"(lease {active.lease:x}); waiting for it to expire")
        if view.active_gone and view.paused:
            return Decision(role, epoch=active.epoch, reason=f"{active.member} can no longer "
                            f"act (epoch {active.epoch}), but the group is paused: no failover")
        if view.active_gone:
            return _takeover(view, role, active.epoch, f"{active.member} can no longer act "
                             f"(epoch {active.epoch})", non_active, data_epoch=active.epoch)
        return Decision(role, epoch=active.epoch,
                        reason=f"{active.member} is active (epoch {active.epoch})")

    if view.paused:
        what = "a bad active key" if view.bad_active is not None else "no active"
        return Decision(role, reason=f"{what}, and the group is paused: nobody is elected "
                        "until an operator unpauses it")
    waiting = _still_acting(view)
    bad = view.bad_active
    if bad is not None:  # nobody follows it; replace it as a dead active's (compare its revision)
        subject = f"the active key (revision {bad.epoch}) {bad.why}"
        if waiting:
            return Decision(role, epoch=bad.epoch, reason=f"{subject}; {waiting}")
        previous = view.previous_active
        return _takeover(view, role, bad.epoch, subject, non_active,
                         data_epoch=previous.epoch if previous is not None else 0)

    candidates = eligible(non_active, require_sync=view.redundancy is not Redundancy.NO_REDUNDANCY)
    names = [m.name for m in candidates]
    if view.me not in names:
        me = view.member(view.me)
        why = "tagged no-failover" if me is not None and me.no_failover else "not in sync"
        return Decision(role, reason=f"no active, and this member may not take over ({why})")
    if waiting:
        return Decision(role, reason=f"no active; {waiting}")
    target = view.handover_to
    if target and target in names:
        if target == view.me:
            return Decision(role, Action.CAMPAIGN, 0, reason="handover names this member")
        names.remove(target)
        names.insert(0, target)
    position = names.index(view.me)
    why = (f"no active; ranked {position + 1} of {len(names)} eligible"
           + (f" after handover target {target}" if target in names and target != view.me else "")
           + _failing_note(candidates, view.me))
    return Decision(role, Action.CAMPAIGN, position, reason=why)
