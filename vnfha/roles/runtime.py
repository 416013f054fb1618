"""The role runtime: decide from the group's snapshot, act, and carry out each role change's
side effects, for one member.

The member (:mod:`vnfha.member`) builds the parts and owns the lifecycle; this module is the
decide -> act loop between them. The side effects of a role change are data, in the two tables
below; :meth:`RoleRuntime.set_role` only looks them up and runs them in order.

Guarantees (the member's; see also :mod:`vnfha.roles.policy` and :mod:`vnfha.roles.keys`):

- **Decide, then act.** On every change of the group or the session the policy decides from a
  snapshot and the runtime executes the decision and logs its reason; a campaign is one
  transaction whose revision is the new epoch.
- **Stop acting first.** An active stops *synchronously*, before any other await, when its
  watch shows its key deleted, taken or untrustworthy, or when its session is LOST (its
  deadline is re-checked on every read of :attr:`RoleRuntime.role`).
- **Never active twice in one epoch**, and only under a key this session's own campaign wrote.
- **The standby lease** (:mod:`vnfha.replication.promise`): an active whose standbys'
  promises ran out abandons its session at once (on a read of :attr:`role`, or from the
  Primary's timer); a standby's takeover on it is :mod:`vnfha.roles.fastpath`'s.
- **The final position** a member reports for a takeover (its applied checkpoint, once the
  active is known to be gone or its key is bad) is computed from the same view it decides from.
- A failure of the loop itself never leaves an active acting: it steps down, resigns if it
  can, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from vnfha.callbacks import CallbackRunner
from vnfha.checkpoint import Checkpoint
from vnfha.clock import Clock
from vnfha.component import Assignment
from vnfha.errors import StoreError, StoreUnavailable
from vnfha.events import Listeners, RoleChanged
from vnfha.health.serving import MemberServing
from vnfha.metrics import Metrics
from vnfha.model import ReasonKind, Redundancy, Role
from vnfha.nfvi.agent import NfviAgent
from vnfha.replication.active import Primary
from vnfha.replication.promise import OFF, PromiseTimers
from vnfha.replication.standby import Replica
from vnfha.replication.state import Limits
from vnfha.roles.addresses import AddressKeeper
from vnfha.roles.fastpath import StandbyLeaseTakeover, SyncPublisher
from vnfha.roles.follow import Follower, FollowTarget
from vnfha.roles.handover import campaign_txn
from vnfha.roles.history import (
    Cause,
    Timeline,
    cause_of,
    complete,
    key_gone_timeline,
    record_of,
    write_record,
)
from vnfha.roles.keys import ActiveRecord, GroupKeys, GroupState, MemberRecord, new_secret
from vnfha.roles.poison_guard import Held, PoisonGuard
from vnfha.roles.policy import Action, BadActive, Decision, GroupView, decide, final_position_for
from vnfha.roles.record import RecordKeeper
from vnfha.roles.transitions import CALLBACKS, TRANSITIONS, Effect, Move, callback_of, move_of
from vnfha.roles.watch import GroupWatch
from vnfha.store.base import Store
from vnfha.store.session import Session, SessionState
from vnfha.store.session_state import SessionView

__all__ = ["CALLBACKS", "TRANSITIONS", "Effect", "Move", "RoleRuntime", "move_of"]
# the tables are re-exported: their home is vnfha.roles.transitions

log = logging.getLogger("vnfha.member")


class RoleRuntime:
    """The role loop of member ``me`` (see the module docstring). The member builds it with its
    parts; ``on_active_turn`` runs after each decision while active (operator requests,
    maintenance); ``failing`` says which health checks fail (for the record); ``resigning``
    whether a graceful exit is under way (the loop then waits); ``listen`` is the bound
    replication endpoint."""

    def __init__(self, *, me: str, group: str, redundancy: Redundancy, priority: int,
                 no_failover: bool, clock: Clock, store: Store, keys: GroupKeys,
                 watch: GroupWatch, replica: Replica, checkpoint: Checkpoint, limits: Limits,
                 follower: Follower, callbacks: CallbackRunner, listeners: Listeners,
                 metrics: Metrics, serving: MemberServing, nfvi: NfviAgent | None,
                 records: RecordKeeper, step_s: float, heartbeat_s: float,
                 standby_silence_s: float, open_session: Callable[[], Session],
                 promises: PromiseTimers = OFF, poison: PoisonGuard | None = None,
                 addresses: AddressKeeper | None = None,
                 failing: Callable[[], tuple[str, ...]], resigning: Callable[[], bool],
                 listen: Callable[[], str],
                 on_active_turn: Callable[[], Awaitable[None]],
                 resign_after_failure: Callable[[], Awaitable[object]]) -> None:
        self.me, self.group, self.redundancy = me, group, redundancy
        self._priority, self._no_failover = priority, no_failover
        self._clock, self._store, self._keys, self._watch = clock, store, keys, watch
        self._replica, self._checkpoint, self._limits = replica, checkpoint, limits
        self._follower, self._callbacks, self._listeners = follower, callbacks, listeners
        self._metrics, self._serving, self._nfvi, self.records = metrics, serving, nfvi, records
        self._step_s, self._heartbeat_s, self._silence_s = step_s, heartbeat_s, standby_silence_s
        self._open_session, self._failing, self._resigning = open_session, failing, resigning
        self._listen, self._on_active_turn = listen, on_active_turn
        self._resign_after_failure = resign_after_failure
        self._promises, self._poison, self.addresses = promises, poison, addresses
        self._rolled_back: tuple[str, ...] = ()
        self._fast = StandbyLeaseTakeover(me, promises, replica, clock)
        self._sync = SyncPublisher(me, store, keys)
        self._all_active = redundancy is Redundancy.N_WAY_ACTIVE
        self._role = Role.SPARE
        self.epoch = 0
        """The epoch of the current active grant (this member's own when it is active)."""
        self.session: Session | None = None
        self._grants: set[int] = set()
        self._gone_epoch = 0
        self.gone_at: float | None = None
        """When this member, as a standby, first saw the active gone (for the failover metric)."""
        self._timeline: Timeline | None = None
        """The change of active this member is seeing, for the failover history."""
        self._on_active: asyncio.Future[None] | None = None
        self.stopping = False
        self._changed = asyncio.Event()
        self.role_event = asyncio.Event()
        """Set on every role change."""

    # -- state -----------------------------------------------------------------------------------

    @property
    def state(self) -> GroupState:
        """The group as this member last saw it."""
        return self._watch.state

    @property
    def role(self) -> Role:
        """The current role. An active past its lease deadline demotes itself on this read."""
        if self._role is Role.ACTIVE and self.session is not None:
            self.session.valid()  # re-evaluates against the clock; LOST calls on_session
            self.check_standby_lease()
        return self._role

    def check_standby_lease(self) -> None:
        """An active whose standby lease lapsed stops now: abandoning the session demotes it."""
        primary, session = self._checkpoint.primary, self.session
        if primary is None or session is None or primary.epoch != self.epoch:
            return
        why = primary.lapse(self._clock.monotonic())
        if why is not None:
            session.abandon(why)

    @property
    def lease_id(self) -> int:
        """The current session's lease (0 before joining)."""
        return self.session.lease_id if self.session is not None else 0

    def poke(self) -> None:
        """Something changed: decide again."""
        self._changed.set()

    def holds_key(self, epoch: int | None = None) -> bool:
        """True while the active key is one the group may trust, naming this member with its
        current lease at ``epoch`` (default: this member's epoch)."""
        active = self.state.active
        return (active is not None and active[1].member == self.me
                and active[1].lease == self.lease_id
                and active[1].epoch == (self.epoch if epoch is None else epoch))

    def view(self) -> GroupView:
        """The group as the active sees it when it chooses a successor."""
        return self.state.view(self.me, self.lease_id, True, self.redundancy)

    def decision_view(self, session: Session) -> GroupView:
        """The group as this member decides from it: with its proof that the active is gone
        and the revisions its own campaigns wrote."""
        return self.state.view(self.me, session.lease_id, session.valid(), self.redundancy,
                               self._role, gone_epoch=self._fast.gone_for(
                                   self.state, session.lease_id, self._gone_epoch),
                               my_grants=frozenset(self._grants))

    # -- joining and the loop --------------------------------------------------------------------

    async def join(self, *, first: bool = False) -> None:
        """Open a session, publish our record, read the group and start watching it. The
        ``first`` join of a member first checks that its settings agree with the group's
        members' (GroupConfigMismatch, with the session closed and nothing published)."""
        if first and self.addresses is not None:  # its devices, and leftovers of a crash removed
            await self.addresses.prepare()
        session = self._open_session()
        await session.open()
        if first:
            try:
                await self._watch.read_members()
                self.records.check_agreement(self._watch.state.members)
            except BaseException:
                await session.close()
                raise
        self.session = session
        session.add_listener(self.on_session)
        if self._nfvi is not None:
            nfvi = self._nfvi
            session.add_ack_listener(lambda view: nfvi.keepalive_confirmed())
        if self.addresses is not None:  # the service addresses' lifetime follows the lease
            keeper = self.addresses
            session.add_ack_listener(lambda view: keeper.keepalive_confirmed())
        self.records.new_session()
        self._grants.clear()  # a new lease: no key written before is this session's
        await self.publish()
        await self._watch.resync()

    async def run(self) -> None:
        """Decide and act on every change; rejoin with a new session after losing one."""
        while not self.stopping:
            try:
                await self._reconcile()
            except StoreError as e:
                log.warning("%s: %s; retrying", self.me, e)
                await self._clock.sleep(self._step_s)
                continue
            except Exception:  # a bug here must not leave an active acting unsupervised
                log.exception("%s: role loop failed; stepping down and retrying", self.me)
                if self._role is Role.ACTIVE:
                    self.set_role(Role.QUIESCED, self.epoch, "role loop failed",
                                  ReasonKind.FAULT)
                    with contextlib.suppress(StoreError):
                        await self._resign_after_failure()
                await self._clock.sleep(self._step_s)
                continue
            # the session is lost: rejoin as a new incarnation
            self._watch.cancel()
            old = self.session
            if old is not None:  # an abandoned lease is revoked: what it held is freed now
                await old.close(revoke=old.abandoned)
            while not self.stopping:
                try:
                    await self.join()
                    break
                except StoreError as e:
                    log.warning("%s: rejoin failed (%s); retrying", self.me, e)
                    await self._clock.sleep(self._step_s)

    async def _reconcile(self) -> None:
        """Until the session is lost: decide from the latest snapshot and act."""
        assert self.session is not None
        session = self.session
        while True:
            self._changed.clear()
            if session.state is SessionState.LOST:
                return
            if self._resigning():
                await self._changed.wait()
                continue
            decision = decide(self.decision_view(session))
            self._apply(decision)
            await self.publish()
            if self._role is Role.ACTIVE:
                await self._on_active_turn()
            if decision.action in (Action.CAMPAIGN, Action.TAKEOVER):
                if decision.delay_steps and await self._wait_changed(
                        decision.delay_steps * self._step_s):
                    continue
                if not self._changed.is_set():
                    await self._campaign(session, replace_epoch=decision.epoch
                                         if decision.action is Action.TAKEOVER else 0)
                continue
            await self._changed.wait()

    async def _wait_changed(self, timeout_s: float) -> bool:
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
        epoch = self.records.joined_revision if self._all_active else d.epoch
        self.set_role(d.role, epoch or self.epoch, d.reason, d.kind)  # never back to 0
        self._follow()

    def _follow(self) -> None:
        """Replicate from the active, and watch it, while this member is its standby (not as a
        spare)."""
        active = self.state.active
        if (self._role is Role.STANDBY and active is not None and active[1].member != self.me
                and active[0].listen and self.redundancy in (Redundancy.TWO_N,
                                                               Redundancy.N_WAY)):
            self._follower.follow(FollowTarget(active[0].listen, active[1].epoch,
                                               active[1].member, active[1].lease,
                                               active[0].secret))
        else:
            self._follower.follow(None)

    # -- what the watch, the session and the standby's monitor report ---------------------------

    def after_change(self) -> None:
        """Runs synchronously after every watch batch: an active that lost the key stops at
        once."""
        state = self.state
        self._fast.settle(state)
        if state.active_key is not None and not self._all_active:
            self._replica.observe_epoch(state.active_key[1].epoch)
        if self._checkpoint.primary is not None and not self._all_active and \
                not self.holds_key():
            self._checkpoint.demote()  # the key is gone: no write of this epoch from now on
        if state.active is None and self.gone_at is None and self._role is Role.STANDBY:
            self.gone_at = self._clock.monotonic()  # the key is gone: a failover starts
            self._timeline = key_gone_timeline(state, self.gone_at)
        if self._role is Role.ACTIVE and not self._all_active and not self.holds_key():
            self.set_role(Role.QUIESCED, self.epoch, self._why_not_holding(), ReasonKind.DEPOSED)
        self.records.check(state.members.get(self.me), self.lease_id)
        self.poke()

    def _why_not_holding(self) -> str:
        active, bad = self.state.active, self.state.bad_active
        if bad is not None:
            return f"the active key is bad: revision {bad.epoch} {bad.why}"
        if active is not None:
            return f"active key taken by {active[0].member} (epoch {active[1].epoch})"
        return "active key deleted"

    def on_session(self, view: SessionView) -> None:
        """The session changed state: LOST stops an active at once."""
        if view.state is SessionState.LOST:
            self._checkpoint.demote()
            if self._role is not Role.QUIESCED:
                self.set_role(Role.QUIESCED, self.epoch, f"session lost: {view.reason}",
                              ReasonKind.SESSION_LOST)
        self.poke()

    def on_active_gone(self, epoch: int, evidence: str) -> None:
        """Proof that the active of ``epoch`` can no longer act: its endpoint refused a
        connection (dead process), the bridge fenced it, or its lease deadline provably passed."""
        active = self.state.active
        if active is not None and active[1].epoch == epoch and self._gone_epoch != epoch:
            self._gone_epoch = epoch
            self._failover_starts(active[1].member, epoch, f"gone: {evidence}",
                                  cause_of(evidence=evidence))

    def on_promise_lapsed(self, epoch: int) -> None:
        """The monitor suspects the active of ``epoch`` and this member's promises to it ran
        out: take over now if etcd lists this member as in sync in that epoch."""
        evidence = self._fast.lapsed(self.state, self.lease_id, epoch, self._gone_epoch)
        active = self.state.active
        if evidence is not None and active is not None:
            self._failover_starts(active[1].member, epoch, evidence, Cause.STANDBY_LEASE)

    def _failover_starts(self, member: str, epoch: int, evidence: str, cause: Cause) -> None:
        log.warning("%s: active %s (epoch %d) is %s", self.me, member, epoch, evidence)
        self.gone_at = now = self._clock.monotonic()
        monitor = self._follower.monitor
        suspected = monitor.suspected_at if monitor is not None else None
        self._timeline = Timeline(noticed=min(suspected or now, now), proof=now,
                                  from_member=member, from_epoch=epoch, cause=cause,
                                  reason=evidence.removeprefix("gone: "))
        self.poke()

    # -- campaigning and publishing --------------------------------------------------------------

    async def _campaign(self, session: Session, *, replace_epoch: int = 0) -> None:
        """One CAS: create the active key if it is absent, or (``replace_epoch``) replace the
        key of a dead active, or a bad key, if it is still that revision's. On success this
        member is active."""
        if not session.valid():
            return
        lease, secret, probation = session.lease_id, new_secret(), None
        if self._poison is not None and not self._all_active:
            try:
                probation = await self._poison.before_takeover(
                    self.state, replace_epoch, self._timeline, secret, self._callbacks.adopt,
                    healthy=not self._failing())
            except Held:  # no takeover: the group is held (or already was)
                await self._wait_changed(self._step_s)
                return
        record = ActiveRecord(self.me, self._listen(), secret, probation)
        bad = self.state.bad_active
        sync_revision = self._fast.hold(self.state, lease, replace_epoch, self._gone_epoch)
        if sync_revision < 0:
            self.poke()
            return
        unknown = False
        try:
            res = await self._store.txn(*campaign_txn(self._keys, record, lease, replace_epoch,
                                                      sync_revision))
            won, epoch = res.succeeded, res.revision
        except StoreUnavailable as e:
            if not e.outcome_unknown:
                self._fast.release(sync_revision)
                raise
            self._fast.unknown(replace_epoch, sync_revision)  # until it cannot apply any more
            unknown = True
            kv = await self._store.get(self._keys.active)  # did it apply? read back
            won = kv is not None and kv.lease == lease and kv.value == record.encode()
            epoch = kv.mod_revision if kv is not None else 0
        if not won and not unknown:
            self._fast.release(sync_revision)
        if won and session.valid():  # not lost, and the deadline did not pass while we waited
            await self._won(record, lease, epoch, replace_epoch, bad)

    async def _won(self, record: ActiveRecord, lease: int, epoch: int, replace_epoch: int,
                   bad: BadActive | None) -> None:
        """This member's campaign wrote the active key at ``epoch``: act on it."""
        self._grants.add(epoch)
        if len(self._grants) > 16:  # only the current key's revision matters; keep a few
            self._grants.discard(min(self._grants))
        if self.state.revision < epoch:  # the watch has not caught up yet: take our own word
            self.state.set_active(record, lease, epoch)
        if not self.holds_key(epoch):  # already replaced again, as the watch shows
            return
        if bad is not None and bad.epoch == replace_epoch:
            how = f"took over from a bad active key (revision {replace_epoch}: {bad.why})"
            log.warning("%s: replaced the active key of revision %d, which %s", self.me,
                        replace_epoch, bad.why)
        elif replace_epoch:
            how = f"took over from the dead active of epoch {replace_epoch}"
        else:
            how = "won the campaign for the active key"
        kind = ReasonKind.TAKEOVER if replace_epoch else ReasonKind.ELECTED
        now = self._clock.monotonic()
        timeline = self._timeline or Timeline(
            noticed=now, proof=now, cause=cause_of(bad_key=bad is not None, previous=False),
            reason=how)
        timeline.key_taken, self._timeline = now, None
        if failing := self._failing():  # availability first, and the history says so
            timeline.reason += f"; WARNING: taken though its checks fail ({', '.join(failing)})"
        self.set_role(Role.ACTIVE, epoch, f"{how} (epoch {epoch})", kind)
        self._callbacks.adopt(asyncio.create_task(self._record_history(timeline, epoch),
                                                  name=f"{self.me}-history-{epoch}"))
        if self.gone_at is not None:
            self._metrics.failover_completed(kind, self._clock.monotonic() - self.gone_at)
            self.gone_at = None
        await self.publish()

    async def publish(self) -> None:
        """Write our record if it changed, or if someone else deleted or overwrote it (bound to
        the session's lease)."""
        session = self.session
        if session is None or not session.valid():
            return
        final_for = self._final_for()
        record = MemberRecord(
            member=self.me, redundancy=self.redundancy.value, role=self._role.value,
            epoch=self.epoch, priority=self._priority, no_failover=self._no_failover,
            listen=self._listen(), etcd_endpoint=self._store.endpoint, pid=os.getpid(),
            host=socket.gethostname(),
            # the final position, once the active can no longer act: the takeover ranks by it
            applied=self._replica.applied if final_for else (0, 0),
            failing=self._failing(), final_for=final_for, locked=self.me in self.state.locks,
            addresses=tuple(self.addresses.held) if self.addresses is not None else (),
            macs=self.addresses.macs if self.addresses is not None else (),
        )
        self._metrics.admin_state(record.locked, self.state.paused is not None)
        await self.records.publish(record, session.lease_id)

    def _final_for(self) -> int:
        """The epoch this member reports its final position for, as the policy that waits for
        it computes it from the same view (:func:`~vnfha.roles.policy.final_position_for`)."""
        if self.session is None:
            return 0
        return final_position_for(self.decision_view(self.session))

    # -- role changes ----------------------------------------------------------------------------

    def set_role(self, role: Role, epoch: int, reason: str, kind: ReasonKind, *,
                 callback: bool = True, keep_primary: bool = False) -> None:
        """Hold ``role`` in ``epoch``: run the move's side effects (:data:`TRANSITIONS`), log
        the change with its reason, count it by ``kind``, tell the listeners, and start the
        component's callback for it (:data:`CALLBACKS`, unless ``callback`` is false)."""
        previous, old_epoch = self._role, self.epoch
        if role is previous and epoch == old_epoch:
            return
        for effect in TRANSITIONS[move_of(previous, role, epoch == old_epoch)]:
            self._run_effect(effect, old_epoch, epoch, keep_primary)
        self._role, self.epoch = role, epoch
        self._serving.update(role=role)
        log.info("member=%s group=%s role=%s previous=%s epoch=%d reason=%r", self.me,
                 self.group, role.value, previous.value, epoch, reason)
        self._metrics.role_changed(previous, role, epoch, kind)
        self._listeners.emit(RoleChanged(self.me, role, previous, epoch, reason, kind))
        self.role_event.set()
        name = callback_of(previous, role) if callback and role is not previous else None
        if name is not None:
            active = self.state.active[1].member if self.state.active else None
            rolled_back, self._rolled_back = self._rolled_back, ()
            done = self._callbacks.enqueue(name, Assignment(
                role, epoch, previous, active, reason,
                rolled_back=rolled_back if name == "on_active" else ()))
            if name == "on_active":
                self._on_active = done

    async def _record_history(self, timeline: Timeline, epoch: int) -> None:
        """The history record of this grant, once (:func:`~vnfha.roles.history.complete`)."""
        await complete(timeline, epoch, self.me, on_active=self._on_active, clock=self._clock,
                       poll_s=self._step_s / 20, position=lambda: self._checkpoint.position,
                       current_epoch=lambda: self.epoch)
        await write_record(self._store, self._keys, record_of(timeline, epoch, self.me))

    def _run_effect(self, effect: Effect, old_epoch: int, epoch: int, keep_primary: bool) -> None:
        if effect is Effect.FORGET_GRANT:
            # never active twice in one epoch: its sequences would start again at 1, and the
            # standbys would skip them as duplicates. A key of this epoch that makes us look
            # active again (our record written back, say) is one we did not write: replaced
            self._grants.discard(old_epoch)
        elif effect is Effect.CLOSE_PRIMARY:
            if not keep_primary:
                self._checkpoint.demote()
        elif effect is Effect.OPEN_PRIMARY:
            self._promote(epoch)
        elif effect is Effect.NFVI_PROMOTED:
            if self._nfvi is not None:
                self._nfvi.promoted(epoch)
        elif effect is Effect.ADDRESSES_RELEASED:
            if self.addresses is not None:
                self.addresses.release(f"no longer active in epoch {old_epoch}")
        elif self._nfvi is not None:  # NFVI_DEMOTED
            self._nfvi.demoted(old_epoch)

    def _promote(self, epoch: int) -> None:
        """Start replicating as the active of ``epoch``, on top of what this member has."""
        self._follower.follow(None)
        lease = self.lease_id

        async def publish(members: frozenset[str]) -> frozenset[str]:
            return await self._publish_sync(epoch, lease, members)

        # the secret of this grant, as the key the policy (or our own campaign) found says; a
        # key that does not name us at this epoch leaves none, and then no standby is served
        active = self.state.active
        secret = active[0].secret if active is not None and self.holds_key(epoch) else ""
        primary = Primary(
            member=self.me, epoch=epoch, data=self._replica.data, limits=self._limits,
            base=self._replica.applied, clock=self._clock, heartbeat_s=self._heartbeat_s,
            publish_sync=publish, standby_silence_s=self._silence_s, secret=secret,
            promises=self._promises, on_lapse=self.check_standby_lease,
        )
        self._checkpoint.promote(primary)
        if self._poison is not None:  # a suspected state: undone before on_active is queued
            self._rolled_back = self._poison.roll_back(secret, primary.write)

    async def _publish_sync(self, epoch: int, lease: int, members: frozenset[str]
                            ) -> frozenset[str]:
        """Write the in-sync set, only while the active key is still ours; returns what was
        published (members whose lease is known)."""
        entries = tuple(sorted((m, self.state.members[m][1]) for m in members
                               if m in self.state.members))
        if self._all_active:
            return frozenset()
        await self._sync.publish(epoch, lease, entries)  # compared with the record's revision
        self._metrics.in_sync_standbys(len(entries))
        return frozenset(m for m, _ in entries)
