"""Where a group lives in etcd, what its records say, and a snapshot built from them. Pure.

Layout under ``{key_prefix}/{group}/`` (JSON values, UTF-8):

=========================  =================================  =================================
key                        value                              bound to
=========================  =================================  =================================
``members/{member}``       :class:`MemberRecord`              the member's session lease
``active``                 :class:`ActiveRecord`              the active's session lease; its
                                                              *mod revision is the epoch*
``handover``               :class:`Handover` (a hint)         no lease; deleted by the next
                                                              active's campaign
``admin/switchover``       :class:`SwitchoverRequest`         no lease; consumed by the active
``admin/switchover-result`` :class:`SwitchoverResult`         no lease; overwritten each time
``sync``                   :class:`SyncRecord`                no lease; written by the active,
                                                              fenced by its epoch
=========================  =================================  =================================

And one key outside the group's prefix, so that its periodic rewrites do not wake the members'
watches (a group name cannot start with a dot, so it cannot collide with a group):

=============================  ===============================  ===============================
``{key_prefix}/.progress/{group}``  :class:`ProgressRecord`     the active's session lease;
                                                                rewritten every
                                                                ``progress_interval_s``
=============================  ===============================  ===============================

Records that do not parse are ignored by readers (and reported by :meth:`GroupState.apply`),
never fatal: a foreign or future writer must not crash a member.

**What is trusted.** Anyone with write access to the prefix (a careless ``etcdctl put``) can
put anything in these keys, so a reader checks before it trusts:

- The active key counts only if its record parses, carries a replication secret, is bound to a
  lease, and that lease is the one the named member's own record is bound to
  (:func:`active_problem`). Anything else is a *bad active key* (:attr:`GroupState.bad_active`):
  nobody follows it, its holder (if it is a member) stops acting, and the group replaces it with
  one compare-and-swap on its revision, as it replaces a dead active.
- Which lease belongs to which member is learnt from member records bound to a lease (a record
  an operator wrote without one says nothing about leases), and remembered when the record is
  deleted (:attr:`GroupState.leases`), so deleting a member record does not depose its active.
- An unreadable ``sync`` record keeps the last readable one (it decides who may take over: a
  guess would risk acknowledged writes); an unreadable hint or request counts as none.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from vnfha.model import NAME_PATTERN, Redundancy, Role, check_name
from vnfha.roles.poison import Probation
from vnfha.roles.policy import ActiveInfo, BadActive, GroupView, MemberInfo
from vnfha.store.base import KeyValue, RangeResult

__all__ = [
    "ActiveRecord",
    "GroupKeys",
    "GroupState",
    "Handover",
    "MemberRecord",
    "ProgressRecord",
    "SwitchoverRequest",
    "SwitchoverResult",
    "SyncRecord",
    "active_problem",
    "check_name",
    "new_secret",
]

_SECRET = re.compile(r"^[0-9a-f]{64}$")


_UNREADABLE = (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError, OverflowError,
               RecursionError)
"""What decoding a record someone else wrote may raise (a number too large for an int, JSON
nested deeper than the parser's recursion limit, ...): all of it means "unreadable"."""


def new_secret() -> str:
    """A fresh replication secret for one grant of the active role: 32 random bytes, in hex."""
    return secrets.token_hex(32)


@dataclass(frozen=True, slots=True)
class GroupKeys:
    """The keys of one group."""

    prefix: str
    group: str

    @property
    def root(self) -> str:
        return f"{self.prefix}/{self.group}/"

    @property
    def members(self) -> str:
        return f"{self.root}members/"

    def member(self, name: str) -> str:
        return f"{self.members}{name}"

    @property
    def active(self) -> str:
        return f"{self.root}active"

    @property
    def handover(self) -> str:
        return f"{self.root}handover"

    @property
    def sync(self) -> str:
        return f"{self.root}sync"

    @property
    def history(self) -> str:
        return f"{self.root}history/"

    def history_entry(self, epoch: int) -> str:
        return f"{self.history}{epoch:016d}"

    @property
    def locks(self) -> str:
        return f"{self.root}admin/locked/"

    def lock(self, name: str) -> str:
        return f"{self.locks}{name}"

    @property
    def paused(self) -> str:
        return f"{self.root}admin/paused"

    @property
    def poison_hold(self) -> str:
        return f"{self.root}admin/poison-hold"

    @property
    def switchover_request(self) -> str:
        return f"{self.root}admin/switchover"

    @property
    def switchover_result(self) -> str:
        return f"{self.root}admin/switchover-result"

    @property
    def progress(self) -> str:
        return f"{self.prefix}/.progress/{self.group}"


def _dump(record: object) -> bytes:
    return json.dumps(asdict(record), separators=(",", ":"), sort_keys=True).encode()  # type: ignore[call-overload]


def _load(raw: bytes) -> dict[str, Any]:
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """What a member publishes about itself; rewritten on every role change."""

    member: str
    redundancy: str
    role: str = Role.SPARE.value
    epoch: int = 0
    priority: int = 0
    no_failover: bool = False
    listen: str = ""
    etcd_endpoint: str = ""
    applied: tuple[int, int] = (0, 0)
    in_sync: bool = True
    pid: int = 0
    host: str = ""
    failing: tuple[str, ...] = ()
    """The member's health checks that are failing (``vnfha status`` shows them)."""
    final_for: int = 0
    """The epoch (active key revision) whose end ``applied`` is this member's final position for:
    set when the active of that epoch can no longer act, or its key is bad."""
    settings: tuple[tuple[str, str], ...] = ()
    """The settings the group's members must share (:mod:`vnfha.roles.agreement`)."""
    locked: bool = False
    """An operator has locked the member out of service (as the member last saw it)."""
    addresses: tuple[str, ...] = ()
    """The service addresses it holds; ``macs``: its devices' MACs, tolerated by a successor's
    probe for them (:mod:`vnfha.roles.addresses`)."""
    macs: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return _dump(self)

    @classmethod
    def decode(cls, raw: bytes) -> MemberRecord:
        d = _load(raw)
        applied = d.get("applied", (0, 0))
        return cls(
            member=str(d["member"]), redundancy=str(d.get("redundancy", "")),
            role=str(d.get("role", Role.SPARE.value)), epoch=int(d.get("epoch", 0)),
            priority=int(d.get("priority", 0)), no_failover=bool(d.get("no_failover", False)),
            listen=str(d.get("listen", "")), etcd_endpoint=str(d.get("etcd_endpoint", "")),
            applied=(int(applied[0]), int(applied[1])), in_sync=bool(d.get("in_sync", True)),
            pid=int(d.get("pid", 0)), host=str(d.get("host", "")),
            failing=tuple(str(name) for name in d.get("failing", ())),
            final_for=int(d.get("final_for", 0)),
            settings=tuple((str(k), str(v)) for k, v in d.get("settings", ())),
            locked=d.get("locked") is True,
            addresses=tuple(str(a) for a in d.get("addresses", ())),
            macs=tuple(str(m) for m in d.get("macs", ())),
        )


@dataclass(frozen=True, slots=True)
class AdminLock:
    """An operator's lock of a member (out of service) or of the whole group (paused): who set
    it, when (wall time) and why. Not bound to any lease: it survives every restart until an
    operator removes it. A key that cannot be read still locks: the safe reading of a careless
    write."""

    by: str = ""
    at: float = 0.0
    reason: str = ""

    def encode(self) -> bytes:
        return _dump(self)

    @classmethod
    def decode(cls, raw: bytes) -> AdminLock:
        """The lock ``raw`` describes; an unreadable value is a lock that says so."""
        try:
            d = _load(raw)
            return cls(by=str(d.get("by", "")), at=float(d.get("at", 0.0)),
                       reason=str(d.get("reason", "")))
        except _UNREADABLE as e:
            return cls(reason=f"unreadable lock record ({_short(e)})")


@dataclass(frozen=True, slots=True)
class ActiveRecord:
    """The active key's value. The epoch is not in it: it is the revision of the write that
    made this member active (the key's mod revision: only a campaign or a takeover writes the
    key, so epochs only grow)."""

    member: str
    listen: str = ""
    secret: str = ""
    """This grant's replication secret (:func:`new_secret`): a standby proves it knows it before
    the active streams to it (:mod:`vnfha.replication.auth`). Readable by whoever may read the
    group's keys, which is why etcd's auth should limit the prefix to the members."""
    probation: Probation | None = None
    """This grant's probation after a failure (:mod:`vnfha.roles.poison`), None: none."""

    def encode(self) -> bytes:
        d: dict[str, object] = {"member": self.member, "listen": self.listen,
                                "secret": self.secret}
        if self.probation is not None:
            d["probation"] = self.probation.as_json()
        return json.dumps(d, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> ActiveRecord:
        d = _load(raw)
        member, listen, secret = d["member"], d.get("listen", ""), d.get("secret", "")
        if not all(isinstance(v, str) for v in (member, listen, secret)):
            raise TypeError("member, listen and secret must be strings")
        probation = d.get("probation")
        return cls(member=member, listen=listen, secret=secret,
                   probation=None if probation is None else Probation.from_json(probation))

    def __repr__(self) -> str:  # never print the secret in a log line
        return f"ActiveRecord(member={self.member!r}, listen={self.listen!r})"


def active_problem(record: ActiveRecord, lease: int, leases: dict[str, int]) -> str | None:
    """Why an active key holding ``record``, bound to ``lease``, must not be trusted, or None
    when it may: the record must name a valid member name, carry a secret, and be bound to the
    lease that member's own record is bound to (``leases``)."""
    if not NAME_PATTERN.match(record.member):
        return f"names {record.member[:80]!r}, which is not a member name"
    if not _SECRET.match(record.secret):
        return f"names {record.member}, but carries no valid replication secret"
    if lease == 0:
        return f"names {record.member}, but is not bound to a lease"
    own = leases.get(record.member)
    if own is None:
        return f"names {record.member}, which has published no member record"
    if own != lease:
        return (f"names {record.member}, but is bound to lease {lease:x}, not to "
                f"{record.member}'s lease {own:x}")
    return None


@dataclass(frozen=True, slots=True)
class Handover:
    """A resigning active's choice of successor (``to``), written as it deletes the active key."""

    to: str
    from_member: str
    from_epoch: int
    kind: str = ""
    """Why it resigned, as a :class:`~vnfha.model.ReasonKind` value (the history's cause)."""
    reason: str = ""

    def encode(self) -> bytes:
        return _dump(self)

    @classmethod
    def decode(cls, raw: bytes) -> Handover:
        d = _load(raw)
        return cls(to=str(d["to"]), from_member=str(d.get("from_member", "")),
                   from_epoch=int(d.get("from_epoch", 0)), kind=str(d.get("kind", "")),
                   reason=str(d.get("reason", ""))[:200])


@dataclass(frozen=True, slots=True)
class SyncRecord:
    """The standbys the active counts as in sync, as (member, lease) of the incarnation that
    synced. Written by the active only, fenced by its epoch; not bound to a lease, so it
    outlives the active and tells the survivors which of them may take over."""

    active: str
    members: tuple[tuple[str, int], ...] = ()

    def encode(self) -> bytes:
        return json.dumps({"active": self.active, "members": [list(m) for m in self.members]},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> SyncRecord:
        d = _load(raw)
        return cls(active=str(d["active"]),
                   members=tuple((str(n), int(lease)) for n, lease in d.get("members", [])))


@dataclass(frozen=True, slots=True)
class ProgressRecord:
    """The active's view of its standbys' replication lag, as of when it was written:
    ``standbys`` holds (member, entries behind, seconds behind) for each standby streaming from
    it. Only meaningful while ``epoch`` is the group's current epoch."""

    active: str
    epoch: int
    sequence: int
    standbys: tuple[tuple[str, int, float], ...] = ()

    def encode(self) -> bytes:
        return json.dumps({"active": self.active, "epoch": self.epoch, "sequence": self.sequence,
                           "standbys": [list(s) for s in self.standbys]},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> ProgressRecord:
        d = _load(raw)
        return cls(active=str(d["active"]), epoch=int(d["epoch"]),
                   sequence=int(d.get("sequence", 0)),
                   standbys=tuple((str(n), int(e), float(t))
                                  for n, e, t in d.get("standbys", [])))


@dataclass(frozen=True, slots=True)
class SwitchoverRequest:
    """An operator's request (``vnfha switchover``): hand over to ``to`` or to the best standby."""

    id: str
    to: str | None = None
    force: bool = False
    """Hand over to ``to`` even though its health checks are failing."""

    def encode(self) -> bytes:
        return _dump(self)

    @classmethod
    def decode(cls, raw: bytes) -> SwitchoverRequest:
        d = _load(raw)
        to = d.get("to")
        return cls(id=str(d["id"]), to=None if to is None else str(to),
                   force=d.get("force") is True)


@dataclass(frozen=True, slots=True)
class SwitchoverResult:
    """The active's answer to a :class:`SwitchoverRequest` with the same ``id``."""

    id: str
    ok: bool
    detail: str
    from_member: str = ""
    to: str = ""
    from_epoch: int = 0

    def encode(self) -> bytes:
        return _dump(self)

    @classmethod
    def decode(cls, raw: bytes) -> SwitchoverResult:
        d = _load(raw)
        return cls(id=str(d["id"]), ok=bool(d["ok"]), detail=str(d.get("detail", "")),
                   from_member=str(d.get("from_member", "")), to=str(d.get("to", "")),
                   from_epoch=int(d.get("from_epoch", 0)))


@dataclass
class GroupState:
    """A group as read from etcd, kept current by applying watch events in order.

    ``apply`` returns a description of a record it had to ignore (bad JSON, wrong name), or None.
    The active key is kept as found (:attr:`active_key`); :attr:`active` is it only when it may be
    trusted (:func:`active_problem`), :attr:`bad_active` when it may not.
    """

    keys: GroupKeys
    members: dict[str, tuple[MemberRecord, int]] = field(default_factory=dict)
    active_key: tuple[ActiveRecord | None, ActiveInfo, str] | None = None
    """What the active key holds: its record (None if unreadable), who it names with its lease
    and revision, and why it could not be read ("" when it could)."""
    handover: Handover | None = None
    switchover: SwitchoverRequest | None = None
    sync: SyncRecord | None = None
    sync_revision: int = 0
    """The in-sync record's mod revision (0: none): a takeover on the standby lease compares
    it, and a record older than the current epoch binds no active of it."""
    revision: int = 0
    leases: dict[str, int] = field(default_factory=dict)
    """The lease each member's own records were last bound to (kept when a record is deleted)."""
    last_active: ActiveInfo | None = None
    """The last trusted active key seen (kept when the key is deleted or goes bad)."""
    last_probation: Probation | None = None
    """The probation the last trusted active key carried (kept with :attr:`last_active`)."""
    locks: dict[str, AdminLock] = field(default_factory=dict)
    """Members an operator locked out of service, by name."""
    paused: AdminLock | None = None
    """The operator's pause of the whole group (no failover, switchover or ladder action)."""

    @classmethod
    def read(cls, keys: GroupKeys, result: RangeResult, *,
             earlier: GroupState | None = None) -> tuple[GroupState, list[str]]:
        """The group as one range read of its root returned it, and the records it ignored.
        ``earlier``: the snapshot this read replaces; what it learnt (leases, the last trusted
        active) is kept."""
        state = cls(keys)
        if earlier is not None:
            state.leases = dict(earlier.leases)
            state.last_active, state.last_probation = earlier.last_active, earlier.last_probation
        problems = [p for kv in result.kvs if (p := state.apply(kv.key, kv, result.revision))]
        state.revision = result.revision
        return state, problems

    @property
    def active(self) -> tuple[ActiveRecord, ActiveInfo] | None:
        """The active key's record and grant, only if it may be trusted."""
        key = self.active_key
        if key is None or key[0] is None or self._active_problem() is not None:
            return None
        return key[0], key[1]

    @property
    def bad_active(self) -> BadActive | None:
        """The active key when it exists but may not be trusted, with why."""
        problem = self._active_problem()
        if problem is None:
            return None
        assert self.active_key is not None
        info = self.active_key[1]
        return BadActive(info.member, info.lease, info.epoch, problem)

    def _active_problem(self) -> str | None:
        key = self.active_key
        if key is None:
            return None
        record, info, unreadable = key
        if record is None:
            return unreadable
        return active_problem(record, info.lease, self.leases)

    def set_active(self, record: ActiveRecord, lease: int, revision: int) -> None:
        """Take the active key as written at ``revision`` (by this member's own campaign, before
        the watch has delivered it)."""
        self.active_key = (record, ActiveInfo(record.member, lease, revision), "")

    def apply(self, key: str, kv: KeyValue | None, revision: int) -> str | None:
        """Take in ``key``'s new value (``kv``) or its deletion (``kv`` None) at ``revision``."""
        self.revision = max(self.revision, revision)
        try:
            if key.startswith(self.keys.members):
                return self._apply_member(key, kv)
            if key == self.keys.active:
                return self._apply_active(key, kv)
            if key == self.keys.handover:
                self.handover = None  # an unreadable hint counts as none
                if kv is not None:
                    self.handover = Handover.decode(kv.value)
            elif key == self.keys.sync:
                # unreadable: keep the last readable one (see the module docstring)
                self.sync = None if kv is None else SyncRecord.decode(kv.value)
                self.sync_revision = 0 if kv is None else kv.mod_revision
            elif key.startswith(self.keys.locks):
                name = key[len(self.keys.locks):]
                if kv is None:
                    self.locks.pop(name, None)
                else:
                    self.locks[name] = AdminLock.decode(kv.value)
            elif key == self.keys.paused:
                self.paused = None if kv is None else AdminLock.decode(kv.value)
            elif key == self.keys.switchover_request:
                self.switchover = None  # an unreadable request counts as none
                if kv is not None:
                    self.switchover = SwitchoverRequest.decode(kv.value)
        except _UNREADABLE as e:
            return f"{key}: unreadable record ignored ({_short(e)})"
        return None

    def _apply_member(self, key: str, kv: KeyValue | None) -> str | None:
        name = key[len(self.keys.members):]
        if kv is None:
            self.members.pop(name, None)
            return None
        try:
            record = MemberRecord.decode(kv.value)
        except _UNREADABLE as e:
            self.members.pop(name, None)
            return f"{key}: unreadable record ignored ({_short(e)})"
        if record.member != name:
            self.members.pop(name, None)
            return f"{key}: record names {record.member[:80]!r}, ignored"
        self.members[name] = (record, kv.lease)
        if kv.lease:
            self.leases[name] = kv.lease
        return None

    def _apply_active(self, key: str, kv: KeyValue | None) -> str | None:
        trusted = self.active
        if trusted is not None:
            self.last_active, self.last_probation = trusted[1], trusted[0].probation
        if kv is None:
            self.active_key = None
            return None
        try:
            rec = ActiveRecord.decode(kv.value)
        except _UNREADABLE as e:
            why = f"holds an unreadable record ({_short(e)})"
            self.active_key = (None, ActiveInfo("", kv.lease, kv.mod_revision), why)
            return f"{key}: {why}"
        self.active_key = (rec, ActiveInfo(rec.member, kv.lease, kv.mod_revision), "")
        return None

    def in_sync(self) -> frozenset[str] | None:
        """The live members the sync record lists (same name *and* lease), or None when it
        lists none that is alive (or there is none): then there is no replicated state to
        protect, and every member counts as in sync."""
        if self.sync is None:
            return None
        alive = {name: lease for name, (_, lease) in self.members.items()}
        listed = frozenset(n for n, lease in self.sync.members if alive.get(n) == lease)
        return listed or None

    def view(self, me: str, my_lease: int, session_valid: bool,
             redundancy: Redundancy, current_role: Role | None = None, *,
             gone_epoch: int = 0, my_grants: frozenset[int] | None = None) -> GroupView:
        """The policy's input for member ``me``. ``my_grants``: the revisions at which this
        session's own campaigns wrote the active key; a key naming ``me`` with its lease at any
        other revision was written by someone else, and ``me`` treats it as bad (it did not
        start acting under it, and will not: it replaces it). None: do not check."""
        in_sync = self.in_sync()
        infos = tuple(
            MemberInfo(name=rec.member, priority=rec.priority, no_failover=rec.no_failover,
                       applied=rec.applied, in_sync=in_sync is None or rec.member in in_sync,
                       lease=lease, final_for=rec.final_for,
                       acting_epoch=rec.epoch if rec.role == Role.ACTIVE.value else 0,
                       failing=bool(rec.failing), locked=rec.member in self.locks)
            for rec, lease in self.members.values()
        )
        active, bad = self.active, self.bad_active
        if (active is not None and my_grants is not None and active[1].member == me
                and active[1].lease == my_lease and active[1].epoch not in my_grants):
            info = active[1]
            bad = BadActive(me, info.lease, info.epoch, f"names {me} with its lease, but {me} "
                            "did not write it")
            active = None
        return GroupView(
            me=me, my_lease=my_lease, session_valid=session_valid, redundancy=redundancy,
            members=infos, active=active[1] if active else None, bad_active=bad,
            previous_active=self.last_active if active is None else None,
            handover_to=(self.handover.to or None) if self.handover else None,
            handover_from=(self.handover.from_member, self.handover.from_epoch)
            if self.handover else None, revision=self.revision,
            current_role=current_role,
            active_gone=active is not None and active[1].epoch == gone_epoch,
            paused=self.paused is not None, me_locked=me in self.locks,
        )


def _short(error: Exception) -> str:
    """An exception as a bounded line (a record's text can be anything)."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 160 else text[:157] + "..."
