"""Run a member's health checks and carry out the escalation ladder's decisions.

:class:`Supervisor` is the runtime around the pure ladder: a :class:`~vnfha.health.monitor.
HealthMonitor` turns check verdicts, fault reports and failed callbacks into faults, one at a
time; for each, a :class:`~vnfha.health.runner.LadderRunner` decides (and stores its counters),
and the supervisor executes the decision through a narrow :class:`MemberControl` and the
member's :class:`~vnfha.nfvi.client.NfviPort`::

    action    the supervisor                                       when it fails
    RESTART   await control.restart_component()                    a new fault
    FAILOVER  await control.fail_over(reason)                      a new fault
    ESCALATE  nfvi.escalate(key, REBOOT or EVACUATE, tried=...),   a new fault
              then follows the ticket until it is terminal         (FAILED ticket: a new fault)
    ALARM     logs at ERROR, emits AlarmRaised, starts             logged at WARNING,
              alarm_command in a task, nfvi.escalate(key, NONE)    never a new fault
    WAIT      nothing: the bridge owns an open repair              -

Guarantees:

- **One recovery at a time.** The monitor hands over one fault at a time, and each decision is
  executed to its end (restart returned, resign returned, escalation answered) before the next
  fault is decided; reports that arrive meanwhile are merged into one pending fault.
- **A failed recovery is a new fault**, keeping the original recommendation as its floor
  (source ``recovery:<action>``), so a restart that raises counts as the next restart and the
  ladder climbs; its bounds end any such loop at ALARM.
- **Never two repairs of one instance.** While the bridge owns an open repair (a ticket this
  supervisor opened, or the one a :class:`~vnfha.errors.RepairInProgress` names), every fault
  is WAIT. The ticket is followed in a task until it is terminal, unknown to the bridge, or not
  terminal within ``repair_timeout_s``; a broken watch is reopened every ``rewatch_s``.
- **Stable idempotency keys.** An escalation's key is ``{group}/{member}/{epoch}/{decision
  key}``: the same decision always sends the same key, so the bridge returns the same ticket.
- **Nothing escapes into the member.** Errors of the control, the bridge or the store are
  logged and turned into faults or waits; a cancellation propagates. On exit the monitor and
  every ticket watch are cancelled and awaited (one ``asyncio.TaskGroup``).
- **An alarm leaves the process once per episode, and never blocks or fails the member.** On
  the first ALARM since the ladder last decided anything but ALARM or WAIT, the
  supervisor calls ``on_alarm`` with an :class:`~vnfha.events.AlarmRaised` (a listener that
  raises is logged and skipped), starts ``alarm_command`` (if configured) in a task of its own,
  bounded by ``alarm_command_timeout_s`` and cancelled on exit
  (:func:`~vnfha.health.alarm.run_alarm_command`), and, with a bridge, records the alarm
  there: an escalation asking for NONE under the decision's idempotency key, so the bridge's
  tickets show it (RECORDED, owned by this member) and a retry gets the same ticket. A bridge
  that refuses or does not answer is logged at WARNING: the alarm is not a new fault. A later
  ALARM of the same episode is logged at ERROR only.
- **Observable.** Every decision's reason is logged verbatim (by the runner), counted
  (``ladder_decided``, and ``escalated`` for every rung used), and kept with its time and
  outcome in :attr:`Supervisor.decisions` (the last :data:`MAX_KEPT`).
- **Every recovery of the instance is counted** (:mod:`vnfha.health.incarnation`). On start
  the supervisor counts, once, how the previous incarnation ended (a death: a restart; a crash
  failover of it as the active, from the group's failover history: a failover) and records the
  new incarnation, retrying every ``rewatch_s`` while the store cannot be read or written, and
  waiting while the group is paused; a death whose restarts are used up is carried out as a
  health fault's decision would be (reboot, evacuate, alarm). Before it asks the NFVI to
  repair its own instance it records that the end to come is that repair's (not counted
  again), and on a clean exit that it stopped cleanly (the group's active never asks for the
  repair of a member that did). Decisions are executed one at a time, these included.
- **Placement**: NFVI escalations carry the member's ``placement_policy`` as the evacuation
  policy (None: the bridge's default), so a repair keeps it, or is refused when it cannot.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Protocol, Self

from vnfha._ratelog import RateLimitedLog
from vnfha._tasks import stop_task
from vnfha.clock import Clock
from vnfha.config import CheckSpec
from vnfha.errors import BridgeRequestError, NfviError, RepairInProgress, StoreError
from vnfha.events import AlarmRaised
from vnfha.health.alarm import announce_alarm, record_alarm
from vnfha.health.checks import from_spec
from vnfha.health.counters import LadderCounters
from vnfha.health.incarnation import Failover, LifeState, already_done
from vnfha.health.ladder import LADDER, Action, Decision, Fault, LadderPolicy, Rung
from vnfha.health.monitor import HealthMonitor, MonitoredCheck
from vnfha.health.runner import LadderRunner
from vnfha.health.verdict import CheckPolicy, Transition
from vnfha.metrics import CheckKind, Metrics
from vnfha.model import Recovery, Role
from vnfha.nfvi.client import NfviPort
from vnfha.nfvi.model import PlacementPolicy, RepairAction, RepairOwner, RepairState, RepairTicket
from vnfha.roles.history import read_history
from vnfha.roles.keys import GroupKeys
from vnfha.store.base import Store

__all__ = [
    "MAX_KEPT",
    "Executed",
    "MemberControl",
    "Supervisor",
    "SupervisorSettings",
    "escalation_key",
    "tried_before",
]

log = logging.getLogger("vnfha.health")

MAX_KEPT: Final = 1000
"""How many executed decisions :attr:`Supervisor.decisions` keeps (the oldest are dropped)."""

APP_CHECK: Final = "health_check"
"""The name the component's own ``health_check`` runs under (fault source ``check:<name>``)."""

_REQUESTED: Final = {Rung.REBOOT_VM: RepairAction.REBOOT, Rung.EVACUATE_VM: RepairAction.EVACUATE}
_TRIED: Final = {Rung.RESTART: RepairAction.RESTART_COMPONENT, Rung.FAILOVER: RepairAction.FAILOVER,
                 **_REQUESTED}


class MemberControl(Protocol):
    """What the supervisor needs of its member (``vnfha.Member`` implements it)."""

    @property
    def name(self) -> str:
        """The member's name."""
        ...

    @property
    def group(self) -> str:
        """The member's group."""
        ...

    @property
    def role(self) -> Role:
        """The member's current role."""
        ...

    @property
    def epoch(self) -> int:
        """The current active grant's epoch (sent with escalations)."""
        ...

    def has_eligible_standby(self) -> bool:
        """True if some standby could take over from this member now."""
        ...

    def paused(self) -> bool:
        """True while an operator has paused the group: no ladder action is taken."""
        ...

    async def restart_component(self) -> None:
        """``component.restart()`` bounded by the callback timeout; raises on failure."""
        ...

    async def fail_over(self, reason: str) -> None:
        """Resign the active role gracefully to the best standby; raises on failure."""
        ...


# -- pure helpers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    """What the supervisor takes from the member's configuration (built by
    :func:`vnfha.wiring.supervisor_settings`): the component's check policy, the ladder's
    policy, where the ladder's counters live, how long a store call may take, the built-in
    checks to run (``Config.checks``, then the component's ``checks()``), the command an
    ALARM runs (argv, None: none) with its time bound, and the member's placement policy
    (sent as the evacuation policy of its NFVI escalations; None: the bridge's default)."""

    check: CheckPolicy
    ladder: LadderPolicy
    key_prefix: str
    request_timeout_s: float
    checks: tuple[CheckSpec, ...] = ()
    alarm_command: tuple[str, ...] | None = None
    alarm_command_timeout_s: float = 5.0
    placement_policy: PlacementPolicy | None = None


def escalation_key(group: str, member: str, epoch: int, decision: Decision) -> str:
    """The idempotency key of ``decision``'s escalation: the same for every retry of it,
    different for any other decision (``Decision.key`` holds its rung, attempt and time)."""
    return f"{group}/{member}/{epoch}/{decision.key}"


def tried_before(decision: Decision) -> tuple[RepairAction, ...]:
    """The rungs used since their last reset *before* ``decision`` (its own use excluded), each
    once, lowest first, as the bridge names them."""
    used = {u.rung for u in decision.history.uses if u.rung is not decision.rung}
    if decision.attempt > 1 and decision.rung is not None:
        used.add(decision.rung)
    return tuple(_TRIED[r] for r in LADDER if r in used)


@dataclass(frozen=True, slots=True)
class Executed:
    """``decision``, executed at ``at`` (the supervisor's clock) with ``outcome`` (what was
    done, or why it failed); ``key`` and ``ticket_id`` of an escalation (or of the repair
    waited for)."""

    at: float
    decision: Decision
    outcome: str
    key: str | None = None
    ticket_id: str | None = None

    @property
    def action(self) -> Action:
        """The decision's action."""
        return self.decision.action


# -- the runtime -------------------------------------------------------------------------------


class Supervisor:
    """Health checks and ladder execution for one member (see the module's guarantees).

    ``health_check`` is the component's own check (None: it has none), run under
    :attr:`SupervisorSettings.check`; the built-in checks of :attr:`SupervisorSettings.checks`
    (built by :func:`vnfha.health.checks.from_spec` on ``clock``) and ``extra_checks`` run beside
    it, each under its own policy. ``on_health(healthy)`` is
    called whenever a check fails or recovers, with whether no check is FAILING now.
    ``on_alarm(event)`` is called with every :class:`~vnfha.events.AlarmRaised` (the member
    passes its listeners' ``emit``). ``wall_clock`` stamps the stored counters and alarms.
    ``escalate_timeout_s`` bounds one escalation (None: the client's own deadline);
    ``repair_timeout_s`` bounds the wait for a ticket to end (None: the probation window of
    the rung that opened it); ``rewatch_s`` is the pause before a broken
    ticket watch is reopened (None: ``health_check_period_s``). Use as ``async with``.
    """

    def __init__(self, control: MemberControl, *, settings: SupervisorSettings, store: Store,
                 clock: Clock,
                 nfvi: NfviPort, metrics: Metrics,
                 health_check: Callable[[], Awaitable[None]] | None,
                 extra_checks: Sequence[MonitoredCheck] = (),
                 on_health: Callable[[bool], None] | None = None,
                 on_alarm: Callable[[AlarmRaised], None] | None = None,
                 wall_clock: Callable[[], float] = time.time,
                 escalate_timeout_s: float | None = None, repair_timeout_s: float | None = None,
                 rewatch_s: float | None = None) -> None:
        self._control = control
        self._clock = clock
        self._store = store
        self._settings = settings
        self._on_alarm = on_alarm
        self._alarm_raised = False
        """An alarm was raised and the ladder has not come down since: not told again."""
        self._wall_clock = wall_clock
        self._paused_log = RateLimitedLog(log, level=logging.WARNING, monotonic=clock.monotonic)
        self._nfvi = nfvi
        self._metrics = metrics
        self._escalate_timeout_s = escalate_timeout_s
        self._repair_timeout_s = repair_timeout_s
        self._rewatch_s = settings.check.period_s if rewatch_s is None else rewatch_s
        counters = LadderCounters(store, settings.key_prefix, control.group, control.name,
                                  timeout_s=settings.request_timeout_s, policy=settings.ladder)
        self._policy = settings.ladder
        self.runner = LadderRunner(counters, self._policy, clock, wall_clock=wall_clock,
                                   name=control.name)
        """The ladder runner (its counters are in the store under ``counters.key``)."""
        checks = [*(from_spec(spec, clock) for spec in settings.checks), *extra_checks]
        if health_check is not None:
            checks.insert(0, MonitoredCheck(APP_CHECK, health_check, settings.check,
                                            kind=CheckKind.APP))
        self._on_health = on_health
        self.monitor = HealthMonitor(checks, clock=clock, on_fault=self._on_fault,
                                     on_transition=self._transition,
                                     on_check_failed=self._check_failed, name=control.name)
        """The health monitor (check states, the pending fault)."""
        self._executed: collections.deque[Executed] = collections.deque(maxlen=MAX_KEPT)
        self._open: str | None = None
        self.last_ticket: RepairTicket | None = None
        """The latest state seen of the latest repair ticket."""
        self._tasks: asyncio.TaskGroup | None = None
        self._main: asyncio.Task[None] | None = None
        self._acting = asyncio.Lock()  # one decision executed at a time

    # -- what the member and tests read ------------------------------------------------------

    @property
    def decisions(self) -> list[Executed]:
        """The executed decisions, oldest first (the last :data:`MAX_KEPT`)."""
        return list(self._executed)

    @property
    def open_ticket(self) -> str | None:
        """The repair ticket the bridge owns for this instance (every fault WAITs meanwhile)."""
        return self._open

    # -- where faults come from --------------------------------------------------------------

    def report_fault(self, reason: str, recommended: Recovery = Recovery.NONE) -> None:
        """The component reports a fault (``member.report_fault``): queued for the ladder,
        merged with one already waiting. Returns at once; never raises for a valid
        ``recommended``."""
        self._metrics.health_check_failed(CheckKind.FAULT_REPORT)
        self.monitor.report_fault(reason, Recovery(recommended))

    def callback_failed(self, name: str, error: str) -> None:
        """Component callback ``name`` (``on_active``, ...) raised or overran with ``error``:
        a fault for the ladder (source ``callback:<name>``). Returns at once."""
        self._metrics.health_check_failed(CheckKind.CALLBACK)
        self.monitor.report_fault(f"callback {name} failed: {error}", source=f"callback:{name}")

    def _check_failed(self, name: str, kind: str, reason: str) -> None:
        self._metrics.health_check_failed(kind)

    def _transition(self, name: str, transition: Transition, reason: str) -> None:
        if self._on_health is not None:
            self._on_health(self.monitor.healthy)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._main is not None:
            raise RuntimeError(f"{self._control.name}: supervisor already started")
        self._main = asyncio.create_task(self._run(), name=f"{self._control.name}-supervisor")
        await asyncio.sleep(0)  # the monitor starts before the caller goes on
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        task, self._main = self._main, None
        await stop_task(task)
        if task is not None and not await self.runner.mark(LifeState.STOPPED):
            log.warning("%s: the clean stop is not recorded: the group's active may ask for a "
                        "repair of this member", self._control.name)

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                await self.monitor.start()
                tasks.create_task(self._begin(), name=f"{self._control.name}-incarnation")
                await asyncio.Event().wait()  # until cancelled
            finally:
                await self.monitor.stop()  # no new ticket watch after this
                self._tasks = None

    # -- executing decisions -----------------------------------------------------------------

    async def _on_fault(self, fault: Fault) -> None:
        """Decide on ``fault`` and execute the decision (the monitor calls this one at a time)."""
        c = self._control
        if c.paused():  # an operator's pause: nothing is counted, nothing is done
            self._paused_log("paused", "%s: the group is paused by an operator: no ladder "
                             "action for %s", c.name, fault.describe())
            return
        async with self._acting:
            decision = await self.runner.handle(
                fault, role=c.role, has_bridge=self._nfvi.configured, open_repair=self._open,
                standby_ready=c.has_eligible_standby())
            await self._carry_out(decision)

    async def _carry_out(self, decision: Decision, done_already: str | None = None) -> None:
        """Count ``decision``, execute it (unless ``done_already`` says it was), keep it."""
        self._metrics.ladder_decided(decision.action)
        if decision.rung is not None:
            self._metrics.escalated(decision.rung)
        if done_already is not None:
            self._executed.append(Executed(self._clock.monotonic(), decision, done_already))
            return
        try:
            done = await self._execute(decision)
        except Exception as e:
            done = Executed(self._clock.monotonic(), decision, f"failed: {type(e).__name__}: {e}")
            self._recovery_failed(decision, e)
        self._executed.append(done)

    async def _begin(self) -> None:
        """Count how the previous incarnation ended and record this one (see the module);
        carry out the decision on a death whose restarts are used up."""
        c = self._control
        keys = GroupKeys(self._settings.key_prefix, c.group)
        while True:
            if c.paused():
                self._paused_log("paused-start", "%s: the group is paused by an operator: the "
                                 "previous incarnation's end is counted later", c.name)
            else:
                try:
                    failovers = [Failover(r.from_epoch, r.cause, r.at)
                                 for r in await read_history(self._store, keys)
                                 if r.from_member == c.name]
                    async with self._acting:
                        start = await self.runner.begin(
                            failovers, role=c.role, has_bridge=self._nfvi.configured,
                            standby_ready=c.has_eligible_standby())
                        if start.decision is not None:
                            await self._carry_out(start.decision, "counted: the process was "
                                                  "restarted" if already_done(start.decision)
                                                  else None)
                    return
                except StoreError as e:
                    log.warning("%s: the start of this incarnation is not recorded yet (%s); "
                                "retrying in %g s", c.name, e, self._rewatch_s)
                except Exception:  # never into the member's loop
                    log.exception("%s: recording the start of this incarnation failed", c.name)
                    return
            await self._clock.sleep(self._rewatch_s)

    def _recovery_failed(self, decision: Decision, error: Exception) -> None:
        """A recovery that raised is a new fault with the same floor (see the module)."""
        name = self._control.name
        log.error("%s: %s failed: %s: %s", name, decision.action, type(error).__name__, error)
        if decision.action is Action.RESTART:
            self._metrics.health_check_failed(CheckKind.CALLBACK)
        self.monitor.report_fault(f"{decision.action} failed: {type(error).__name__}: {error}",
                                  decision.fault.recommended,
                                  source=f"recovery:{decision.action}")

    async def _execute(self, d: Decision) -> Executed:
        now = self._clock.monotonic
        if d.action is Action.RESTART:
            await self._control.restart_component()
            return Executed(now(), d, "component restarted")
        if d.action is Action.FAILOVER:
            await self._control.fail_over(d.reason)
            return Executed(now(), d, "resigned the active role")
        if d.action is Action.ESCALATE:
            return await self._escalate(d)
        if d.action is Action.ALARM:
            log.error("%s: ALARM: %s", self._control.name, d.reason)
            if self._alarm_raised:  # the same episode: told once (an operator pages once)
                return Executed(now(), d, "alarm still raised (told when it was raised)")
            self._alarm_raised = True
            return await self._alarm(d)
        if d.action is not Action.WAIT:
            self._alarm_raised = False  # the ladder came down: a later alarm is news again
        return Executed(now(), d, f"waited: the bridge owns repair {self._open}",
                        ticket_id=self._open)

    async def _escalate(self, d: Decision) -> Executed:
        """Ask the bridge for the rung's repair; own the ticket while it is open."""
        assert d.rung in _REQUESTED, d
        c = self._control
        key = escalation_key(c.group, c.name, c.epoch, d)
        await self.runner.mark(LifeState.REPAIRING)  # the end to come is this repair's
        try:
            ticket = await self._nfvi.escalate(
                key, d.fault.describe(), _REQUESTED[d.rung], c.epoch, tried=tried_before(d),
                call_timeout_s=self._escalate_timeout_s,
                evacuation_policy=self._settings.placement_policy)
        except RepairInProgress as e:  # another repair of this instance: its end is that one's
            log.warning("%s: the bridge already repairs this instance: ticket %s owned by %s",
                        c.name, e.ticket, e.owner)
            self._own(e.ticket, d.rung)
            return Executed(self._clock.monotonic(), d, f"bridge already repairing: ticket "
                            f"{e.ticket} owned by {e.owner}", key, e.ticket)
        except Exception as e:
            if not getattr(e, "outcome_unknown", False):  # refused: no repair will end it
                await self.runner.mark(LifeState.RUNNING)
            raise
        self.last_ticket = ticket
        log.warning("%s: escalated %s: ticket %s, %s by %s (%s): %s", c.name, d.rung,
                    ticket.ticket_id, ticket.action, ticket.owner_name, ticket.state,
                    ticket.detail)
        if ticket.owner is RepairOwner.NFVI and not ticket.state.terminal:
            self._own(ticket.ticket_id, d.rung)
        elif ticket.state.terminal:
            await self._ended(ticket)
        return Executed(self._clock.monotonic(), d, f"ticket {ticket.ticket_id}: "
                        f"{ticket.action} by {ticket.owner_name}, {ticket.state}", key,
                        ticket.ticket_id)

    async def _alarm(self, d: Decision) -> Executed:
        """Tell the listeners, start the notify command, record the alarm at the bridge (see
        the module); never raises but a cancellation."""
        c, settings = self._control, self._settings
        alarm = AlarmRaised(member=c.name, group=c.group, epoch=c.epoch or None,
                            reason=d.reason, fault=d.fault.describe(), at=self._wall_clock())
        tasks = self._tasks
        announce_alarm(alarm, tell=self._on_alarm, command=settings.alarm_command,
                       timeout_s=settings.alarm_command_timeout_s, clock=self._clock,
                       start=None if tasks is None
                       else lambda coro, name: tasks.create_task(coro, name=name))
        if not self._nfvi.configured:
            return Executed(self._clock.monotonic(), d, "alarm raised")
        key = escalation_key(c.group, c.name, c.epoch, d)
        out = await record_alarm(self._nfvi, key, alarm, c.epoch, tried=tried_before(d),
                                 call_timeout_s=self._escalate_timeout_s)
        if isinstance(out, Exception):
            return Executed(self._clock.monotonic(), d, f"alarm raised; the bridge was not "
                            f"told: {type(out).__name__}: {out}", key)
        return Executed(self._clock.monotonic(), d, f"alarm raised; ticket {out.ticket_id}: "
                        f"{out.state}", key, out.ticket_id)

    # -- following a repair ticket -----------------------------------------------------------

    def _own(self, ticket_id: str, rung: Rung) -> None:
        """Every fault WAITs until ``ticket_id`` ends; follow it in a task."""
        self._open = ticket_id
        timeout_s = self._repair_timeout_s
        if timeout_s is None:
            policy = self._policy.of(rung)
            assert policy is not None  # an NFVI rung
            timeout_s = policy.probation_s
        if self._tasks is not None:
            self._tasks.create_task(self._follow(ticket_id, timeout_s),
                                    name=f"{self._control.name}-repair-{ticket_id}")

    async def _follow(self, ticket_id: str, timeout_s: float) -> None:
        """Watch ``ticket_id`` until it is terminal, unknown, or ``timeout_s`` has passed;
        reopen a broken watch after ``rewatch_s``. Never raises but a cancellation."""
        name = self._control.name
        deadline = self._clock.monotonic() + timeout_s
        try:
            while (remaining := deadline - self._clock.monotonic()) > 0:
                try:
                    async for t in self._nfvi.watch_repair(ticket_id, timeout_s=remaining):
                        self.last_ticket = t
                        if t.state.terminal:
                            await self._ended(t)
                            return
                except BridgeRequestError as e:
                    if e.code == "NOT_FOUND":
                        log.warning("%s: repair ticket %s unknown to the bridge (%s): no longer "
                                    "waiting for it", name, ticket_id, e)
                        await self.runner.mark(LifeState.RUNNING)  # a later end is a death
                        return
                    log.warning("%s: watching repair ticket %s: %s", name, ticket_id, e)
                except NfviError as e:
                    log.warning("%s: watching repair ticket %s: %s", name, ticket_id, e)
                await self._clock.sleep(min(self._rewatch_s,
                                            max(0.0, deadline - self._clock.monotonic())))
            log.error("%s: repair ticket %s not terminal within %g s: no longer waiting for it",
                      name, ticket_id, timeout_s)
            await self.runner.mark(LifeState.RUNNING)
        except Exception:
            log.exception("%s: following repair ticket %s failed", name, ticket_id)
        finally:
            if self._open == ticket_id:
                self._open = None

    async def _ended(self, ticket: RepairTicket) -> None:
        """A terminal ticket: log it; a FAILED repair is a new fault (floor REPAIR_VM). This
        incarnation outlived it: its end is no longer that repair's."""
        name = self._control.name
        await self.runner.mark(LifeState.RUNNING)
        if ticket.state is not RepairState.FAILED:
            log.warning("%s: repair ticket %s %s: %s", name, ticket.ticket_id, ticket.state,
                        ticket.detail)
            return
        log.error("%s: repair ticket %s failed: %s", name, ticket.ticket_id, ticket.detail)
        self.monitor.report_fault(f"NFVI repair {ticket.ticket_id} ({ticket.action}) failed: "
                                  f"{ticket.detail}", Recovery.REPAIR_VM,
                                  source=f"nfvi:{ticket.ticket_id}")
