"""PURE: the planned maintenances the bridge remembers until their deadline.

A ``MAINTENANCE_PLANNED`` event is published to the members watching at that moment; a member
whose event stream was down then, or that subscribed later, would never hear of it. So the
bridge keeps each announcement (:class:`MaintenanceBook`) and replays it to every new
``WatchEvents`` subscriber whose group has an instance on the host (:func:`replay_for`).

Rules (each one a line of the table-driven tests):

==============================  ================================================================
event                           the book
==============================  ================================================================
MAINTENANCE_PLANNED, deadline   keeps it; a newer announcement for the same host replaces the
ahead                           older one, whatever either deadline (the operator postponed or
                                advanced it)
MAINTENANCE_PLANNED, deadline   forgets the host's entry (the newer word replaces the older), keeps
passed (or none)                nothing
the deadline passes             the entry is gone (pruned at the next read or announcement)
HOST_DOWN of the host           forgets it: the maintenance has begun (or the host failed); its
                                instances are down and an evacuation never picks a down host;
                                once it is back up (HOST_UP) it counts as maintained
a new host when full            prunes what expired; if still full, evicts the entry whose
                                deadline comes first (the nearest to being useless)
==============================  ================================================================

Time: deadlines travel as wall-clock Unix seconds (``deadline_unix_s``) because members and
operators share no monotonic clock, but the book compares on the bridge's injected monotonic
clock: the caller converts once, when the event is announced (``expires_at = now +
(deadline_unix_s - wall_now)``), so a wall-clock step does not revive or end an entry and a
test moves it with a ``FakeClock``. A bridge with a state file (:mod:`vnfha.bridge.state`) saves the
pending events with their wall-clock deadline, since its monotonic clock does not survive a
restart, and announces them again when it starts: converted once more, the passed ones dropped.
No asyncio here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from vnfha.nfvi.model import BridgeEvent

__all__ = ["MaintenanceBook", "Pending", "replay_for"]


@dataclass(frozen=True, slots=True)
class Pending:
    """One remembered announcement: ``event`` as the bridge published it (without ``members``,
    which depend on the group), until ``expires_at`` on the bridge's monotonic clock."""

    event: BridgeEvent
    expires_at: float

    @property
    def host(self) -> str:
        """The host under maintenance."""
        return self.event.host


class MaintenanceBook:
    """The pending maintenances, at most one per host and ``max_pending`` in all (see the
    module docstring for the rules)."""

    def __init__(self, *, max_pending: int) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending={max_pending}: must be at least 1")
        self.max_pending = max_pending
        self._by_host: dict[str, Pending] = {}

    def __len__(self) -> int:
        return len(self._by_host)

    def announce(self, event: BridgeEvent, *, now: float,
                 remaining_s: float | None) -> Pending | None:
        """Record ``event`` (its host goes down ``remaining_s`` from ``now``; None: no deadline
        known). Returns the entry it evicted to stay within ``max_pending``, if any."""
        self._by_host.pop(event.host, None)
        if remaining_s is None or remaining_s <= 0:
            return None
        self._prune(now)
        evicted = None
        if len(self._by_host) >= self.max_pending:
            first = min(self._by_host.values(),
                        key=lambda p: (p.expires_at, p.event.sequence))
            evicted = self._by_host.pop(first.host)
        self._by_host[event.host] = Pending(replace(event, members=()), now + remaining_s)
        return evicted

    def host_down(self, host: str) -> Pending | None:
        """``host`` went down: forget its maintenance; returns what was forgotten."""
        return self._by_host.pop(host, None)

    def pending(self, now: float) -> tuple[Pending, ...]:
        """The entries whose deadline is still ahead at ``now``, oldest announcement first."""
        self._prune(now)
        return tuple(sorted(self._by_host.values(), key=lambda p: p.event.sequence))

    def hosts(self, now: float) -> frozenset[str]:
        """The hosts with a maintenance still ahead at ``now``."""
        return frozenset(p.host for p in self.pending(now))

    def _prune(self, now: float) -> None:
        for host in [h for h, p in self._by_host.items() if p.expires_at <= now]:
            del self._by_host[host]


def replay_for(pending: Iterable[Pending], placement: Mapping[str, str]) -> list[BridgeEvent]:
    """The events a new subscriber of a group is sent: each pending maintenance of a host where
    the group has an instance (``placement``: member -> host, as the inventory says now), with
    ``members`` = the group's members there, sorted; in announcement order. The rest of the
    event (sequence, deadline, detail) is the one the live subscribers got."""
    events = []
    for p in pending:
        members = tuple(sorted(m for m, h in placement.items() if h == p.host))
        if members:
            events.append(replace(p.event, members=members))
    return events
