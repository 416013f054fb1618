"""The member's parts as its :class:`~vnfha.config.Config` describes them.

Plain constructors, no I/O: each reads the config fields that belong to one part, so the
member's composition root stays a list of parts and no part reads the whole config.
"""

from __future__ import annotations

from collections.abc import Callable

from vnfha.clock import Clock
from vnfha.config import Config
from vnfha.metrics import Metrics
from vnfha.model import Redundancy
from vnfha.replication.active import Primary
from vnfha.replication.progress import ProgressReporter
from vnfha.replication.state import Limits
from vnfha.roles.keys import GroupKeys
from vnfha.roles.monitor import MonitorTimers
from vnfha.roles.resign import ResignTimers
from vnfha.store.base import Store
from vnfha.store.session import Session
from vnfha.timing import poll_interval_s

__all__ = [
    "checkpoint_limits",
    "monitor_timers",
    "progress_reporter",
    "resign_timers",
    "session_factory",
    "store_from_config",
]


def store_from_config(config: Config, clock: Clock | None = None) -> Store:
    """The EtcdStore the config describes (not yet connected: it connects on first use)."""
    from vnfha.store.etcd import EtcdOptions, EtcdStore  # noqa: PLC0415 - the etcd adapter

    return EtcdStore(
        EtcdOptions(
            endpoints=config.etcd_endpoints, tls=config.etcd_tls,
            ca_file=config.etcd_ca_file, cert_file=config.etcd_cert_file,
            key_file=config.etcd_key_file, username=config.etcd_username,
            password=config.etcd_password_effective,
            request_timeout_s=config.etcd_request_timeout_s,
            connect_timeout_s=config.etcd_connect_timeout_s,
        ),
        clock=clock,
    )


def checkpoint_limits(config: Config) -> Limits:
    """The checkpoint size limits ``config`` sets."""
    return Limits(
        max_key_bytes=config.checkpoint_max_key_bytes,
        max_value_bytes=config.checkpoint_max_value_bytes,
        max_section_bytes=config.checkpoint_max_section_bytes,
        max_message_bytes=config.checkpoint_max_message_bytes,
        max_backlog_entries=config.checkpoint_max_backlog_entries,
    )


def monitor_timers(config: Config) -> MonitorTimers:
    """The timers a standby's watch over its active runs on."""
    return MonitorTimers(config.heartbeat_interval_s, config.suspicion_s,
                         config.lease_margin_s, config.etcd_request_timeout_s)


def resign_timers(config: Config) -> ResignTimers:
    """The bounds of the active's graceful exit."""
    return ResignTimers(poll_s=poll_interval_s(config.heartbeat_interval_s),
                        catch_up_s=config.checkpoint_ack_timeout_s,
                        release_seen_s=config.etcd_request_timeout_s,
                        successor_s=float(config.lease_ttl_s))


def session_factory(config: Config, store: Store, clock: Clock) -> Callable[[], Session]:
    """Opens the member's sessions (a new one after each lost one), as the config times them."""
    def new() -> Session:
        return Session(store, ttl_s=config.lease_ttl_s,
                       keepalive_interval_s=config.keepalive_interval_s_effective,
                       margin_s=config.lease_margin_s, clock=clock,
                       request_timeout_s=config.etcd_request_timeout_s)
    return new


def progress_reporter(config: Config, keys: GroupKeys, store: Store, metrics: Metrics,
                      clock: Clock, *, primary: Callable[[], Primary | None],
                      lease: Callable[[], int]) -> ProgressReporter | None:
    """The active's lag sampler, or None (``progress_interval_s`` unset, or N_WAY_ACTIVE)."""
    if config.progress_interval_s is None or config.redundancy is Redundancy.N_WAY_ACTIVE:
        return None
    return ProgressReporter(member=config.member, keys=keys, store=store, metrics=metrics,
                            clock=clock, interval_s=config.progress_interval_s,
                            timeout_s=config.etcd_request_timeout_s, primary=primary,
                            lease=lease)

