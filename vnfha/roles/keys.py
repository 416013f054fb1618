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
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from vnfha.errors import ConfigError
from vnfha.model import Redundancy, Role
from vnfha.roles.policy import ActiveInfo, GroupView, MemberInfo
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
    "check_name",
]

NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def check_name(field_name: str, value: object) -> str:
    """``value`` if it is a valid group or member name (a DNS label: 1-63 of ``a-z 0-9 -``,
    not starting or ending with ``-``), else ConfigError naming the field and the value."""
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise ConfigError(field_name, value, "must be 1-63 characters of a-z, 0-9 and '-', "
                          "starting and ending with a letter or digit")
    return value


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
        )


@dataclass(frozen=True, slots=True)
class ActiveRecord:
    """The active key's value. The epoch is not in it: it is the revision of the write that
    made this member active (the key's mod revision: only a campaign or a takeover writes the
    key, so epochs only grow)."""

    member: str
    listen: str = ""

    def encode(self) -> bytes:
        return _dump(self)

    @classmethod
    def decode(cls, raw: bytes) -> ActiveRecord:
        d = _load(raw)
        return cls(member=str(d["member"]), listen=str(d.get("listen", "")))


@dataclass(frozen=True, slots=True)
class Handover:
    """A resigning active's choice of successor (``to``), written as it deletes the active key."""

    to: str
    from_member: str
    from_epoch: int

    def encode(self) -> bytes:
        return _dump(self)

    @classmethod
    def decode(cls, raw: bytes) -> Handover:
        d = _load(raw)
        return cls(to=str(d["to"]), from_member=str(d.get("from_member", "")),
                   from_epoch=int(d.get("from_epoch", 0)))


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

    def encode(self) -> bytes:
        return _dump(self)

    @classmethod
    def decode(cls, raw: bytes) -> SwitchoverRequest:
        d = _load(raw)
        to = d.get("to")
        return cls(id=str(d["id"]), to=None if to is None else str(to))


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
    """

    keys: GroupKeys
    members: dict[str, tuple[MemberRecord, int]] = field(default_factory=dict)
    active: tuple[ActiveRecord, ActiveInfo] | None = None
    handover: Handover | None = None
    switchover: SwitchoverRequest | None = None
    sync: SyncRecord | None = None
    revision: int = 0

    @classmethod
    def read(cls, keys: GroupKeys, result: RangeResult) -> tuple[GroupState, list[str]]:
        """The group as one range read of its root returned it, and the records it ignored."""
        state = cls(keys)
        problems = [p for kv in result.kvs if (p := state.apply(kv.key, kv, result.revision))]
        state.revision = result.revision
        return state, problems

    def apply(self, key: str, kv: KeyValue | None, revision: int) -> str | None:
        """Take in ``key``'s new value (``kv``) or its deletion (``kv`` None) at ``revision``."""
        self.revision = max(self.revision, revision)
        try:
            if key.startswith(self.keys.members):
                name = key[len(self.keys.members):]
                if kv is None:
                    self.members.pop(name, None)
                    return None
                record = MemberRecord.decode(kv.value)
                if record.member != name:
                    return f"{key}: record names {record.member!r}, ignored"
                self.members[name] = (record, kv.lease)
            elif key == self.keys.active:
                if kv is None:
                    self.active = None
                else:
                    rec = ActiveRecord.decode(kv.value)
                    self.active = (rec, ActiveInfo(rec.member, kv.lease, kv.mod_revision))
            elif key == self.keys.handover:
                self.handover = None if kv is None else Handover.decode(kv.value)
            elif key == self.keys.sync:
                self.sync = None if kv is None else SyncRecord.decode(kv.value)
            elif key == self.keys.switchover_request:
                self.switchover = None if kv is None else SwitchoverRequest.decode(kv.value)
        except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as e:
            return f"{key}: unreadable record ignored ({e})"
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
             gone_epoch: int = 0) -> GroupView:
        """The policy's input for member ``me``."""
        in_sync = self.in_sync()
        infos = tuple(
            MemberInfo(name=rec.member, priority=rec.priority, no_failover=rec.no_failover,
                       applied=rec.applied, in_sync=in_sync is None or rec.member in in_sync,
                       lease=lease)
            for rec, lease in self.members.values()
        )
        return GroupView(
            me=me, my_lease=my_lease, session_valid=session_valid, redundancy=redundancy,
            members=infos, active=self.active[1] if self.active else None,
            handover_to=self.handover.to if self.handover else None, revision=self.revision,
            current_role=current_role,
            active_gone=self.active is not None and self.active[1].epoch == gone_epoch,
        )
