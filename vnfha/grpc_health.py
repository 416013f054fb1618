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
- A malformed request gets INVALID_ARGUMENT; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator

import grpc

__all__ = ["SERVICE_NAME", "HealthService", "ServingStatus", "probe"]

SERVICE_NAME = "grpc.health.v1.Health"
"""The fully qualified gRPC service name of the health protocol."""


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


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            break
    raise MalformedHealthMessage("truncated or overlong varint")


def _fields(data: bytes) -> dict[int, int | bytes]:
    """Decode a flat protobuf message; unknown fields are skipped, as protobuf does."""
    fields: dict[int, int | bytes] = {}
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, pos = _read_varint(data, pos)
            fields[number] = value
        elif wire_type == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise MalformedHealthMessage("length-delimited field runs past the end")
            fields[number] = data[pos:pos + length]
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
    """The ``service`` of a ``HealthCheckRequest``; :class:`MalformedHealthMessage` if bad."""
    value = _fields(data).get(1, b"")
    if not isinstance(value, bytes):
        raise MalformedHealthMessage("field 1 (service) is not a string")
    try:
        return value.decode()
    except UnicodeDecodeError as e:
        raise MalformedHealthMessage("service name is not UTF-8") from e


def encode_response(status: ServingStatus) -> bytes:
    """``HealthCheckResponse{status}`` on the wire (proto3 omits the zero value)."""
    return b"\x08" + _varint(int(status)) if status else b""


def decode_response(data: bytes) -> ServingStatus:
    """The status of a ``HealthCheckResponse``; unknown numbers read as UNKNOWN."""
    value = _fields(data).get(1, 0)
    if not isinstance(value, int):
        raise MalformedHealthMessage("field 1 (status) is not a varint")
    try:
        return ServingStatus(value)
    except ValueError:
        return ServingStatus.UNKNOWN


def _identity(data: bytes) -> bytes:
    return data


class HealthService:
    """The server side: per-service statuses, ``Check`` and ``Watch``.

    Register with ``server.add_generic_rpc_handlers((health.handler(),))`` on a ``grpc.aio``
    server; change statuses with :meth:`set`; call :meth:`close` before stopping the server so
    that open ``Watch`` streams end.
    """

    def __init__(self) -> None:
        self._status: dict[str, ServingStatus] = {"": ServingStatus.SERVING}
        self._changed = asyncio.Condition()
        self._version = 0  # bumped on every change: a watcher never misses one between checks
        self._closed = False

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

    async def _check(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                     ) -> bytes:
        try:
            service = decode_request(request)
        except MalformedHealthMessage as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad HealthCheckRequest: {e}")
        status = self._status.get(service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        return encode_response(status)

    async def _watch(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes],
                     ) -> AsyncIterator[bytes]:
        try:
            service = decode_request(request)
        except MalformedHealthMessage as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad HealthCheckRequest: {e}")
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
