"""vnfha: high availability for telecom VNFs.

Roles elected through etcd, state checkpointed to standbys over gRPC, sub-second failover,
health checks with an escalation ladder, and a gRPC bridge to the NFVI. The public API is this
flat namespace; submodules are private unless documented otherwise (``vnfha.testing`` is public).
"""

import vnfha._grpc_env  # noqa: F401 - chooses grpc's transport before grpc is imported
from vnfha.component import Assignment, Component
from vnfha.config import CheckSpec, Config, load_config
from vnfha.errors import (
    AckTimeout,
    BridgeRequestError,
    BridgeUnavailable,
    CheckpointError,
    CheckpointLimitError,
    Compacted,
    ConfigError,
    EtcdLaunchError,
    GroupConfigMismatch,
    HealthCheckFailed,
    LadderStateError,
    LeaseNotFound,
    LockError,
    NfviError,
    NotActive,
    RepairInProgress,
    SessionLost,
    StaleEpochRejected,
    StoreAuthError,
    StoreError,
    StoreNoSpace,
    StoreRequestError,
    StoreUnavailable,
    SwitchoverError,
    VnfhaError,
)
from vnfha.events import AlarmRaised
from vnfha.member import Member
from vnfha.model import Ack, Recovery, Redundancy, Role

__version__ = "0.1.0"

__all__ = [
    "Ack",
    "AckTimeout",
    "AlarmRaised",
    "Assignment",
    "BridgeRequestError",
    "BridgeUnavailable",
    "CheckSpec",
    "CheckpointError",
    "CheckpointLimitError",
    "Compacted",
    "Component",
    "Config",
    "ConfigError",
    "EtcdLaunchError",
    "GroupConfigMismatch",
    "HealthCheckFailed",
    "LadderStateError",
    "LeaseNotFound",
    "LockError",
    "Member",
    "NfviError",
    "NotActive",
    "Recovery",
    "Redundancy",
    "RepairInProgress",
    "Role",
    "SessionLost",
    "StaleEpochRejected",
    "StoreAuthError",
    "StoreError",
    "StoreNoSpace",
    "StoreRequestError",
    "StoreUnavailable",
    "SwitchoverError",
    "VnfhaError",
    "load_config",
]
