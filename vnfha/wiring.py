"""The member's parts as its :class:`~vnfha.config.Config` describes them.

Plain constructors, no I/O: each reads the config fields that belong to one part, so the
member's composition root stays a list of parts and no part reads the whole config.
"""

from __future__ import annotations

from vnfha.clock import Clock
from vnfha.config import Config
from vnfha.replication.state import Limits
from vnfha.roles.monitor import MonitorTimers
from vnfha.store.base import Store

__all__ = ["checkpoint_limits", "monitor_timers", "store_from_config"]


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
