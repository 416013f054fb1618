"""How a failed etcd call becomes one of vnfha's errors (``translate_error``): table-driven, from
the status codes and texts etcd returns (``server/etcdserver/api/v3rpc/rpctypes``). No etcd."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from vnfha.errors import (
    Compacted,
    LeaseNotFound,
    StoreAuthError,
    StoreError,
    StoreNoSpace,
    StoreRequestError,
    StoreUnavailable,
)
from vnfha.store._etcdconv import translate_error

NOSPACE = "etcdserver: mvcc: database space exceeded"
"""etcd's ErrGRPCNoSpace, as it reaches the client."""


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


CASES = [
    (grpc.StatusCode.RESOURCE_EXHAUSTED, NOSPACE, StoreNoSpace),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: too many requests", StoreRequestError),
    (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large", StoreRequestError),
    (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader", StoreUnavailable),
    (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied", StoreAuthError),
    (grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found", LeaseNotFound),
    (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted",
     Compacted),
    (grpc.StatusCode.INTERNAL, "etcdserver: something else", StoreError),
]


@pytest.mark.parametrize(("code", "details", "kind"), CASES,
                         ids=[f"{c.name}-{k.__name__}" for c, _, k in CASES])
def test_each_etcd_error_has_its_vnfha_error(code: grpc.StatusCode, details: str,
                                              kind: type[StoreError]) -> None:
    err = translate_error(rpc_error(code, details), endpoint="127.0.0.1:2379", write=True,
                          lease_id=0x2A, revision=7)
    assert type(err) is kind
    assert err.endpoint == "127.0.0.1:2379"


def test_nospace_names_the_alarm_the_cure_and_etcds_words() -> None:
    err = translate_error(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, NOSPACE),
                          endpoint="e1", write=True)
    assert isinstance(err, StoreNoSpace) and isinstance(err, StoreRequestError)
    assert err.details == NOSPACE
    text = str(err)
    for words in ("NOSPACE", "database space exceeded", "compacts", "defragments",
                  "etcdctl alarm disarm", "'etcd for vnfha'", NOSPACE, "(endpoint e1)"):
        assert words in text, words
