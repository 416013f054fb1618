"""The demo's story, as data: what the members and the bridge said, whether the failover
happened, and the lines ``vnfha demo`` prints. Pure: no I/O, no clock, no asyncio; the runtime
in :mod:`vnfha.apps.demo` and :mod:`vnfha.apps.demo_run` feeds it and prints what it returns.

Times are seconds since the demo started (its monotonic clock). Members print Unix times; the
demo takes one Unix reading at its start (``wall_start``) and places their events on its axis
by difference, which on one host is good to well under a millisecond over a demo's seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vnfha.admin import GroupStatus
from vnfha.bridge.drivers.driver import Instance
from vnfha.nfvi.model import BridgeEvent

__all__ = ["Entry", "MemberEvent", "client_summary", "describe_bridge_event",
           "describe_member_event", "find_takeover", "format_client", "format_roles",
           "format_step", "format_timeline", "judge", "pair_roles", "parse_member_line",
           "reply_epochs"]

@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the story: ``t`` seconds since the start, who said it, what happened."""

    t: float
    source: str
    """``demo`` (its own steps), a member's name, ``bridge``, ``etcd`` or ``client``."""
    text: str


@dataclass(frozen=True, slots=True)
class MemberEvent:
    """An event a member printed (``--json``), with its time moved onto the demo's axis."""

    member: str
    kind: str
    """The ``event`` field: ``ready``, ``active``, ``standby``, ``serving``, ``in_sync``..."""
    t: float
    fields: Mapping[str, Any]
    """The whole JSON object as the member printed it."""


def parse_member_line(line: str, member: str, wall_start: float) -> MemberEvent | None:
    """The event on one line of a member's log, or None for anything else (log lines, the sim's
    launch headers, a line cut short). ``wall_start``: the Unix time of the demo's t=0."""
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or "event" not in data:
        return None
    try:
        t = float(data["t"]) - wall_start
    except (KeyError, TypeError, ValueError):
        return None
    return MemberEvent(member, str(data["event"]), t, data)


def describe_member_event(e: MemberEvent) -> str | None:
    """One readable line for the events an operator cares about; None for the others."""
    f = e.fields
    match e.kind:
        case "ready":
            return f"joined the group (pid {f.get('pid')}, replication on {f.get('replication')})"
        case "active":  # the member's reason, without the epoch it repeats
            why = str(f.get("reason") or "").removesuffix(f" (epoch {f.get('epoch')})")
            return (f"ACTIVE at epoch {f.get('epoch')}{': ' + why if why else ''} (was "
                    f"{f.get('previous')}, {f.get('sessions')} sessions in its checkpoint)")
        case "standby":
            return f"{str(f.get('role', 'standby')).upper()} at epoch {f.get('epoch')}"
        case "quiesce":
            return f"quiescing: handing over ({f.get('in_flight')} requests in flight)"
        case "serving":
            return f"serving UDP on {f.get('address')}"
        case "closed":
            return f"closed {f.get('address')}"
        case "bind_failed":
            return f"cannot bind {f.get('address')} yet ({f.get('error')}); retrying"
        case "in_sync":
            standbys = ", ".join(f.get("standbys") or []) or "none"
            return f"standbys in sync: {standbys}"
        case "simplex":
            return "no standby in sync: acknowledging writes applied here only (simplex)"
        case "duplex":
            return "a standby is in sync again: acknowledging with Ack.ONE"
        case "stopped":
            return "stopped"
    return None


def describe_bridge_event(e: BridgeEvent) -> str:
    """One readable line for an infrastructure event of the group."""
    what = e.instance or e.host
    member = f" (member {e.member})" if e.member else ""
    return f"{e.kind.value} {what}{member}: {e.detail}"


def find_takeover(events: Iterable[MemberEvent], old: str, epoch: int) -> MemberEvent | None:
    """The first ``active`` event of another member than ``old`` above ``epoch``."""
    return next((e for e in events if e.kind == "active" and e.member != old
                 and int(e.fields.get("epoch", 0)) > epoch), None)


def pair_roles(events: Iterable[MemberEvent], members: Sequence[str]) -> tuple[str, str] | None:
    """(active, standby) once one member is active and counts the other in sync, else None.

    Each member's latest role event counts (a deposed or stopped member is no longer active);
    ``in_sync`` is the active's latest list of in-sync standbys. Only then is a SIGKILL of the
    active safe for its checkpoints: the standby that takes over has every acknowledged write.
    """
    active: dict[str, bool] = {}
    synced: dict[str, tuple[str, ...]] = {}
    for e in events:
        if e.kind == "active":
            active[e.member] = True
        elif e.kind in ("standby", "quiesce", "stopped"):
            active[e.member] = False
        elif e.kind == "in_sync":
            synced[e.member] = tuple(e.fields.get("standbys") or ())
    for m in members:
        others = [o for o in members if o != m]
        if active.get(m) and others and set(others) <= set(synced.get(m, ())):
            return m, others[0]
    return None


def judge(takeover: MemberEvent | None, epoch_before: int, lost_increments: int, *,
          stale_replies: int = 0, replies_from_elsewhere: int = 0) -> str:
    """Why the demo failed, or ``""`` when the failover happened and nothing acknowledged was
    lost. The checks, in order: a takeover was seen, its epoch is above the one before (epochs
    only grow, and each change of active raises it), the client counted no reply below a
    count it had already seen acknowledged, no reply from a deposed active after its
    successor's first one (two actives serving), and none from another address than the
    service's."""
    if takeover is None:
        return "no other member took the active role"
    if int(takeover.fields.get("epoch", 0)) <= epoch_before:
        return f"the new active's epoch did not rise above {epoch_before}"
    if lost_increments:
        return f"the client lost {lost_increments} acknowledged increments"
    if stale_replies:
        return (f"the client got {stale_replies} replies from a deposed active after its "
                "successor had answered")
    if replies_from_elsewhere:
        return f"the client got {replies_from_elsewhere} replies from another address"
    return ""


def format_step(t: float, source: str, text: str) -> str:
    """``[  1.234s] source  text``: the line printed for each step and event."""
    return f"[{t:7.3f}s] {source:<7} {text}"


def format_roles(status: GroupStatus, instances: Sequence[Instance] = ()) -> list[str]:
    """The group as ``vnfha status`` shows it (a heading line and a table), with each member's
    simulated VM: ``vm-a@host-a running``. A VM whose member is not registered in etcd (down)
    gets a row of its own with role ``-``."""
    active = f"{status.active} (epoch {status.epoch})" if status.active else "none"
    lines = [f"group {status.group}  redundancy {status.redundancy}  active {active}  "
             f"etcd {status.etcd_endpoint} @ revision {status.revision}"]
    vms = {i.member: f"{i.name}@{i.host} {i.state.value}" for i in instances}
    rows = [("MEMBER", "ROLE", "EPOCH", "SYNC", "LISTEN", "PID", "VM")]
    for m in status.members:
        sync = "-" if m.holds_active_key else ("yes" if m.in_sync else "no")
        rows.append((m.member, m.role + ("*" if m.holds_active_key else ""), str(m.epoch), sync,
                     m.listen, str(m.pid), vms.pop(m.member, "-")))
    rows += [(member, "-", "-", "-", "-", "-", vm) for member, vm in sorted(vms.items())]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return lines


def format_timeline(entries: Iterable[Entry], fault_at: float) -> list[str]:
    """The entries from the fault on, in time order, as milliseconds after the fault."""
    rows = sorted((e for e in entries if e.t >= fault_at - 1e-3), key=lambda e: e.t)
    # + 0.0 turns the -0.0 of rounding (the fault's own entry) into 0.0
    return [f"  {round((e.t - fault_at) * 1000, 1) + 0.0:+9.1f} ms  {e.source:<7} {e.text}"
            for e in rows]


def format_client(c: Mapping[str, Any], threshold_s: float) -> list[str]:
    """What the client saw, in three lines (times in ms after the fault)."""
    if c.get("fault_outage_ms") is None:
        at_fault = f"under {threshold_s * 1000:g} ms"
    else:
        at_fault = (f"{c['fault_outage_ms']:.1f} ms (no reply from "
                    f"{c['fault_outage_start_ms']:+.1f} to {c['fault_outage_end_ms']:+.1f} ms)")
    longest = f"{c['outage_ms']:.1f} ms"
    if c.get("outage_start_ms") is not None:
        longest += f" (from {c['outage_start_ms']:+.1f} to {c['outage_end_ms']:+.1f} ms)"
    return [f"client: requests sent {c['sent']}, answered {c['answered']}, given up "
            f"{c['lost']}, retransmissions {c['retransmissions']}",
            f"client: outage at the failover {at_fault}; longest of the run {longest}",
            f"client: acknowledged increments lost: {c['lost_increments']} "
            f"(counted twice: {c['double_increments']})",
            f"client: replies from the deposed active after its successor's first: "
            f"{c.get('stale_replies', 0)}; from another address: "
            f"{c.get('replies_from_elsewhere', 0)}"]


def reply_epochs(report: Mapping[str, Any], wall_start: float, old: int,
                 new: int) -> list[tuple[float, str]]:
    """The client's last reply from epoch ``old`` and first from epoch ``new``, as (seconds
    since the demo's start, text), from its ``replies_by_epoch``; those it did not get are
    left out."""
    epochs = report.get("replies_by_epoch") or {}
    lines = []
    if str(old) in epochs:
        seen = epochs[str(old)]
        lines.append((float(seen["last"]) - wall_start,
                      f"last reply from epoch {old} ({int(seen['replies'])} in all)"))
    if str(new) in epochs:
        lines.append((float(epochs[str(new)]["first"]) - wall_start,
                      f"first reply from epoch {new}"))
    return lines


def client_summary(report: Mapping[str, Any], wall_start: float, fault_at: float,
                   serving_at: float, *, new_epoch: int | None = None) -> dict[str, Any]:
    """The client's JSON report reduced to its counts, with times in milliseconds after the
    fault. ``fault_outage_*``: the longest outage (gap between replies over the client's
    threshold) that overlaps the failover, from the fault to the new active serving at
    ``serving_at``; None when no gap there reached the threshold. ``first_reply_ms``: the
    first reply from ``new_epoch`` (None: none, or no epoch given). Times: seconds since the
    demo's start, which was ``wall_start`` in Unix time."""
    def after_fault(unix: float | None) -> float | None:
        return None if unix is None else round((unix - wall_start - fault_at) * 1000, 1)

    epochs = report.get("replies_by_epoch") or {}
    first = None if new_epoch is None or str(new_epoch) not in epochs else \
        float(epochs[str(new_epoch)]["first"])
    window = ((wall_start + fault_at, wall_start + serving_at))
    overlapping = [o for o in report["outages"] if o["start"] <= window[1]
                   and o["end"] >= window[0]]
    worst = max(overlapping, key=lambda o: float(o["ms"]), default=None)
    return {"sent": report["sent"], "answered": report["answered"], "lost": report["lost"],
            "retransmissions": report["retransmissions"], "refused": report["refused"],
            "outage_ms": report["outage_ms"],
            "outage_start_ms": after_fault(report["outage_start"]),
            "outage_end_ms": after_fault(report["outage_end"]),
            "fault_outage_ms": None if worst is None else worst["ms"],
            "fault_outage_start_ms": None if worst is None else after_fault(worst["start"]),
            "fault_outage_end_ms": None if worst is None else after_fault(worst["end"]),
            "latency_ms": report["latency_ms"],
            "lost_increments": len(report["lost_increments"]),
            "double_increments": report["double_increments"],
            "stale_replies": report.get("stale_replies", 0),
            "replies_from_elsewhere": report.get("replies_from_elsewhere", 0),
            "first_reply_ms": after_fault(first)}
