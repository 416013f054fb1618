"""Translation between vnfha's store values and etcd's wire messages, and of gRPC errors into
vnfha's error tree. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from vnfha.errors import (
    Compacted,
    LeaseNotFound,
    StoreAuthError,
    StoreError,
    StoreNoSpace,
    StoreRequestError,
    StoreUnavailable,
)
from vnfha.store._etcdrpc import pb
from vnfha.store.base import (
    Compare,
    CompareOp,
    CompareTarget,
    DeleteResult,
    Event,
    EventType,
    KeyValue,
    Op,
    PutResult,
    RangeResult,
    TxnDelete,
    TxnGet,
    TxnPut,
    TxnResult,
    decode_key,
    encode_key,
    prefix_end,
)

__all__ = [
    "compare_to_pb",
    "delete_request",
    "delete_result",
    "event_from_pb",
    "kv_from_pb",
    "op_to_pb",
    "put_result",
    "range_request",
    "range_result",
    "translate_error",
    "txn_result",
]

_OPS = {
    CompareOp.EQUAL: pb.Compare.EQUAL,
    CompareOp.NOT_EQUAL: pb.Compare.NOT_EQUAL,
    CompareOp.GREATER: pb.Compare.GREATER,
    CompareOp.LESS: pb.Compare.LESS,
}
_TARGETS = {
    CompareTarget.VERSION: (pb.Compare.VERSION, "version"),
    CompareTarget.CREATE_REVISION: (pb.Compare.CREATE, "create_revision"),
    CompareTarget.MOD_REVISION: (pb.Compare.MOD, "mod_revision"),
    CompareTarget.VALUE: (pb.Compare.VALUE, "value"),
    CompareTarget.LEASE: (pb.Compare.LEASE, "lease"),
}


def _range_end(key: str, prefix: bool) -> bytes:
    return encode_key(prefix_end(key)) if prefix else b""


def kv_from_pb(kv: pb.KeyValue) -> KeyValue:
    """A wire KeyValue as vnfha's frozen KeyValue."""
    return KeyValue(
        key=decode_key(kv.key),
        value=kv.value,
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        version=kv.version,
        lease=kv.lease,
    )


def event_from_pb(ev: pb.Event) -> Event:
    """A wire Event as vnfha's Event."""
    kind = EventType.DELETE if ev.type == pb.Event.DELETE else EventType.PUT
    prev = kv_from_pb(ev.prev_kv) if ev.HasField("prev_kv") else None
    return Event(type=kind, kv=kv_from_pb(ev.kv), prev_kv=prev)


def range_request(key: str, prefix: bool, limit: int, revision: int) -> pb.RangeRequest:
    """A linearizable Range of one key or a prefix."""
    return pb.RangeRequest(
        key=encode_key(key), range_end=_range_end(key, prefix), limit=limit, revision=revision
    )


def delete_request(key: str, prefix: bool, prev_kv: bool) -> pb.DeleteRangeRequest:
    """A DeleteRange of one key or a prefix."""
    return pb.DeleteRangeRequest(
        key=encode_key(key), range_end=_range_end(key, prefix), prev_kv=prev_kv
    )


def range_result(resp: pb.RangeResponse) -> RangeResult:
    """A RangeResponse as a RangeResult."""
    return RangeResult(
        kvs=tuple(kv_from_pb(kv) for kv in resp.kvs),
        revision=resp.header.revision,
        count=resp.count,
        more=resp.more,
    )


def put_result(resp: pb.PutResponse) -> PutResult:
    """A PutResponse as a PutResult."""
    prev = kv_from_pb(resp.prev_kv) if resp.HasField("prev_kv") else None
    return PutResult(revision=resp.header.revision, prev_kv=prev)


def delete_result(resp: pb.DeleteRangeResponse) -> DeleteResult:
    """A DeleteRangeResponse as a DeleteResult."""
    return DeleteResult(
        revision=resp.header.revision,
        deleted=resp.deleted,
        prev_kvs=tuple(kv_from_pb(kv) for kv in resp.prev_kvs),
    )


def compare_to_pb(cmp: Compare) -> pb.Compare:
    """A Compare as its wire form (the value goes into the oneof field its target names)."""
    target, field = _TARGETS[cmp.target]
    msg = pb.Compare(result=_OPS[cmp.op], target=target, key=encode_key(cmp.key))
    setattr(msg, field, cmp.value)
    return msg


def op_to_pb(op: Op) -> pb.RequestOp:
    """A txn operation as a RequestOp."""
    if isinstance(op, TxnPut):
        return pb.RequestOp(
            request_put=pb.PutRequest(key=encode_key(op.key), value=op.value, lease=op.lease)
        )
    if isinstance(op, TxnDelete):
        return pb.RequestOp(request_delete_range=delete_request(op.key, op.prefix, False))
    if isinstance(op, TxnGet):
        return pb.RequestOp(request_range=range_request(op.key, op.prefix, 0, 0))
    raise TypeError(f"not a txn operation: {op!r}")


def txn_result(resp: pb.TxnResponse) -> TxnResult:
    """A TxnResponse as a TxnResult, one result per op of the branch taken."""
    out: list[RangeResult | PutResult | DeleteResult] = []
    for r in resp.responses:
        kind = r.WhichOneof("response")
        if kind == "response_range":
            out.append(range_result(r.response_range))
        elif kind == "response_put":
            out.append(put_result(r.response_put))
        elif kind == "response_delete_range":
            out.append(delete_result(r.response_delete_range))
    return TxnResult(succeeded=resp.succeeded, revision=resp.header.revision, responses=tuple(out))


def txn_request(
    compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op]
) -> pb.TxnRequest:
    """A TxnRequest from vnfha's compares and ops."""
    return pb.TxnRequest(
        compare=[compare_to_pb(c) for c in compares],
        success=[op_to_pb(o) for o in success],
        failure=[op_to_pb(o) for o in failure],
    )


# etcd error texts (server/etcdserver/api/v3rpc/rpctypes) that vnfha maps to its own errors.
_AUTH_TEXTS = (
    "permission denied",
    "authentication failed",
    "user name is empty",
    "invalid auth token",
    "user name not found",
)
# etcd's ErrGRPCNoSpace (RESOURCE_EXHAUSTED): its NOSPACE alarm is raised, every write refused.
_NOSPACE_TEXT = "database space exceeded"
# Errors etcd returns before proposing anything: the request was certainly not applied.
_NOT_APPLIED_TEXTS = (
    "failed to connect",
    "connection refused",
    "no leader",
    "invalid auth token",
    "not capable",
)


def was_not_applied(err: grpc.aio.AioRpcError) -> bool:
    """True when the failed call certainly did not reach etcd's apply (safe to send again)."""
    details = (err.details() or "").lower()
    return any(text in details for text in _NOT_APPLIED_TEXTS)


def is_auth_token_invalid(err: grpc.aio.AioRpcError) -> bool:
    """True when etcd refused the token (expired simple token): re-authenticate and resend."""
    return "invalid auth token" in (err.details() or "").lower()


def translate_error(
    err: grpc.aio.AioRpcError,
    *,
    endpoint: str,
    write: bool,
    lease_id: int = 0,
    revision: int = 0,
) -> StoreError:
    """The vnfha error for a failed etcd call (the caller raises it ``from err``).

    ``write`` marks put/delete/txn: a transport failure then has ``outcome_unknown`` unless
    etcd certainly did not apply it.
    """
    code = err.code()
    details = err.details() or code.name
    text = details.lower()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.CANCELLED) and not any(t in text for t in _AUTH_TEXTS):
        unknown = write and not was_not_applied(err)
        return StoreUnavailable(
            f"etcd call failed: {code.name}: {details}",
            endpoint=endpoint,
            endpoints=(endpoint,),
            outcome_unknown=unknown,
        )
    if any(t in text for t in _AUTH_TEXTS) or code in (
        grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED
    ):
        return StoreAuthError(f"etcd refused: {details}", endpoint=endpoint)
    if "lease not found" in text and lease_id:
        return LeaseNotFound(lease_id, endpoint=endpoint)
    if "has been compacted" in text:
        return Compacted(revision, 0, endpoint=endpoint)
    if _NOSPACE_TEXT in text:
        return StoreNoSpace(details, endpoint=endpoint)
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE,
                grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.FAILED_PRECONDITION):
        return StoreRequestError(f"etcd refused the request: {details}", endpoint=endpoint)
    return StoreError(f"etcd call failed: {code.name}: {details}", endpoint=endpoint)
