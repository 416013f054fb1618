"""A member of a group: joins through etcd, holds the role :mod:`vnfha.roles.policy` decides,
and runs the component's callbacks.

This is the composition root and the public face: it builds the parts from the config and
runs their lifecycle. The decide -> act loop and each role change's side effects are the role
runtime's (:mod:`vnfha.roles.runtime`); the other parts have modules of their own: the group's
snapshot and watch (:mod:`vnfha.roles.watch`), the successor and the active key's transactions
(:mod:`vnfha.roles.handover`, pure), the graceful exit (:mod:`vnfha.roles.resign`), following
the active (:mod:`vnfha.roles.follow`), this member's record (:mod:`vnfha.roles.record`),
poisoned-state protection (:mod:`vnfha.roles.poison_guard`), the callbacks
(:mod:`vnfha.callbacks`), the events (:mod:`vnfha.events`), the parts built from the config
(:mod:`vnfha.wiring`).

How it works (the keys are drawn in :mod:`vnfha.roles.keys`):

- **Join.** Open a :class:`~vnfha.store.session.Session` (a lease with a local deadline),
  publish ``members/{me}`` bound to it, watch the group from now, then read it.
- **Decide.** On every change the policy decides from a snapshot; the runtime executes and logs
  the decision's reason. A campaign is one transaction, "create the active key bound to my lease
  if it does not exist"; the transaction's revision is the new **epoch**, so epochs only grow.
- **Stop acting first.** The active demotes itself *synchronously*, before any other await,
  when its watch shows the active key deleted or taken, or when its session is LOST (deadline
  passed: checked by the session's timer and again on every read of :attr:`Member.role`, so a
  process resumed after SIGSTOP sees it before its next action).
- **Hand over gracefully.** :meth:`Member.switchover` and a clean stop run ``on_quiesce``,
  then in one transaction delete the active key (only if it is still ours, same epoch) and
  write a handover hint naming the successor, which campaigns first; the others wait backoff
  steps (``2 x heartbeat_interval_s`` each) by rank.
- **Callbacks never crash the loop.** One at a time in order, each bounded by
  ``callback_timeout_s``; failures and overruns are logged, counted and sent to listeners.
- **A lost session is not the end.** QUIESCED at once, then a new session, as a standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

from vnfha._tasks import stop_task
from vnfha.callbacks import CallbackRunner
from vnfha.checkpoint import AckPolicy, Checkpoint
from vnfha.clock import Clock, SystemClock
from vnfha.component import Component
from vnfha.config import Config
from vnfha.errors import NotActive, StoreError, SwitchoverError
from vnfha.events import CallbackFailed, Listeners, MemberEvent, RoleChanged
from vnfha.health.serving import MemberServing
from vnfha.health.supervisor import Supervisor
from vnfha.metrics import Metrics
from vnfha.model import ReasonKind, Recovery, Redundancy, Role
from vnfha.nfvi.agent import NfviAgent
from vnfha.nfvi.client import NfviPort, NoBridge
from vnfha.nfvi.model import BridgeEvent
from vnfha.replication.server import ReplicationServer
from vnfha.replication.standby import Replica
from vnfha.replication.state import CheckpointData
from vnfha.replication.wire import channel_credentials, server_credentials
from vnfha.roles.duties import ActiveDuties, pick_target
from vnfha.roles.follow import Follower
from vnfha.roles.handover import best_target
from vnfha.roles.keys import GroupKeys, GroupState, SwitchoverRequest
from vnfha.roles.monitor import ActiveMonitor
from vnfha.roles.poison_guard import guard_from_config
from vnfha.roles.resign import Resigner
from vnfha.roles.runtime import RoleRuntime
from vnfha.roles.watch import GroupWatch
from vnfha.store.base import Store
from vnfha.timing import backoff_step_s
from vnfha.wiring import (
    address_keeper,
    agent_settings,
    bridge_client,
    checkpoint_limits,
    metrics_from_config,
    monitor_timers,
    observed_store,
    progress_reporter,
    promise_timers,
    record_keeper,
    replication_tls,
    resign_timers,
    session_factory,
    store_from_config,
    supervisor_settings,
)

__all__ = [
    "CallbackFailed",
    "Member",
    "MemberEvent",
    "RoleChanged",
    "store_from_config",
]

log = logging.getLogger("vnfha.member")


class Member:
    """One member of ``config.group``, running ``component``. Use ``async with``.

    ``store`` and ``clock`` are for tests (a MemoryStore on a FakeClock); by default the member
    talks to the etcd the config names, on the system clock, and closes that store on stop.
    ``metrics`` replaces the registry built from ``config.metrics_port``, for a process that
    hosts many members or serves its own (it is still served on that port if it is set).
    """

    def __init__(
        self,
        config: Config,
        component: object | None = None,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.component = component if component is not None else Component()
        self._runtime: RoleRuntime  # built last, from the parts; the lambdas reach it late
        self._clock: Clock = clock or SystemClock()
        self.metrics = metrics if metrics is not None else metrics_from_config(config)
        """This member's Prometheus metrics (served on ``config.metrics_port`` if set)."""
        self._own_store = store is None
        self._given_store = store if store is not None else store_from_config(config, clock)
        self._store: Store = observed_store(self._given_store, config.member, self.metrics,
                                            self._clock)
        self._keys = GroupKeys(config.key_prefix, config.group)
        step_s = backoff_step_s(config.heartbeat_interval_s)
        self._group = GroupWatch(self._store, self._keys, self._clock, member=config.member,
                                 retry_s=step_s, on_change=lambda: self._runtime.after_change())  # noqa: PLW0108
        self._listeners = Listeners(config.member)
        self._started = False
        self._loop_task: asyncio.Task[None] | None = None
        self._progress_task: asyncio.Task[None] | None = None
        self._all_active = config.redundancy is Redundancy.N_WAY_ACTIVE
        self._limits = limits = checkpoint_limits(config)
        self._replica = Replica(group=config.group, member=config.member, data=CheckpointData(),
                                limits=limits, clock=self._clock, retry_s=step_s,
                                credentials=channel_credentials(**replication_tls(config)),
                                keepalive_s=config.standby_silence_s,
                                standby_lease_s=config.standby_lease_s_effective)
        self._replica.on_gone = lambda e, why: self._runtime.on_active_gone(e, why)  # noqa: PLW0108
        self.checkpoint = Checkpoint(
            self, self._replica, limits, metrics=self.metrics, clock=self._clock,
            acks=AckPolicy(config.checkpoint_ack_timeout_s, config.checkpoint_degrade_ack))
        """The replicated state (:class:`vnfha.checkpoint.Checkpoint`)."""
        self.serving = MemberServing()
        """What this member answers on grpc.health.v1 (:mod:`vnfha.health.serving`)."""
        self._server = self._replication_server()
        self._listen = config.listen
        self.nfvi: NfviAgent | None
        self.supervisor: Supervisor
        self._build_services()
        self._callbacks = CallbackRunner(
            self.component, member=config.member, clock=self._clock,
            timeout_s=config.callback_timeout_s, emit=self._listeners.emit,
            on_failure=self.supervisor.callback_failed)
        self._resigner = Resigner(
            member=config.member, group=config.group, timers=resign_timers(config),
            clock=self._clock, store=self._store, keys=self._keys, watch=self._group,
            primary=lambda: self.checkpoint.primary, callbacks=self._callbacks,
            quiesce=self._quiesce_for_handover, settled=self._handover_settled)
        self._follower = Follower(
            me=config.member, replica=self._replica, store=self._store, clock=self._clock,
            on_gone=self._replica.on_gone, timers=monitor_timers(config),
            on_lapsed=lambda epoch: self._runtime.on_promise_lapsed(epoch))  # noqa: PLW0108
        self._duties = ActiveDuties(
            me=config.member, group=config.group, keys=self._keys, store=self._store,
            watch=self._group, nfvi=self.nfvi, view=lambda: self._runtime.view(),  # noqa: PLW0108 - built later
            epoch=lambda: self._runtime.epoch, resign=self._resign, clock=self._clock,
            switchover=lambda target: self.switchover(to=target),
            may_move=lambda: (self._runtime.role is Role.ACTIVE and not self._runtime.stopping
                              and not self._all_active),
            adopt=self._callbacks.adopt)
        self._runtime = self._role_runtime(step_s)

    def _role_runtime(self, step_s: float) -> RoleRuntime:
        """The decide -> act loop (:mod:`vnfha.roles.runtime`) over the parts built above."""
        config = self.config
        records = record_keeper(config, self._keys, self._store, self._clock,
                                poke=lambda: self._runtime.poke(),  # noqa: PLW0108 - built below
                                adopt=self._callbacks.adopt)
        return RoleRuntime(
            me=config.member, group=config.group, redundancy=config.redundancy,
            priority=config.priority, no_failover=config.no_failover, clock=self._clock,
            store=self._store, keys=self._keys, watch=self._group, replica=self._replica,
            checkpoint=self.checkpoint, limits=self._limits, follower=self._follower,
            callbacks=self._callbacks, listeners=self._listeners, metrics=self.metrics,
            serving=self.serving, nfvi=self.nfvi, records=records, step_s=step_s,
            heartbeat_s=config.heartbeat_interval_s,
            standby_silence_s=config.standby_silence_s, promises=promise_timers(config),
            open_session=session_factory(config, self._store, self._clock, self.metrics),
            failing=lambda: self.supervisor.monitor.failing,
            resigning=lambda: self._resigner.resigning, listen=lambda: self._listen,
            on_active_turn=self._duties.turn, poison=guard_from_config(
                config, self._replica.data, store=self._store, keys=self._keys,
                clock=self._clock, emit=self._listeners.emit, bridge=self._bridge),
            addresses=address_keeper(config, self.metrics, self._clock, watch=self._group,
                                     callbacks=self._callbacks, refuse=self.report_fault,
                                     bridge=self._bridge),
            resign_after_failure=lambda: self._resign(self._best_target(), "role loop failed",
                                                      kind=ReasonKind.FAULT))

    def _replication_server(self) -> ReplicationServer:
        """The member's gRPC endpoint: replication and grpc.health.v1 on ``config.listen``."""
        config = self.config
        mtls = config.replication_ca_file is not None
        return ReplicationServer(
            listen=config.listen, group=config.group, member=config.member, limits=self._limits,
            credentials=server_credentials(**replication_tls(config)),
            primary=lambda: self.checkpoint.primary,
            allowed_peers=(lambda: frozenset(self._group.state.members)) if mtls else None,
            on_stale=self._on_stale,
            keepalive_s=config.standby_silence_s, clock=self._clock,
            health=self.serving.service, on_refused=self.metrics.replication_refused,
        )

    def _build_services(self) -> None:
        """``self.nfvi``: the member's NFVI duties (watchdog, fencing, placement, events), None
        without a bridge; ``self.supervisor``: health checks and the escalation ladder
        (``docs/ladder.md``); ``self.progress``: the active's replication lag, sampled into
        the metrics and etcd (None with ``progress_interval_s`` unset, or N_WAY_ACTIVE)."""
        config = self.config
        self.progress = progress_reporter(config, self._keys, self._store, self.metrics,
                                          self._clock, primary=lambda: self.checkpoint.primary,
                                          lease=lambda: self.lease_id)
        client = self._bridge = bridge_client(config, self._clock)
        self.nfvi = None if client is None else NfviAgent(
            client, agent_settings(config), self._clock, on_maintenance=self._on_maintenance)
        port: NfviPort = client or NoBridge(group=config.group, member=config.member)
        self.supervisor = Supervisor(self, settings=supervisor_settings(config, self.component),
                                     store=self._store, clock=self._clock,
                                     nfvi=port, metrics=self.metrics,
                                     health_check=getattr(self.component, "health_check", None),
                                     on_health=self._health_changed, on_alarm=self._listeners.emit)

    # -- public state ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """This member's name (``config.member``)."""
        return self.config.member

    @property
    def group(self) -> str:
        """The group's name (``config.group``)."""
        return self.config.group

    @property
    def role(self) -> Role:
        """The current role. An active past its lease deadline demotes itself on this read."""
        return self._runtime.role

    @property
    def epoch(self) -> int:
        """The epoch of the current active grant (this member's own when it is active)."""
        return self._runtime.epoch

    @property
    def lease_id(self) -> int:
        """The current session's lease (0 before joining)."""
        return self._runtime.lease_id

    @property
    def store(self) -> Store:
        """The coordination store this member talks to (given, or built from the config)."""
        return self._given_store

    @property
    def listen(self) -> str:
        """The replication endpoint actually bound (``config.listen`` with its port resolved)."""
        return self._listen

    @property
    def replica(self) -> Replica:
        """Replication statistics of this member as a standby (for tests and metrics)."""
        return self._replica

    @property
    def monitor(self) -> ActiveMonitor | None:
        """The watch over the active this member follows, or last followed, as a standby (for
        tests and the fence benchmark)."""
        return self._follower.monitor

    @property
    def follower(self) -> Follower:
        """How this member follows the active (tests cut its stream: ``pause``/``resume``)."""
        return self._follower

    @property
    def group_state(self) -> GroupState:
        """The group as this member last saw it (kept current by its watch; read-only use)."""
        return self._group.state

    @property
    def callback_failures(self) -> int:
        """How many callbacks raised or overran since start."""
        return self._callbacks.failures

    def is_active(self) -> bool:
        """True only while this member holds the active key with a valid session: the check
        every externally visible action of an active must pass first."""
        return self.role is Role.ACTIVE

    def check_active(self) -> int:
        """The epoch, or NotActive if this member may not act as the active right now.

        While it quiesces for a graceful handover (``on_quiesce``) the member is QUIESCED but
        still holds the key: checkpoint writes pass this check then, so the last state reaches
        the successor; ``is_active()`` is already False, so it takes no new work.
        """
        runtime = self._runtime
        if self.is_active():
            return runtime.epoch
        primary = self.checkpoint.primary
        if (self._resigner.quiescing and primary is not None and not primary.closed
                and runtime.session is not None and runtime.session.valid()
                and primary.lapse(self._clock.monotonic()) is None):
            return runtime.epoch
        raise NotActive(self.name, runtime.role.value, runtime.epoch)

    def add_listener(self, listener: Callable[[MemberEvent], None]) -> None:
        """Call ``listener(event)`` for every role change, callback failure and alarm (sync)."""
        self._listeners.add(listener)

    async def wait_for_role(self, role: Role, timeout_s: float) -> None:
        """Return once the member holds ``role``; TimeoutError after ``timeout_s``."""
        event = self._runtime.role_event

        async def wait() -> None:
            while self.role is not role:
                event.clear()
                await event.wait()

        await self._clock.wait_for(wait(), timeout_s)

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Join the group: returns once this member's record is published (its role may still be
        SPARE; use :meth:`wait_for_role`). Raises StoreError if etcd cannot be reached at all."""
        if self._started:
            raise RuntimeError(f"member {self.name} already started")
        self._started = True
        self._callbacks.start()
        try:
            if self.config.metrics_port is not None:
                self.metrics.serve(self.config.metrics_port, self.config.metrics_host)
            self._listen = await self._server.start()
            if self.nfvi is not None and self._bridge is not None:
                await self._bridge.__aenter__()
                await self.nfvi.start()  # may refuse to start: a violated placement policy
                self._follower.fencer = self.nfvi.bind_standby(self._runtime)
            await self._runtime.join(first=True)
        except BaseException:
            await self.stop()
            raise
        self._loop_task = asyncio.create_task(self._runtime.run(), name=f"{self.name}-roles")
        if self.progress is not None:
            self._progress_task = asyncio.create_task(self.progress.run(),
                                                      name=f"{self.name}-progress")
        await self.supervisor.__aenter__()
        self.serving.update(running=True)

    async def stop(self) -> None:
        """Leave the group. An active hands over to its best standby first (``on_quiesce``,
        then the key is released with a hint). Idempotent; never raises for a lost etcd."""
        runtime = self._runtime
        if runtime.stopping:
            return
        runtime.stopping = True
        self.serving.update(running=False)
        if self._loop_task is not None:  # the supervisor started with the role loop
            await self.supervisor.__aexit__(None, None, None)
        if (runtime.role is Role.ACTIVE and not self._all_active and runtime.session is not None
                and runtime.session.valid()):
            with contextlib.suppress(SwitchoverError, StoreError):
                await self._resign(self._best_target(), "member stopping",
                                   kind=ReasonKind.STOPPED)
        await stop_task(self._progress_task)
        await stop_task(self._loop_task)
        await self._group.stop()
        if runtime.session is not None:
            await runtime.session.close(revoke=True)
        if runtime.role is not Role.QUIESCED:
            runtime.set_role(Role.QUIESCED, runtime.epoch, "member stopped", ReasonKind.STOPPED,
                             callback=False)
        await self._follower.stop()
        self.checkpoint.demote()
        self.serving.close()
        await self._server.stop()
        if self.nfvi is not None:
            await self.nfvi.close()
        await self._callbacks.drain()
        if self.config.metrics_port is not None:  # stop serving what start() served
            self.metrics.close()
        if self._own_store:
            await self._given_store.close()

    # -- faults (the escalation ladder's entry points and actions) -----------------------------

    def report_fault(self, reason: str, recommended: Recovery = Recovery.NONE) -> None:
        """Report a fault the component noticed itself; the escalation ladder decides what to
        do (``recommended`` is a floor: a REPAIR_VM recommendation starts at the NFVI rungs).
        Returns at once; the recovery runs in the background (``docs/ladder.md``)."""
        self.supervisor.report_fault(reason, recommended)

    def paused(self) -> bool:
        """True while an operator has paused the group (``vnfha lock GROUP``)."""
        return self._group.state.paused is not None

    def has_eligible_standby(self) -> bool:
        """True when a standby could take over now (in sync, not tagged no-failover)."""
        return self._best_target() is not None

    async def restart_component(self) -> None:
        """The ladder's first rung: the component's ``restart()``, in callback order, bounded
        by ``callback_timeout_s`` (a failure reaches the ladder as a failed callback)."""
        await self._callbacks.enqueue("restart")

    async def fail_over(self, reason: str) -> None:
        """The ladder's second rung: hand the active role to the best standby."""
        if self._runtime.role is not Role.ACTIVE:
            return
        await self._group.read_members()
        target = self._best_target()
        if target is None:
            raise SwitchoverError(self.group, None, "no eligible standby")
        await self._resign(target, f"fault: {reason}", kind=ReasonKind.FAULT)

    # -- switchover ------------------------------------------------------------------------------

    async def switchover(self, to: str | None = None, *, timeout_s: float | None = None,
                         force: bool = False) -> int:
        """Hand the active role to ``to`` (or the best eligible standby, healthy first; a
        failing ``to`` only with ``force``) gracefully: ``on_quiesce``, release the key with a
        hint, wait for the successor. Returns the new epoch. NotActive if this member is not
        active; SwitchoverError if there is no eligible target or nobody took over within
        ``timeout_s`` (default: the lease TTL); StoreError if etcd refuses writes (StoreNoSpace:
        its NOSPACE alarm), checked before anything changes."""
        self.check_active()
        await self._group.read_members()  # choose from etcd's current list, not a lagging watch
        target = pick_target(self._runtime.view(), to, self.group, force=force)
        await self._resigner.check_writable()  # a refused release would give the role away
        old_epoch = self._runtime.epoch
        await self._resign(target, f"switchover to {target}")
        return await self._resigner.wait_new_active(target, old_epoch, timeout_s,
                                                    self._runtime.role_event)

    def _best_target(self) -> str | None:
        return best_target(self._runtime.view())

    async def _resign(self, target: str | None, reason: str,
                      request: SwitchoverRequest | None = None, *,
                      kind: ReasonKind = ReasonKind.SWITCHOVER) -> bool:
        """Quiesce, then release the active key if it is still ours; True if we released it
        (:mod:`vnfha.roles.resign`)."""
        return await self._resigner.resign(self._runtime.epoch, self.lease_id, target, reason,
                                           request, kind=kind)

    def _quiesce_for_handover(self, epoch: int, reason: str, kind: ReasonKind) -> None:
        self._runtime.set_role(Role.QUIESCED, epoch, reason, kind, callback=False,
                               keep_primary=True)

    def _handover_settled(self) -> None:
        self.checkpoint.demote()
        self._runtime.poke()

    # -- what the parts report -------------------------------------------------------------------

    def _on_stale(self, epoch: int) -> None:
        """A standby told this (old) active about a newer epoch than its own."""
        self.metrics.stale_epoch_rejected("active")
        self._runtime.poke()

    def _health_changed(self, healthy: bool) -> None:
        """A health check failed or recovered: grpc.health.v1 follows at once, and the role
        loop republishes this member's record (its failing checks, for ``vnfha status``)."""
        self.serving.update(healthy=healthy)
        self._runtime.poke()

    def _on_maintenance(self, event: BridgeEvent) -> None:
        """This member's host goes down for maintenance: the role loop looks again (duties)."""
        self._runtime.poke()
