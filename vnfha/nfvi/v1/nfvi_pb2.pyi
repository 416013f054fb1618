from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InstanceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSTANCE_STATE_UNSPECIFIED: _ClassVar[InstanceState]
    INSTANCE_STATE_RUNNING: _ClassVar[InstanceState]
    INSTANCE_STATE_PAUSED: _ClassVar[InstanceState]
    INSTANCE_STATE_STOPPED: _ClassVar[InstanceState]
    INSTANCE_STATE_CRASHED: _ClassVar[InstanceState]

class WatchdogAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WATCHDOG_ACTION_UNSPECIFIED: _ClassVar[WatchdogAction]
    WATCHDOG_ACTION_RESET: _ClassVar[WatchdogAction]
    WATCHDOG_ACTION_POWEROFF: _ClassVar[WatchdogAction]
    WATCHDOG_ACTION_PAUSE: _ClassVar[WatchdogAction]
    WATCHDOG_ACTION_NONE: _ClassVar[WatchdogAction]

class PlacementPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLACEMENT_POLICY_UNSPECIFIED: _ClassVar[PlacementPolicy]
    PLACEMENT_POLICY_AFFINITY: _ClassVar[PlacementPolicy]
    PLACEMENT_POLICY_ANTI_AFFINITY: _ClassVar[PlacementPolicy]
    PLACEMENT_POLICY_SOFT_AFFINITY: _ClassVar[PlacementPolicy]
    PLACEMENT_POLICY_SOFT_ANTI_AFFINITY: _ClassVar[PlacementPolicy]

class FenceMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FENCE_MODE_UNSPECIFIED: _ClassVar[FenceMode]
    FENCE_MODE_KILL: _ClassVar[FenceMode]
    FENCE_MODE_STOP: _ClassVar[FenceMode]

class RepairAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPAIR_ACTION_UNSPECIFIED: _ClassVar[RepairAction]
    REPAIR_ACTION_RESTART_COMPONENT: _ClassVar[RepairAction]
    REPAIR_ACTION_FAILOVER: _ClassVar[RepairAction]
    REPAIR_ACTION_REBOOT: _ClassVar[RepairAction]
    REPAIR_ACTION_EVACUATE: _ClassVar[RepairAction]
    REPAIR_ACTION_NONE: _ClassVar[RepairAction]

class RepairOwner(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPAIR_OWNER_UNSPECIFIED: _ClassVar[RepairOwner]
    REPAIR_OWNER_NFVI: _ClassVar[RepairOwner]
    REPAIR_OWNER_VNF: _ClassVar[RepairOwner]

class RepairState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPAIR_STATE_UNSPECIFIED: _ClassVar[RepairState]
    REPAIR_STATE_QUEUED: _ClassVar[RepairState]
    REPAIR_STATE_IN_PROGRESS: _ClassVar[RepairState]
    REPAIR_STATE_SUCCEEDED: _ClassVar[RepairState]
    REPAIR_STATE_FAILED: _ClassVar[RepairState]
    REPAIR_STATE_RECORDED: _ClassVar[RepairState]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_HOST_DOWN: _ClassVar[EventKind]
    EVENT_KIND_HOST_UP: _ClassVar[EventKind]
    EVENT_KIND_VM_STARTED: _ClassVar[EventKind]
    EVENT_KIND_VM_STOPPED: _ClassVar[EventKind]
    EVENT_KIND_VM_PAUSED: _ClassVar[EventKind]
    EVENT_KIND_VM_RESUMED: _ClassVar[EventKind]
    EVENT_KIND_VM_CRASHED: _ClassVar[EventKind]
    EVENT_KIND_VM_MIGRATED: _ClassVar[EventKind]
    EVENT_KIND_WATCHDOG_FIRED: _ClassVar[EventKind]
    EVENT_KIND_MAINTENANCE_PLANNED: _ClassVar[EventKind]
    EVENT_KIND_ADDRESS_MOVED: _ClassVar[EventKind]
INSTANCE_STATE_UNSPECIFIED: InstanceState
INSTANCE_STATE_RUNNING: InstanceState
INSTANCE_STATE_PAUSED: InstanceState
INSTANCE_STATE_STOPPED: InstanceState
INSTANCE_STATE_CRASHED: InstanceState
WATCHDOG_ACTION_UNSPECIFIED: WatchdogAction
WATCHDOG_ACTION_RESET: WatchdogAction
WATCHDOG_ACTION_POWEROFF: WatchdogAction
WATCHDOG_ACTION_PAUSE: WatchdogAction
WATCHDOG_ACTION_NONE: WatchdogAction
PLACEMENT_POLICY_UNSPECIFIED: PlacementPolicy
PLACEMENT_POLICY_AFFINITY: PlacementPolicy
PLACEMENT_POLICY_ANTI_AFFINITY: PlacementPolicy
PLACEMENT_POLICY_SOFT_AFFINITY: PlacementPolicy
PLACEMENT_POLICY_SOFT_ANTI_AFFINITY: PlacementPolicy
FENCE_MODE_UNSPECIFIED: FenceMode
FENCE_MODE_KILL: FenceMode
FENCE_MODE_STOP: FenceMode
REPAIR_ACTION_UNSPECIFIED: RepairAction
REPAIR_ACTION_RESTART_COMPONENT: RepairAction
REPAIR_ACTION_FAILOVER: RepairAction
REPAIR_ACTION_REBOOT: RepairAction
REPAIR_ACTION_EVACUATE: RepairAction
REPAIR_ACTION_NONE: RepairAction
REPAIR_OWNER_UNSPECIFIED: RepairOwner
REPAIR_OWNER_NFVI: RepairOwner
REPAIR_OWNER_VNF: RepairOwner
REPAIR_STATE_UNSPECIFIED: RepairState
REPAIR_STATE_QUEUED: RepairState
REPAIR_STATE_IN_PROGRESS: RepairState
REPAIR_STATE_SUCCEEDED: RepairState
REPAIR_STATE_FAILED: RepairState
REPAIR_STATE_RECORDED: RepairState
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_HOST_DOWN: EventKind
EVENT_KIND_HOST_UP: EventKind
EVENT_KIND_VM_STARTED: EventKind
EVENT_KIND_VM_STOPPED: EventKind
EVENT_KIND_VM_PAUSED: EventKind
EVENT_KIND_VM_RESUMED: EventKind
EVENT_KIND_VM_CRASHED: EventKind
EVENT_KIND_VM_MIGRATED: EventKind
EVENT_KIND_WATCHDOG_FIRED: EventKind
EVENT_KIND_MAINTENANCE_PLANNED: EventKind
EVENT_KIND_ADDRESS_MOVED: EventKind

class Caller(_message.Message):
    __slots__ = ("group", "member", "epoch")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    group: str
    member: str
    epoch: int
    def __init__(self, group: _Optional[str] = ..., member: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class ArmRequest(_message.Message):
    __slots__ = ("caller", "timeout_ms", "action")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    timeout_ms: int
    action: WatchdogAction
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., timeout_ms: _Optional[int] = ..., action: _Optional[_Union[WatchdogAction, str]] = ...) -> None: ...

class KickRequest(_message.Message):
    __slots__ = ("caller",)
    CALLER_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ...) -> None: ...

class DisarmRequest(_message.Message):
    __slots__ = ("caller",)
    CALLER_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ...) -> None: ...

class WatchdogReply(_message.Message):
    __slots__ = ("instance", "armed", "timeout_ms", "action", "remaining_ms")
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    ARMED_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REMAINING_MS_FIELD_NUMBER: _ClassVar[int]
    instance: str
    armed: bool
    timeout_ms: int
    action: WatchdogAction
    remaining_ms: int
    def __init__(self, instance: _Optional[str] = ..., armed: bool = ..., timeout_ms: _Optional[int] = ..., action: _Optional[_Union[WatchdogAction, str]] = ..., remaining_ms: _Optional[int] = ...) -> None: ...

class GetPlacementRequest(_message.Message):
    __slots__ = ("caller",)
    CALLER_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ...) -> None: ...

class MemberPlacement(_message.Message):
    __slots__ = ("member", "instance", "host", "state")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    member: str
    instance: str
    host: str
    state: InstanceState
    def __init__(self, member: _Optional[str] = ..., instance: _Optional[str] = ..., host: _Optional[str] = ..., state: _Optional[_Union[InstanceState, str]] = ...) -> None: ...

class HostStatus(_message.Message):
    __slots__ = ("host", "up", "maintenance_pending", "maintenance_deadline_unix_s", "maintenance_detail")
    HOST_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_PENDING_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_DEADLINE_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    host: str
    up: bool
    maintenance_pending: bool
    maintenance_deadline_unix_s: float
    maintenance_detail: str
    def __init__(self, host: _Optional[str] = ..., up: bool = ..., maintenance_pending: bool = ..., maintenance_deadline_unix_s: _Optional[float] = ..., maintenance_detail: _Optional[str] = ...) -> None: ...

class GetPlacementReply(_message.Message):
    __slots__ = ("members", "hosts")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[MemberPlacement]
    hosts: _containers.RepeatedCompositeFieldContainer[HostStatus]
    def __init__(self, members: _Optional[_Iterable[_Union[MemberPlacement, _Mapping]]] = ..., hosts: _Optional[_Iterable[_Union[HostStatus, _Mapping]]] = ...) -> None: ...

class CheckPolicyRequest(_message.Message):
    __slots__ = ("caller", "policy")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    policy: PlacementPolicy
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., policy: _Optional[_Union[PlacementPolicy, str]] = ...) -> None: ...

class Violation(_message.Message):
    __slots__ = ("host", "members", "detail")
    HOST_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    host: str
    members: _containers.RepeatedScalarFieldContainer[str]
    detail: str
    def __init__(self, host: _Optional[str] = ..., members: _Optional[_Iterable[str]] = ..., detail: _Optional[str] = ...) -> None: ...

class CheckPolicyReply(_message.Message):
    __slots__ = ("policy", "satisfied", "violations")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    SATISFIED_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    policy: PlacementPolicy
    satisfied: bool
    violations: _containers.RepeatedCompositeFieldContainer[Violation]
    def __init__(self, policy: _Optional[_Union[PlacementPolicy, str]] = ..., satisfied: bool = ..., violations: _Optional[_Iterable[_Union[Violation, _Mapping]]] = ...) -> None: ...

class FenceRequest(_message.Message):
    __slots__ = ("caller", "target_member", "mode", "reason")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    TARGET_MEMBER_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    target_member: str
    mode: FenceMode
    reason: str
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., target_member: _Optional[str] = ..., mode: _Optional[_Union[FenceMode, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class FenceReply(_message.Message):
    __slots__ = ("instance", "host", "applied", "state")
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    instance: str
    host: str
    applied: FenceMode
    state: InstanceState
    def __init__(self, instance: _Optional[str] = ..., host: _Optional[str] = ..., applied: _Optional[_Union[FenceMode, str]] = ..., state: _Optional[_Union[InstanceState, str]] = ...) -> None: ...

class EscalateRequest(_message.Message):
    __slots__ = ("caller", "idempotency_key", "target_member", "fault", "requested", "tried", "evacuation_policy")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TARGET_MEMBER_FIELD_NUMBER: _ClassVar[int]
    FAULT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    TRIED_FIELD_NUMBER: _ClassVar[int]
    EVACUATION_POLICY_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    idempotency_key: str
    target_member: str
    fault: str
    requested: RepairAction
    tried: _containers.RepeatedScalarFieldContainer[RepairAction]
    evacuation_policy: PlacementPolicy
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., target_member: _Optional[str] = ..., fault: _Optional[str] = ..., requested: _Optional[_Union[RepairAction, str]] = ..., tried: _Optional[_Iterable[_Union[RepairAction, str]]] = ..., evacuation_policy: _Optional[_Union[PlacementPolicy, str]] = ...) -> None: ...

class RepairTicket(_message.Message):
    __slots__ = ("ticket_id", "idempotency_key", "group", "member", "instance", "action", "owner", "owner_name", "state", "detail", "host", "epoch", "version")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    OWNER_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    idempotency_key: str
    group: str
    member: str
    instance: str
    action: RepairAction
    owner: RepairOwner
    owner_name: str
    state: RepairState
    detail: str
    host: str
    epoch: int
    version: int
    def __init__(self, ticket_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., group: _Optional[str] = ..., member: _Optional[str] = ..., instance: _Optional[str] = ..., action: _Optional[_Union[RepairAction, str]] = ..., owner: _Optional[_Union[RepairOwner, str]] = ..., owner_name: _Optional[str] = ..., state: _Optional[_Union[RepairState, str]] = ..., detail: _Optional[str] = ..., host: _Optional[str] = ..., epoch: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class WatchRepairRequest(_message.Message):
    __slots__ = ("caller", "ticket_id")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    ticket_id: str
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., ticket_id: _Optional[str] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("caller",)
    CALLER_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("kind", "instance", "member", "host", "members", "deadline_unix_s", "detail", "sequence", "epoch", "address")
    KIND_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    kind: EventKind
    instance: str
    member: str
    host: str
    members: _containers.RepeatedScalarFieldContainer[str]
    deadline_unix_s: float
    detail: str
    sequence: int
    epoch: int
    address: str
    def __init__(self, kind: _Optional[_Union[EventKind, str]] = ..., instance: _Optional[str] = ..., member: _Optional[str] = ..., host: _Optional[str] = ..., members: _Optional[_Iterable[str]] = ..., deadline_unix_s: _Optional[float] = ..., detail: _Optional[str] = ..., sequence: _Optional[int] = ..., epoch: _Optional[int] = ..., address: _Optional[str] = ...) -> None: ...

class MoveAddressRequest(_message.Message):
    __slots__ = ("caller", "address")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    address: str
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., address: _Optional[str] = ...) -> None: ...

class GetAddressRequest(_message.Message):
    __slots__ = ("caller", "address")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    address: str
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., address: _Optional[str] = ...) -> None: ...

class AddressBinding(_message.Message):
    __slots__ = ("address", "member", "instance", "host", "epoch")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    address: str
    member: str
    instance: str
    host: str
    epoch: int
    def __init__(self, address: _Optional[str] = ..., member: _Optional[str] = ..., instance: _Optional[str] = ..., host: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class MoveAddressReply(_message.Message):
    __slots__ = ("binding", "previous_member", "changed")
    BINDING_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_MEMBER_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    binding: AddressBinding
    previous_member: str
    changed: bool
    def __init__(self, binding: _Optional[_Union[AddressBinding, _Mapping]] = ..., previous_member: _Optional[str] = ..., changed: bool = ...) -> None: ...

class PlanMaintenanceRequest(_message.Message):
    __slots__ = ("host", "deadline_in_s", "reason")
    HOST_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_IN_S_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    host: str
    deadline_in_s: float
    reason: str
    def __init__(self, host: _Optional[str] = ..., deadline_in_s: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class NotifiedInstance(_message.Message):
    __slots__ = ("group", "member", "instance")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    group: str
    member: str
    instance: str
    def __init__(self, group: _Optional[str] = ..., member: _Optional[str] = ..., instance: _Optional[str] = ...) -> None: ...

class PlanMaintenanceReply(_message.Message):
    __slots__ = ("host", "deadline_unix_s", "instances", "sequence")
    HOST_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    host: str
    deadline_unix_s: float
    instances: _containers.RepeatedCompositeFieldContainer[NotifiedInstance]
    sequence: int
    def __init__(self, host: _Optional[str] = ..., deadline_unix_s: _Optional[float] = ..., instances: _Optional[_Iterable[_Union[NotifiedInstance, _Mapping]]] = ..., sequence: _Optional[int] = ...) -> None: ...

class ListTicketsRequest(_message.Message):
    __slots__ = ("group", "open_only", "limit")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    group: str
    open_only: bool
    limit: int
    def __init__(self, group: _Optional[str] = ..., open_only: bool = ..., limit: _Optional[int] = ...) -> None: ...

class ListTicketsReply(_message.Message):
    __slots__ = ("tickets", "matched")
    TICKETS_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    tickets: _containers.RepeatedCompositeFieldContainer[RepairTicket]
    matched: int
    def __init__(self, tickets: _Optional[_Iterable[_Union[RepairTicket, _Mapping]]] = ..., matched: _Optional[int] = ...) -> None: ...
