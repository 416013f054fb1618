"""Handing the active key over: who gets it, and the transactions that release and take it.
Pure.

Nothing here does I/O or reads a clock: the member builds a :class:`GroupView` and the
:class:`~vnfha.roles.keys.GroupKeys`, these functions return a target name or a transaction
(compares and operations), and the member sends it. Guarantees (tested table-driven in
``tests/unit/test_handover.py``):

- **A target may take over.** :func:`best_target` and :func:`choose_target` name only another
  member of the view that is in sync and not tagged no-failover; the best-ranked one by
  :func:`~vnfha.roles.policy.rank` when none is asked for. :func:`choose_target` refuses with a
  :class:`~vnfha.errors.SwitchoverError` that says why, never with a fallback to someone else.
- **Only the holder releases or publishes.** :func:`release_txn` and :func:`sync_txn` compare
  the active key's mod revision (the epoch) *and* its lease, so a deposed active's write
  changes nothing; :func:`sync_txn` can also compare the in-sync record's revision, so that a
  publish whose answer was lost cannot land after a later one. A release writes, in the same
  transaction, the hint that lets the target campaign first, and answers the operator's
  request it serves, if any.
- **A probe changes nothing.** :func:`write_probe_txn` never applies its put, yet etcd
  refuses it as it refuses any write (under its NOSPACE alarm).
- **Only an absent or a dead key is taken.** :func:`campaign_txn` creates the active key only
  if it does not exist, or (a takeover) replaces it only if it is still the dead active's epoch;
  in the same transaction it deletes the handover hint and resets the in-sync set, so the
  transaction's revision is the new epoch.
"""

from __future__ import annotations

from vnfha.errors import SwitchoverError
from vnfha.roles.keys import (
    ActiveRecord,
    GroupKeys,
    Handover,
    SwitchoverRequest,
    SwitchoverResult,
    SyncRecord,
    check_name,
)
from vnfha.roles.policy import GroupView, eligible
from vnfha.store.base import Compare, Op, TxnDelete, TxnPut

__all__ = [
    "best_target",
    "campaign_txn",
    "choose_target",
    "failing_target",
    "refusal_ops",
    "release_txn",
    "sync_txn",
    "write_probe_txn",
]

Txn = tuple[list[Compare], list[Op]]


def best_target(view: GroupView, avoid: frozenset[str] = frozenset()) -> str | None:
    """The best-ranked eligible member other than ``view.me`` and those in ``avoid`` (in sync,
    not tagged no-failover), healthy ones first whatever their positions (the active waits for
    its target to catch up before it releases the key), or None when there is none."""
    others = [m for m in view.members if m.name != view.me and m.name not in avoid]
    ranked = eligible(others)
    healthy = [m for m in ranked if not m.failing]
    best = healthy or ranked
    return best[0].name if best else None


def failing_target(view: GroupView, target: str) -> str | None:
    """The warning to log when a handover goes to ``target`` though its health checks fail
    (no healthy eligible member was left), else None."""
    info = view.member(target)
    if info is None or not info.failing:
        return None
    return (f"handing over to {target} though its health checks are failing: no healthy "
            "eligible member")


def choose_target(view: GroupView, to: str | None, group: str, *, force: bool = False) -> str:
    """The member a switchover of ``group`` hands over to: ``to``, or the best target when
    ``to`` is None. SwitchoverError when that member may not take over (or there is none), or
    when ``to``'s health checks are failing and ``force`` is false; ConfigError when ``to`` is
    not a valid member name. Nothing goes while the group is paused."""
    if view.paused:
        raise SwitchoverError(group, to, "the group is paused by an operator (vnfha unlock "
                              f"{group} first)")
    if to is None:
        best = best_target(view)
        if best is None:
            raise SwitchoverError(group, None, "no eligible standby")
        return best
    check_name("to", to)
    if to == view.me:
        raise SwitchoverError(group, to, "that member is already active")
    info = view.member(to)
    if info is None:
        raise SwitchoverError(group, to, "no such member in the group")
    if info.no_failover:
        raise SwitchoverError(group, to, "that member is tagged no-failover")
    if info.locked:
        raise SwitchoverError(group, to, "that member is locked by an operator")
    if not info.in_sync:
        raise SwitchoverError(group, to, "that member is not in sync")
    if info.failing and not force:
        raise SwitchoverError(group, to, "that member's health checks are failing (force the "
                              "switchover to hand over anyway)")
    return to


def _held(keys: GroupKeys, epoch: int, lease: int) -> list[Compare]:
    """The active key still has ``epoch`` and is bound to ``lease``."""
    return [Compare.mod_revision(keys.active, "==", epoch),
            Compare.lease(keys.active, "==", lease)]


def release_txn(keys: GroupKeys, me: str, epoch: int, lease: int, *, target: str | None,
                reason: str, request: SwitchoverRequest | None = None, kind: str = "") -> Txn:
    """If the active key is still ``me``'s (``epoch`` and ``lease``): delete it, write the
    handover hint naming ``target`` (or nobody: ``""``), which also tells the others that ``me``
    stopped acting before it released the key (and why: ``kind``, ``reason``, for the
    history), and consume and answer ``request`` (if any)."""
    hint = Handover(target or "", me, epoch, kind, reason[:200])
    ops: list[Op] = [TxnDelete(keys.active), TxnPut(keys.handover, hint.encode())]
    if request is not None:
        ops.append(TxnDelete(keys.switchover_request))
        result = SwitchoverResult(request.id, True, reason, me, target or "", epoch)
        ops.append(TxnPut(keys.switchover_result, result.encode()))
    return _held(keys, epoch, lease), ops


def sync_txn(keys: GroupKeys, me: str, epoch: int, lease: int,
             members: tuple[tuple[str, int], ...], *, sync_revision: int = 0) -> Txn:
    """If the active key is still ``me``'s (``epoch`` and ``lease``), and (``sync_revision``)
    the in-sync record is still that revision's: publish ``members`` ((name, lease) pairs) as
    the in-sync set."""
    compare = _held(keys, epoch, lease)
    if sync_revision:
        compare.append(Compare.mod_revision(keys.sync, "==", sync_revision))
    return compare, [TxnPut(keys.sync, SyncRecord(me, members).encode())]


def write_probe_txn(keys: GroupKeys) -> Txn:
    """A transaction that changes nothing, which etcd refuses as it refuses any write: its
    compare never holds (no key has a negative create revision), so its put is never applied
    and the revision does not move, but etcd's quota counts the put and refuses the whole
    transaction while its NOSPACE alarm is raised."""
    return [Compare.create_revision(keys.handover, "<", 0)], [TxnPut(keys.handover, b"")]


def refusal_ops(keys: GroupKeys, request: SwitchoverRequest, problem: str, me: str,
                epoch: int) -> list[Op]:
    """Consume ``request`` and answer it with a refusal that says why (``problem``)."""
    result = SwitchoverResult(request.id, False, problem, me, request.to or "", epoch)
    return [TxnDelete(keys.switchover_request), TxnPut(keys.switchover_result, result.encode())]


def campaign_txn(keys: GroupKeys, record: ActiveRecord, lease: int,
                 replace_epoch: int = 0, sync_revision: int = 0) -> Txn:
    """Create the active key (``record``, bound to ``lease``) if it is absent, or, with
    ``replace_epoch``, replace it if it is still that (dead) epoch's, and, with
    ``sync_revision`` (a takeover on the standby lease), only if the in-sync record is still
    that revision's; clear the handover hint and reset the in-sync set to nobody."""
    compare = [Compare.mod_revision(keys.active, "==", replace_epoch) if replace_epoch
               else Compare.create_revision(keys.active, "==", 0)]
    if sync_revision:
        compare.append(Compare.mod_revision(keys.sync, "==", sync_revision))
    return (compare,
            [TxnPut(keys.active, record.encode(), lease=lease), TxnDelete(keys.handover),
             TxnPut(keys.sync, SyncRecord(record.member).encode())])
