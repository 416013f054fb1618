"""Operator actions through etcd, used by ``vnfha status``, ``switchover``, ``lock`` and
``unlock``.

They need only etcd access: the status is read from the group's keys, and a switchover is a
request key that the active member consumes (see :mod:`vnfha.roles.keys`). Guarantees:

- :func:`group_status` is one consistent read of the group (a single range at one revision),
  plus one read of the active's progress record for the standbys' lag: lag is shown only from
  a record of the current epoch (written at most ``progress_interval_s`` before the read), and
  one read each of the members' incarnation records and the active's repair records, for the
  members gone without a clean stop and their repairs (only those the current active asked).
- :func:`request_switchover` never leaves its request behind: it is consumed by the active, or
  withdrawn (only if still the same request) when the active does not answer in time. At most
  one request is pending per group; a second is refused, not queued.
- :func:`lock` and :func:`unlock` write and delete administrative keys bound to no lease, so a
  lock survives every restart of the members (AMF's lock, Patroni's pause).
"""

from __future__ import annotations

import contextlib
import getpass
import socket
import time
import uuid
from dataclasses import dataclass

from vnfha.clock import Clock, SystemClock
from vnfha.errors import LadderStateError, LockError, StoreError, SwitchoverError
from vnfha.health.counters import ladder_key
from vnfha.health.incarnation import LifeState, stored_life
from vnfha.health.ladder import LADDER, Rung, from_bytes, stored_policy
from vnfha.roles.agreement import AGREED
from vnfha.roles.history import FailoverRecord, read_history
from vnfha.roles.keys import (
    AdminLock,
    GroupKeys,
    GroupState,
    MemberRecord,
    ProgressRecord,
    SwitchoverRequest,
    SwitchoverResult,
    check_name,
)
from vnfha.roles.poison import Probation
from vnfha.roles.repair_book import RepairRecord, repairs_prefix
from vnfha.store.base import Compare, EventType, Store, TxnDelete, TxnPut

__all__ = ["GroupNotFound", "GroupStatus", "LockOutcome", "MemberLadder", "MemberStatus",
           "RungCount", "SwitchoverOutcome",
           "group_history", "group_status", "lag_text", "ladder_state", "lock",
           "request_switchover", "reset_ladder", "unlock"]


class GroupNotFound(LookupError):
    """No member of ``group`` is registered under ``root``."""

    def __init__(self, group: str, root: str, endpoint: str) -> None:
        self.group = group
        super().__init__(f"group {group!r} not found: no members under {root} (etcd {endpoint})")


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """One member as it published itself."""

    member: str
    role: str
    epoch: int
    holds_active_key: bool
    in_sync: bool
    priority: int
    no_failover: bool
    listen: str
    etcd_endpoint: str
    pid: int
    host: str
    lag_entries: int | None = None
    """Changes of this epoch the standby has not acknowledged, as the active last published
    (None: the active, a member not streaming from it, or no current progress record)."""
    lag_seconds: float | None = None
    """Age of the oldest of them (None as for ``lag_entries``)."""
    failing: tuple[str, ...] = ()
    """The member's health checks that are failing, as it last published."""
    locked: bool = False
    """An operator locked it out of service (``vnfha lock GROUP MEMBER``)."""
    addresses: tuple[str, ...] = ()
    """The service addresses it holds, as it last published (``Config.service_addresses``)."""


def lag_text(m: MemberStatus) -> str:
    """``vnfha status``'s LAG column: ``-`` for the active, ``?`` when unknown, else entries
    and seconds (``0``, or ``12 / 3.2 ms``)."""
    if m.holds_active_key:
        return "-"
    if m.lag_entries is None or m.lag_seconds is None:
        return "?"
    if m.lag_entries == 0:
        return "0"
    seconds = m.lag_seconds
    age = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.1f} s"
    return f"{m.lag_entries} / {age}"


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """A group at one etcd ``revision``: its members, the active and its epoch."""

    group: str
    redundancy: str
    active: str | None
    epoch: int
    members: tuple[MemberStatus, ...]
    revision: int
    etcd_endpoint: str
    sequence: int | None = None
    """The active's last checkpoint sequence of its epoch, as its progress record says."""
    active_problem: str | None = None
    """Why the active key is not trusted, when it holds something (``active`` is then None):
    the members replace such a key by themselves (:mod:`vnfha.roles.keys`)."""
    etcd_alarms: tuple[str, ...] = ()
    """The alarms the answering etcd member reports (``alarm:NOSPACE``: it refuses every write,
    so no campaign, takeover or switchover can happen until it is cleared)."""
    paused: str | None = None
    """Who paused the group, when and why (``vnfha lock GROUP``), or None when it is not."""
    mismatches: tuple[str, ...] = ()
    """Settings the members must share but do not, as their records say
    (:mod:`vnfha.roles.agreement`), e.g. ``lease_ttl_s: a has 2, c has 3``."""
    gone: tuple[str, ...] = ()
    """Members without a record whose last incarnation did not stop cleanly (their ladder keys
    say so): crashed, killed or fenced, and not back."""
    repairs: tuple[str, ...] = ()
    """The repairs of gone members the current active asked the NFVI bridge for, one line each
    (:class:`~vnfha.roles.repair_book.RepairRecord`)."""
    probation: Probation | None = None
    """The active's probation after a failure (:mod:`vnfha.roles.poison`), None: none."""

    @property
    def without_redundancy(self) -> bool:
        """True when the group has an active and nothing to fail over to: no standby (2n,
        n-way), or no other member (n-way-active)."""
        if self.active is None or self.redundancy == "no-redundancy":
            return False
        if self.redundancy == "n-way-active":
            return len(self.members) < 2
        return not any(m.role == "standby" for m in self.members)

    def notes(self) -> list[str]:
        """What an operator must know beyond the table: etcd's alarms, a bad active key,
        members whose settings disagree, a group without redundancy and the repairs under
        way."""
        notes = [f"etcd raises an alarm: {alarm} (every change through etcd is refused until "
                 "it is cleared: docs/operations.md, 'etcd for vnfha')"
                 for alarm in self.etcd_alarms]
        if self.paused is not None:
            notes.append(f"GROUP PAUSED ({self.paused}): no failover, switchover or ladder "
                         f"action until `vnfha unlock {self.group}`")
            if self.active is None:
                notes.append("NO ACTIVE, and the group is paused: nothing replaces it until it "
                             "is unlocked")
        if self.active_problem:
            notes.append(f"the active key is not trusted: {self.active_problem} (the members "
                         "replace it by themselves)")
        notes += [f"members disagree: {m} (every member of a group must share it)"
                  for m in self.mismatches]
        if self.without_redundancy:
            gone = ", ".join(self.gone)
            how = ("the active has asked the NFVI bridge to repair them" if self.repairs else
                   "with an NFVI bridge the active asks it to repair them after "
                   "repair_after_s; without one, restart them (a supervisor does: "
                   "docs/ladder.md#self-healing)") if gone else "no member is standing by"
            notes.append(f"RUNNING WITHOUT REDUNDANCY: {self.active} has no standby"
                         + (f"; gone without a clean stop: {gone}" if gone else "")
                         + f" ({how})")
        p = self.probation
        if p is not None and p.failures > 1:
            how = ", and rolled back a window" if p.rolled_back else ""
            notes.append(f"POISONED STATE SUSPECTED: {self.active} took over after {p.failures} "
                         f"failures in a row{how} (`vnfha history {self.group}` says what; "
                         "docs/failover.md)")
        return notes + list(self.repairs)

    def as_json(self) -> dict[str, object]:
        """A plain dict for ``--json`` output (stable field names)."""
        return {
            "group": self.group, "redundancy": self.redundancy, "active": self.active,
            "epoch": self.epoch, "revision": self.revision, "etcd_endpoint": self.etcd_endpoint,
            "sequence": self.sequence, "active_problem": self.active_problem,
            "etcd_alarms": list(self.etcd_alarms), "mismatches": list(self.mismatches),
            "paused": self.paused, "without_redundancy": self.without_redundancy,
            "gone": list(self.gone), "repairs": list(self.repairs),
            "probation": self.probation.as_json() if self.probation is not None else None,
            "members": [
                {"member": m.member, "role": m.role, "epoch": m.epoch,
                 "holds_active_key": m.holds_active_key, "in_sync": m.in_sync,
                 "priority": m.priority,
                 "no_failover": m.no_failover, "listen": m.listen,
                 "etcd_endpoint": m.etcd_endpoint, "pid": m.pid, "host": m.host,
                 "lag_entries": m.lag_entries, "lag_seconds": m.lag_seconds,
                 "failing": list(m.failing), "locked": m.locked,
                 "addresses": list(m.addresses)}
                for m in self.members
            ],
        }


async def _read(store: Store, keys: GroupKeys) -> GroupState:
    result = await store.range(keys.root, prefix=True)
    return GroupState.read(keys, result)[0]


async def _existing_group(store: Store, prefix: str, group: str,
                          **names: str | None) -> tuple[GroupKeys, GroupState]:
    """Check ``group`` and the other ``names`` given (field to value, None: not given), then
    read the group; GroupNotFound when it has no members."""
    check_name("group", group)
    for field, value in names.items():
        if value is not None:
            check_name(field, value)
    keys = GroupKeys(prefix, group)
    state = await _read(store, keys)
    if not state.members:
        raise GroupNotFound(group, keys.root, store.endpoint)
    return keys, state


async def group_status(store: Store, prefix: str, group: str) -> GroupStatus:
    """The group's status; GroupNotFound when it has no members, ConfigError for a bad name."""
    keys, state = await _existing_group(store, prefix, group)
    active = state.active[1] if state.active else None
    synced = state.in_sync()
    progress = await _progress(store, keys, active.epoch if active else None)
    lag = {name: (entries, seconds) for name, entries, seconds in
           (progress.standbys if progress else ())}
    members = tuple(
        MemberStatus(
            member=rec.member, role=rec.role, epoch=rec.epoch,
            holds_active_key=active is not None and active.member == rec.member
            and active.lease == lease,
            in_sync=synced is None or rec.member in synced,
            priority=rec.priority, no_failover=rec.no_failover, listen=rec.listen,
            etcd_endpoint=rec.etcd_endpoint, pid=rec.pid, host=rec.host,
            lag_entries=lag[rec.member][0] if rec.member in lag else None,
            lag_seconds=lag[rec.member][1] if rec.member in lag else None,
            failing=rec.failing, locked=rec.member in state.locks, addresses=rec.addresses,
        )
        for rec, lease in sorted(state.members.values(), key=lambda x: x[0].member)
    )
    redundancy = next(iter(state.members.values()))[0].redundancy
    bad = state.bad_active
    return GroupStatus(group, redundancy, active.member if active else None,
                       active.epoch if active else 0, members, state.revision, store.endpoint,
                       progress.sequence if progress else None,
                       f"revision {bad.epoch} {bad.why}" if bad is not None else None,
                       (await store.status()).errors,
                       _describe(state.paused) if state.paused is not None else None,
                       _mismatches([rec for rec, _ in state.members.values()]),
                       *await _gone_and_repairs(store, prefix, state,
                                                active.epoch if active else 0),
                       state.active[0].probation if state.active is not None else None)


async def _gone_and_repairs(store: Store, prefix: str, state: GroupState,
                            epoch: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The members gone without a clean stop (their incarnation records), and the repairs the
    active of ``epoch`` asked for the gone ones (:mod:`vnfha.roles.repair`)."""
    base = ladder_key(prefix, state.keys.group, "")
    gone = []
    for kv in (await store.range(base, prefix=True)).kvs:
        member = kv.key[len(base):]
        with contextlib.suppress(LadderStateError):
            life = stored_life(kv.value)
            if member not in state.members and life is not None \
                    and life.state is not LifeState.STOPPED:
                gone.append(member)
    repairs = []
    for kv in (await store.range(repairs_prefix(prefix, state.keys.group), prefix=True)).kvs:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            record = RepairRecord.decode(kv.value)
            if record.epoch == epoch and record.member in gone:
                repairs.append(record.describe())
    return tuple(sorted(gone)), tuple(sorted(repairs))


def _describe(lock: AdminLock) -> str:
    """Who set ``lock``, when and why, for ``vnfha status``."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(lock.at)) if lock.at else "?"
    return f"by {lock.by or '?'} at {when}" + (f": {lock.reason}" if lock.reason else "")


def _mismatches(records: list[MemberRecord]) -> tuple[str, ...]:
    """The shared settings on which the members' records differ, each with who has what."""
    found: dict[str, dict[str, list[str]]] = {}
    for rec in records:
        for name, value in rec.settings:
            found.setdefault(name, {}).setdefault(value, []).append(rec.member)
    out = []
    for name in AGREED:
        values = found.get(name, {})
        if len(values) > 1:
            out.append(f"{name}: " + ", ".join(f"{'/'.join(sorted(who))} {value}"
                                               for value, who in sorted(values.items())))
    return tuple(out)


async def _progress(store: Store, keys: GroupKeys, epoch: int | None) -> ProgressRecord | None:
    """The active's progress record, if it is of ``epoch`` (the current one) and readable."""
    if epoch is None:
        return None
    kv = await store.get(keys.progress)
    if kv is None:
        return None
    try:
        record = ProgressRecord.decode(kv.value)
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError):
        return None
    return record if record.epoch == epoch else None


@dataclass(frozen=True, slots=True)
class SwitchoverOutcome:
    """A completed switchover: who handed over to whom, the epochs, how long it took."""

    from_member: str
    to: str
    from_epoch: int
    to_epoch: int
    seconds: float


async def request_switchover(
    store: Store, prefix: str, group: str, to: str | None = None, *, timeout_s: float = 10.0,
    clock: Clock | None = None, force: bool = False,
) -> SwitchoverOutcome:
    """Ask the group's active to hand over (to ``to``, or to its best standby, a healthy one
    first) and wait until a new active holds the key. Raises GroupNotFound, ConfigError (bad
    names) or SwitchoverError (no active, unknown target, refused by the active, or not done in
    time). The active refuses a ``to`` whose health checks are failing unless ``force``."""
    clock = clock or SystemClock()
    keys, state = await _existing_group(store, prefix, group, to=to)
    if state.active is None:
        raise SwitchoverError(group, to, "the group has no active member")
    old = state.active[1]
    if to is not None and to not in state.members:
        raise SwitchoverError(group, to, f"no such member (members: {sorted(state.members)})")
    if to == old.member:
        raise SwitchoverError(group, to, "that member is already active")

    started = time.monotonic()
    request = SwitchoverRequest(uuid.uuid4().hex, to, force)
    async with store.watch(keys.root, prefix=True, start_revision=state.revision + 1) as watch:
        put = await store.txn([Compare.create_revision(keys.switchover_request, "==", 0)],
                              [TxnPut(keys.switchover_request, request.encode())])
        if not put.succeeded:
            raise SwitchoverError(group, to, "another switchover request is pending")
        result: SwitchoverResult | None = None
        try:
            async def wait() -> SwitchoverOutcome:
                nonlocal result
                async for batch in watch:
                    for ev in batch.events:
                        if ev.type is EventType.PUT and ev.kv.key == keys.switchover_result:
                            got = SwitchoverResult.decode(ev.kv.value)
                            if got.id == request.id:
                                result = got
                                if not got.ok:
                                    raise SwitchoverError(group, to,
                                                          f"refused by {got.from_member}: "
                                                          f"{got.detail}")
                        if (ev.type is EventType.PUT and ev.kv.key == keys.active
                                and ev.kv.mod_revision > old.epoch and result is not None):
                            state.apply(ev.kv.key, ev.kv, ev.kv.mod_revision)
                            assert state.active is not None
                            return SwitchoverOutcome(old.member, state.active[1].member,
                                                     old.epoch, ev.kv.mod_revision,
                                                     time.monotonic() - started)
                raise SwitchoverError(group, to, "watch ended")

            return await clock.wait_for(wait(), timeout_s)
        except TimeoutError:
            if result is None:  # withdraw our request, and only ours
                await _withdraw(store, keys, request)
                raise SwitchoverError(group, to, f"the active ({old.member}) did not answer "
                                      f"within {timeout_s} s; request withdrawn") from None
            raise SwitchoverError(group, to, f"{old.member} released the active role but no "
                                  f"member took it within {timeout_s} s") from None


async def _withdraw(store: Store, keys: GroupKeys, request: SwitchoverRequest) -> None:
    # if this fails the request stays; the next active consumes it or an operator deletes it
    with contextlib.suppress(StoreError):
        await store.txn([Compare.value_of(keys.switchover_request, "==", request.encode())],
                        [TxnDelete(keys.switchover_request)])


# -- administrative state (vnfha lock / unlock) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockOutcome:
    """What a lock did: the group and member (None: the group's pause) and the active once the
    lock took effect (a locked active has handed over to it, or left none)."""

    group: str
    member: str | None
    active: str | None
    handed_over: bool = False


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"{user}@{socket.gethostname()}"


async def lock(store: Store, prefix: str, group: str, member: str | None = None, *,
               force: bool = False, reason: str = "", timeout_s: float = 10.0,
               clock: Clock | None = None) -> LockOutcome:
    """Lock ``member`` of ``group`` out of service, or (``member`` None) pause the group.

    A locked member holds no role and is never chosen; a locked active first hands over as a
    switchover does, and this returns once it has (LockError if it has not within
    ``timeout_s``: it stays locked and hands over when it can). A paused group keeps its roles
    but makes no election, takeover, switchover or ladder action. Both survive member restarts
    (the keys are bound to no lease) until :func:`unlock`.

    Refused with LockError, unless ``force``: a member that is not in the group, the last
    member that may be active, the active of a paused group. GroupNotFound, ConfigError (bad
    names) as for :func:`group_status`."""
    clock = clock or SystemClock()
    keys, state = await _existing_group(store, prefix, group, member=member)
    record = AdminLock(by=_operator(), at=time.time(), reason=reason)
    active = state.active[1].member if state.active else None
    if member is None:
        await store.put(keys.paused, record.encode())
        return LockOutcome(group, None, active)
    problem = _lock_problem(state, member)
    if problem and not force:
        raise LockError(group, member, problem + "; force the lock to lock it anyway")
    await store.put(keys.lock(member), record.encode())
    if active != member or state.paused is not None:
        return LockOutcome(group, member, active)
    deadline = clock.monotonic() + timeout_s
    while True:  # the locked active hands over (as a switchover) before it leaves service
        now = await _read(store, keys)
        holder = now.active[1].member if now.active else None
        if holder is not None and holder != member:
            return LockOutcome(group, member, holder, handed_over=True)
        if clock.monotonic() > deadline:
            if holder is None:  # it released the key, and nobody took it over (yet)
                return LockOutcome(group, member, None)
            raise LockError(group, member, f"locked, but it still holds the active role after "
                            f"{timeout_s} s (it hands over as soon as it can)")
        # no holder: released, its successor's campaign is under way
        await clock.sleep(0.05)


def _lock_problem(state: GroupState, member: str) -> str | None:
    """Why locking ``member`` needs force, or None."""
    if member not in state.members:
        return f"no such member (members: {sorted(state.members)})"
    active = state.active[1].member if state.active else None
    if state.paused is not None and active == member:
        return "it is the active and the group is paused, which allows no handover (unlock " \
               "the group first)"
    others = [name for name, (rec, _) in state.members.items()
              if name != member and name not in state.locks and not rec.no_failover]
    if not others:
        return "it is the last member that may be active: the group would have none"
    return None


async def unlock(store: Store, prefix: str, group: str, member: str | None = None) -> bool:
    """Return ``member`` to service, or (None) end the group's pause; True if it was locked.
    ConfigError for bad names."""
    check_name("group", group)
    if member is not None:
        check_name("member", member)
    keys = GroupKeys(prefix, group)
    result = await store.delete(keys.lock(member) if member is not None else keys.paused)
    return result.deleted > 0


async def group_history(store: Store, prefix: str, group: str) -> list[FailoverRecord]:
    """The group's failover history, newest first (the last 100 changes of active, each
    written once by the member that became active: :mod:`vnfha.roles.history`). ConfigError
    for a bad name; an empty list for a group with no history (or no such group)."""
    check_name("group", group)
    return await read_history(store, GroupKeys(prefix, group))


# -- the escalation ladder's counters (vnfha ladder) --------------------------------------------


@dataclass(frozen=True, slots=True)
class RungCount:
    """One counted rung of a member's ladder: its uses since its last reset (ages in seconds,
    oldest first) and, when the member stored it, its policy."""

    rung: str
    ages_s: tuple[float, ...]
    max_count: int | None = None
    probation_s: float | None = None


@dataclass(frozen=True, slots=True)
class MemberLadder:
    """A member's stored ladder counters; ``problem`` says why they could not be read."""

    member: str
    rungs: tuple[RungCount, ...]
    last_fault_age_s: float | None
    problem: str | None = None
    incarnation: int | None = None
    """The member's latest incarnation that started (None: none recorded)."""
    life: str | None = None
    """How that incarnation stands: running, repairing or stopped (cleanly)."""
    counted_epoch: int | None = None
    """The highest old-active epoch whose crash failover its ladder counted."""


async def ladder_state(store: Store, prefix: str, group: str) -> list[MemberLadder]:
    """Every member's stored ladder counters (:mod:`vnfha.health.counters`), by name, with the
    probation windows its member stored with them and its incarnation record
    (:mod:`vnfha.health.incarnation`). ConfigError for a bad name."""
    check_name("group", group)
    base = ladder_key(prefix, group, "")
    found = await store.range(base, prefix=True)
    now, out = time.monotonic(), []
    for kv in sorted(found.kvs, key=lambda kv: kv.key):
        member = kv.key[len(base):]
        try:
            history = from_bytes(kv.value, now, time.time())
            life = stored_life(kv.value)
        except LadderStateError as e:
            out.append(MemberLadder(member, (), None, f"unreadable: {e.problem}"))
            continue
        policy = stored_policy(kv.value)
        rungs = tuple(RungCount(rung.value, tuple(now - t for t in history.times(rung)),
                                *policy.get(rung.value, (None, None)))
                      for rung in LADDER if rung is not Rung.ALARM)
        last = history.last_fault_at
        out.append(MemberLadder(member, rungs, None if last is None else now - last,
                                incarnation=None if life is None else life.incarnation,
                                life=None if life is None else life.state.value,
                                counted_epoch=None if life is None else life.counted_epoch))
    return out


async def reset_ladder(store: Store, prefix: str, group: str, member: str) -> bool:
    """Delete ``member``'s stored ladder counters (it starts again from the first rung; a
    running member keeps what it holds in memory until its next fault's decision is stored);
    True if there were any. ConfigError for bad names."""
    check_name("group", group)
    check_name("member", member)
    return (await store.delete(ladder_key(prefix, group, member))).deleted > 0
