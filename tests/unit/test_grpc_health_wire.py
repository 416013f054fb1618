"""The hand-written grpc.health.v1 codec against protobuf's own encoder of the standard messages."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given
from hypothesis import strategies as st

from vnfha import grpc_health as h


def _standard_messages() -> tuple[type, type]:
    """The standard request and response messages, built from their schema in a private pool."""
    f = descriptor_pb2.FileDescriptorProto(name="health_test.proto", package="grpc.health.v1",
                                           syntax="proto3")
    req = f.message_type.add(name="HealthCheckRequest")
    req.field.add(name="service", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    resp = f.message_type.add(name="HealthCheckResponse")
    enum = resp.enum_type.add(name="ServingStatus")
    for number, name in enumerate(["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"]):
        enum.value.add(name=name, number=number)
    resp.field.add(name="status", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_ENUM,
                   type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus",
                   label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    get = message_factory.GetMessageClass
    return (get(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest")),
            get(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")))


REQ, RESP = _standard_messages()


@given(st.text(max_size=300))
def test_request_bytes_match_protobuf(service: str) -> None:
    assert h.encode_request(service) == REQ(service=service).SerializeToString()
    assert h.decode_request(REQ(service=service).SerializeToString()) == service


@pytest.mark.parametrize("status", list(h.ServingStatus))
def test_response_bytes_match_protobuf(status: h.ServingStatus) -> None:
    assert h.encode_response(status) == RESP(status=int(status)).SerializeToString()
    assert h.decode_response(RESP(status=int(status)).SerializeToString()) is status


def test_unknown_status_number_reads_as_unknown() -> None:
    assert h.decode_response(b"\x08\x63") is h.ServingStatus.UNKNOWN


@pytest.mark.parametrize("data", [b"\x0a\x05ab", b"\x0a", b"\x08\x80", b"\x0b", b"\x0a\x02\xff\xfe",
                                  b"\x15\x00"])
def test_malformed_requests_are_refused(data: bytes) -> None:
    with pytest.raises(h.MalformedHealthMessage):
        h.decode_request(data)
