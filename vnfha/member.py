"""A member of a group: joins through etcd, holds the role :mod:`vnfha.roles.policy` decides,
and runs the component's callbacks.

This is the composition root and the role runtime. Its parts live in their own modules: the
group snapshot and its watch (:mod:`vnfha.roles.watch`), the choice of a successor and the
transactions on the active key (:mod:`vnfha.roles.handover`, pure), the graceful exit
(:mod:`vnfha.roles.resign`), following the active as a standby (:mod:`vnfha.roles.follow`),
the callback runner (:mod:`vnfha.callbacks`), the events listeners receive
(:mod:`vnfha.events`), and the parts built from the config (:mod:`vnfha.wiring`).

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
- **Callbacks never crash the loop.** They run one at a time in order, each bounded by
  ``callback_timeout_s``; failures and overruns are logged, counted and sent to listeners.
- **A lost session is not the end.** The member goes QUIESCED at once, then opens a new session
  and rejoins as a standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from types import TracebackType
from typing import Self

from vnfha._ratelog import RateLimitedLog
from vnfha._tasks import stop_task
from vnfha.callbacks import CallbackRunner
from vnfha.checkpoint import Checkpoint
from vnfha.clock import Clock, SystemClock
from vnfha.component import Assignment, Component
from vnfha.config import Config
from vnfha.errors import NotActive, StoreError, StoreUnavailable, SwitchoverError
from vnfha.events import CallbackFailed, Listeners, MemberEvent, RoleChanged, reason_kind
from vnfha.health.serving import MemberServing
from vnfha.health.supervisor import Supervisor
from vnfha.metrics import MemberMetrics, Metrics, NullMetrics, ReasonKind
from vnfha.model import Recovery, Redundancy, Role
from vnfha.nfvi.agent import NfviAgent, bridge_client
from vnfha.nfvi.client import NfviPort, NoBridge
from vnfha.nfvi.model import BridgeEvent
from vnfha.replication.active import Primary, ReplicationServer
from vnfha.replication.progress import ProgressReporter
from vnfha.replication.standby import Replica
from vnfha.replication.state import CheckpointData
from vnfha.replication.wire import channel_credentials, server_credentials
from vnfha.roles.follow import Follower, FollowTarget
from vnfha.roles.handover import (
    best_target,
    campaign_txn,
    choose_target,
    refusal_ops,
    sync_txn,
)
from vnfha.roles.keys import (
    ActiveRecord,
    GroupKeys,
    GroupState,
    MemberRecord,
    SwitchoverRequest,
    new_secret,
)
from vnfha.roles.monitor import ActiveMonitor
from vnfha.roles.policy import Action, Decision, GroupView, decide
from vnfha.roles.resign import Resigner
from vnfha.roles.watch import GroupWatch
from vnfha.store.base import Store
from vnfha.store.session import Session, SessionState
from vnfha.store.session_state import SessionView
from vnfha.wiring import checkpoint_limits, monitor_timers, store_from_config

__all__ = [
    "CallbackFailed",
    "Member",
    "MemberEvent",
    "RoleChanged",
    "reason_kind",
    "store_from_config",
]

log = logging.getLogger("vnfha.member")


_CALLBACK_ROLES = {Role.ACTIVE: "on_active", Role.STANDBY: "on_standby", Role.SPARE: "on_standby"}


class Member:
    """One member of ``config.group``, running ``component``. Use ``async with``.

    ``store`` and ``clock`` are for tests (a MemoryStore on a FakeClock); by default the member
    talks to the etcd the config names, on the system clock, and closes that store on stop.
    """

    def __init__(
        self,
        config: Config,
        component: object | None = None,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.component = component if component is not None else Component()
        self._clock: Clock = clock or SystemClock()
        self.metrics: Metrics = (NullMetrics() if config.metrics_port is None
                                 else MemberMetrics(config.group, config.member))
        """This member's Prometheus metrics (served on ``config.metrics_port``)."""
        self._gone_at: float | None = None
        self._own_store = store is None
        self._store: Store = store if store is not None else store_from_config(config, clock)
        self._keys = GroupKeys(config.key_prefix, config.group)
        self._step_s = 2 * config.heartbeat_interval_s
        self._group = GroupWatch(self._store, self._keys, self._clock, member=config.member,
                                 retry_s=self._step_s, on_change=self._after_change)
        self._role = Role.SPARE
        self._epoch = 0
        self._session: Session | None = None
        self._listeners = Listeners(config.member)
        self._published: MemberRecord | None = None
        self._publishing: MemberRecord | None = None
        self._grants: set[int] = set()
        """Revisions at which this session's campaigns wrote the active key (only a key written
        by one of them makes this member active)."""
        self._record_lost = False
        self._record_rewritten_at = -float("inf")
        self._odd_records = RateLimitedLog(log, level=logging.WARNING,
                                           monotonic=self._clock.monotonic)
        """Warnings about what someone else wrote into our keys: one per kind every 10 s."""
        self._handled_requests: set[str] = set()
        self._stopping = False
        self._started = False
        self._loop_task: asyncio.Task[None] | None = None
        self._progress_task: asyncio.Task[None] | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None
        self._role_event: asyncio.Event | None = None
        self._all_active = config.redundancy is Redundancy.N_WAY_ACTIVE
        self._limits = limits = checkpoint_limits(config)
        self._replica = Replica(group=config.group, member=config.member, data=CheckpointData(),
                                limits=limits, clock=self._clock,
                                credentials=channel_credentials(config), retry_s=self._step_s,
                                keepalive_s=config.standby_silence_s)
        self._replica.on_gone = self._on_active_gone
        self._gone_epoch = 0
        self.checkpoint = Checkpoint(self, self._replica, limits)
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
            member=config.member, config=config, clock=self._clock, store=self._store,
            keys=self._keys, watch=self._group, checkpoint=self.checkpoint,
            callbacks=self._callbacks, quiesce=self._quiesce_for_handover,
            settled=self._handover_settled)
        self._follower = Follower(
            me=config.member, replica=self._replica, store=self._store, clock=self._clock,
            on_gone=self._on_active_gone, timers=monitor_timers(config))
        self._joined_revision = 0

    def _replication_server(self) -> ReplicationServer:
        """The member's gRPC endpoint: replication and grpc.health.v1 on ``config.listen``."""
        config = self.config
        mtls = config.replication_ca_file is not None
        return ReplicationServer(
            listen=config.listen, group=config.group, member=config.member, limits=self._limits,
            credentials=server_credentials(config), primary=lambda: self.checkpoint._primary,
            allowed_peers=(lambda: frozenset(self._state.members)) if mtls else None,
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
        self.progress = None if config.progress_interval_s is None or self._all_active else \
            ProgressReporter(member=config.member, keys=self._keys, store=self._store,
                             metrics=self.metrics, clock=self._clock,
                             interval_s=config.progress_interval_s,
                             timeout_s=config.etcd_request_timeout_s,
                             primary=lambda: self.checkpoint._primary,
                             lease=lambda: self.lease_id)
        client = self._bridge = bridge_client(config, self._clock)
        self.nfvi = None if client is None else NfviAgent(
            client, config, self._clock, on_maintenance=self._on_maintenance)
        port: NfviPort = client if client is not None else NoBridge(group=config.group,
                                                                    member=config.member)
        self.supervisor = Supervisor(self, config=config, store=self._store, clock=self._clock,
                                     nfvi=port, metrics=self.metrics,
                                     health_check=getattr(self.component, "health_check", None),
                                     on_health=self._health_changed)

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
        self._check_deadline()
        return self._role

    @property
    def epoch(self) -> int:
        """The epoch of the current active grant (this member's own when it is active)."""
        return self._epoch

    @property
    def lease_id(self) -> int:
        """The current session's lease (0 before joining)."""
        return self._session.lease_id if self._session is not None else 0

    @property
    def store(self) -> Store:
        """The coordination store this member talks to."""
        return self._store

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
    def callback_failures(self) -> int:
        """How many callbacks raised or overran since start."""
        return self._callbacks.failures

    @property
    def _state(self) -> GroupState:
        """The group as this member last saw it (kept current by the group watch)."""
        return self._group.state

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
        if self.is_active():
            return self._epoch
        primary = self.checkpoint._primary
        if (self._resigner.resigning and primary is not None and not primary.closed
                and self._session is not None and self._session.valid()):
            return self._epoch
        raise NotActive(self.name, self._role.value, self._epoch)

    def add_listener(self, listener: Callable[[MemberEvent], None]) -> None:
        """Call ``listener(event)`` for every role change and callback failure (synchronously)."""
        self._listeners.add(listener)

    async def wait_for_role(self, role: Role, timeout_s: float) -> None:
        """Return once the member holds ``role``; TimeoutError after ``timeout_s``."""
        async def wait() -> None:
            while self.role is not role:
                assert self._role_event is not None
                self._role_event.clear()
                await self._role_event.wait()

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
        self._changed = asyncio.Event()
        self._role_event = asyncio.Event()
        self._callbacks.start()
        try:
            if self.config.metrics_port is not None:
                self.metrics.serve(self.config.metrics_port)
            self._listen = await self._server.start()
            if self.nfvi is not None and self._bridge is not None:
                await self._bridge.__aenter__()
                await self.nfvi.start()  # may refuse to start: a violated placement policy
                self._follower.fencer = self.nfvi.fence
            await self._join()
        except BaseException:
            await self.stop()
            raise
        self._loop_task = asyncio.create_task(self._run(), name=f"{self.name}-roles")
        if self.progress is not None:
            self._progress_task = asyncio.create_task(self.progress.run(),
                                                      name=f"{self.name}-progress")
        await self.supervisor.__aenter__()
        self.serving.update(running=True)

    async def stop(self) -> None:
        """Leave the group. An active hands over to its best standby first (``on_quiesce``,
        then the key is released with a hint). Idempotent; never raises for a lost etcd."""
        if self._stopping:
            return
        self._stopping = True
        self.serving.update(running=False)
        if self._loop_task is not None:  # the supervisor started with the role loop
            await self.supervisor.__aexit__(None, None, None)
        if (self._role is Role.ACTIVE and not self._all_active and self._session is not None
                and self._session.valid()):
            with contextlib.suppress(SwitchoverError, StoreError):
                await self._resign(self._best_target(), "member stopping")
        await stop_task(self._progress_task)
        await stop_task(self._loop_task)
        await self._group.stop()
        if self._session is not None:
            await self._session.close(revoke=True)
        if self._role is not Role.QUIESCED:
            self._set_role(Role.QUIESCED, self._epoch, "member stopped", callback=False)
        await self._follower.stop()
        self.checkpoint._demote()
        self.serving.close()
        await self._server.stop()
        if self.nfvi is not None:
            await self.nfvi.close()
        await self._callbacks.drain()
        self.metrics.close()
        if self._own_store:
            await self._store.close()

    # -- faults (the escalation ladder's entry points and actions) -----------------------------

    def report_fault(self, reason: str, recommended: Recovery = Recovery.NONE) -> None:
        """Report a fault the component noticed itself; the escalation ladder decides what to
        do (``recommended`` is a floor: a REPAIR_VM recommendation starts at the NFVI rungs).
        Returns at once; the recovery runs in the background (``docs/ladder.md``)."""
        self.supervisor.report_fault(reason, recommended)

    def has_eligible_standby(self) -> bool:
        """True when a standby could take over now (in sync, not tagged no-failover)."""
        return self._best_target() is not None

    async def restart_component(self) -> None:
        """The ladder's first rung: the component's ``restart()``, in callback order, bounded
        by ``callback_timeout_s`` (a failure reaches the ladder as a failed callback)."""
        await self._callbacks.enqueue("restart")

    async def fail_over(self, reason: str) -> None:
        """The ladder's second rung: hand the active role to the best standby."""
        if self._role is not Role.ACTIVE:
            return
        await self._group.read_members()
        target = self._best_target()
        if target is None:
            raise SwitchoverError(self.group, None, "no eligible standby")
        await self._resign(target, f"fault: {reason}")

    # -- switchover ------------------------------------------------------------------------------

    async def switchover(self, to: str | None = None, *, timeout_s: float | None = None) -> int:
        """Hand the active role to ``to`` (or the best-ranked eligible standby) gracefully:
        ``on_quiesce``, release the key with a hint, wait for the successor. Returns the new
        epoch. NotActive if this member is not active; SwitchoverError if there is no eligible
        target or nobody took over within ``timeout_s`` (default: the lease TTL)."""
        self.check_active()
        await self._group.read_members()  # choose from etcd's current list, not a lagging watch
        target = choose_target(self._view(), to, self.group)
        old_epoch = self._epoch
        await self._resign(target, f"switchover to {target}")
        assert self._role_event is not None
        return await self._resigner.wait_new_active(target, old_epoch, timeout_s,
                                                    self._role_event)

    def _view(self) -> GroupView:
        """The group as the active sees it when it chooses a successor."""
        return self._state.view(self.name, self.lease_id, True, self.config.redundancy)

    def _best_target(self) -> str | None:
        return best_target(self._view())

    async def _resign(self, target: str | None, reason: str,
                      request: SwitchoverRequest | None = None) -> bool:
        """Quiesce, then release the active key if it is still ours; True if we released it
        (:mod:`vnfha.roles.resign`)."""
        return await self._resigner.resign(self._epoch, self.lease_id, target, reason, request)

    def _quiesce_for_handover(self, epoch: int, reason: str) -> None:
        self._set_role(Role.QUIESCED, epoch, reason, callback=False, keep_primary=True)

    def _handover_settled(self) -> None:
        self.checkpoint._demote()
        self._poke()

    # -- joining and the role loop ---------------------------------------------------------------

    async def _join(self) -> None:
        """Open a session, publish our record, read the group and start watching it."""
        cfg = self.config
        session = Session(
            self._store, ttl_s=cfg.lease_ttl_s,
            keepalive_interval_s=cfg.keepalive_interval_s_effective,
            margin_s=cfg.lease_margin_s, clock=self._clock,
            request_timeout_s=cfg.etcd_request_timeout_s,
        )
        await session.open()
        self._session = session
        session.add_listener(self._on_session)
        if self.nfvi is not None:
            nfvi = self.nfvi
            session.add_ack_listener(lambda view: nfvi.keepalive_confirmed())
        self._published = None
        self._grants.clear()  # a new lease: no key written before is this session's
        await self._publish()
        await self._group.resync()

    def _after_change(self) -> None:
        """Runs synchronously after every batch: an active that lost the key stops at once."""
        if self._state.active_key is not None and not self._all_active:
            self._replica.observe_epoch(self._state.active_key[1].epoch)
        if self.checkpoint._primary is not None and not self._all_active and \
                not self._holds_key():
            self.checkpoint._demote()  # the key is gone: no write of this epoch from now on
        if self._state.active is None and self._gone_at is None and self._role is Role.STANDBY:
            self._gone_at = self._clock.monotonic()  # the key is gone: a failover starts
        if self._role is Role.ACTIVE and not self._all_active and not self._holds_key():
            self._set_role(Role.QUIESCED, self._epoch, self._why_not_holding())
        self._check_record()
        self._poke()

    def _why_not_holding(self) -> str:
        active, bad = self._state.active, self._state.bad_active
        if bad is not None:
            return f"the active key is bad: revision {bad.epoch} {bad.why}"
        if active is not None:
            return f"active key taken by {active[0].member} (epoch {active[1].epoch})"
        return "active key deleted"

    def _check_record(self) -> None:
        """Our member record, deleted or overwritten by someone else, is written back: at once
        the first time, then at most once per lease TTL while it keeps happening (two processes
        started under one name would otherwise overwrite each other without end)."""
        if self._published is None or self._record_lost:
            return
        found = self._state.members.get(self.name)
        if found is not None and found[1] == self.lease_id and \
                found[0] in (self._published, self._publishing):
            return
        what = "deleted" if found is None else \
            f"overwritten (lease {found[1]:x}, pid {found[0].pid}, host {found[0].host!r})"
        now = self._clock.monotonic()
        wait = self._record_rewritten_at + self.config.lease_ttl_s - now
        self._record_lost = True
        self._odd_records(what, "%s: our member record was %s; writing it back%s", self.name,
                          what, f" in {wait:.1f} s" if wait > 0 else "")
        if wait <= 0:
            self._record_rewritten_at = now
            return

        async def later() -> None:
            await self._clock.sleep(wait)
            self._record_rewritten_at = self._clock.monotonic()
            self._poke()

        self._callbacks.adopt(asyncio.create_task(later(), name=f"{self.name}-record"))

    def _holds_key(self, epoch: int | None = None) -> bool:
        """True while the active key is one the group may trust, naming this member with its
        current lease at ``epoch`` (default: this member's epoch)."""
        active = self._state.active
        return (active is not None and active[1].member == self.name
                and active[1].lease == self.lease_id
                and active[1].epoch == (self._epoch if epoch is None else epoch))

    def _on_session(self, view: SessionView) -> None:
        if view.state is SessionState.LOST:
            self.checkpoint._demote()
            if self._role is not Role.QUIESCED:
                self._set_role(Role.QUIESCED, self._epoch, f"session lost: {view.reason}")
        self._poke()

    def _check_deadline(self) -> None:
        if self._role is Role.ACTIVE and self._session is not None:
            self._session.valid()  # re-evaluates against the clock; LOST calls _on_session

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def _run(self) -> None:
        """Decide and act on every change; rejoin with a new session after losing one."""
        while not self._stopping:
            try:
                await self._reconcile()
            except StoreError as e:
                log.warning("%s: %s; retrying", self.name, e)
                await self._clock.sleep(self._step_s)
                continue
            except Exception:  # a bug here must not leave an active acting unsupervised
                log.exception("%s: role loop failed; stepping down and retrying", self.name)
                if self._role is Role.ACTIVE:
                    self._set_role(Role.QUIESCED, self._epoch, "role loop failed")
                    with contextlib.suppress(StoreError):
                        await self._resign(self._best_target(), "role loop failed")
                await self._clock.sleep(self._step_s)
                continue
            # the session is lost: rejoin as a new incarnation
            self._group.cancel()
            old = self._session
            if old is not None:
                await old.close(revoke=False)
            while not self._stopping:
                try:
                    await self._join()
                    break
                except StoreError as e:
                    log.warning("%s: rejoin failed (%s); retrying", self.name, e)
                    await self._clock.sleep(self._step_s)

    async def _reconcile(self) -> None:
        """Until the session is lost: decide from the latest snapshot and act."""
        assert self._changed is not None and self._session is not None
        session = self._session
        while True:
            self._changed.clear()
            if session.state is SessionState.LOST:
                return
            if self._resigner.resigning:
                await self._changed.wait()
                continue
            decision = decide(self._decision_view(session))
            self._apply(decision)
            await self._publish()
            if self._role is Role.ACTIVE:
                await self._serve_switchover_request()
                self._serve_maintenance()
            if decision.action in (Action.CAMPAIGN, Action.TAKEOVER):
                if decision.delay_steps and await self._wait_changed(
                        decision.delay_steps * self._step_s):
                    continue
                if not self._changed.is_set():
                    await self._campaign(session, replace_epoch=decision.epoch
                                         if decision.action is Action.TAKEOVER else 0)
                continue
            await self._changed.wait()

    def _decision_view(self, session: Session) -> GroupView:
        """The group as this member decides from it: with its proof that the active is gone
        and the revisions its own campaigns wrote."""
        return self._state.view(self.name, session.lease_id, session.valid(),
                                self.config.redundancy, self._role, gone_epoch=self._gone_epoch,
                                my_grants=frozenset(self._grants))

    async def _wait_changed(self, timeout_s: float) -> bool:
        assert self._changed is not None
        try:
            await self._clock.wait_for(self._changed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def _apply(self, d: Decision) -> None:
        """Hold the decided role. The policy says ACTIVE under a single-active model only when
        the key carries this session's lease, which only this session's campaign can have put
        there. Under N_WAY_ACTIVE the epoch is the revision at which this session joined.
        While there is no active the member keeps the last epoch it knew."""
        epoch = self._joined_revision if self._all_active else d.epoch
        self._set_role(d.role, epoch or self._epoch, d.reason)  # never back to 0 or lower
        self._follow()

    def _follow(self) -> None:
        """Replicate from the active, and watch it, while this member is its standby (not as a
        spare)."""
        active = self._state.active
        if (self._role is Role.STANDBY and active is not None and active[1].member != self.name
                and active[0].listen and self.config.redundancy in (Redundancy.TWO_N,
                                                                      Redundancy.N_WAY)):
            self._follower.follow(FollowTarget(active[0].listen, active[1].epoch,
                                               active[1].member, active[1].lease,
                                               active[0].secret))
        else:
            self._follower.follow(None)

    def _on_stale(self, epoch: int) -> None:
        """A standby told this (old) active about a newer epoch than its own."""
        self.metrics.stale_epoch_rejected("active")
        self._poke()

    def _health_changed(self, healthy: bool) -> None:
        """A health check failed or recovered: grpc.health.v1 follows at once, and the role
        loop republishes this member's record (its failing checks, for ``vnfha status``)."""
        self.serving.update(healthy=healthy)
        self._poke()

    def _on_maintenance(self, event: BridgeEvent) -> None:
        """This member's host goes down for maintenance: the role loop looks again
        (:meth:`_serve_maintenance`)."""
        self._poke()

    def _serve_maintenance(self) -> None:
        """While a planned maintenance of this member's host is ahead, an active hands over to
        the best eligible standby that is not on that host, as soon as there is one (a standby
        on the same host would only have to hand back). Checked on every change of the group,
        so a member that becomes active, or gets an eligible standby, after the announcement
        still moves in time."""
        if self.nfvi is None or self._role is not Role.ACTIVE or self._stopping or \
                self._all_active or (self._maintenance_task is not None
                                     and not self._maintenance_task.done()):
            return
        move = self.nfvi.maintenance_move(self._view())
        if move is None:
            return
        event, target = move

        async def hand_over() -> None:
            try:
                await self.switchover(to=target)
            except (SwitchoverError, NotActive, StoreError) as e:
                log.warning("%s: switchover to %s before the maintenance of %s failed: %s",
                            self.name, target, event.host, e)

        log.warning("%s: planned maintenance of %s (deadline %s): handing over to %s",
                    self.name, event.host, event.deadline_unix_s, target)
        self._maintenance_task = asyncio.create_task(hand_over(), name=f"{self.name}-maintenance")
        self._callbacks.adopt(self._maintenance_task)

    def _on_active_gone(self, epoch: int, evidence: str) -> None:
        """Proof that the active of ``epoch`` can no longer act: its endpoint refused a
        connection (dead process), the bridge fenced it, or its lease deadline provably passed."""
        active = self._state.active
        if active is not None and active[1].epoch == epoch and self._gone_epoch != epoch:
            log.warning("%s: active %s (epoch %d) is gone: %s", self.name, active[1].member,
                        epoch, evidence)
            self._gone_epoch = epoch
            self._gone_at = self._clock.monotonic()
            self._poke()

    async def _campaign(self, session: Session, *, replace_epoch: int = 0) -> None:
        """One CAS: create the active key if it is absent, or (``replace_epoch``) replace the
        key of a dead active if it is still that epoch's. On success this member is active."""
        if not session.valid():
            return
        lease = session.lease_id
        record = ActiveRecord(self.name, self._listen, new_secret())
        bad = self._state.bad_active
        txn = campaign_txn(self._keys, record, lease, replace_epoch)
        try:
            res = await self._store.txn(*txn)
            won, epoch = res.succeeded, res.revision
        except StoreUnavailable as e:
            if not e.outcome_unknown:
                raise
            kv = await self._store.get(self._keys.active)  # did it apply? read back
            won = kv is not None and kv.lease == lease and kv.value == record.encode()
            epoch = kv.mod_revision if kv is not None else 0
        if not won or not session.valid():  # lost, or the deadline passed while we waited
            return
        self._grants.add(epoch)
        if len(self._grants) > 16:  # only the current key's revision matters; keep a few
            self._grants.discard(min(self._grants))
        if self._state.revision < epoch:  # the watch has not caught up yet: take our own word
            self._state.set_active(record, lease, epoch)
        if not self._holds_key(epoch):  # already replaced again, as the watch shows
            return
        if bad is not None and bad.epoch == replace_epoch:
            how = f"took over from a bad active key (revision {replace_epoch}: {bad.why})"
            self._odd_records("bad-active", "%s: replaced the active key of revision %d, which "
                              "%s", self.name, replace_epoch, bad.why)
        elif replace_epoch:
            how = f"took over from the dead active of epoch {replace_epoch}"
        else:
            how = "won the campaign for the active key"
        self._set_role(Role.ACTIVE, epoch, f"{how} (epoch {epoch})")
        if self._gone_at is not None:
            kind = ReasonKind.TAKEOVER if replace_epoch else ReasonKind.ELECTED
            self.metrics.failover_completed(kind, self._clock.monotonic() - self._gone_at)
            self._gone_at = None
        await self._publish()

    async def _serve_switchover_request(self) -> None:
        request = self._state.switchover
        if request is None or request.id in self._handled_requests:
            return
        self._handled_requests.add(request.id)
        try:
            target = choose_target(self._view(), request.to, self.group)
        except SwitchoverError as e:
            await self._store.txn([], refusal_ops(self._keys, request, e.problem, self.name,
                                                  self._epoch))
            log.warning("%s: refused switchover request %s: %s", self.name, request.id, e)
            return
        await self._resign(target, f"switchover to {target} requested by an operator", request)

    async def _publish(self) -> None:
        """Write our record if it changed, or if someone else deleted or overwrote it (bound to
        the session's lease)."""
        session = self._session
        if session is None or not session.valid():
            return
        cfg = self.config
        final_for = self._final_for()
        record = MemberRecord(
            member=self.name, redundancy=cfg.redundancy.value, role=self._role.value,
            epoch=self._epoch, priority=cfg.priority, no_failover=cfg.no_failover,
            listen=self._listen, etcd_endpoint=self._store.endpoint, pid=os.getpid(),
            host=socket.gethostname(),
            # the final position, once the active can no longer act: the takeover ranks by it
            applied=self._replica.applied if final_for else (0, 0),
            failing=self.supervisor.monitor.failing, final_for=final_for,
        )
        if record == self._published and not self._record_lost:
            return
        self._record_lost = False
        self._publishing = record
        try:
            res = await self._store.put(self._keys.member(self.name), record.encode(),
                                        lease=session.lease_id)
        finally:
            self._publishing = None
        if self._published is None:
            self._joined_revision = res.revision
        self._published = record

    def _final_for(self) -> int:
        """The epoch whose end this member reports its final position for: that of an active
        known to be gone, or of an active key it found bad, exactly as it decides (0: none;
        the record then says (0, 0)). Any member that may take over reports, spares too: the
        policy waits for every eligible member's report."""
        if self._role is Role.ACTIVE or self._session is None:
            return 0
        view = self._decision_view(self._session)
        if view.active is not None and view.active_gone:
            return view.active.epoch
        return view.bad_active.epoch if view.bad_active is not None else 0

    # -- roles and callbacks ---------------------------------------------------------------------

    def _set_role(self, role: Role, epoch: int, reason: str, *, callback: bool = True,
                  keep_primary: bool = False) -> None:
        previous = self._role
        if role is previous and epoch == self._epoch:
            return
        if previous is Role.ACTIVE and (role is not Role.ACTIVE or epoch != self._epoch):
            # never active twice in one epoch: its sequences would start again at 1, and the
            # standbys would skip them as duplicates. A key of this epoch that makes us look
            # active again (our record written back, say) is one we did not write: replaced
            self._grants.discard(self._epoch)
            if not keep_primary:
                self.checkpoint._demote()  # from here on, writes of the old epoch are refused
        if role is Role.ACTIVE and (previous is not Role.ACTIVE or epoch != self._epoch):
            self._promote(epoch)
            if self.nfvi is not None:
                self.nfvi.promoted(epoch)
        elif previous is Role.ACTIVE and role is not Role.ACTIVE and self.nfvi is not None:
            self.nfvi.demoted(self._epoch)
        self._role, self._epoch = role, epoch
        self.serving.update(role=role)
        log.info("member=%s group=%s role=%s previous=%s epoch=%d reason=%r", self.name,
                 self.group, role.value, previous.value, epoch, reason)
        self.metrics.role_changed(previous, role, epoch, reason_kind(role, reason))
        self._listeners.emit(RoleChanged(self.name, role, previous, epoch, reason))
        if self._role_event is not None:
            self._role_event.set()
        if not callback or role is previous:
            return
        active = self._state.active[1].member if self._state.active else None
        assignment = Assignment(role, epoch, previous, active, reason)
        if role in _CALLBACK_ROLES:
            self._callbacks.enqueue(_CALLBACK_ROLES[role], assignment)
        elif role is Role.QUIESCED and previous is Role.ACTIVE:  # deposed: stop serving now
            self._callbacks.enqueue("on_standby", assignment)

    def _promote(self, epoch: int) -> None:
        """Start replicating as the active of ``epoch``, on top of what this member has."""
        self._follower.follow(None)
        lease = self.lease_id

        async def publish(members: frozenset[str]) -> frozenset[str]:
            return await self._publish_sync(epoch, lease, members)

        # the secret of this grant, as the key the policy (or our own campaign) found says; a
        # key that does not name us at this epoch leaves none, and then no standby is served
        active = self._state.active
        secret = active[0].secret if active is not None and self._holds_key(epoch) else ""
        self.checkpoint._promote(Primary(
            member=self.name, epoch=epoch, data=self._replica.data, limits=self._limits,
            base=self._replica.applied, clock=self._clock,
            heartbeat_s=self.config.heartbeat_interval_s, publish_sync=publish,
            standby_silence_s=self.config.standby_silence_s, secret=secret,
        ))

    async def _publish_sync(self, epoch: int, lease: int, members: frozenset[str]
                            ) -> frozenset[str]:
        """Write the in-sync set, only while the active key is still ours; returns what was
        published (members whose lease is known)."""
        entries = tuple(sorted((m, self._state.members[m][1]) for m in members
                               if m in self._state.members))
        if self._all_active:
            return frozenset()
        res = await self._store.txn(*sync_txn(self._keys, self.name, epoch, lease, entries))
        if not res.succeeded:
            raise NotActive(self.name, "deposed", epoch)
        self.metrics.in_sync_standbys(len(entries))
        return frozenset(m for m, _ in entries)
