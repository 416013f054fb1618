"""The member's replication endpoint (gRPC): it serves a standby's stream only while the member
is active, and only after the standby's Hello and proof pass (:mod:`vnfha.replication.auth`).
The stream itself is :meth:`vnfha.replication.active.Primary.serve`'s."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NoReturn

import grpc
import grpc.aio

from vnfha._ratelog import RateLimitedLog
from vnfha.clock import Clock
from vnfha.grpc_health import HealthService
from vnfha.metrics import Refusal
from vnfha.model import NAME_PATTERN
from vnfha.replication import auth, wire
from vnfha.replication.active import Primary
from vnfha.replication.state import Limits
from vnfha.replication.wire import pb

__all__ = ["ReplicationServer"]

log = logging.getLogger("vnfha.replication")


class ReplicationServer:
    """The member's replication endpoint. It always runs; it serves only while the member has
    a :class:`Primary` (is active), and answers FAILED_PRECONDITION otherwise. With ``health``,
    grpc.health.v1 is served on the same port (:mod:`vnfha.health.serving` says what it answers).

    A stream is served only after its Hello names this group and a valid member name (and,
    under mutual TLS, the certificate's own name) and the standby proved it knows the grant's
    secret. Every refusal is answered with its status, counted through ``on_refused`` and logged
    at most once per reason every 10 s."""

    def __init__(self, *, listen: str, group: str, member: str, limits: Limits,
                 credentials: grpc.ServerCredentials | None,
                 primary: Callable[[], Primary | None],
                 allowed_peers: Callable[[], frozenset[str]] | None,
                 on_stale: Callable[[int], None], keepalive_s: float, clock: Clock,
                 health: HealthService | None = None,
                 on_refused: Callable[[Refusal], None] | None = None) -> None:
        self._listen = listen
        self._health = health
        self._keepalive_s = keepalive_s
        self._group = group
        self._member = member
        self._limits = limits
        self._credentials = credentials
        self._primary = primary
        self._allowed = allowed_peers
        self._on_stale = on_stale
        self._on_refused = on_refused
        self._clock = clock
        self._server: grpc.aio.Server | None = None
        self._refusal_log = RateLimitedLog(log, level=logging.WARNING, monotonic=clock.monotonic)
        self.address = ""
        self.stale_rejections = 0

    @property
    def refusals(self) -> dict[str, int]:
        """Streams refused for bad input so far, by :class:`~vnfha.metrics.Refusal` value."""
        return dict(self._refusal_log.counts)

    async def start(self) -> str:
        """Bind and serve; returns the bound ``host:port``."""
        server = grpc.aio.server(options=[
            *wire.message_options(self._limits.max_message_bytes),
            *wire.keepalive_options(self._keepalive_s, server=True)])
        server.add_generic_rpc_handlers((wire.generic_handler(self._stream),))
        if self._health is not None:
            server.add_generic_rpc_handlers((self._health.handler(),))
        host = self._listen.rsplit(":", 1)[0]
        if self._credentials is None:
            port = server.add_insecure_port(self._listen)
        else:
            port = server.add_secure_port(self._listen, self._credentials)
        await server.start()
        self._server = server
        self.address = f"{host}:{port}"
        return self.address

    async def stop(self, grace_s: float = 0.2) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None

    async def _refuse(self, context: grpc.aio.ServicerContext[Any, Any], reason: Refusal,
                      code: grpc.StatusCode, detail: str) -> NoReturn:
        """Count, log (rate-limited) and end the call with ``code``."""
        if self._on_refused is not None:
            self._on_refused(reason)
        self._refusal_log(reason.value, "%s: refused a replication stream from %s (%s): %s",
                          self._member, context.peer(), reason.value, detail)
        await context.abort(code, detail)
        raise AssertionError("abort returns only by raising")  # pragma: no cover

    async def _stream(self, request_iterator: Any,
                      context: grpc.aio.ServicerContext[Any, Any]) -> None:
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        try:
            first = wire.decode(pb.StandbyMessage, await context.read())
        except wire.Malformed as e:
            await self._refuse(context, Refusal.MALFORMED, invalid, f"first message: {e}")
        if first is wire.EOF:
            return  # the peer closed before saying anything (a standby stopped as it
            # connected, seen when a fleet stops): nothing was asked, nothing is refused
        if first.WhichOneof("kind") != "hello":
            await self._refuse(context, Refusal.MALFORMED, invalid,
                               "the first message must be a Hello")
        hello = first.hello
        if hello.group != self._group:
            await self._refuse(context, Refusal.WRONG_GROUP, invalid,
                               f"this is group {self._group!r}, not {hello.group[:80]!r}")
        if not NAME_PATTERN.match(hello.member):
            await self._refuse(context, Refusal.MALFORMED, invalid,
                               f"Hello.member {hello.member[:80]!r} is not a member name")
        if len(hello.nonce) != auth.NONCE_BYTES:
            await self._refuse(context, Refusal.MALFORMED, invalid,
                               f"Hello.nonce must be {auth.NONCE_BYTES} bytes, not "
                               f"{len(hello.nonce)} (a standby of an older vnfha, which does "
                               "not authenticate?)")
        if self._allowed is not None:
            names = list(context.auth_context().get("x509_common_name", []))
            peer = names[0].decode(errors="replace") if names else ""
            if peer != hello.member or peer not in self._allowed():
                await self._refuse(context, Refusal.PERMISSION,
                                   grpc.StatusCode.PERMISSION_DENIED,
                                   f"certificate {peer!r} may not replicate as "
                                   f"{hello.member!r} in group {self._group!r}")
        primary = self._primary()
        if primary is None or primary.closed:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"{self._member} is not active")
            return
        if hello.highest_epoch > primary.epoch:
            self.stale_rejections += 1
            self._on_stale(hello.highest_epoch)
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"epoch {primary.epoch} is stale: {hello.member} has seen "
                                f"epoch {hello.highest_epoch}")
        await self._authenticate(primary, hello, context)
        violation = await primary.serve(hello.member, hello.epoch, hello.sequence, context)
        if violation is not None:
            await self._refuse(context, Refusal.PROTOCOL, invalid,
                               f"{hello.member}: {violation}; stream closed")

    async def _authenticate(self, primary: Primary, hello: Any,
                            context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Challenge the standby to prove it knows ``primary``'s secret (and prove it too);
        returns once it has, ends the call otherwise (:mod:`vnfha.replication.auth`)."""
        nonce = auth.new_nonce()
        binding = {"group": self._group, "standby": hello.member, "epoch": primary.epoch,
                   "standby_nonce": hello.nonce, "active_nonce": nonce}
        await context.write(pb.ActiveMessage(challenge=pb.Challenge(
            epoch=primary.epoch, nonce=nonce,
            proof=auth.proof(primary.secret, auth.Side.ACTIVE, **binding))))
        try:
            reply = wire.decode(pb.StandbyMessage,
                                await self._clock.wait_for(context.read(), self._keepalive_s))
        except TimeoutError:
            reply = None
        except wire.Malformed as e:
            await self._refuse(context, Refusal.MALFORMED, grpc.StatusCode.INVALID_ARGUMENT,
                               f"{hello.member}: the answer to the challenge: {e}")
        expected = auth.proof(primary.secret, auth.Side.STANDBY, **binding)
        if reply is None or reply is wire.EOF or reply.WhichOneof("kind") != "proof" or \
                not auth.verify(expected, reply.proof.mac):
            await self._refuse(context, Refusal.UNAUTHENTICATED,
                               grpc.StatusCode.UNAUTHENTICATED,
                               f"{hello.member} did not prove it knows the replication secret of "
                               f"epoch {primary.epoch}")
