"""The bridge's runtime: it executes the pure modules' decisions on a driver.

:class:`BridgeCore` is everything the bridge does except gRPC: it resolves callers and targets
through the driver's inventory, checks identities and epochs, keeps the watchdog timers on the
injected clock, runs repairs, and routes driver events to the groups they concern. The gRPC
server (:mod:`vnfha.bridge.server`) only decodes requests, calls it and encodes the answers; a
refusal is a :class:`~vnfha.nfvi.wire.Refused` carrying the status code.

Guarantees:

- Checks run in this order, and the first failure answers: caller's group known (else
  NOT_FOUND), caller's member in it (NOT_FOUND), identity (with mutual TLS, the certificate CN
  must be the caller's member and the member must be in the group: PERMISSION_DENIED, which
  then also replaces both NOT_FOUNDs so that unauthenticated callers learn nothing of the
  inventory), epoch (acting requests: FAILED_PRECONDITION below the group's highest), target
  member (NOT_FOUND).
- Never two actions on one instance at once (a lock per instance covers fences, watchdog
  actions and repairs).
- A watchdog expires on the injected clock no earlier than its deadline; its action runs, then
  ``WATCHDOG_FIRED`` is published (with the outcome), and it is disarmed. Its ``epoch`` is the
  watchdog's only when RESET, POWEROFF or PAUSE was done (else 0: the instance may still run).
- The epoch of every accepted Arm and Kick is remembered as the one that member presented as
  active (:meth:`EventRouter.saw_active`): VM_CRASHED and HOST_DOWN carry it (``Event.epoch``).
- A fenced instance's watchdog is disarmed (it stays fenced until a repair), and so is a
  repaired instance's (it restarts from scratch and must be armed again).
- Every repair ends: SUCCEEDED with the instance running, or FAILED naming why, within
  ``repair_timeout_s``. A new escalation whose repair would break its hard evacuation policy
  is refused (FAILED_PRECONDITION, ``vnfha-reason: placement``) naming the policy and the host;
  after a repair the group's placement is checked again (:mod:`vnfha.bridge.repairs`).
- An operator's planned maintenance (:meth:`BridgeCore.plan_maintenance`) is published through
  the same routing as the driver's own events, so it reaches members the same way whatever the
  driver. With mutual TLS only the configured ``operators`` (certificate CNs) may announce one,
  or list the tickets (:meth:`BridgeCore.list_tickets`, which reads and changes nothing).
- Every planned maintenance (the operator's or the driver's) is remembered until its deadline
  passes or its host goes down (:mod:`vnfha.bridge.maintenance`, at most
  ``max_pending_maintenance``, one per host): a new WatchEvents subscriber first receives the
  pending ones of the hosts where its group has an instance, then the live events (an event
  is never sent twice on one stream), GetPlacement shows it on its host, and an evacuation
  avoids those hosts when another one qualifies.
- With a state file (``state``, :mod:`vnfha.bridge.state`) the epochs, tickets and pending
  maintenances survive a restart: the core starts from the saved state (open tickets become
  FAILED) and saves it after every change, before answering the request that made it (a save
  that fails refuses it with INTERNAL; a raised epoch is never acted on unsaved). Watchdogs are
  never saved. Without one, a restarted bridge forgets everything.
- Service addresses (``Network``) are moved by :attr:`BridgeCore.addresses`
  (:mod:`vnfha.bridge.addresses`), after the same caller and epoch checks.
- :meth:`BridgeCore.close` stops every task it started and ends every watch stream; it does not
  close the driver (its owner does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from vnfha._tasks import stop_task
from vnfha.bridge import placement as placement_rules
from vnfha.bridge._fanout import Fanout, Subscription
from vnfha.bridge.addresses import AddressMoves
from vnfha.bridge.drivers.driver import Driver, DriverError, InfraEvent, Instance
from vnfha.bridge.epochs import EpochTable
from vnfha.bridge.fencing import fence_instance, power_off_fenced
from vnfha.bridge.limits import BridgeLimits
from vnfha.bridge.repairs import NoEvacuationHost, RepairPlacement
from vnfha.bridge.routing import EventRouter, watcher_lagged
from vnfha.bridge.state import BridgeState, StateFileError, StateStore
from vnfha.bridge.tickets import Busy, KeyConflict, TicketBook, plan_repair
from vnfha.bridge.watchdogs import Armed, WatchdogTable
from vnfha.clock import Clock
from vnfha.nfvi import wire
from vnfha.nfvi.model import (
    BridgeEvent,
    EventKind,
    FenceMode,
    FenceResult,
    InstanceState,
    MaintenancePlan,
    MemberPlacement,
    NotifiedInstance,
    PlacementPolicy,
    PlacementView,
    PolicyReport,
    RepairAction,
    RepairState,
    RepairTicket,
    TicketList,
    WatchdogAction,
    WatchdogStatus,
)
from vnfha.nfvi.wire import Caller, Escalation, MaintenanceRequest, Refused, TicketQuery

__all__ = ["BridgeCore", "BridgeLimits"]

log = logging.getLogger("vnfha.nfvi.bridge")

_SAVED_EVENTS = (EventKind.HOST_DOWN, EventKind.MAINTENANCE_PLANNED)  # change the maintenances


class BridgeCore:
    """The bridge without gRPC (see the module docstring). Use as an async context manager.

    ``operators`` are the certificate CNs that may call the Operations service under mutual
    TLS; ``wall_clock`` (Unix seconds) turns a maintenance notice into the event's deadline, and
    a saved deadline back; ``state``: keep the state there across restarts.
    """

    def __init__(self, driver: Driver, *, clock: Clock, limits: BridgeLimits | None = None,
                 operators: frozenset[str] = frozenset(),
                 wall_clock: Callable[[], float] = time.time,
                 state: StateStore | None = None) -> None:
        self.driver = driver
        self.limits = limits or BridgeLimits()
        self.operators = operators
        self._wall_clock = wall_clock
        self.owner_name = f"nfvi:{driver.name}"
        self._clock = clock
        self._state = state
        self._epochs = EpochTable()
        self._watchdogs = WatchdogTable()
        self._tickets = TicketBook(max_tickets=self.limits.max_tickets)
        self._locks: dict[str, asyncio.Lock] = {}
        self._router = EventRouter(clock=clock, wall_clock=wall_clock,
                                   max_queued=self.limits.max_queued_events,
                                   max_pending_maintenance=self.limits.max_pending_maintenance,
                                   lagged=watcher_lagged)
        self._ticket_updates: Fanout[RepairTicket] = Fanout(
            max_queued=self.limits.max_queued_events, lagged=watcher_lagged)
        self._placement = RepairPlacement(
            driver, down=lambda: self._router.down,
            under_maintenance=lambda: self._router.maintenance.hosts(clock.monotonic()))
        self.addresses = AddressMoves(
            driver, clock=clock, limits=self.limits, acting=self._acting, resolve=self._group,
            highest=lambda g: self._epochs.highest(g),  # noqa: PLW0108 - _restore replaces it
            route=lambda e, n: self._route(e, epoch=n))
        self._wd_wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []

    @property
    def event_watchers(self) -> int:
        """How many WatchEvents streams are open (all groups): tests wait on it before
        publishing, so that a watcher cannot miss the event."""
        return self._router.watchers

    async def __aenter__(self) -> BridgeCore:
        """Start: restore the saved state (:class:`StateFileError` if it cannot be used), then
        route events and run the watchdogs."""
        if self._state is not None:
            await self._restore(self._state)
        driver_events = self.driver.events()  # subscribed now: nothing from here on is missed
        self._loops = [asyncio.create_task(self._pump(driver_events), name="bridge-events"),
                       asyncio.create_task(self._run_watchdogs(), name="bridge-watchdogs")]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the timers, repairs and event routing; end every watch stream."""
        for task in [*self._loops, *self._tasks]:
            await stop_task(task)
        self._loops.clear()
        self._router.close()
        self._ticket_updates.close()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a task the core owns (cancelled by :meth:`close`)."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lock(self, instance: str) -> asyncio.Lock:
        """The lock that keeps actions on ``instance`` one at a time."""
        return self._locks.setdefault(instance, asyncio.Lock())

    # -- resolution and checks ------------------------------------------------------------------

    async def _group(self, caller: Caller, peer: str | None) -> dict[str, Instance]:
        """The caller's group as member -> instance, after the identity check."""
        group = {i.member: i for i in reversed(await self.driver.list_instances())
                 if i.group == caller.group}  # reversed: the first instance by name wins
        if peer is not None and (peer != caller.member or caller.member not in group):
            raise Refused("PERMISSION_DENIED", f"certificate {peer!r} may not act as member "
                          f"{caller.member!r} of group {caller.group!r}")
        if not group:
            raise Refused("NOT_FOUND", f"unknown group {caller.group!r}: the bridge has no "
                          "instance of it")
        if caller.member not in group:
            raise Refused("NOT_FOUND", f"unknown member {caller.member!r} in group "
                          f"{caller.group!r}")
        return group

    async def _check_epoch(self, caller: Caller) -> None:
        """Refuse a stale epoch (FAILED_PRECONDITION, ``vnfha-reason: stale-epoch``); else
        the group's record rises to it, and the request goes on once that is saved."""
        verdict = self._epochs.check(caller.group, caller.epoch)
        if not verdict.accepted:
            raise Refused("FAILED_PRECONDITION", f"member {caller.member!r}: {verdict.reason}",
                          metadata={wire.REASON_KEY: "stale-epoch",
                                    wire.HIGHEST_EPOCH_KEY: str(verdict.highest)})
        await self._persist(changed=verdict.raised)

    async def _acting(self, caller: Caller, peer: str | None,
                      target: str | None = None) -> Instance:
        """Checks for an acting request; returns the target member's instance (default: the
        caller's own)."""
        group = await self._group(caller, peer)
        await self._check_epoch(caller)
        member = target or caller.member
        instance = group.get(member)
        if instance is None:
            raise Refused("NOT_FOUND", f"unknown member {member!r} in group {caller.group!r}")
        return instance

    # -- Watchdog ---------------------------------------------------------------------------------

    def _status(self, instance: str, armed: Armed | None) -> WatchdogStatus:
        """The reply value for a watchdog, as of now."""
        if armed is None:
            return WatchdogStatus(instance, False)
        return WatchdogStatus(instance, True, armed.timeout_s, armed.action,
                              armed.remaining_s(self._clock.monotonic()))

    async def arm(self, caller: Caller, peer: str | None, timeout_s: float,
                  action: WatchdogAction) -> WatchdogStatus:
        """Arm the caller's own watchdog (see ``nfvi.proto``)."""
        lo, hi = self.limits.watchdog_min_s, self.limits.watchdog_max_s
        if not lo <= timeout_s <= hi:
            raise Refused("INVALID_ARGUMENT", f"timeout_ms={round(timeout_s * 1000)} is outside "
                          f"the bridge's range [{round(lo * 1000)}, {round(hi * 1000)}] ms")
        instance = await self._acting(caller, peer)
        armed = self._watchdogs.arm(instance.name, group=caller.group, member=caller.member,
                                    epoch=caller.epoch, timeout_s=timeout_s, action=action,
                                    now=self._clock.monotonic())
        self._router.saw_active(instance.name, caller.epoch)
        self._wd_wake.set()
        log.info("watchdog of %s armed by %s (epoch %d): %s after %.3f s", instance.name,
                 caller.member, caller.epoch, action, timeout_s)
        return self._status(instance.name, armed)

    async def kick(self, caller: Caller, peer: str | None) -> WatchdogStatus:
        """Push the caller's watchdog deadline back; FAILED_PRECONDITION if it is not armed."""
        instance = await self._acting(caller, peer)
        armed = self._watchdogs.kick(instance.name, epoch=caller.epoch,
                                     now=self._clock.monotonic())
        if armed is None:
            raise Refused("FAILED_PRECONDITION", f"the watchdog of {instance.name!r} (member "
                          f"{caller.member!r}) is not armed", metadata={
                              wire.REASON_KEY: "not-armed"})
        self._router.saw_active(instance.name, caller.epoch)
        self._wd_wake.set()
        return self._status(instance.name, armed)

    async def disarm(self, caller: Caller, peer: str | None) -> WatchdogStatus:
        """Disarm the caller's watchdog (idempotent). A stale epoch is accepted when it is
        the epoch the caller's own watchdog was armed in: a deposed active disarming its own
        watchdog after the new active armed (a higher epoch) must not be left to be reset."""
        try:
            instance = await self._acting(caller, peer)
        except Refused as refused:
            group = await self._group(caller, peer)
            own = group.get(caller.member)
            armed = self._watchdogs.get(own.name) if own is not None else None
            if own is None or armed is None or armed.epoch != caller.epoch:
                raise refused from None
            instance = own
        if self._watchdogs.disarm(instance.name) is not None:
            log.info("watchdog of %s disarmed by %s (epoch %d)", instance.name, caller.member,
                     caller.epoch)
        self._wd_wake.set()
        return self._status(instance.name, None)

    async def _run_watchdogs(self) -> None:
        """Sleep until the next deadline (or a change), then fire what has expired."""
        while True:
            self._wd_wake.clear()
            deadline = self._watchdogs.next_deadline()
            if deadline is None:
                await self._wd_wake.wait()
            elif (delay := deadline - self._clock.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    await self._clock.wait_for(self._wd_wake.wait(), delay)
            for armed in self._watchdogs.expire(self._clock.monotonic()):
                self._spawn(self._fire(armed), f"watchdog-{armed.instance}")

    async def _fire(self, armed: Armed) -> None:
        """Perform an expired watchdog's action (under the instance lock), then publish
        ``WATCHDOG_FIRED`` with the outcome; a driver failure is reported, not raised. A PAUSE
        of an instance that is not running is not attempted: it cannot execute already (it was
        fenced, say, after the watchdog was armed), which is what the action is for."""
        actions = {WatchdogAction.RESET: self.driver.reset,
                   WatchdogAction.POWEROFF: self.driver.power_off,
                   WatchdogAction.PAUSE: self.driver.pause}
        outcome = "done"
        log.warning("watchdog of %s (member %s, epoch %d) expired: %s", armed.instance,
                    armed.member, armed.epoch, armed.action)
        act = actions.get(armed.action)
        if act is not None:
            try:
                async with self._lock(armed.instance):
                    state = None if armed.action is not WatchdogAction.PAUSE else (
                        await self.driver.get_instance(armed.instance)).state
                    if state is None or state is InstanceState.RUNNING:
                        await act(armed.instance)
                    else:
                        outcome = f"nothing to do: {armed.instance} is {state}"
            except DriverError as e:
                outcome = f"failed: {e}"
        if outcome.startswith("failed"):
            log.error("watchdog %s of %s %s", armed.action, armed.instance, outcome)
        detail = (f"{armed.action} after {armed.timeout_s:g} s without a kick (member "
                  f"{armed.member}, epoch {armed.epoch}): {outcome}")
        host = ""
        with contextlib.suppress(DriverError):
            host = (await self.driver.get_instance(armed.instance)).host
        done = act is not None and not outcome.startswith("failed")  # it cannot execute now
        await self._route(InfraEvent(EventKind.WATCHDOG_FIRED, instance=armed.instance,
                                     host=host, detail=detail), epoch=armed.epoch if done else 0)

    # -- Placement --------------------------------------------------------------------------------

    async def placement(self, caller: Caller, peer: str | None) -> PlacementView:
        """Where the caller's group runs, and every host: up or down, and its pending planned
        maintenance."""
        group = await self._group(caller, peer)
        members = tuple(MemberPlacement(m, i.name, i.host, i.state)
                        for m, i in sorted(group.items()))
        return PlacementView(members, self._router.host_status(await self.driver.list_hosts()))

    async def check_policy(self, caller: Caller, peer: str | None,
                           policy: PlacementPolicy) -> PolicyReport:
        """The caller's group's placement checked against ``policy``."""
        group = await self._group(caller, peer)
        return placement_rules.check_policy(policy, {m: i.host for m, i in group.items()})

    # -- Fencing ----------------------------------------------------------------------------------

    async def fence(self, caller: Caller, peer: str | None, target: str, mode: FenceMode,
                    reason: str) -> FenceResult:
        """Make ``target``'s instance unable to act; returns once the driver confirms it
        (:mod:`vnfha.bridge.fencing`: a KILL is confirmed by a pause, the power-off follows)."""
        instance = await self._acting(caller, peer, target)
        name = instance.name
        async with self._lock(name):
            self._watchdogs.disarm(name)
            try:
                applied, after = await fence_instance(
                    self.driver, name, mode, power_off_later=lambda n: self._spawn(
                        power_off_fenced(self.driver, n, self._lock(n)), name=f"off-{n}"))
            except DriverError as e:
                raise Refused("INTERNAL", f"fencing {name!r} (member {target!r}) failed: "
                              f"{e}") from e
        if after.state is InstanceState.RUNNING:
            raise Refused("INTERNAL", f"fencing {name!r}: the driver still reports it running")
        log.warning("member %s fenced %s (%s, instance %s on %s, epoch %d): %s -> %s",
                    caller.member, target, mode, name, after.host, caller.epoch,
                    reason or "no reason given", after.state)
        return FenceResult(name, after.host, applied, after.state)

    # -- Faults -----------------------------------------------------------------------------------

    async def escalate(self, caller: Caller, peer: str | None,
                       e: Escalation) -> RepairTicket:
        """Open (or find) the repair ticket for a fault; start the repair if the NFVI owns it."""
        instance = await self._acting(caller, peer, e.target_member)
        plan = plan_repair(e.requested, e.tried, host=instance.host, fault=e.fault,
                           host_up=instance.host not in self._router.down)
        if self._tickets.find(caller.group, e.idempotency_key) is None and \
                self._tickets.open_for(instance.name) is None and (refusal := await (
                    self._placement.refusal(instance, plan.action, e.evacuation_policy))):
            raise Refused("FAILED_PRECONDITION", refusal, metadata={wire.REASON_KEY: "placement"})
        out = self._tickets.open(key=e.idempotency_key, group=caller.group,
                                 member=instance.member, instance=instance.name,
                                 host=instance.host, epoch=caller.epoch, plan=plan,
                                 owner_name=self.owner_name if plan.action.by_nfvi
                                 else caller.member)
        if isinstance(out, Busy):
            t = out.ticket
            raise Refused("ALREADY_EXISTS", f"instance {t.instance!r} (member {t.member!r}) is "
                          f"being repaired by ticket {t.ticket_id} (owner {t.owner_name}, "
                          f"{t.action}, {t.state})", metadata={
                              wire.REASON_KEY: "repair-in-progress",
                              wire.TICKET_KEY: t.ticket_id, wire.OWNER_KEY: t.owner_name})
        if isinstance(out, KeyConflict):
            raise Refused("INVALID_ARGUMENT", f"idempotency_key {e.idempotency_key!r} already "
                          f"names ticket {out.ticket.ticket_id} for member "
                          f"{out.ticket.member!r}, not {instance.member!r}")
        if out.new:
            log.warning("escalation %s by %s (epoch %d) for %s: %s -> ticket %s, %s by %s (%s)",
                        e.idempotency_key, caller.member, caller.epoch, instance.name, e.fault,
                        out.ticket.ticket_id, out.ticket.action, out.ticket.owner_name,
                        plan.reason)
            if plan.action.by_nfvi:
                self._spawn(self._repair(out.ticket, e.evacuation_policy),
                            f"repair-{out.ticket.ticket_id}")
        await self._persist(changed=out.new)
        return out.ticket

    async def _update(self, ticket: RepairTicket, state: RepairState, detail: str,
                      host: str | None = None) -> RepairTicket:
        """Record a ticket change, save it, and send it to the WatchRepair streams."""
        updated = self._tickets.update(ticket.ticket_id, state, detail, host=host)
        await self._persist(quiet=True)
        self._ticket_updates.publish(updated)
        return updated

    async def _repair(self, ticket: RepairTicket, policy: PlacementPolicy) -> None:
        """Run one NFVI-owned repair to its end (SUCCEEDED or FAILED)."""
        name = ticket.instance
        try:
            async with self._lock(name):
                self._watchdogs.disarm(name)
                ticket = await self._update(ticket, RepairState.IN_PROGRESS,
                                            f"{ticket.action} of {name} started")
                note = await self._clock.wait_for(self._act(ticket, policy),
                                                  self.limits.repair_timeout_s)
                after = await self.driver.get_instance(name)
        except (DriverError, NoEvacuationHost) as e:
            await self._update(ticket, RepairState.FAILED,
                               f"{ticket.action} of {name} failed: {e}")
            log.warning("repair %s of %s failed: %s", ticket.ticket_id, name, e)
            return
        except TimeoutError:
            await self._update(ticket, RepairState.FAILED, f"{ticket.action} of {name} did "
                               f"not finish within {self.limits.repair_timeout_s} s")
            return
        if after.state is InstanceState.RUNNING:
            broken = await self._placement.after(ticket, policy)
            await self._update(ticket, RepairState.SUCCEEDED, f"{note}; running on {after.host}"
                               + (f"; placement breaks {broken}" if broken else ""),
                               host=after.host)
        else:
            await self._update(ticket, RepairState.FAILED,
                               f"{note}, but {name} is {after.state}", host=after.host)
        log.info("repair %s of %s: %s", ticket.ticket_id, name, note)

    async def _act(self, ticket: RepairTicket, policy: PlacementPolicy) -> str:
        """Perform the ticket's action; returns what was done."""
        name = ticket.instance
        if ticket.action is RepairAction.REBOOT:
            await self.driver.reset(name)
            return f"rebooted {name} on {ticket.host}"
        choice = await self._placement.evacuation_host(ticket.group, ticket.member, policy)
        if choice.host is None:
            raise NoEvacuationHost(choice.reason)
        await self.driver.migrate(name, choice.host)
        return f"evacuated {name} from {ticket.host} to {choice.host} ({choice.reason})"

    async def watch_repair(self, caller: Caller, peer: str | None,
                           ticket_id: str) -> AsyncIterator[RepairTicket]:
        """The ticket now, then each change, until it is terminal. Checks run before the first
        item (so refusals happen at the call, not mid-stream)."""
        await self._group(caller, peer)
        ticket = self._tickets.get(ticket_id)
        if ticket is None or ticket.group != caller.group:
            raise Refused("NOT_FOUND", f"unknown ticket {ticket_id!r} in group "
                          f"{caller.group!r}")
        updates = self._ticket_updates.subscribe()
        return self._ticket_stream(ticket, updates)

    async def _ticket_stream(self, ticket: RepairTicket,
                             updates: Subscription[RepairTicket]) -> AsyncIterator[RepairTicket]:
        try:
            current = self._tickets.get(ticket.ticket_id) or ticket
            yield current
            last = current.version
            if current.state.terminal:
                return
            async for update in updates:
                if update.ticket_id == ticket.ticket_id and update.version > last:
                    last = update.version
                    yield update
                    if update.state.terminal:
                        return
        finally:
            updates.close()

    async def watch_events(self, caller: Caller,
                           peer: str | None) -> AsyncIterator[BridgeEvent]:
        """The pending maintenances of the hosts where the caller's group has an instance,
        then the events that concern the group, from now on."""
        group = await self._group(caller, peer)
        return self._router.watch(caller.group, {m: i.host for m, i in group.items()})

    # -- Operations -------------------------------------------------------------------------------

    def _check_operator(self, peer: str | None) -> None:
        """Under mutual TLS (``peer`` set), only an operator's certificate may go on."""
        if peer is not None and peer not in self.operators:
            raise Refused("PERMISSION_DENIED", f"certificate {peer!r} is not one of the "
                          "bridge's operators (vnfha bridge serve --operator-cn)")

    async def plan_maintenance(self, peer: str | None,
                               request: MaintenanceRequest) -> MaintenancePlan:
        """Announce that ``request.host`` goes down ``request.deadline_in_s`` from now:
        ``MAINTENANCE_PLANNED`` to every group with an instance there. Checks: the caller is an
        operator (PERMISSION_DENIED), the driver lists the host (NOT_FOUND)."""
        self._check_operator(peer)
        host = request.host
        hosts = await self.driver.list_hosts()
        if host not in hosts:
            known = ", ".join(hosts[:10]) + (", ..." if len(hosts) > 10 else "")
            raise Refused("NOT_FOUND", f"unknown host {host!r}: driver {self.driver.name} "
                          f"lists {len(hosts)} host(s) ({known or 'none'})")
        deadline = self._wall_clock() + request.deadline_in_s
        detail = "planned maintenance" + (f": {request.reason}" if request.reason else "") + (
            f" (announced by {peer})" if peer else "")
        instances = await self.driver.list_instances()
        sequence = await self._route(InfraEvent(
            EventKind.MAINTENANCE_PLANNED, host=host, detail=detail, deadline_unix_s=deadline),
            instances)
        await self._persist()
        notified = tuple(sorted(NotifiedInstance(i.group, i.member, i.name)
                                for i in instances if i.host == host))
        log.warning("maintenance of %s announced%s: down in %g s (at %.3f), %d instance(s) "
                    "notified: %s", host, f" by {peer}" if peer else "",
                    request.deadline_in_s, deadline, len(notified), detail)
        return MaintenancePlan(host, deadline, notified, sequence)

    def list_tickets(self, peer: str | None, query: TicketQuery) -> TicketList:
        """The remembered tickets that match ``query``, newest first, for an operator
        (PERMISSION_DENIED otherwise, a member's certificate included)."""
        self._check_operator(peer)
        return self._tickets.query(group=query.group, open_only=query.open_only,
                                   limit=query.limit)

    # -- events -----------------------------------------------------------------------------------

    async def _pump(self, events: AsyncIterator[InfraEvent]) -> None:
        """Route every driver event; resubscribe if the driver cut us off as too slow."""
        while True:
            try:
                async for event in events:
                    await self._route(event)
                    if event.kind in _SAVED_EVENTS:
                        await self._persist(quiet=True)
                return  # the driver closed
            except DriverError as e:
                log.warning("driver events: %s; resubscribing (events were lost)", e)
                events = self.driver.events()

    async def _route(self, event: InfraEvent, instances: Sequence[Instance] | None = None,
                     epoch: int | None = None) -> int:
        """Publish ``event`` to the groups it concerns: a VM event to the instance's group, a
        host event to every group with a member on that host (``instances``: the inventory, if
        the caller has just read it; ``epoch``: see :meth:`EventRouter.route`). Returns the
        event's sequence, 0 if nobody was sent it."""
        if instances is None:
            try:
                instances = await self.driver.list_instances()
            except DriverError as e:
                log.warning("cannot route %s: listing instances failed: %s", event.kind, e)
        return self._router.route(event, instances, epoch=epoch)

    # -- state across restarts ------------------------------------------------------------------

    async def _restore(self, store: StateStore) -> None:
        """Start from the saved state (none: a first start), then save it back at once: that
        records the interrupted repairs, and proves the file writable before serving."""
        saved = await asyncio.to_thread(store.load)
        if saved is not None:
            self._epochs = EpochTable(saved.epochs)
            for t in self._tickets.restore(saved.tickets, next_number=saved.next_ticket):
                log.warning("repair %s (%s of %s) was open when the bridge stopped: now %s",
                            t.ticket_id, t.action, t.instance, t.state)
            self._router.restore(saved.maintenance)
            log.info("state restored from %s: %d group epoch(s), %d ticket(s), %d pending "
                     "maintenance(s)", store.path, len(saved.epochs), len(self._tickets),
                     len(self._router.maintenance))
        await store.save(self._snapshot)

    def _snapshot(self) -> BridgeState:
        """The state to save, as of now (references only: it runs on the event loop)."""
        return BridgeState(self._epochs.snapshot(), self._tickets.tickets(),
                           self._tickets.next_number, self._router.pending())

    async def _persist(self, *, changed: bool = True, quiet: bool = False) -> None:
        """Save the state, if the bridge keeps one, when it ``changed`` or an earlier change is
        not on disk yet (a save failed, or is still running: a request at an epoch raised a
        moment ago must not act before that epoch is saved either). A failure is logged, and
        unless ``quiet`` (no request to answer) refuses the request with INTERNAL."""
        if self._state is None or not (changed or self._state.behind):
            return
        try:
            await self._state.save(self._snapshot)
        except StateFileError as e:
            log.error("%s", e)  # noqa: TRY400 - the message says it all
            if not quiet:
                raise Refused("INTERNAL", f"the bridge could not save its state: {e}") from e
