"""grpc.health.v1, served and probed without grpcio-health-checking.

The health protocol is two one-field messages (``HealthCheckRequest{string service = 1}`` and
``HealthCheckResponse{ServingStatus status = 1}``), so vnfha encodes them by hand instead of
depending on grpcio-health-checking, whose releases pin a protobuf major that vnfha's generated
code does not target. The wire format is exactly the standard one: any gRPC health client
(``grpc_health_probe``, Kubernetes) talks to :class:`HealthService`, and :func:`probe` talks to
any standard server.

Guarantees:

- ``Check`` of a service that was never set answers NOT_FOUND, as the standard servicer does;
  ``""`` (the whole server) starts as SERVING.
- ``Watch`` sends the current status at once and then every change, and ends when the server
  stops (``close``).
- A malformed request (bytes that are not a ``HealthCheckRequest``: truncated, a wrong wire
  type for ``service``, a ``service`` that is not UTF-8, a field number outside protobuf's
  range, a tag longer than 5 bytes) gets INVALID_ARGUMENT; the server keeps serving. Unknown
  fields are skipped, as protobuf does (except groups, a deprecated wire type, which are
  refused). So whatever this module accepts, protobuf's own parser reads as the same request
  (``tests/component/test_fuzz_health.py`` checks it). Nothing a client sends makes a handler
  raise anything but that abort, so grpc logs no traceback for it.
- Refusals are logged (INFO, logger ``vnfha.grpc_health``) at most once every
  ``refusal_log_interval_s``, the next line saying how many were suppressed meanwhile
  (:attr:`HealthService.refusals` counts them all); an unknown service's NOT_FOUND is an answer,
  not a refusal, and is not logged. A status message quotes at most
  :data:`MAX_QUOTED_CHARS` characters of a service name, so a huge name cannot make the reply's
  trailers exceed what a client accepts.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping

import grpc

from vnfha._ratelog import RateLimitedLog

__all__ = ["MAX_QUOTED_CHARS", "SERVICE_NAME", "HealthService", "ServingStatus", "probe"]

log = logging.getLogger("vnfha.grpc_health")

SERVICE_NAME = "grpc.health.v1.Health"
"""The fully qualified gRPC service name of the health protocol."""
MAX_QUOTED_CHARS = 128
"""The most characters of a requested service name a status message quotes."""


class ServingStatus(enum.IntEnum):
    """``HealthCheckResponse.ServingStatus`` values (the standard numbering)."""

    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3
    """Only in ``Watch`` replies, for a service that is not registered."""


class MalformedHealthMessage(ValueError):
    """A health message that is not valid protobuf of the expected shape."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int, *, max_bytes: int = 10) -> tuple[int, int]:
    """The varint at ``pos`` (at most ``max_bytes`` long) and the position after it."""
    result = shift = 0
    end = min(len(data), pos + max_bytes)
    while pos < end:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise MalformedHealthMessage("truncated or overlong varint")


_MAX_TAG = 0xFFFF_FFFF  # field numbers run from 1 to 2**29 - 1


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Decode a flat protobuf message: every (number, value) of a varint or length-delimited
    field, in order; fixed-width fields are skipped (no health field is one)."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos, max_bytes=5)  # a tag is 32 bits, as for protobuf
        number, wire_type = tag >> 3, tag & 7
        if number == 0 or tag > _MAX_TAG:  # protobuf refuses both too
            raise MalformedHealthMessage(f"invalid field number {number}")
        if wire_type == 0:
            value, pos = _read_varint(data, pos)
            fields.append((number, value))
        elif wire_type == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise MalformedHealthMessage("length-delimited field runs past the end")
            fields.append((number, data[pos:pos + length]))
            pos += length
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
        else:
            raise MalformedHealthMessage(f"unsupported wire type {wire_type}")
    if pos != len(data):
        raise MalformedHealthMessage("truncated fixed-width field")
    return fields


def encode_request(service: str) -> bytes:
    """``HealthCheckRequest{service}`` on the wire."""
    raw = service.encode()
    return b"\x0a" + _varint(len(raw)) + raw if raw else b""


def decode_request(data: bytes) -> str:
    """The ``service`` of a ``HealthCheckRequest`` (the last one, if sent more than once, as
    protobuf reads it); :class:`MalformedHealthMessage` if bad, including an earlier ``service``
    that is not UTF-8 (protobuf checks each one)."""
    service = ""
    for number, value in _fields(data):
        if number != 1:
            continue
        if not isinstance(value, bytes):
            raise MalformedHealthMessage("field 1 (service) is not a string")
        try:
            service = value.decode()
        except UnicodeDecodeError as e:
            raise MalformedHealthMessage("service name is not UTF-8") from e
    return service


def encode_response(status: ServingStatus) -> bytes:
    """``HealthCheckResponse{status}`` on the wire (proto3 omits the zero value)."""
    return b"\x08" + _varint(int(status)) if status else b""


def decode_response(data: bytes) -> ServingStatus:
    """The status of a ``HealthCheckResponse``; unknown numbers read as UNKNOWN."""
    value = next((v for number, v in reversed(_fields(data)) if number == 1), 0)
    if not isinstance(value, int):
        raise MalformedHealthMessage("field 1 (status) is not a varint")
    try:
        return ServingStatus(value)
    except ValueError:
        return ServingStatus.UNKNOWN


def _identity(data: bytes) -> bytes:
    return data


def _quoted(service: str) -> str:
    """``service`` as a status message shows it: its repr, cut to :data:`MAX_QUOTED_CHARS`."""
    if len(service) <= MAX_QUOTED_CHARS:
        return repr(service)
    return f"{service[:MAX_QUOTED_CHARS]!r}... ({len(service)} characters)"


class HealthService:
    """The server side: per-service statuses, ``Check`` and ``Watch``.

    Register with ``server.add_generic_rpc_handlers((health.handler(),))`` on a ``grpc.aio``
    server; change statuses with :meth:`set`; call :meth:`close` before stopping the server so
    that open ``Watch`` streams end. ``refusal_log_interval_s`` and ``monotonic`` rate-limit
    the log of malformed requests (see the module).
    """

    def __init__(self, *, refusal_log_interval_s: float = 10.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._status: dict[str, ServingStatus] = {"": ServingStatus.SERVING}
        self._changed = asyncio.Condition()
        self._version = 0  # bumped on every change: a watcher never misses one between checks
        self._closed = False
        self._refused = RateLimitedLog(log, interval_s=refusal_log_interval_s,
                                       monotonic=monotonic)

    @property
    def refusals(self) -> Mapping[str, int]:
        """Every malformed request refused so far (logged or not), per status code name."""
        return dict(self._refused.counts)

    def status(self, service: str = "") -> ServingStatus | None:
        """The status set for ``service``, or None if it was never set."""
        return self._status.get(service)

    def set(self, service: str, status: ServingStatus) -> None:
        """Set ``service``'s status (``""`` is the whole server) and wake its watchers."""
        self._status[service] = status
        self._notify()

    def close(self) -> None:
        """End every ``Watch`` stream (the server is going away)."""
        self._closed = True
        self._notify()

    @property
    def version(self) -> int:
        """Bumped on every change of a status (a watcher never misses one between checks)."""
        return self._version

    def _notify(self) -> None:
        self._version += 1

        async def wake() -> None:
            async with self._changed:
                self._changed.notify_all()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.create_task(wake())  # noqa: RUF006 - fire and forget; it only wakes waiters

    async def _decode(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                      method: str) -> str:
        """The requested service name; a malformed request ends the call (INVALID_ARGUMENT),
        logged at most once per interval."""
        try:
            return decode_request(request)
        except MalformedHealthMessage as e:
            message = f"bad HealthCheckRequest: {e}"
            self._refused("INVALID_ARGUMENT", "health %s refused (INVALID_ARGUMENT): %s",
                          method, message)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

    async def _check(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                     ) -> bytes:
        service = await self._decode(request, context, "Check")
        status = self._status.get(service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {_quoted(service)}")
        return encode_response(status)

    async def _watch(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                     ) -> AsyncIterator[bytes]:
        service = await self._decode(request, context, "Watch")
        last: ServingStatus | None = None
        while not self._closed:
            seen = self._version
            current = self._status.get(service, ServingStatus.SERVICE_UNKNOWN)
            if current != last:
                last = current
                yield encode_response(current)
            async with self._changed:
                await self._changed.wait_for(lambda seen=seen: self._version != seen)  # type: ignore[misc]

    def handler(self) -> grpc.GenericRpcHandler[bytes, bytes]:
        """The generic handler to add to a ``grpc.aio`` server."""
        return grpc.method_handlers_generic_handler(SERVICE_NAME, {
            "Check": grpc.unary_unary_rpc_method_handler(
                self._check, request_deserializer=_identity, response_serializer=_identity),
            "Watch": grpc.unary_stream_rpc_method_handler(
                self._watch, request_deserializer=_identity, response_serializer=_identity),
        })


async def probe(channel: grpc.aio.Channel, service: str = "", *, timeout_s: float,
                ) -> ServingStatus:
    """One ``Check`` call. Returns the status; raises ``grpc.aio.AioRpcError`` as the server
    answered (NOT_FOUND for an unknown service, DEADLINE_EXCEEDED after ``timeout_s``)."""
    call = channel.unary_unary(f"/{SERVICE_NAME}/Check", request_serializer=_identity,
                               response_deserializer=_identity)
    reply: bytes = await call(encode_request(service), timeout=timeout_s)
    return decode_response(reply)
