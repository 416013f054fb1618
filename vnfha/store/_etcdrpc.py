"""etcd's gRPC method paths, bound by hand on a grpc.aio channel.

The paths are etcd's real service names (``/etcdserverpb.KV/Range``, ...); the messages are
vnfha's private, wire-compatible copies (``vnfha._etcdwire.etcd_pb2``). Binding by hand instead
of generating service stubs keeps etcd's package names out of protobuf's descriptor pool and
avoids grpc's generated-code version check, so vnfha runs on every grpcio >= 1.66.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import grpc
import grpc.aio

from vnfha._etcdwire import etcd_pb2 as pb

__all__ = ["EOF", "EtcdStubs", "pb"]

# The end-of-stream marker of grpc.aio calls (missing from grpc-stubs).
EOF: Final[object] = grpc.aio.EOF  # type: ignore[attr-defined]


def _unary(channel: grpc.aio.Channel, path: str, req: Any, resp: Any) -> Any:
    return channel.unary_unary(
        path, request_serializer=req.SerializeToString, response_deserializer=resp.FromString
    )


def _bidi(channel: grpc.aio.Channel, path: str, req: Any, resp: Any) -> Any:
    return channel.stream_stream(
        path, request_serializer=req.SerializeToString, response_deserializer=resp.FromString
    )


@dataclass(frozen=True, slots=True)
class EtcdStubs:
    """The callables for one channel. Each unary one is ``await f(request, timeout=...,
    metadata=...)``; the two bidirectional ones return a call with ``write``/``read``."""

    range: Callable[..., Any]
    put: Callable[..., Any]
    delete_range: Callable[..., Any]
    txn: Callable[..., Any]
    compact: Callable[..., Any]
    watch: Callable[..., Any]
    lease_grant: Callable[..., Any]
    lease_revoke: Callable[..., Any]
    lease_keepalive: Callable[..., Any]
    lease_time_to_live: Callable[..., Any]
    status: Callable[..., Any]
    authenticate: Callable[..., Any]

    @classmethod
    def bind(cls, channel: grpc.aio.Channel) -> EtcdStubs:
        """Bind every method vnfha uses on ``channel``."""
        kv, lease = "/etcdserverpb.KV/", "/etcdserverpb.Lease/"
        return cls(
            range=_unary(channel, kv + "Range", pb.RangeRequest, pb.RangeResponse),
            put=_unary(channel, kv + "Put", pb.PutRequest, pb.PutResponse),
            delete_range=_unary(
                channel, kv + "DeleteRange", pb.DeleteRangeRequest, pb.DeleteRangeResponse
            ),
            txn=_unary(channel, kv + "Txn", pb.TxnRequest, pb.TxnResponse),
            compact=_unary(channel, kv + "Compact", pb.CompactionRequest, pb.CompactionResponse),
            watch=_bidi(channel, "/etcdserverpb.Watch/Watch", pb.WatchRequest, pb.WatchResponse),
            lease_grant=_unary(
                channel, lease + "LeaseGrant", pb.LeaseGrantRequest, pb.LeaseGrantResponse
            ),
            lease_revoke=_unary(
                channel, lease + "LeaseRevoke", pb.LeaseRevokeRequest, pb.LeaseRevokeResponse
            ),
            lease_keepalive=_bidi(
                channel, lease + "LeaseKeepAlive", pb.LeaseKeepAliveRequest,
                pb.LeaseKeepAliveResponse,
            ),
            lease_time_to_live=_unary(
                channel, lease + "LeaseTimeToLive", pb.LeaseTimeToLiveRequest,
                pb.LeaseTimeToLiveResponse,
            ),
            status=_unary(
                channel, "/etcdserverpb.Maintenance/Status", pb.StatusRequest, pb.StatusResponse
            ),
            authenticate=_unary(
                channel, "/etcdserverpb.Auth/Authenticate", pb.AuthenticateRequest,
                pb.AuthenticateResponse,
            ),
        )
