from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StandbyMessage(_message.Message):
    __slots__ = ("hello", "ack", "reject", "proof")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    ack: Ack
    reject: Reject
    proof: Proof
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., reject: _Optional[_Union[Reject, _Mapping]] = ..., proof: _Optional[_Union[Proof, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("group", "member", "epoch", "sequence", "highest_epoch", "nonce")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_EPOCH_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    group: str
    member: str
    epoch: int
    sequence: int
    highest_epoch: int
    nonce: bytes
    def __init__(self, group: _Optional[str] = ..., member: _Optional[str] = ..., epoch: _Optional[int] = ..., sequence: _Optional[int] = ..., highest_epoch: _Optional[int] = ..., nonce: _Optional[bytes] = ...) -> None: ...

class Proof(_message.Message):
    __slots__ = ("mac",)
    MAC_FIELD_NUMBER: _ClassVar[int]
    mac: bytes
    def __init__(self, mac: _Optional[bytes] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("epoch", "sequence", "echo_us", "promise_ms")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ECHO_US_FIELD_NUMBER: _ClassVar[int]
    PROMISE_MS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    sequence: int
    echo_us: int
    promise_ms: int
    def __init__(self, epoch: _Optional[int] = ..., sequence: _Optional[int] = ..., echo_us: _Optional[int] = ..., promise_ms: _Optional[int] = ...) -> None: ...

class Reject(_message.Message):
    __slots__ = ("code", "detail")
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    code: int
    detail: str
    def __init__(self, code: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class ActiveMessage(_message.Message):
    __slots__ = ("snapshot", "deltas", "heartbeat", "rebase", "challenge")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DELTAS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    REBASE_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    snapshot: SnapshotChunk
    deltas: Deltas
    heartbeat: Heartbeat
    rebase: Rebase
    challenge: Challenge
    def __init__(self, snapshot: _Optional[_Union[SnapshotChunk, _Mapping]] = ..., deltas: _Optional[_Union[Deltas, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., rebase: _Optional[_Union[Rebase, _Mapping]] = ..., challenge: _Optional[_Union[Challenge, _Mapping]] = ...) -> None: ...

class Challenge(_message.Message):
    __slots__ = ("epoch", "nonce", "proof")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    nonce: bytes
    proof: bytes
    def __init__(self, epoch: _Optional[int] = ..., nonce: _Optional[bytes] = ..., proof: _Optional[bytes] = ...) -> None: ...

class Rebase(_message.Message):
    __slots__ = ("epoch", "base_epoch", "base_sequence")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    BASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    BASE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    base_epoch: int
    base_sequence: int
    def __init__(self, epoch: _Optional[int] = ..., base_epoch: _Optional[int] = ..., base_sequence: _Optional[int] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("section", "key", "value", "delete")
    SECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    section: str
    key: str
    value: bytes
    delete: bool
    def __init__(self, section: _Optional[str] = ..., key: _Optional[str] = ..., value: _Optional[bytes] = ..., delete: bool = ...) -> None: ...

class SnapshotChunk(_message.Message):
    __slots__ = ("epoch", "sequence", "entries", "last")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    sequence: int
    entries: _containers.RepeatedCompositeFieldContainer[Change]
    last: bool
    def __init__(self, epoch: _Optional[int] = ..., sequence: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[Change, _Mapping]]] = ..., last: bool = ...) -> None: ...

class Deltas(_message.Message):
    __slots__ = ("epoch", "first_sequence", "changes", "sent_us")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    SENT_US_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    first_sequence: int
    changes: _containers.RepeatedCompositeFieldContainer[Change]
    sent_us: int
    def __init__(self, epoch: _Optional[int] = ..., first_sequence: _Optional[int] = ..., changes: _Optional[_Iterable[_Union[Change, _Mapping]]] = ..., sent_us: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("epoch", "sequence", "sent_us")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SENT_US_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    sequence: int
    sent_us: int
    def __init__(self, epoch: _Optional[int] = ..., sequence: _Optional[int] = ..., sent_us: _Optional[int] = ...) -> None: ...
