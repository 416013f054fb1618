"""A member's duties towards the NFVI bridge: watchdog, fencing, placement and events.

:class:`vnfha.Member` owns one :class:`NfviAgent` when ``Config.bridge_endpoint`` is set (and
none otherwise: every duty below is then skipped, and a silent active is replaced only once its
lease deadline provably passed). What the agent does, and when:

==========================  =================================================================
member event                the agent
==========================  =================================================================
start                       checks ``placement_policy`` against the group's placement: logs
                            the violations, and with ``placement_violation = "refuse"`` a
                            violated hard policy stops the start (:class:`PlacementRefused`)
promoted to ACTIVE (epoch)  arms the watchdog (``watchdog_timeout_s``, ``watchdog_action``)
each confirmed keepalive    kicks it, so a hung active (or one cut off from etcd) is reset by
                            the layer below even if nothing else works
demoted from ACTIVE         disarms it
a standby suspects the      fences it (``fence_mode``) and reports what the bridge confirmed:
active (heartbeat silence)  the proof that lets the standby take over at once
planned maintenance of the  is remembered until its deadline; while it is ahead, the member
member's host               (when active) hands over to an eligible standby on another host
the bridge reports the      passes it on as proof that the active is gone (see
active's VM crashed, its    :func:`nfvi_proof`): the standby takes over without waiting for
watchdog's reset done, or   its own suspicion or a fence. Only a report about the active of
its host down               the current epoch counts; anything else is logged and ignored
==========================  =================================================================

Guarantees:

- Watchdog calls run one at a time, in order (arm before kicks, disarm after), from one task;
  kicks start only once the bridge confirmed the arm, and a kick that would queue behind another
  kick is dropped. Each carries the epoch it belongs to, so the bridge rejects a deposed
  active's kicks.
- The watchdog stays armed while the member is active, whatever happens to the bridge: an arm
  that did not reach it (:class:`~vnfha.errors.BridgeUnavailable`) is sent again at the next
  confirmed keepalive instead of a kick, and so is one the bridge forgot (a kick answered
  ``not-armed``: the bridge restarted, or the watchdog fired with action NONE). An arm the
  bridge refused (a stale epoch, an unknown instance) is logged once and not retried.
- Every call has the config's ``bridge_timeout_s`` deadline; failures are logged, never raised
  into the member's loop, except a failed Fence, which the caller turns into the lease path.
- The event watch reconnects after a failure, one heartbeat step later.
- An NFVI report deposes an active only when it names the member that holds the active key
  now and carries that key's epoch (nonzero): a stale or replayed report (an earlier
  incarnation, epoch 0) never deposes a live active, and a member never acts on a report about
  itself. VM_CRASHED, a WATCHDOG_FIRED whose action was done, and HOST_DOWN mean the
  instance's process cannot execute any more (the bridge's driver says so, as it does for a
  confirmed Fence), so such a report is proof of the same strength as a fence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from vnfha.clock import Clock
from vnfha.errors import BridgeRequestError, BridgeUnavailable, ConfigError, NfviError
from vnfha.nfvi.client import NfviPort
from vnfha.nfvi.model import (
    BridgeEvent,
    EventKind,
    FenceMode,
    PlacementPolicy,
    PolicyReport,
    WatchdogAction,
)
from vnfha.roles.handover import best_target
from vnfha.roles.keys import GroupState
from vnfha.roles.monitor import Fencer
from vnfha.roles.policy import GroupView

__all__ = ["PROOF_KINDS", "AgentSettings", "NfviAgent", "PlacementRefused", "Standby",
           "nfvi_proof"]

log = logging.getLogger("vnfha.nfvi")

_Op = tuple[Literal["arm", "kick", "disarm"], int]


RECEIVED_KEPT = 64
"""How many of the latest bridge events :attr:`NfviAgent.received` keeps."""

PROOF_KINDS = frozenset({EventKind.VM_CRASHED, EventKind.WATCHDOG_FIRED})
"""The events that, about the current active, prove it cannot act (see :func:`nfvi_proof`).
Not HOST_DOWN: a driver reports it also when it only lost its connection to the host (libvirt),
whose instances may still run; a driver that knows they died (the simulator) follows it with a
VM_CRASHED for each, and that is the proof (``vnfha/bridge/drivers/driver.py``)."""


def nfvi_proof(event: BridgeEvent, active: tuple[str, int] | None, me: str) -> str | None:
    """PURE: the evidence that the active is gone if ``event`` proves it, else None.

    ``active`` is the member holding the active key and its epoch, as this member ``me`` sees
    the group now (None: no trusted active). The event proves it when all hold:

    - its kind is in :data:`PROOF_KINDS` (the bridge sets a WATCHDOG_FIRED's epoch only when
      its RESET, POWEROFF or PAUSE was done);
    - it names the active (its ``member``);
    - the active is not ``me`` (a member never acts on a report about itself);
    - its ``epoch`` is nonzero and equals the active's: the report is about this incarnation.

    Safety: such a report means the active's process cannot execute (the bridge's driver says
    so, as for a confirmed fence), so it is proof of the same strength as a fence; the epoch
    check makes a late, stale or replayed report about an earlier incarnation harmless (epochs
    are etcd revisions: a later grant, even to the same member, has another epoch).
    """
    if event.kind not in PROOF_KINDS or active is None or not event.epoch:
        return None
    member, epoch = active
    if member != event.member or member == me or event.epoch != epoch:
        return None
    return f"the NFVI bridge reports {event.kind.name} for {event.instance} (epoch {epoch})"


class Standby(Protocol):
    """The member's side that a proof goes to (:class:`vnfha.roles.runtime.RoleRuntime`)."""

    @property
    def state(self) -> GroupState:
        """The group as the member last saw it (``state.active``: who holds the key, epoch)."""
        ...

    def on_active_gone(self, epoch: int, evidence: str) -> None:
        """Proof that the active of ``epoch`` can no longer act."""
        ...


class PlacementRefused(ConfigError):
    """A hard placement policy is violated and ``placement_violation = "refuse"``."""


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """What the agent takes from the member's configuration (built by
    :func:`vnfha.wiring.agent_settings`)."""

    member: str
    placement_policy: PlacementPolicy | None = None
    """Checked at start; None: not checked."""
    refuse_violation: bool = False
    """A violated hard policy stops the member from starting (else: a warning)."""
    fence_mode: FenceMode = FenceMode.KILL
    retry_s: float = 0.1
    """The pause before a broken event stream is reopened (one backoff step)."""
    watchdog_timeout_s: float = 2.0
    watchdog_action: WatchdogAction = WatchdogAction.RESET
    repair_after_s: float | None = None
    """While active: ask for the repair of a member gone this long (:mod:`vnfha.roles.repair`);
    None: never."""


class NfviAgent:
    """See the module docstring. ``on_maintenance(event)`` is called (synchronously) for a
    planned maintenance of the host this member runs on."""

    def __init__(self, port: NfviPort, settings: AgentSettings, clock: Clock, *,
                 on_maintenance: Callable[[BridgeEvent], None],
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.port = port
        self._config = settings
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_maintenance = on_maintenance
        self._maintenance: BridgeEvent | None = None
        self._maintenance_warned: BridgeEvent | None = None
        self._ops: asyncio.Queue[_Op] = asyncio.Queue()
        self._armed_epoch = 0
        self._wanted_epoch = 0  # the epoch the watchdog should be armed in; 0: none
        self._rearm = False  # arm _wanted_epoch again at the next confirmed keepalive
        self._rearm_logged = False
        self._kick_queued = False
        self._tasks: list[asyncio.Task[None]] = []
        self.host: str | None = None
        """The host this member runs on, as the bridge last said."""
        self._standby: Standby | None = None
        self.kicks = 0
        self.fences = 0
        self.rearms = 0
        """Arms sent again because the first did not reach the bridge or it forgot it."""
        self.received: deque[BridgeEvent] = deque(maxlen=RECEIVED_KEPT)
        """The latest events of the group's WatchEvents stream, oldest first (at most
        :data:`RECEIVED_KEPT`), each kept as it arrived, whatever it was about."""

    @property
    def settings(self) -> AgentSettings:
        """What the agent was configured with."""
        return self._config

    async def start(self) -> PolicyReport | None:
        """Check the placement policy, then start the watchdog worker and the event watch."""
        report = await self.check_placement()
        self._tasks = [
            asyncio.create_task(self._run_ops(), name=f"{self._config.member}-watchdog"),
            asyncio.create_task(self._run_events(), name=f"{self._config.member}-nfvi-events"),
        ]
        return report

    async def close(self) -> None:
        """Stop the tasks (disarm first if armed) and close the client."""
        if self._armed_epoch:
            with contextlib.suppress(NfviError):
                await self.port.disarm(self._armed_epoch)
            self._armed_epoch = 0
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        close = getattr(self.port, "close", None)
        if close is not None:
            await close()

    # -- placement ---------------------------------------------------------------------------

    async def check_placement(self) -> PolicyReport | None:
        """Check ``placement_policy``; raise :class:`PlacementRefused` when a hard policy is
        violated and the config says refuse. Bridge errors are logged, not fatal."""
        with contextlib.suppress(NfviError):
            view = await self.port.placement()
            mine = [m for m in view.members if m.member == self._config.member]
            self.host = mine[0].host if mine else None
        if self._config.placement_policy is None:
            return None
        policy = self._config.placement_policy
        try:
            report = await self.port.check_policy(policy)
        except NfviError as e:
            log.warning("%s: placement policy %s not checked: %s", self._config.member,
                        policy.value, e)
            return None
        for v in report.violations:
            log.warning("%s: placement %s violated on %s by %s: %s", self._config.member,
                        policy.value, v.host, ", ".join(v.members), v.detail)
        if report.violations and policy.hard and self._config.refuse_violation:
            raise PlacementRefused("placement_policy", policy.value,
                                   f"{len(report.violations)} violation(s), e.g. "
                                   f"{report.violations[0].detail}")
        return report

    # -- watchdog ----------------------------------------------------------------------------

    @property
    def armed_epoch(self) -> int:
        """The epoch the bridge confirmed the watchdog armed in; 0 while it is not."""
        return self._armed_epoch

    def promoted(self, epoch: int) -> None:
        """Arm the watchdog for ``epoch`` (asynchronously, in order)."""
        self._wanted_epoch, self._rearm = epoch, False
        self._ops.put_nowait(("arm", epoch))

    def keepalive_confirmed(self) -> None:
        """Kick the armed watchdog (dropped if a kick is already queued), or arm it again if
        the last arm did not reach the bridge or the bridge forgot it."""
        if self._rearm and self._wanted_epoch:
            self._rearm = False
            self.rearms += 1
            self._ops.put_nowait(("arm", self._wanted_epoch))
        elif self._armed_epoch and not self._kick_queued:
            self._kick_queued = True
            self._ops.put_nowait(("kick", self._armed_epoch))

    def demoted(self, epoch: int) -> None:
        """Disarm the watchdog of ``epoch``."""
        if self._wanted_epoch == epoch:
            self._wanted_epoch, self._rearm = 0, False
        self._ops.put_nowait(("disarm", epoch))

    async def _run_ops(self) -> None:
        while True:
            op, epoch = await self._ops.get()
            try:
                if op == "arm":
                    await self._arm(epoch)
                elif op == "kick":
                    self._kick_queued = False
                    if epoch == self._armed_epoch:
                        await self.port.kick(epoch)
                        self.kicks += 1
                else:
                    self._armed_epoch = 0
                    await self.port.disarm(epoch)
            except BridgeRequestError as e:
                if op == "kick" and e.reason == "not-armed" and epoch == self._wanted_epoch:
                    log.warning("%s: the bridge has no watchdog armed for epoch %d (it "
                                "restarted, or the watchdog fired): arming it again",
                                self._config.member, epoch)
                    self._armed_epoch, self._rearm = 0, True
                else:
                    self._failed(op, epoch, e)
            except NfviError as e:
                self._failed(op, epoch, e)

    async def _arm(self, epoch: int) -> None:
        cfg = self._config
        self._armed_epoch = 0  # kicks only once the arm is confirmed
        if epoch != self._wanted_epoch:
            return  # demoted (or promoted again) since: that arm is no longer wanted
        try:
            await self.port.arm_watchdog(cfg.watchdog_timeout_s, cfg.watchdog_action, epoch)
        except BridgeUnavailable as e:
            if epoch == self._wanted_epoch:
                if not self._rearm_logged:
                    log.warning("%s: watchdog arm (epoch %d) did not reach the bridge: %s; "
                                "retried at every confirmed keepalive", cfg.member, epoch, e)
                self._rearm, self._rearm_logged = True, True
            return
        if self._rearm_logged:
            log.info("%s: watchdog armed (epoch %d) on a retry", cfg.member, epoch)
        self._rearm_logged = False
        self._armed_epoch = epoch

    def _failed(self, op: str, epoch: int, error: NfviError) -> None:
        log.warning("%s: watchdog %s (epoch %d) failed: %s", self._config.member, op, epoch,
                    error)

    # -- fencing -----------------------------------------------------------------------------

    async def fence(self, member: str, epoch: int, reason: str) -> str:
        """Fence ``member`` (the active of ``epoch``); what the bridge confirmed. Raises
        :class:`vnfha.NfviError` when it did not confirm in time."""
        result = await self.port.fence(member, epoch, self._config.fence_mode,
                                       f"{self._config.member}: {reason}")
        self.fences += 1
        return (f"{result.instance} on {result.host} "
                f"{result.applied.value if result.applied else 'already'} fenced, now "
                f"{result.state.value}")

    def bind_standby(self, standby: Standby) -> Fencer:
        """Serve the member's standby side: from now on a report that proves the active of
        ``standby.state`` gone (:func:`nfvi_proof`) is passed to
        ``standby.on_active_gone(epoch, evidence)`` (until then, such reports are ignored).
        Returns :meth:`fence`, the follower's fencer."""
        self._standby = standby
        return self.fence

    # -- events ------------------------------------------------------------------------------

    async def _run_events(self) -> None:
        step = self._config.retry_s
        while True:
            try:
                async for event in self.port.watch_events():
                    self.handle(event)
            except NfviError as e:
                log.info("%s: bridge event stream ended: %s", self._config.member, e)
            await self._clock.sleep(step)

    def pending_maintenance(self) -> BridgeEvent | None:
        """The planned maintenance of this member's host whose deadline is still ahead (the
        latest announced), or None. Kept from the event until the deadline, so a member that
        becomes active later, or gets an eligible standby later, still hands over in time."""
        event = self._maintenance
        if event is not None and event.deadline_unix_s is not None and \
                event.deadline_unix_s <= self._wall_clock():
            self._maintenance = event = None
        return event

    def maintenance_move(self, view: GroupView) -> tuple[BridgeEvent, str] | None:
        """While a planned maintenance of this member's host is ahead: the announcement and
        the best eligible standby in ``view`` that is not on that host (one on the same host
        would only have to hand back), or None. Warns once per announcement while there is
        no such standby."""
        event = self.pending_maintenance()
        if event is None:
            return None
        target = best_target(view, avoid=frozenset(event.members))
        if target is None:
            if self._maintenance_warned != event:
                self._maintenance_warned = event
                log.warning("%s: planned maintenance of %s (deadline %s), but no eligible "
                            "standby on another host: staying active for now",
                            self._config.member, event.host, event.deadline_unix_s)
            return None
        return event, target

    def handle(self, event: BridgeEvent) -> None:
        """Take in one event from the bridge's stream: a migration of this member moves its
        host; a planned maintenance is passed on when it concerns this member's host (the
        member decides whether to move)."""
        me = self._config.member
        self.received.append(event)
        if event.kind in PROOF_KINDS:
            self._proof(event)
        if event.kind is EventKind.VM_MIGRATED and event.member == me:
            self.host = event.host
            if self._maintenance is not None and self._maintenance.host != event.host:
                self._maintenance = None  # moved off the host under maintenance
        if event.kind is EventKind.MAINTENANCE_PLANNED and (
                me in event.members or (self.host is not None and event.host == self.host)):
            log.warning("%s: planned maintenance of %s (deadline %s): %s", me, event.host,
                        event.deadline_unix_s, event.detail)
            self._maintenance = event
            self._on_maintenance(event)

    def _proof(self, event: BridgeEvent) -> None:
        """Pass a report that proves the active gone to ``on_gone``; log any other."""
        standby = self._standby
        key = standby.state.active if standby is not None else None
        active = (key[1].member, key[1].epoch) if key is not None else None
        evidence = nfvi_proof(event, active, self._config.member)
        if evidence is None or standby is None:
            log.info("%s: %s of %s (member %s, members %s, epoch %d) is no proof that the "
                     "active (%s) is gone: ignored", self._config.member, event.kind.name,
                     event.instance or event.host, event.member or "-",
                     ",".join(event.members) or "-", event.epoch,
                     f"{active[0]}, epoch {active[1]}" if active else "none")
            return
        log.warning("%s: %s", self._config.member, evidence)
        standby.on_active_gone(event.epoch, evidence)
