"""The failover history of a group: one bounded record per change of active, written once by
the new active, the last :data:`KEEP` kept (``vnfha history GROUP``).

A record says when, from which member and epoch to which, why (:class:`Cause`), and the
timeline in milliseconds from the moment the new active noticed the fault: the proof or fence
done, the key taken, ``on_active`` returned, the first checkpoint accepted. The record is
written when the first checkpoint is accepted, or :data:`FIRST_WRITE_WAIT_S` after
``on_active`` returned if none is: a single write per change of active, never a periodic one.

Guarantees: the decision parts (:func:`cause_of`, :class:`Timeline`) are pure; the record is
bounded (member names are checked names, the reason is cut to :data:`MAX_REASON` characters);
writing it never delays or blocks the takeover (it runs in a task of its own, and a failure to
write is logged, not raised); an unreadable record is skipped by the reader, not fatal.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vnfha.clock import Clock
from vnfha.errors import StoreError
from vnfha.model import ReasonKind
from vnfha.roles.keys import GroupKeys, GroupState
from vnfha.store.base import Store

__all__ = ["FIRST_WRITE_WAIT_S", "KEEP", "Cause", "FailoverRecord", "Timeline", "cause_of",
           "complete", "key_gone_timeline", "read_history", "record_of", "write_record"]

log = logging.getLogger("vnfha.member")

KEEP = 100
"""Records kept per group; an older one is deleted when a newer one is written."""
FIRST_WRITE_WAIT_S = 2.0
"""How long after ``on_active`` the record waits for the first checkpoint write."""
MAX_REASON = 200
STEPS = ("proof", "key_taken", "on_active", "first_write")
"""The timeline's steps after the fault was noticed, in order."""


class Cause(enum.StrEnum):
    """Why the active changed."""

    CRASH = "crash"
    """The old active's process died: its endpoint refused the connection."""
    FENCE = "fence"
    """The old active went silent and the NFVI bridge fenced it."""
    NFVI_EVENT = "nfvi-event"
    """The NFVI bridge reported the old active's VM crashed, reset by its watchdog, or its host
    down, for the old active's epoch (proof of a fence's strength, before any suspicion)."""
    STANDBY_LEASE = "standby-lease"
    """The old active went silent (hung, or its host cut off) and an in-sync standby's promise
    not to take over ran out (docs/failover.md, the standby lease)."""
    LEASE = "lease"
    """The old active went silent (or its host did): its lease deadline was proven past, or
    etcd expired its key."""
    DELETED = "deleted"
    """The active key was deleted while the old active's lease lived on (its member record,
    bound to the same lease, was not): not its expiry, and no fault of the old active (an
    operator's delete, say)."""
    SWITCHOVER = "switchover"
    """An operator's (or a maintenance's) graceful handover."""
    LOCK = "lock"
    """The old active was locked out of service by an operator and handed over."""
    LADDER = "ladder"
    """The old active's escalation ladder (or a failed role loop) made it resign."""
    STOP = "stop"
    """The old active stopped cleanly and handed over."""
    BAD_KEY = "bad-key"
    """The active key held something that could not be trusted, and was replaced."""
    ELECTION = "election"
    """There was no active before (the group formed, or came back from having none)."""


def cause_of(*, evidence: str = "", handover_kind: str = "", handover_reason: str = "",
             bad_key: bool = False, previous: bool = True) -> Cause:
    """The cause of a change of active, from what the new active saw: the ``evidence`` that the
    old active was gone, or the handover hint's kind and reason, or a bad key."""
    if bad_key:
        return Cause.BAD_KEY
    if handover_kind or handover_reason:
        if handover_reason.startswith("locked by an operator"):
            return Cause.LOCK
        if handover_kind == ReasonKind.STOPPED.value:
            return Cause.STOP
        if handover_kind == ReasonKind.FAULT.value:
            return Cause.LADDER
        return Cause.SWITCHOVER
    if evidence.startswith("the NFVI bridge reports"):
        return Cause.NFVI_EVENT
    if "refused the connection" in evidence:
        return Cause.CRASH
    if "fenced" in evidence:
        return Cause.FENCE
    if "standby lease" in evidence:
        return Cause.STANDBY_LEASE
    if evidence or previous:
        return Cause.LEASE
    return Cause.ELECTION


@dataclass
class Timeline:
    """The times (monotonic seconds) of one change of active as the new active saw it."""

    noticed: float
    proof: float | None = None
    key_taken: float | None = None
    on_active: float | None = None
    first_write: float | None = None
    from_member: str = ""
    from_epoch: int = 0
    cause: Cause = Cause.ELECTION
    reason: str = ""

    def milliseconds(self) -> dict[str, float]:
        """Each step that happened, in ms after the fault was noticed."""
        return {step: round((t - self.noticed) * 1000, 1) for step in STEPS
                if (t := getattr(self, step)) is not None}


@dataclass(frozen=True, slots=True)
class FailoverRecord:
    """One change of active, as stored (see the module docstring)."""

    epoch: int
    to_member: str
    from_member: str = ""
    from_epoch: int = 0
    cause: str = Cause.ELECTION.value
    at: float = 0.0
    """Wall time the new active took the key."""
    reason: str = ""
    timeline_ms: dict[str, float] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The stored form: :meth:`as_json` as JSON."""
        return json.dumps(self.as_json(), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> FailoverRecord:
        """The record ``raw`` holds; ValueError, KeyError or TypeError if it is unreadable."""
        d: dict[str, Any] = json.loads(raw.decode())
        raw_timeline = dict(d.get("timeline_ms", {}))
        timeline = {step: float(raw_timeline[step]) for step in STEPS if step in raw_timeline}
        return cls(epoch=int(d["epoch"]), to_member=str(d["to"]),
                   from_member=str(d.get("from", "")), from_epoch=int(d.get("from_epoch", 0)),
                   cause=str(d.get("cause", "")), at=float(d.get("at", 0.0)),
                   reason=str(d.get("reason", ""))[:MAX_REASON], timeline_ms=timeline)

    def as_json(self) -> dict[str, object]:
        """The stored fields (``vnfha history --json``); the timeline in step order."""
        return {"epoch": self.epoch, "to": self.to_member, "from": self.from_member,
                "from_epoch": self.from_epoch, "cause": self.cause, "at": self.at,
                "reason": self.reason[:MAX_REASON], "timeline_ms": dict(self.timeline_ms)}


def key_gone_timeline(state: GroupState, now: float) -> Timeline:
    """The timeline of a change of active that began with the active key's deletion, seen at
    ``now``: a handover (its hint says why) or an expired lease. Pure."""
    prev, hint = state.last_active, state.handover
    if hint is not None and prev is not None and hint.from_epoch == prev.epoch:
        cause = cause_of(handover_kind=hint.kind, handover_reason=hint.reason)
        reason = hint.reason or "handover"
    elif prev is not None and prev.lease and state.members.get(prev.member, (None, 0))[1] == \
            prev.lease:  # an expiry deletes the member record in the same revision
        cause, reason = Cause.DELETED, "the active key was deleted while its holder's lease lived"
    else:
        cause, reason = Cause.LEASE, "the active key was deleted (its lease expired)"
    return Timeline(noticed=now, proof=now, from_member=prev.member if prev else "",
                    from_epoch=prev.epoch if prev else 0, cause=cause, reason=reason)


async def complete(timeline: Timeline, epoch: int, me: str, *,
                   on_active: Awaitable[object] | None, clock: Clock, poll_s: float,
                   position: Callable[[], tuple[int, int]],
                   current_epoch: Callable[[], int]) -> None:
    """Complete ``timeline`` of ``me``'s grant of ``epoch``: ``on_active`` returned (or
    failed: a fault the ladder handles), then the first checkpoint of the epoch accepted, or
    :data:`FIRST_WRITE_WAIT_S` without one (or the grant ended)."""
    if on_active is not None:
        with contextlib.suppress(Exception):
            await on_active
    timeline.on_active = clock.monotonic()
    deadline = timeline.on_active + FIRST_WRITE_WAIT_S
    while clock.monotonic() < deadline and current_epoch() == epoch:
        at = position()
        if at[0] == epoch and at[1] > 0:
            timeline.first_write = clock.monotonic()
            return
        await clock.sleep(poll_s)


def record_of(timeline: Timeline, epoch: int, me: str) -> FailoverRecord:
    """The record of ``timeline`` for the grant of ``epoch`` to ``me``."""
    return FailoverRecord(epoch=epoch, to_member=me, from_member=timeline.from_member,
                          from_epoch=timeline.from_epoch, cause=timeline.cause.value,
                          at=time.time(), reason=timeline.reason[:MAX_REASON],
                          timeline_ms=timeline.milliseconds())


async def write_record(store: Store, keys: GroupKeys, record: FailoverRecord) -> None:
    """Write ``record`` and delete what is older than the newest :data:`KEEP`; a store error is
    logged, never raised (the history must not cost a failover anything)."""
    try:
        await store.put(keys.history_entry(record.epoch), record.encode())
        found = await store.range(keys.history, prefix=True)
        for kv in sorted(found.kvs, key=lambda kv: kv.key)[:-KEEP]:
            await store.delete(kv.key)
    except StoreError as e:
        log.warning("%s: the failover history record of epoch %d was not written: %s",
                    record.to_member, record.epoch, e)
        return
    log.info("failover group=%s epoch=%d from=%s from_epoch=%d to=%s cause=%s timeline_ms=%s",
             keys.group, record.epoch, record.from_member or "-", record.from_epoch,
             record.to_member, record.cause, json.dumps(record.timeline_ms))


async def read_history(store: Store, keys: GroupKeys) -> list[FailoverRecord]:
    """The group's records, newest first; unreadable ones are skipped."""
    found = await store.range(keys.history, prefix=True)
    out = []
    for kv in found.kvs:
        try:
            out.append(FailoverRecord.decode(kv.value))
        except (ValueError, KeyError, TypeError) as e:
            log.warning("%s: unreadable history record skipped (%s)", kv.key, e)
    return sorted(out, key=lambda r: r.epoch, reverse=True)
