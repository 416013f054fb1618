"""The SDK side of the NFVI bridge: :class:`BridgeClient`, and :class:`NoBridge` for members
configured without one. Both implement :class:`NfviPort`, which is all a member uses.

::

    async with BridgeClient("127.0.0.1:50070", group="vfw", member="vfw-a",
                            timeout_s=0.5) as nfvi:
        await nfvi.arm_watchdog(2.0, WatchdogAction.RESET, epoch)
        await nfvi.kick(epoch)                                   # after each confirmed keepalive
        result = await nfvi.fence("vfw-b", epoch, FenceMode.STOP, "no heartbeat for 300 ms")
        ticket = await nfvi.escalate("vfw-a-7-1", "db lost", RepairAction.REBOOT, epoch)
        async for t in nfvi.watch_repair(ticket.ticket_id, timeout_s=60):
            ...
        move = await nfvi.move_address(ServiceAddress.parse("198.51.100.100/24"), epoch)

    async with BridgeClient.operator("127.0.0.1:50070", timeout_s=5) as ops:  # not a member
        plan = await ops.plan_maintenance("host-1", 600, "kernel upgrade")
        listing = await ops.list_tickets(group="vfw", open_only=True)

Guarantees:

- Every call has a deadline: the client's ``timeout_s``, or the call's own ``call_timeout_s``.
  Nothing waits past it, retries included.
- Only idempotent calls are retried, and only on UNAVAILABLE (the bridge was not reached or is
  restarting), with exponential backoff from ``retry_backoff_s`` up to
  ``retry_max_backoff_s``. Every unary call of this API is idempotent: Arm, Kick and Disarm set
  a state, GetPlacement, CheckPolicy and GetAddress read, Escalate carries an idempotency key,
  Fence acts only while the instance can still execute (a repeated Fence confirms without
  acting), and MoveAddress binds the address to the caller's instance (a repeat confirms).
  PlanMaintenance is retried too: a repeat only announces the maintenance again, which members
  take as harmlessly as the first; ListTickets only reads.
  The watch streams are not retried: they end with :class:`~vnfha.errors.BridgeUnavailable` and
  the caller decides whether to watch again.
- Status codes become errors under :class:`~vnfha.errors.NfviError`: a stale epoch
  :class:`~vnfha.errors.StaleEpochRejected`, a repair owned by another ticket
  :class:`~vnfha.errors.RepairInProgress`, no answer in time
  :class:`~vnfha.errors.BridgeUnavailable`, any other refusal
  :class:`~vnfha.errors.BridgeRequestError` (with ``code`` and ``reason``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

import grpc
import grpc.aio

from vnfha.clock import Clock, SystemClock
from vnfha.errors import (
    BridgeRequestError,
    BridgeUnavailable,
    NfviError,
    RepairInProgress,
    StaleEpochRejected,
)
from vnfha.net.address import ServiceAddress
from vnfha.nfvi import wire
from vnfha.nfvi.model import (
    AddressBinding,
    AddressMove,
    BridgeEvent,
    FenceMode,
    FenceResult,
    MaintenancePlan,
    PlacementPolicy,
    PlacementView,
    PolicyReport,
    RepairAction,
    RepairOwner,
    RepairState,
    RepairTicket,
    TicketList,
    WatchdogAction,
    WatchdogStatus,
)
from vnfha.nfvi.wire import DEFAULT_MAX_MESSAGE_BYTES, pb

__all__ = ["BridgeClient", "NfviPort", "NoBridge"]


class NfviPort(Protocol):
    """What a member asks of the NFVI. Epochs are the caller's current epoch (for a fence: the
    epoch being fenced)."""

    @property
    def configured(self) -> bool:
        """False for :class:`NoBridge`: nothing below can fence, reset or repair."""
        ...

    async def arm_watchdog(self, timeout_s: float, action: WatchdogAction, epoch: int, *,
                           call_timeout_s: float | None = None) -> WatchdogStatus:
        """Arm the caller's watchdog: ``action`` after ``timeout_s`` without a kick."""
        ...

    async def kick(self, epoch: int, *, call_timeout_s: float | None = None) -> WatchdogStatus:
        """Push the caller's watchdog deadline back."""
        ...

    async def disarm(self, epoch: int, *,
                     call_timeout_s: float | None = None) -> WatchdogStatus:
        """Disarm the caller's watchdog."""
        ...

    async def fence(self, member: str, epoch: int, mode: FenceMode, reason: str, *,
                    call_timeout_s: float | None = None) -> FenceResult:
        """Make ``member``'s instance unable to act; returns once confirmed."""
        ...

    async def placement(self, *, call_timeout_s: float | None = None) -> PlacementView:
        """Where the group's members run, and every host (up or down, pending maintenance)."""
        ...

    async def check_policy(self, policy: PlacementPolicy, *,
                           call_timeout_s: float | None = None) -> PolicyReport:
        """The group's placement against ``policy``."""
        ...

    async def escalate(self, idempotency_key: str, fault: str, requested: RepairAction,
                       epoch: int, *, tried: Iterable[RepairAction] = (),
                       target_member: str | None = None,
                       evacuation_policy: PlacementPolicy | None = None,
                       call_timeout_s: float | None = None) -> RepairTicket:
        """Report a fault and ask for a repair; returns the repair ticket."""
        ...

    def watch_repair(self, ticket_id: str, *, timeout_s: float) -> AsyncIterator[RepairTicket]:
        """The ticket now and each change, until it is terminal or ``timeout_s`` passes."""
        ...

    def watch_events(self, *, timeout_s: float | None = None) -> AsyncIterator[BridgeEvent]:
        """Infrastructure events for the group, until the bridge ends the stream (or
        ``timeout_s`` passes, if given)."""
        ...

    async def move_address(self, address: ServiceAddress | str, epoch: int, *,
                           call_timeout_s: float | None = None) -> AddressMove:
        """Have the NFVI bind service ``address`` to this member's instance, in ``epoch``."""
        ...

    async def get_address(self, address: ServiceAddress | str, *,
                          call_timeout_s: float | None = None) -> AddressBinding:
        """Which member of the group holds service ``address`` at the NFVI now."""
        ...


class BridgeClient:
    """A member's connection to the bridge at ``target`` (see the module docstring).

    ``credentials`` (from :func:`vnfha.nfvi.wire.channel_credentials`) turn on TLS; with a client
    certificate, its CN must be ``member``. Use as an async context manager.
    """

    def __init__(self, target: str, *, group: str, member: str, timeout_s: float,
                 credentials: grpc.ChannelCredentials | None = None, clock: Clock | None = None,
                 retry_backoff_s: float = 0.02, retry_max_backoff_s: float = 0.5,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s={timeout_s}: must be > 0")
        self.target = target
        self.group = group
        self.member = member
        self.timeout_s = timeout_s
        self._credentials = credentials
        self._clock: Clock = clock or SystemClock()
        self._backoff_s = retry_backoff_s
        self._max_backoff_s = retry_max_backoff_s
        self._max_message_bytes = max_message_bytes
        self._channel: grpc.aio.Channel | None = None
        self._calls: dict[str, Any] = {}

    @classmethod
    def operator(cls, target: str, *, timeout_s: float,
                 credentials: grpc.ChannelCredentials | None = None,
                 clock: Clock | None = None) -> BridgeClient:
        """A client for the Operations service, which is not a member's: it has no group or
        member (member calls are refused). Under mutual TLS its certificate's CN must be one of
        the bridge's operators."""
        return cls(target, group="", member="", timeout_s=timeout_s, credentials=credentials,
                   clock=clock)

    @property
    def configured(self) -> bool:
        """True: there is a bridge."""
        return True

    async def __aenter__(self) -> BridgeClient:
        options = wire.message_options(self._max_message_bytes)
        if self._credentials is None:
            channel = grpc.aio.insecure_channel(self.target, options=options)
        else:
            channel = grpc.aio.secure_channel(self.target, self._credentials, options=options)
        self._channel = channel
        for m in wire.METHODS.values():
            bind = channel.unary_stream if m.streaming else channel.unary_unary
            self._calls[m.name] = bind(m.path, request_serializer=m.request.SerializeToString,
                                       response_deserializer=m.reply.FromString)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel (open watch streams end). Idempotent."""
        channel, self._channel = self._channel, None
        self._calls.clear()
        if channel is not None:
            await channel.close(grace=None)

    def _caller(self, epoch: int = 0) -> Any:
        return wire.caller_to_pb(self.group, self.member, epoch)

    # -- the calls --------------------------------------------------------------------------------

    async def arm_watchdog(self, timeout_s: float, action: WatchdogAction, epoch: int, *,
                           call_timeout_s: float | None = None) -> WatchdogStatus:
        """Arm the caller's watchdog: ``action`` after ``timeout_s`` without a kick."""
        request = pb.ArmRequest(caller=self._caller(epoch), timeout_ms=round(timeout_s * 1000),
                                action=wire.to_pb(action))
        return wire.watchdog_from_pb(await self._unary("Arm", request, call_timeout_s))

    async def kick(self, epoch: int, *, call_timeout_s: float | None = None) -> WatchdogStatus:
        """Push the deadline back. :class:`~vnfha.errors.BridgeRequestError` with reason
        ``"not-armed"`` when the watchdog is not armed (it fired, or was never armed)."""
        request = pb.KickRequest(caller=self._caller(epoch))
        return wire.watchdog_from_pb(await self._unary("Kick", request, call_timeout_s))

    async def disarm(self, epoch: int, *,
                     call_timeout_s: float | None = None) -> WatchdogStatus:
        """Disarm the caller's watchdog (idempotent)."""
        request = pb.DisarmRequest(caller=self._caller(epoch))
        return wire.watchdog_from_pb(await self._unary("Disarm", request, call_timeout_s))

    async def fence(self, member: str, epoch: int, mode: FenceMode, reason: str, *,
                    call_timeout_s: float | None = None) -> FenceResult:
        """Fence ``member`` (``epoch`` is the epoch being fenced); returns once the bridge
        confirms the instance cannot act."""
        request = pb.FenceRequest(caller=self._caller(epoch), target_member=member,
                                  mode=wire.to_pb(mode), reason=reason)
        return wire.fence_from_pb(await self._unary("Fence", request, call_timeout_s))

    async def placement(self, *, call_timeout_s: float | None = None) -> PlacementView:
        """Where the group's members run, and every host: up or down, and its pending planned
        maintenance (:attr:`HostStatus.maintenance_pending
        <vnfha.nfvi.model.HostStatus.maintenance_pending>`, deadline and detail)."""
        request = pb.GetPlacementRequest(caller=self._caller())
        return wire.placement_from_pb(await self._unary("GetPlacement", request,
                                                        call_timeout_s))

    async def check_policy(self, policy: PlacementPolicy, *,
                           call_timeout_s: float | None = None) -> PolicyReport:
        """The group's placement checked against ``policy``."""
        request = pb.CheckPolicyRequest(caller=self._caller(), policy=wire.to_pb(policy))
        reply = await self._unary("CheckPolicy", request, call_timeout_s)
        return wire.policy_from_pb(reply, policy)

    async def escalate(self, idempotency_key: str, fault: str, requested: RepairAction,
                       epoch: int, *, tried: Iterable[RepairAction] = (),
                       target_member: str | None = None,
                       evacuation_policy: PlacementPolicy | None = None,
                       call_timeout_s: float | None = None) -> RepairTicket:
        """Report ``fault`` and ask for ``requested`` (REBOOT, EVACUATE or NONE); the same
        ``idempotency_key`` always returns the same ticket. :class:`~vnfha.errors.
        RepairInProgress` when another ticket owns the instance's repair."""
        request = pb.EscalateRequest(
            caller=self._caller(epoch), idempotency_key=idempotency_key,
            target_member=target_member or "", fault=fault, requested=wire.to_pb(requested),
            tried=[wire.to_pb(a) for a in tried])
        if evacuation_policy is not None:
            request.evacuation_policy = wire.to_pb(evacuation_policy)
        return wire.ticket_from_pb(await self._unary("Escalate", request, call_timeout_s))

    async def watch_repair(self, ticket_id: str, *,
                           timeout_s: float) -> AsyncIterator[RepairTicket]:
        """The ticket now, then each change, until it is terminal; the whole stream must end
        within ``timeout_s`` (else :class:`~vnfha.errors.BridgeUnavailable`)."""
        request = pb.WatchRepairRequest(caller=self._caller(), ticket_id=ticket_id)
        async for reply in self._stream("WatchRepair", request, timeout_s):
            yield wire.ticket_from_pb(reply)

    async def watch_events(self, *,
                           timeout_s: float | None = None) -> AsyncIterator[BridgeEvent]:
        """Events for the group: first the pending planned maintenances of its hosts, then
        every event from now on, until the bridge ends the stream (or ``timeout_s`` passes).
        Event kinds this client does not know are skipped."""
        request = pb.WatchEventsRequest(caller=self._caller())
        async for reply in self._stream("WatchEvents", request, timeout_s):
            event = wire.event_from_pb(reply)
            if event is not None:
                yield event

    async def move_address(self, address: ServiceAddress | str, epoch: int, *,
                           call_timeout_s: float | None = None) -> AddressMove:
        """Bind service ``address`` to this member's own instance at the NFVI, in ``epoch``
        (the active's, before it serves); returns once the bridge's driver confirms it, with
        the previous holder and whether anything ``changed`` (False: a repeat). A
        :class:`~vnfha.net.address.ServiceAddress` is sent as ``ADDRESS/PREFIX`` (its device
        is the guest's, not the cloud's); text is sent as given and checked by the bridge.
        Retried on UNAVAILABLE within the deadline (a repeat is harmless). Errors:
        :class:`~vnfha.errors.StaleEpochRejected` (a newer epoch moved it or spoke: this member
        is deposed); :class:`~vnfha.errors.BridgeRequestError` with ``code`` and ``reason``:
        FAILED_PRECONDITION ``address-in-use`` (another group's instance holds it) or
        ``epoch-conflict`` (this epoch moved it to another member), UNIMPLEMENTED (this
        bridge cannot move addresses: its driver has no network API, reason
        ``not-supported``, or the bridge predates the call), INVALID_ARGUMENT (not a service
        address), NOT_FOUND / PERMISSION_DENIED (the caller), INTERNAL (the driver failed or
        did not confirm: the address may be half moved, move it again);
        :class:`~vnfha.errors.BridgeUnavailable` with ``outcome_unknown`` (no answer in time:
        the address may or may not have moved)."""
        request = pb.MoveAddressRequest(caller=self._caller(epoch), address=_cidr(address))
        reply = await self._unary("MoveAddress", request, call_timeout_s)
        return wire.address_move_from_pb(reply)

    async def get_address(self, address: ServiceAddress | str, *,
                          call_timeout_s: float | None = None) -> AddressBinding:
        """Which member of the group holds service ``address`` at the NFVI now, as the
        bridge's driver says (``bound`` False: none of the group's instances), with the epoch
        of the move (0: unknown). Errors as for :meth:`move_address`, without the epoch's."""
        request = pb.GetAddressRequest(caller=self._caller(), address=_cidr(address))
        return wire.binding_from_pb(await self._unary("GetAddress", request, call_timeout_s))

    async def plan_maintenance(self, host: str, deadline_in_s: float, reason: str = "", *,
                               call_timeout_s: float | None = None) -> MaintenancePlan:
        """Operators: announce that ``host`` goes down ``deadline_in_s`` seconds from now; the
        bridge sends ``MAINTENANCE_PLANNED`` to every group with an instance there and returns
        them. :class:`~vnfha.errors.BridgeRequestError`: NOT_FOUND (unknown host),
        INVALID_ARGUMENT (notice not in (0, 7 days]), PERMISSION_DENIED (mutual TLS, and this
        certificate is not an operator's)."""
        request = pb.PlanMaintenanceRequest(host=host, deadline_in_s=deadline_in_s,
                                            reason=reason)
        reply = await self._unary("PlanMaintenance", request, call_timeout_s)
        return wire.maintenance_from_pb(reply)

    async def list_tickets(self, *, group: str | None = None, open_only: bool = False,
                           limit: int | None = None,
                           call_timeout_s: float | None = None) -> TicketList:
        """Operators: the repair tickets the bridge remembers, newest first: ``group``'s (None:
        every group's), only the open ones if ``open_only``, at most ``limit`` (None: the
        bridge's default, 100; at most 1000; ``ValueError`` below 1), with how many matched.
        :class:`~vnfha.errors.BridgeRequestError`:
        INVALID_ARGUMENT (a limit out of range, a group name over 256 bytes),
        PERMISSION_DENIED (mutual TLS, and this certificate is not an operator's)."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit={limit}: must be at least 1")
        request = pb.ListTicketsRequest(group=group or "", open_only=open_only,
                                        limit=limit or 0)
        reply = await self._unary("ListTickets", request, call_timeout_s)
        return wire.ticket_list_from_pb(reply)

    # -- transport --------------------------------------------------------------------------------

    def _call(self, method: str) -> Any:
        call = self._calls.get(method)
        if call is None:
            raise NfviError("the client is not open (use it as an async context manager)",
                            method=method, target=self.target)
        return call

    async def _unary(self, method: str, request: Any, call_timeout_s: float | None) -> Any:
        """One idempotent unary call with retries on UNAVAILABLE, all within the deadline."""
        timeout_s = self.timeout_s if call_timeout_s is None else call_timeout_s
        call = self._call(method)
        deadline = self._clock.monotonic() + timeout_s
        backoff = self._backoff_s
        attempts = 0
        while True:
            attempts += 1
            remaining = deadline - self._clock.monotonic()
            try:
                return await call(request, timeout=max(remaining, 0.0))
            except grpc.aio.AioRpcError as e:
                retry = e.code() is grpc.StatusCode.UNAVAILABLE and \
                    self._clock.monotonic() + backoff < deadline
                if not retry:
                    raise self._error(method, e, request, timeout_s, attempts) from e
            await self._clock.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _stream(self, method: str, request: Any,
                      timeout_s: float | None) -> AsyncIterator[Any]:
        call = self._call(method)(request, timeout=timeout_s)
        try:
            async for reply in call:
                yield reply
        except grpc.aio.AioRpcError as e:
            raise self._error(method, e, request, timeout_s or 0.0, 1) from e
        finally:
            call.cancel()

    def _error(self, method: str, e: grpc.aio.AioRpcError, request: Any, timeout_s: float,
               attempts: int) -> NfviError:
        """Translate a status into the error tree (see the module docstring)."""
        code = e.code()
        details = e.details() or code.name
        pairs: Any = e.trailing_metadata() or ()
        meta = {str(k): v for k, v in pairs if isinstance(v, str)}
        reason = meta.get(wire.REASON_KEY)
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            acting = method in ("Arm", "Kick", "Disarm", "Fence", "Escalate", "MoveAddress",
                                "PlanMaintenance")
            return BridgeUnavailable(f"{details} ({attempts} attempt(s) within {timeout_s} s)",
                                     method=method, target=self.target, timeout_s=timeout_s,
                                     outcome_unknown=acting)
        if reason == "stale-epoch":
            highest = meta.get(wire.HIGHEST_EPOCH_KEY)
            return StaleEpochRejected(details, method=method, target=self.target,
                                      group=self.group, member=self.member,
                                      epoch=request.caller.epoch,
                                      highest=int(highest) if highest else None)
        if reason == "repair-in-progress":
            return RepairInProgress(details, method=method, target=self.target,
                                    ticket=meta.get(wire.TICKET_KEY, ""),
                                    owner=meta.get(wire.OWNER_KEY, ""))
        return BridgeRequestError(details, method=method, target=self.target, code=code.name,
                                  reason=reason)


def _cidr(address: ServiceAddress | str) -> str:
    """The request's ``address``: ``ADDRESS/PREFIX`` of a service address, or text as given."""
    return address.cidr if isinstance(address, ServiceAddress) else address


class NoBridge:
    """The null :class:`NfviPort`, for members configured without a bridge.

    The watchdog calls succeed and do nothing; :meth:`escalate` returns a ticket RECORDED and
    owned by the VNF (nobody below will repair); :meth:`fence` raises
    :class:`~vnfha.errors.NfviError`, because claiming that an instance is fenced when nothing
    fenced it would be unsafe (without a bridge, a standby waits for the active's lease to
    expire instead), and so do :meth:`move_address` and :meth:`get_address` (nothing below
    moves or knows addresses: ``service_address_mode = "nfvi"`` needs a bridge); the placement
    is empty; the watches end at once.
    """

    def __init__(self, *, group: str, member: str) -> None:
        self.group = group
        self.member = member

    @property
    def configured(self) -> bool:
        """False: there is no bridge."""
        return False

    async def arm_watchdog(self, timeout_s: float, action: WatchdogAction, epoch: int, *,
                           call_timeout_s: float | None = None) -> WatchdogStatus:
        """Nothing to arm: reports the watchdog as disarmed."""
        return WatchdogStatus(self.member, False)

    async def kick(self, epoch: int, *, call_timeout_s: float | None = None) -> WatchdogStatus:
        """Nothing to kick."""
        return WatchdogStatus(self.member, False)

    async def disarm(self, epoch: int, *,
                     call_timeout_s: float | None = None) -> WatchdogStatus:
        """Nothing to disarm."""
        return WatchdogStatus(self.member, False)

    async def fence(self, member: str, epoch: int, mode: FenceMode, reason: str, *,
                    call_timeout_s: float | None = None) -> FenceResult:
        """Always refuses: nothing can fence without a bridge."""
        raise NfviError(f"cannot fence {member!r}: no NFVI bridge is configured",
                        method="Fence", target="none")

    async def placement(self, *, call_timeout_s: float | None = None) -> PlacementView:
        """Nothing is known: no members, no hosts."""
        return PlacementView((), ())

    async def check_policy(self, policy: PlacementPolicy, *,
                           call_timeout_s: float | None = None) -> PolicyReport:
        """Nothing is known, so nothing violates ``policy``."""
        return PolicyReport(policy, ())

    async def escalate(self, idempotency_key: str, fault: str, requested: RepairAction,
                       epoch: int, *, tried: Iterable[RepairAction] = (),
                       target_member: str | None = None,
                       evacuation_policy: PlacementPolicy | None = None,
                       call_timeout_s: float | None = None) -> RepairTicket:
        """A ticket RECORDED and owned by the VNF: nobody below repairs."""
        member = target_member or self.member
        return RepairTicket(
            ticket_id=f"local-{idempotency_key}", idempotency_key=idempotency_key,
            group=self.group, member=member, instance="", action=RepairAction.NONE,
            owner=RepairOwner.VNF, owner_name=self.member, state=RepairState.RECORDED,
            detail=f"no NFVI bridge: {fault}", host="", epoch=epoch)

    async def watch_repair(self, ticket_id: str, *,
                           timeout_s: float) -> AsyncIterator[RepairTicket]:
        """Ends at once: there is nothing to follow."""
        nothing: tuple[RepairTicket, ...] = ()
        for item in nothing:
            yield item

    async def watch_events(self, *,
                           timeout_s: float | None = None) -> AsyncIterator[BridgeEvent]:
        """Ends at once: no events come from nowhere."""
        nothing: tuple[BridgeEvent, ...] = ()
        for item in nothing:
            yield item

    async def move_address(self, address: ServiceAddress | str, epoch: int, *,
                           call_timeout_s: float | None = None) -> AddressMove:
        """Always refuses: without a bridge nothing below can move an address."""
        raise NfviError(f"cannot move service address {_cidr(address)}: no NFVI bridge is "
                        "configured (service_address_mode \"nfvi\" needs one)",
                        method="MoveAddress", target="none")

    async def get_address(self, address: ServiceAddress | str, *,
                          call_timeout_s: float | None = None) -> AddressBinding:
        """Always refuses: without a bridge nothing below knows where an address is."""
        raise NfviError(f"cannot tell who holds service address {_cidr(address)}: no NFVI "
                        "bridge is configured", method="GetAddress", target="none")
