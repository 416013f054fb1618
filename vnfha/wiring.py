"""The member's parts as its :class:`~vnfha.config.Config` describes them.

Plain constructors, no I/O: each reads the config fields that belong to one part, so the
member's composition root stays a list of parts and no part reads the whole config.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

from vnfha._ratelog import RateLimitedLog
from vnfha.callbacks import CallbackRunner
from vnfha.clock import Clock
from vnfha.config import CheckSpec, Config
from vnfha.config._check_specs import check_specs
from vnfha.errors import ConfigError, StoreError, StoreNoSpace
from vnfha.health.ladder import LadderPolicy, RungPolicy
from vnfha.health.supervisor import SupervisorSettings
from vnfha.health.verdict import CheckPolicy
from vnfha.metrics import MemberMetrics, Metrics, NullMetrics, error_kind
from vnfha.model import Recovery, Redundancy
from vnfha.net.address import ServiceAddress
from vnfha.nfvi.agent import AgentSettings
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import FenceMode, PlacementPolicy, WatchdogAction
from vnfha.nfvi.wire import channel_credentials
from vnfha.replication.active import Primary
from vnfha.replication.progress import ProgressReporter
from vnfha.replication.promise import PromiseTimers
from vnfha.replication.state import Limits
from vnfha.roles.addresses import AddressKeeper
from vnfha.roles.agreement import settings_of
from vnfha.roles.keys import GroupKeys
from vnfha.roles.monitor import MonitorTimers
from vnfha.roles.record import RecordKeeper
from vnfha.roles.resign import ResignTimers
from vnfha.roles.watch import GroupWatch
from vnfha.store.base import Store
from vnfha.store.observed import EtcdRequest, ObservedStore
from vnfha.store.session import Session, SessionState, SessionView
from vnfha.timing import backoff_step_s, poll_interval_s

__all__ = [
    "agent_settings",
    "bridge_client",
    "check_policy",
    "checkpoint_limits",
    "component_checks",
    "ladder_policy",
    "metrics_from_config",
    "monitor_timers",
    "promise_timers",
    "observed_store",
    "progress_reporter",
    "record_keeper",
    "replication_tls",
    "resign_timers",
    "session_factory",
    "store_from_config",
    "supervisor_settings",
]

log = logging.getLogger("vnfha.member")


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


def metrics_from_config(config: Config) -> Metrics:
    """The member's own registry when ``metrics_port`` is set, else the null object."""
    if config.metrics_port is None:
        return NullMetrics()
    return MemberMetrics(config.group, config.member)


def observed_store(store: Store, member: str, metrics: Metrics, clock: Clock) -> ObservedStore:
    """``store`` as the member's parts use it: every failed request is counted in
    ``vnfha_etcd_errors_total``, and etcd's NOSPACE alarm is logged at ERROR on
    ``vnfha.member``, at most once every 10 s however many requests it refuses (the others
    are counted in the next line): what it stops, what still works, and the cure."""
    nospace = RateLimitedLog(log, level=logging.ERROR, monotonic=clock.monotonic)

    def on_error(request: EtcdRequest, error: StoreError) -> None:
        metrics.etcd_error(request, error_kind(error))
        if isinstance(error, StoreNoSpace):
            nospace("nospace", "%s: etcd refused a %s request: its NOSPACE alarm is raised "
                    "(database space exceeded) and lasts until %s. Until then no change "
                    "through etcd (campaign, takeover, switchover, rejoin) is possible; this "
                    "member keeps its role while its lease holds (keepalives are still "
                    "accepted). etcd said: %s", member, request.value, StoreNoSpace.CURE,
                    error.details)

    return ObservedStore(store, on_error=on_error)


def record_keeper(config: Config, keys: GroupKeys, store: Store, clock: Clock, *,
                  poke: Callable[[], None],
                  adopt: Callable[[asyncio.Task[Any]], None]) -> RecordKeeper:
    """The keeper of the member's record: rewritten at most once per lease TTL when lost, with
    the settings the group's members must share (:mod:`vnfha.roles.agreement`)."""
    return RecordKeeper(
        me=config.member, keys=keys, store=store, clock=clock,
        rewrite_every_s=float(config.lease_ttl_s), settings=settings_of(config),
        warn=RateLimitedLog(log, level=logging.WARNING, monotonic=clock.monotonic),
        poke=poke, adopt=adopt)


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


def promise_timers(config: Config) -> PromiseTimers:
    """The standby lease as ``config`` sets it (off under the models without a standby that
    may take over: no-redundancy and n-way-active)."""
    replicated = config.redundancy in (Redundancy.TWO_N, Redundancy.N_WAY)
    return PromiseTimers(config.standby_lease_s_effective if replicated else 0.0,
                         config.standby_lease_margin_s)


def resign_timers(config: Config) -> ResignTimers:
    """The bounds of the active's graceful exit."""
    return ResignTimers(poll_s=poll_interval_s(config.heartbeat_interval_s),
                        catch_up_s=config.checkpoint_ack_timeout_s,
                        release_seen_s=config.etcd_request_timeout_s,
                        successor_s=float(config.lease_ttl_s))


def session_factory(config: Config, store: Store, clock: Clock,
                    metrics: Metrics) -> Callable[[], Session]:
    """Opens the member's sessions (a new one after each lost one), as the config times them.
    Each records in ``metrics`` the round trip of every answered keepalive (from its send time,
    which the session's view keeps, to now) and its loss while in use (not by its own close)."""
    def new() -> Session:
        session = Session(store, ttl_s=config.lease_ttl_s,
                          keepalive_interval_s=config.keepalive_interval_s_effective,
                          margin_s=config.lease_margin_s, clock=clock,
                          request_timeout_s=config.etcd_request_timeout_s)

        def answered(view: SessionView) -> None:  # called as the answer arrives
            metrics.lease_keepalive(clock.monotonic() - view.last_ack_send_time)

        def changed(view: SessionView) -> None:
            if view.state is SessionState.LOST and not session.closed:
                metrics.lease_lost()

        session.add_ack_listener(answered)
        session.add_listener(changed)
        return session
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


def check_policy(config: Config) -> CheckPolicy:
    """The policy of the component's ``health_check`` from the ``health_*`` config fields."""
    return CheckPolicy(fail_after=config.health_fail_after,
                       recover_after=config.health_recover_after,
                       period_s=config.health_check_period_s,
                       timeout_s=config.health_check_timeout_s)


def ladder_policy(config: Config) -> LadderPolicy:
    """The ladder's policy from the ``ladder_*`` config fields."""
    return LadderPolicy(
        restart=RungPolicy(config.ladder_restart_max_count, config.ladder_restart_probation_s),
        failover=RungPolicy(config.ladder_failover_max_count, config.ladder_failover_probation_s),
        reboot_vm=RungPolicy(config.ladder_reboot_vm_max_count,
                             config.ladder_reboot_vm_probation_s),
        evacuate_vm=RungPolicy(config.ladder_evacuate_vm_max_count,
                               config.ladder_evacuate_vm_probation_s))


def supervisor_settings(config: Config, component: object = None) -> SupervisorSettings:
    """What the health supervisor takes from the config, with the built-in checks of
    ``config.checks`` followed by those ``component`` registers (:func:`component_checks`),
    the command an ALARM runs (``alarm_command``, ``alarm_command_timeout_s``) and the
    ``placement_policy`` its NFVI escalations keep."""
    return SupervisorSettings(check=check_policy(config), ladder=ladder_policy(config),
                              key_prefix=config.key_prefix,
                              request_timeout_s=config.etcd_request_timeout_s,
                              checks=(*config.checks, *component_checks(config, component)),
                              alarm_command=config.alarm_command,
                              alarm_command_timeout_s=config.alarm_command_timeout_s,
                              placement_policy=placement_policy(config))


def component_checks(config: Config, component: object) -> tuple[CheckSpec, ...]:
    """What ``component.checks()`` returns (called once, here; none without the method):
    CheckSpecs, at most MAX_CHECKS, named apart from each other and from ``config.checks``.
    ConfigError (field ``checks()[i]``) otherwise, so the member is not built."""
    hook = getattr(component, "checks", None)
    given = () if hook is None else hook()
    if not isinstance(given, list | tuple) or not all(isinstance(s, CheckSpec) for s in given):
        raise ConfigError("checks()", given, "Component.checks() returns a list of CheckSpecs")
    specs = check_specs("checks()", given)  # at most MAX_CHECKS, named apart
    taken = {spec.name for spec in config.checks}
    for i, spec in enumerate(specs):
        if spec.name in taken:
            raise ConfigError(f"checks()[{i}].name", spec.name,
                              "Config.checks has a check of this name too: names must be unique")
    return specs


def placement_policy(config: Config) -> PlacementPolicy | None:
    """The member's ``placement_policy`` (None: none)."""
    return None if config.placement_policy is None else PlacementPolicy(config.placement_policy)


def agent_settings(config: Config) -> AgentSettings:
    """What a member's NFVI agent takes from the config."""
    return AgentSettings(
        member=config.member,
        placement_policy=placement_policy(config),
        refuse_violation=config.placement_violation == "refuse",
        fence_mode=FenceMode(config.fence_mode),
        retry_s=backoff_step_s(config.heartbeat_interval_s),
        watchdog_timeout_s=config.watchdog_timeout_s_effective,
        watchdog_action=WatchdogAction(config.watchdog_action),
        repair_after_s=config.repair_after_s)


def bridge_client(config: Config, clock: Clock) -> BridgeClient | None:
    """The client the config describes, or None without ``bridge_endpoint``."""
    if config.bridge_endpoint is None:
        return None
    credentials = None
    if config.bridge_ca_file is not None:
        credentials = channel_credentials(ca_file=config.bridge_ca_file,
                                          cert_file=config.bridge_cert_file,
                                          key_file=config.bridge_key_file)
    return BridgeClient(config.bridge_endpoint, group=config.group, member=config.member,
                        timeout_s=config.bridge_timeout_s, credentials=credentials, clock=clock)


def replication_tls(config: Config) -> dict[str, str | None]:
    """The replication TLS files (``replication_*_file``), as the credentials functions of
    :mod:`vnfha.replication.wire` take them."""
    return {"ca_file": config.replication_ca_file, "cert_file": config.replication_cert_file,
            "key_file": config.replication_key_file}



def address_keeper(config: Config, metrics: Metrics, clock: Clock, *, watch: GroupWatch,
                   callbacks: CallbackRunner, refuse: Callable[[str, Recovery], None],
                   bridge: BridgeClient | None) -> AddressKeeper | None:
    """The keeper of ``config.service_addresses`` (None: none), its claim gating ``on_active``
    in ``callbacks``; a failed claim reports a fault recommending a failover (``refuse``).
    The successor's probe tolerates the MACs the group's other members published. Under
    ``service_address_mode = "nfvi"`` the bridge moves the addresses instead. Local addresses
    live :func:`address_lifetime_s` past their last renewal."""
    if not config.service_addresses:
        return None
    me = config.member

    def tolerate() -> list[str]:
        return [mac for rec, _ in watch.state.members.values() if rec.member != me
                for mac in rec.macs]

    mover = None
    if config.service_address_mode == "nfvi" and bridge is not None:
        client = bridge

        async def move(address: ServiceAddress, epoch: int) -> object:
            return await client.move_address(address, epoch,
                                             call_timeout_s=config.address_move_timeout_s)
        mover = move

    def held_elsewhere(address: str) -> bool:
        return any(address in rec.addresses for rec, _ in watch.state.members.values()
                   if rec.member != me)

    keeper = AddressKeeper(me, config.service_addresses, clock=clock, metrics=metrics,
                           tolerate=tolerate, held_elsewhere=held_elsewhere,
                           refuse=lambda why: refuse(why, Recovery.FAILOVER),
                           spawn=callbacks.adopt, mover=mover,
                           lifetime_s=address_lifetime_s(config.lease_ttl_s))
    callbacks.gates["on_active"] = lambda a: keeper.claim(a.epoch)
    return keeper


def address_lifetime_s(lease_ttl_s: float) -> int:
    """How long a service address outlives the active's last renewal: twice the lease TTL,
    whole seconds, at least 2 (4 s with the default TTL). An active renews after confirmed
    keepalives, which stop no later than its lease; an address therefore outlives a killed or
    frozen active by at most this much, and one renewal late never drops it."""
    return max(2, math.ceil(2 * lease_ttl_s))
