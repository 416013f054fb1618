"""The NFVI bridge server: the six services of ``nfvi.proto`` and grpc.health.v1 on one port.

::

    async with BridgeServer(SimDriver(), listen="127.0.0.1:0") as bridge:
        print(bridge.address)          # "127.0.0.1:<port>"
        ...

Guarantees:

- Every request is decoded and checked (:mod:`vnfha.nfvi.wire`), then handed to the
  :class:`~vnfha.bridge.core.BridgeCore`; every refusal is answered with its status code, a
  message naming the offending value, and trailing metadata (``vnfha-reason``) where a code
  stands for several refusals. A message over ``max_message_bytes`` is RESOURCE_EXHAUSTED
  (grpc refuses it before it is decoded). A driver failure is INTERNAL. Nothing a client sends
  stops the server.
- Refusals are logged (INFO, logger ``vnfha.nfvi.server``) at most once per status code every
  ``refusal_log_interval_s``; the next line of a code says how many were suppressed meanwhile,
  and :attr:`BridgeServer.refusals` counts them all (grpc.health.v1's refusals the same way,
  on ``vnfha.grpc_health``). So a client that sends garbage as fast as it can costs the log a
  handful of lines per interval, never one per request, and no traceback.
- With ``require_client_cert`` (pass credentials made with ``require_client_auth=True``, e.g.
  :func:`vnfha.nfvi.wire.server_credentials`), the client certificate's common name must be the
  calling member, and the member must belong to the group it names: else PERMISSION_DENIED.
  The Operations service (an operator's PlanMaintenance and ListTickets) takes only a
  certificate whose common name is in ``operators``; without mutual TLS it is open like every
  other service, so ``operators`` without ``require_client_cert`` is refused (it would protect
  nothing).
- grpc.health.v1 answers SERVING for ``""`` and each of the six service names while the server
  runs, NOT_SERVING once it is stopping.
- ``Network`` (MoveAddress, GetAddress) is served whatever the driver; a driver that cannot
  move addresses (not a :class:`~vnfha.bridge.drivers.driver.AddressMover`: libvirt) answers
  UNIMPLEMENTED with ``vnfha-reason: not-supported``.
- With ``state`` (a :class:`~vnfha.bridge.state.StateStore`), the core restores the highest
  epochs, tickets and pending maintenances from it on entry and saves them after each change
  (``docs/nfvi-bridge.md``, State and restarts); without it they live in memory only.
- Leaving the context stops the gRPC server (ending open streams), the bridge's timers and
  repairs; the driver is not closed (its owner does that).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc
import grpc.aio

from vnfha._ratelog import RateLimitedLog
from vnfha.bridge.core import BridgeCore, BridgeLimits
from vnfha.bridge.drivers.driver import Driver, DriverError
from vnfha.bridge.state import StateStore
from vnfha.clock import Clock, SystemClock
from vnfha.grpc_health import HealthService, ServingStatus
from vnfha.nfvi import wire
from vnfha.nfvi.wire import DEFAULT_MAX_MESSAGE_BYTES, Method, Refused

__all__ = ["DEFAULT_REFUSAL_LOG_INTERVAL_S", "BridgeServer"]

log = logging.getLogger("vnfha.nfvi.server")

DEFAULT_REFUSAL_LOG_INTERVAL_S = 10.0
"""At most one refusal log line per status code this often (the others are counted)."""

Context = grpc.aio.ServicerContext[Any, Any]


class BridgeServer:
    """The bridge's gRPC endpoint over a :class:`~vnfha.bridge.drivers.driver.Driver` (see the
    module)."""

    def __init__(self, driver: Driver, *, listen: str = "127.0.0.1:0",
                 clock: Clock | None = None,
                 server_credentials: grpc.ServerCredentials | None = None,
                 require_client_cert: bool = False,
                 operators: frozenset[str] = frozenset(),
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 limits: BridgeLimits | None = None, stop_grace_s: float = 0.5,
                 state: StateStore | None = None,
                 wall_clock: Callable[[], float] = time.time,
                 refusal_log_interval_s: float = DEFAULT_REFUSAL_LOG_INTERVAL_S) -> None:
        if require_client_cert and server_credentials is None:
            raise ValueError("require_client_cert needs server_credentials (mutual TLS)")
        if operators and not require_client_cert:
            raise ValueError(f"operators={sorted(operators)} are client certificate names: they "
                             "need require_client_cert (mutual TLS); without it anyone may call "
                             "Operations")
        self.driver = driver
        clock = clock or SystemClock()
        self.core = BridgeCore(driver, clock=clock, limits=limits, operators=operators,
                               wall_clock=wall_clock, state=state)
        self._refused = RateLimitedLog(log, interval_s=refusal_log_interval_s,
                                       monotonic=clock.monotonic)
        self.health = HealthService(refusal_log_interval_s=refusal_log_interval_s,
                                    monotonic=clock.monotonic)
        self._listen = listen
        self._credentials = server_credentials
        self._mtls = require_client_cert
        self._max_message_bytes = max_message_bytes
        self._stop_grace_s = stop_grace_s
        self._server: grpc.aio.Server | None = None
        self.port = 0
        self.address = ""

    @property
    def refusals(self) -> Mapping[str, int]:
        """Every refusal answered so far (logged or not), per status code name."""
        return dict(self._refused.counts)

    async def __aenter__(self) -> BridgeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> str:
        """Bind, start the core and serve; returns the bound ``host:port``."""
        await self.core.__aenter__()
        server = grpc.aio.server(options=wire.message_options(self._max_message_bytes))
        server.add_generic_rpc_handlers((*wire.generic_handlers(self._handler),
                                         self.health.handler()))
        try:
            if self._credentials is None:
                port = server.add_insecure_port(self._listen)
            else:
                port = server.add_secure_port(self._listen, self._credentials)
        except RuntimeError as e:
            await self.core.close()
            raise OSError(f"cannot listen on {self._listen}: {e}") from e
        await server.start()
        self._server = server
        self.port = port
        self.address = f"{self._listen.rsplit(':', 1)[0]}:{port}"
        for service in wire.SERVICES:
            self.health.set(service, ServingStatus.SERVING)
        log.info("NFVI bridge (driver %s) serving on %s%s", self.driver.name, self.address,
                 " with mutual TLS" if self._mtls else
                 " with TLS" if self._credentials else "")
        return self.address

    async def stop(self) -> None:
        """Stop serving (health NOT_SERVING first), then the core. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        for service in ("", *wire.SERVICES):
            self.health.set(service, ServingStatus.NOT_SERVING)
        self.health.close()
        await self.core.close()  # ends the watch streams, so the grace period is not waited out
        await server.stop(self._stop_grace_s)

    # -- dispatch ---------------------------------------------------------------------------------

    def _peer(self, context: Context) -> str | None:
        """The client certificate's CN under mutual TLS ("" if it has none), else None."""
        if not self._mtls:
            return None
        names = list(context.auth_context().get("x509_common_name", []))
        return names[0].decode() if names else ""

    def _handler(self, method: Method) -> Callable[..., Any]:
        call = getattr(self, f"_{method.name}")
        if method.streaming:
            async def stream(data: bytes, context: Context) -> AsyncIterator[Any]:
                try:
                    request = wire.decode_request(method, data)
                    items = await call(request, self._peer(context))
                    async for item in items:
                        yield item
                except Refused as e:
                    await self._abort(context, e)
            return stream

        async def unary(data: bytes, context: Context) -> Any:
            try:
                request = wire.decode_request(method, data)
                return await call(request, self._peer(context))
            except Refused as e:
                await self._abort(context, e)
            except DriverError as e:
                await self._abort(context, Refused("INTERNAL", f"{method.name}: driver: {e}"))
        return unary

    async def _abort(self, context: Context, refused: Refused) -> None:
        """End the call with the refusal's status, message and trailing metadata; log it
        unless one of its code was logged within the interval."""
        self._refused(refused.code, "refused (%s): %s", refused.code, refused.message)
        metadata = tuple(refused.metadata.items())
        await context.abort(grpc.StatusCode[refused.code], refused.message,
                            trailing_metadata=metadata)

    # -- the methods: decode, call the core, encode -----------------------------------------------

    async def _Arm(self, request: Any, peer: str | None) -> Any:
        caller = wire.decode_caller(request, acting=True)
        action = wire.decode_watchdog_action(request)
        if request.timeout_ms == 0:
            raise Refused("INVALID_ARGUMENT", "timeout_ms is required (> 0)")
        status = await self.core.arm(caller, peer, request.timeout_ms / 1000, action)
        return wire.watchdog_to_pb(status)

    async def _Kick(self, request: Any, peer: str | None) -> Any:
        caller = wire.decode_caller(request, acting=True)
        return wire.watchdog_to_pb(await self.core.kick(caller, peer))

    async def _Disarm(self, request: Any, peer: str | None) -> Any:
        caller = wire.decode_caller(request, acting=True)
        return wire.watchdog_to_pb(await self.core.disarm(caller, peer))

    async def _GetPlacement(self, request: Any, peer: str | None) -> Any:
        caller = wire.decode_caller(request, acting=False)
        return wire.placement_to_pb(await self.core.placement(caller, peer))

    async def _CheckPolicy(self, request: Any, peer: str | None) -> Any:
        caller = wire.decode_caller(request, acting=False)
        policy = wire.decode_policy(request.policy, "policy")
        return wire.policy_to_pb(await self.core.check_policy(caller, peer, policy))

    async def _Fence(self, request: Any, peer: str | None) -> Any:
        caller = wire.decode_caller(request, acting=True)
        target = wire.name("target_member", request.target_member)
        mode = wire.decode_fence_mode(request)
        reason = wire.text("reason", request.reason)
        return wire.fence_to_pb(await self.core.fence(caller, peer, target, mode, reason))

    async def _Escalate(self, request: Any, peer: str | None) -> Any:
        caller = wire.decode_caller(request, acting=True)
        escalation = wire.decode_escalation(request)
        return wire.ticket_to_pb(await self.core.escalate(caller, peer, escalation))

    async def _WatchRepair(self, request: Any, peer: str | None) -> AsyncIterator[Any]:
        caller = wire.decode_caller(request, acting=False)
        ticket_id = wire.name("ticket_id", request.ticket_id)
        tickets = await self.core.watch_repair(caller, peer, ticket_id)
        return _mapped(tickets, wire.ticket_to_pb)

    async def _WatchEvents(self, request: Any, peer: str | None) -> AsyncIterator[Any]:
        caller = wire.decode_caller(request, acting=False)
        return _mapped(await self.core.watch_events(caller, peer), wire.event_to_pb)

    async def _MoveAddress(self, request: Any, peer: str | None) -> Any:
        caller = wire.decode_caller(request, acting=True)
        address = wire.decode_address(request)
        return wire.address_move_to_pb(await self.core.addresses.move(caller, peer, address))

    async def _GetAddress(self, request: Any, peer: str | None) -> Any:
        caller = wire.decode_caller(request, acting=False)
        address = wire.decode_address(request)
        return wire.binding_to_pb(await self.core.addresses.get(caller, peer, address))

    async def _PlanMaintenance(self, request: Any, peer: str | None) -> Any:
        maintenance = wire.decode_maintenance(request)
        return wire.maintenance_to_pb(await self.core.plan_maintenance(peer, maintenance))

    async def _ListTickets(self, request: Any, peer: str | None) -> Any:
        listing = self.core.list_tickets(peer, wire.decode_ticket_query(request))
        return wire.ticket_list_to_pb(listing, max_bytes=self._max_message_bytes)


async def _mapped(items: AsyncIterator[Any], encode: Callable[[Any], Any]) -> AsyncIterator[Any]:
    async for item in items:
        yield encode(item)
