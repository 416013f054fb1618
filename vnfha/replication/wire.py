"""The replication wire: messages <-> values, the method bound by hand, TLS credentials.

Only this package's runtime modules import the generated messages. The service is bound by
hand (as etcd's is) so grpc's generated-stub version check never applies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError

from vnfha.replication.state import Change, Entry
from vnfha.replication.v1 import replication_pb2 as pb

__all__ = [
    "EOF",
    "ack_message",
    "STREAM_METHOD",
    "Malformed",
    "changes_from_pb",
    "channel_credentials",
    "decode",
    "deltas_message",
    "generic_handler",
    "keepalive_options",
    "message_options",
    "open_stream",
    "pb",
    "server_credentials",
    "snapshot_message",
]

SERVICE = "vnfha.replication.v1.Replication"
STREAM_METHOD = f"/{SERVICE}/Stream"
EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]


def deltas_message(epoch: int, first_sequence: int, entries: Iterable[Entry]) -> Any:
    """An ActiveMessage carrying ``entries`` as the deltas of ``epoch`` from
    ``first_sequence``."""
    msg = pb.ActiveMessage()
    deltas = msg.deltas
    deltas.SetInParent()
    deltas.epoch = epoch
    deltas.first_sequence = first_sequence
    _add_changes(deltas.changes, entries)
    return msg


def ack_message(epoch: int, sequence: int, echo_us: int = 0, promise_ms: int = 0) -> Any:
    """A StandbyMessage acknowledging everything up to ``sequence`` of ``epoch``, echoing the
    stamp ``echo_us`` with a promise of ``promise_ms`` (the standby lease; 0: none)."""
    msg = pb.StandbyMessage()
    ack = msg.ack  # fields set in place: half the cost of keyword construction
    ack.SetInParent()  # an ack of (0, 0) is still an ack
    ack.epoch = epoch
    ack.sequence = sequence
    if promise_ms:
        ack.echo_us = echo_us
        ack.promise_ms = promise_ms
    return msg


def stamp_us(monotonic_s: float) -> int:
    """A send stamp (``Heartbeat.sent_us``, ``Deltas.sent_us``): microseconds rounded down, plus
    one, so that 0 means "not stamped" and a stamp never names a later time than the send."""
    return int(monotonic_s * 1_000_000) + 1


def stamp_time(stamp: int) -> float:
    """The monotonic seconds a nonzero :func:`stamp_us` stands for (at or before the send)."""
    return (stamp - 1) / 1_000_000


def snapshot_message(epoch: int, sequence: int, entries: Iterable[Entry], *,
                     last: bool = False) -> Any:
    """An ActiveMessage carrying one chunk of the snapshot of ``epoch`` at ``sequence``."""
    msg = pb.ActiveMessage()
    chunk = msg.snapshot
    chunk.SetInParent()
    chunk.epoch = epoch
    chunk.sequence = sequence
    chunk.last = last
    _add_changes(chunk.entries, entries)
    return msg


def _add_changes(repeated: Any, entries: Iterable[Entry]) -> None:
    # built in place: a list of pb.Change passed to a constructor costs a copy of each, and
    # keyword construction is slower than setting the fields (this runs for every write)
    add = repeated.add
    for section, key, value in entries:
        m = add()
        m.section = section
        m.key = key
        if value is None:
            m.delete = True
        else:
            m.value = value


def changes_from_pb(messages: Iterable[Any]) -> list[Change]:
    """The changes of a Deltas or SnapshotChunk message (unchecked)."""
    return [Change(m.section, m.key, None if m.delete else m.value) for m in messages]


def message_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Channel and server options: message size limits."""
    limit = max_message_bytes + 1024  # framing slack over the payload budget
    return [("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)]


def keepalive_options(keepalive_s: float, *, server: bool) -> list[tuple[str, int]]:
    """HTTP/2 keepalive for the replication stream, both ends.

    The heartbeats on the stream are how a *standby* notices a silent active; keepalive pings are
    how either end notices a peer whose host vanished without closing the connection (no RST):
    unanswered for ``keepalive_s`` after a ping sent every ``keepalive_s``, the connection is
    closed, the active drops that standby from its in-sync set and the standby reconnects. Both
    ends ping; the server's policy accepts pings twice as often as the client sends them, with no
    strikes, so a compliant standby is never sent GOAWAY "too_many_pings" (gRPC's default policy
    allows one ping per 5 minutes without data, and the stream can be idle between heartbeats).
    ``grpc.http2.ping_timeout_ms`` is set too: without it a ping sent after a spell of packet
    loss waited gRPC's default 60 s for its ack, and the standby's end of a stream whose active
    end was gone stayed open and silent that long (the fault matrix's 30 % loss row, issue 18).
    """
    ms = max(1, round(keepalive_s * 1000))
    options = [
        ("grpc.keepalive_time_ms", ms),
        ("grpc.keepalive_timeout_ms", ms),
        ("grpc.http2.ping_timeout_ms", ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    if server:
        options += [
            ("grpc.http2.min_recv_ping_interval_without_data_ms", max(1, ms // 2)),
            ("grpc.http2.min_ping_interval_without_data_ms", max(1, ms // 2)),
            ("grpc.http2.max_ping_strikes", 0),
        ]
    return options


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def server_credentials(*, ca_file: str | None, cert_file: str | None,
                       key_file: str | None) -> grpc.ServerCredentials | None:
    """Mutual TLS when a certificate and its key are named (``replication_*_file``), else None
    (plaintext)."""
    if cert_file is None or key_file is None:
        return None
    return grpc.ssl_server_credentials(
        [(Path(key_file).read_bytes(), Path(cert_file).read_bytes())],
        root_certificates=_read(ca_file),
        require_client_auth=True,
    )


def channel_credentials(*, ca_file: str | None, cert_file: str | None,
                        key_file: str | None) -> grpc.ChannelCredentials | None:
    """The client side of :func:`server_credentials`."""
    if cert_file is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file),
        private_key=_read(key_file),
        certificate_chain=_read(cert_file),
    )


class Malformed(ValueError):
    """Bytes on the stream that are not a message of the expected type."""


def _raw(data: bytes) -> bytes:
    """The identity deserializer: messages are parsed by :func:`decode`, so undecodable bytes
    are the receiver's INVALID_ARGUMENT, not grpc's UNKNOWN with a traceback in the log."""
    return data


def decode(kind: Any, data: object) -> Any:
    """``data`` (raw bytes from the stream, or EOF, passed through) as a ``kind`` message;
    Malformed if it is not one."""
    if data is EOF:
        return data
    try:
        return kind.FromString(data)
    except (DecodeError, TypeError) as e:
        raise Malformed(f"not a valid {kind.DESCRIPTOR.name} message "
                        f"({len(data) if isinstance(data, bytes) else '?'} bytes): {e}") from None


def open_stream(channel: grpc.aio.Channel) -> Any:
    """Start the Stream call on ``channel``; what it reads is raw (see :func:`decode`)."""
    method = channel.stream_stream(
        STREAM_METHOD,
        request_serializer=pb.StandbyMessage.SerializeToString,
        response_deserializer=_raw,
    )
    return method()  # type: ignore[call-arg]  # a streaming call takes its requests later


def generic_handler(stream: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[None]]
                    ) -> grpc.GenericRpcHandler[Any, Any]:
    """The server's handler for the one method; what it reads is raw (see :func:`decode`)."""
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Stream": grpc.stream_stream_rpc_method_handler(
            stream,
            request_deserializer=_raw,
            response_serializer=pb.ActiveMessage.SerializeToString,
        ),
    })
