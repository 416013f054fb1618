"""The bridge's event routing: which groups an infrastructure event concerns, which hosts are
down, the planned maintenances still ahead, and the WatchEvents streams.

:class:`EventRouter` is the part of :class:`~vnfha.bridge.core.BridgeCore` that publishes events;
the core reads the driver's inventory and hands each event over. Guarantees:

- A VM event goes to the instance's group (with its ``member``); a host event (HOST_DOWN,
  HOST_UP, MAINTENANCE_PLANNED) to every group with a member on that host (``members``, sorted).
  ``sequence`` numbers every published event, in order.
- ``epoch`` (see ``nfvi.proto``'s ``Event.epoch``) says which incarnation an event is about:
  for VM_CRASHED, the highest epoch the instance's member presented as active
  (:meth:`EventRouter.saw_active`: its Arm and Kick); for HOST_DOWN, the highest of those among
  the group's members on the host (a group has one active at a time, and only the latest
  grant can still be current); for WATCHDOG_FIRED and ADDRESS_MOVED, what the core passes
  (the bridge's own watchdog timers and MoveAddress); for a WATCHDOG_FIRED a driver reports
  (the guest's hardware watchdog), as for VM_CRASHED when its action stopped the guest
  (``InfraEvent.halted``), else 0. Anything else, or nothing seen: 0. These epochs live in
  memory: a restarted bridge learns them again from the next Kick; an instance's is forgotten
  once an event is routed while the driver no longer lists it.
- HOST_DOWN marks the host down until HOST_UP (:attr:`EventRouter.down`).
- :meth:`EventRouter.host_status` tells, for GetPlacement, whether each host is up and its
  pending maintenance (the one a new stream would be sent), as of now.
- Every MAINTENANCE_PLANNED with a deadline ahead is remembered
  (:mod:`vnfha.bridge.maintenance`: until the deadline on the monotonic clock, or the host's
  HOST_DOWN; one per host; at most ``max_pending_maintenance``). A new stream
  (:meth:`EventRouter.watch`) first receives the pending ones of the hosts where its group has an
  instance now, then the live events; an event is never sent twice on one stream.
- :meth:`EventRouter.restore` takes back maintenances saved before a restart (wall-clock
  deadlines; expired ones are dropped), and later events are numbered above them.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from vnfha.bridge._fanout import Fanout, Subscription
from vnfha.bridge.drivers.driver import InfraEvent, Instance
from vnfha.bridge.maintenance import MaintenanceBook, replay_for
from vnfha.clock import Clock
from vnfha.nfvi.model import BridgeEvent, EventKind, HostStatus
from vnfha.nfvi.wire import Refused

__all__ = ["EventRouter", "watcher_lagged"]

log = logging.getLogger("vnfha.nfvi.bridge")

_HOST_EVENTS = (EventKind.HOST_DOWN, EventKind.HOST_UP, EventKind.MAINTENANCE_PLANNED)
_EPOCH_GIVEN = (EventKind.WATCHDOG_FIRED, EventKind.ADDRESS_MOVED)  # the core knows the epoch


def watcher_lagged(n: int) -> Exception:
    """The refusal that ends a watch stream (WatchEvents, WatchRepair) ``n`` items behind."""
    return Refused("RESOURCE_EXHAUSTED", f"this watcher fell {n} events behind and lost some; "
                   "read the state again and watch again")


@dataclass(frozen=True, slots=True)
class _Routed:
    """One event, as each concerned group sees it."""

    by_group: dict[str, BridgeEvent]


class EventRouter:
    """Routes events to groups and serves the watch streams (see the module docstring).
    ``wall_clock`` (Unix seconds) turns a maintenance's deadline into one on ``clock``;
    ``lagged(n)`` is the error that ends a stream ``n`` events behind."""

    def __init__(self, *, clock: Clock, wall_clock: Callable[[], float], max_queued: int,
                 max_pending_maintenance: int, lagged: Callable[[int], Exception]) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self.down: set[str] = set()
        self.maintenance = MaintenanceBook(max_pending=max_pending_maintenance)
        self._sequence = itertools.count(1)
        self._active_epochs: dict[str, int] = {}  # instance -> highest epoch presented as active
        self._events: Fanout[_Routed] = Fanout(max_queued=max_queued, lagged=lagged)

    @property
    def watchers(self) -> int:
        """How many watch streams are open."""
        return self._events.subscribers

    def close(self) -> None:
        """End every watch stream."""
        self._events.close()

    def saw_active(self, instance: str, epoch: int) -> None:
        """``instance``'s member presented ``epoch`` as active (an accepted Arm or Kick)."""
        self._active_epochs[instance] = max(epoch, self._active_epochs.get(instance, 0))

    def active_epoch(self, instance: str) -> int:
        """The highest epoch ``instance``'s member presented as active; 0 if none."""
        return self._active_epochs.get(instance, 0)

    def _forget_gone(self, instances: Sequence[Instance]) -> None:
        """Forget the active epochs of instances the driver no longer lists (deleted or
        renamed): nothing can be routed to them, and the table would otherwise grow by one
        entry per instance that ever armed a watchdog, for as long as the bridge runs."""
        listed = {i.name for i in instances}
        for name in [n for n in self._active_epochs if n not in listed]:
            del self._active_epochs[name]

    def route(self, event: InfraEvent, instances: Sequence[Instance] | None, *,
              epoch: int | None = None) -> int:
        """Publish ``event`` to the groups it concerns (``instances``: the driver's inventory
        now; None if it could not be read: the event is only noted). ``epoch``: the event's
        epoch for a WATCHDOG_FIRED or an ADDRESS_MOVED the core itself publishes (None: the
        driver's event, see the module docstring). Returns the event's
        sequence, 0 if no group was sent it."""
        if event.kind is EventKind.HOST_DOWN and event.host:
            self.down.add(event.host)
            if self.maintenance.host_down(event.host) is not None:
                log.info("maintenance of %s no longer pending: the host is down", event.host)
        elif event.kind is EventKind.HOST_UP and event.host:
            self.down.discard(event.host)
        if instances is None:
            return 0
        self._forget_gone(instances)
        sequence = next(self._sequence)
        by_group: dict[str, BridgeEvent] = {}
        base = BridgeEvent(event.kind, event.instance or "", "", event.host or "", (),
                           event.deadline_unix_s, event.detail, sequence,
                           address=event.address)
        if event.kind is EventKind.MAINTENANCE_PLANNED and event.host:
            self._remember(base)
        if event.kind in _HOST_EVENTS:
            on_host: dict[str, list[Instance]] = {}
            for i in instances:
                if i.host == event.host:
                    on_host.setdefault(i.group, []).append(i)
            for group, found in on_host.items():
                top = max(self.active_epoch(i.name) for i in found) \
                    if event.kind is EventKind.HOST_DOWN else 0
                by_group[group] = replace(base, members=tuple(sorted(i.member for i in found)),
                                          epoch=top)
        else:
            owner = next((i for i in instances if i.name == event.instance), None)
            if owner is not None:
                halted = event.kind is EventKind.VM_CRASHED or event.halted
                known = epoch if epoch is not None and event.kind in _EPOCH_GIVEN else (
                    self.active_epoch(owner.name) if halted else 0)
                by_group[owner.group] = replace(base, member=owner.member,
                                                host=event.host or owner.host, epoch=known)
        if not by_group:
            return 0
        self._events.publish(_Routed(by_group))
        return sequence

    def _remember(self, event: BridgeEvent) -> None:
        """Keep a planned maintenance until its deadline (on the monotonic clock: converted
        here, once, from the event's wall-clock deadline), for later subscribers."""
        remaining = None if event.deadline_unix_s is None \
            else event.deadline_unix_s - self._wall_clock()
        evicted = self.maintenance.announce(event, now=self._clock.monotonic(),
                                            remaining_s=remaining)
        if evicted is not None:
            log.warning("maintenance of %s forgotten to keep %d pending (the limit): its "
                        "deadline came first", evicted.host, self.maintenance.max_pending)

    def pending(self) -> tuple[BridgeEvent, ...]:
        """The maintenances still ahead (without ``members``), oldest announcement first."""
        return tuple(p.event for p in self.maintenance.pending(self._clock.monotonic()))

    def host_status(self, hosts: Iterable[str]) -> tuple[HostStatus, ...]:
        """Each of ``hosts``, in that order: up or down, and its pending maintenance's deadline
        (wall clock, as announced) and detail."""
        pending = {p.host: p.event for p in self.maintenance.pending(self._clock.monotonic())}
        statuses = []
        for host in hosts:
            event = pending.get(host)
            statuses.append(HostStatus(host, host not in self.down) if event is None else
                            HostStatus(host, host not in self.down, event.deadline_unix_s,
                                       event.detail))
        return tuple(statuses)

    def restore(self, pending: Iterable[BridgeEvent]) -> None:
        """Take back saved maintenances (wall-clock deadlines; those passed are dropped);
        events from now on are numbered above them."""
        top = 0
        for event in pending:
            self._remember(event)
            top = max(top, event.sequence)
        # a stream skips a live event whose sequence is one it has replayed: never reuse them
        self._sequence = itertools.count(top + 1)

    def watch(self, group: str, placement: Mapping[str, str]) -> AsyncIterator[BridgeEvent]:
        """A stream for ``group`` (``placement``: its member -> host now): the pending
        maintenances of its hosts, then the live events that concern it."""
        routed = self._events.subscribe()  # before the snapshot: nothing falls in between
        replay = replay_for(self.maintenance.pending(self._clock.monotonic()), placement)
        return self._stream(group, routed, replay)

    @staticmethod
    async def _stream(group: str, routed: Subscription[_Routed],
                      replay: list[BridgeEvent]) -> AsyncIterator[BridgeEvent]:
        try:
            for pending in replay:
                yield pending
            replayed = {e.sequence for e in replay}  # published after subscribing: sent
            async for r in routed:
                event = r.by_group.get(group)
                if event is not None and event.sequence not in replayed:
                    yield event
        finally:
            routed.close()  # the client went away: stop queueing for it (and counting it)
