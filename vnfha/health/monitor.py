"""Run health checks on their periods and turn what they find, and what the component reports,
into one serialized stream of faults.

:class:`HealthMonitor` owns one task per check and one fault handler, all in one
``asyncio.TaskGroup``, on an injected :class:`~vnfha.clock.Clock`. It decides nothing about
recovery: every fault goes to the ``on_fault`` callback (the member, which asks a
:class:`~vnfha.health.runner.LadderRunner` and executes the decision).

Guarantees:

- **Periods and timeouts.** Each check first runs one ``period_s`` after the monitor starts
  (the component has that long to come up), then every ``period_s`` measured from the start of
  the previous run. A run that takes longer than the policy's ``timeout_s`` is cancelled and
  counts as a failure; so does a run that raises anything (``HealthCheckFailed`` gives the
  reason; any other exception is named).
- **Hysteresis** by :func:`vnfha.health.verdict.observe`: ``on_transition(check, transition,
  reason)`` is called for FAILED, STILL_FAILING and RECOVERED; FAILED and STILL_FAILING also
  raise a fault (``source="check:<name>"``, the check's ``recommended`` floor).
- **One fault at a time.** ``on_fault`` is awaited for one fault before the next is taken.
  Faults reported (:meth:`HealthMonitor.report_fault`) while one is being handled are merged
  into one pending fault (:func:`vnfha.health.ladder.merge`: first reason, strongest
  recommendation, a count), so a burst of reports is one decision, not a climb to ALARM.
  Check faults raised while a fault is being handled are dropped: the recovery under way is
  for them. When ``on_fault`` returns, every check is re-armed (:func:`vnfha.health.verdict.
  rearm`), so each recovery is given ``fail_after`` periods to prove itself before a check
  that still fails raises the next fault.
- **Callbacks cannot stop the monitor.** An exception from ``on_transition``,
  ``on_check_failed`` or ``on_fault`` is logged and the monitor carries on; a cancellation
  (:meth:`stop`) propagates and ends every task.
- **Checks it owns are closed.** When the monitor's tasks have ended, each check's ``close``
  (if it has one: a channel to release) is awaited once; an error there is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Self

from vnfha._tasks import stop_task
from vnfha.clock import Clock
from vnfha.errors import ConfigError, HealthCheckFailed
from vnfha.health.ladder import Fault, merge
from vnfha.health.verdict import (
    Change,
    CheckPolicy,
    CheckState,
    Health,
    Transition,
    initial,
    observe,
    rearm,
)
from vnfha.model import Recovery

__all__ = ["HealthMonitor", "MonitoredCheck", "OnCheckFailed", "OnFault", "OnTransition"]

log = logging.getLogger("vnfha.health")

OnTransition = Callable[[str, Transition, str], None]
"""``on_transition(check_name, transition, reason)``: the reason is that of the last run."""
OnCheckFailed = Callable[[str, str, str], None]
"""``on_check_failed(check_name, kind, reason)`` after every failed run (for metrics)."""
OnFault = Callable[[Fault], Awaitable[None]]
"""``await on_fault(fault)``: decide and carry out the recovery."""


@dataclass(frozen=True, slots=True)
class MonitoredCheck:
    """A check to run: ``check`` (an async callable, see :class:`vnfha.health.checks.
    HealthCheck`) under ``policy``. ``kind`` labels its failures in metrics (``"app"`` for
    the component's own ``health_check``); ``recommended`` is the floor of the recovery its
    faults ask for; ``close``, if given, is awaited once when the monitor stops (the
    monitor then owns the check)."""

    name: str
    check: Callable[[], Awaitable[None]]
    policy: CheckPolicy
    kind: str = "app"
    recommended: Recovery = Recovery.NONE
    close: Callable[[], Awaitable[None]] | None = None


class HealthMonitor:
    """Runs ``checks`` and feeds faults to ``on_fault`` (see the module's guarantees).

    Use as ``async with HealthMonitor(...)`` or :meth:`start` / :meth:`stop`. ``name`` (the
    member's) prefixes log lines.
    """

    def __init__(self, checks: Sequence[MonitoredCheck], *, clock: Clock, on_fault: OnFault,
                 on_transition: OnTransition | None = None,
                 on_check_failed: OnCheckFailed | None = None, name: str = "") -> None:
        names = [c.name for c in checks]
        for n in names:
            if not n or names.count(n) > 1:
                raise ConfigError("checks", n, "check names must be unique and non-empty")
        self._checks = tuple(checks)
        self._clock = clock
        self._on_fault = on_fault
        self._on_transition = on_transition
        self._on_check_failed = on_check_failed
        self._name = name or "health"
        self._states: dict[str, CheckState] = {c.name: initial() for c in checks}
        self._pending: Fault | None = None
        self._wake = asyncio.Event()
        self._handling = False
        self._task: asyncio.Task[None] | None = None

    # -- what the member reads ---------------------------------------------------------------

    @property
    def states(self) -> Mapping[str, CheckState]:
        """Each check's current state, by name (a read-only view)."""
        return MappingProxyType(self._states)

    @property
    def healthy(self) -> bool:
        """True while no check is FAILING."""
        return all(s.health is Health.HEALTHY for s in self._states.values())

    @property
    def failing(self) -> tuple[str, ...]:
        """The names of the checks that are FAILING now, sorted."""
        return tuple(sorted(n for n, s in self._states.items() if s.health is Health.FAILING))

    @property
    def handling(self) -> bool:
        """True while ``on_fault`` runs."""
        return self._handling

    @property
    def pending(self) -> Fault | None:
        """The fault waiting to be handled (merged from everything reported meanwhile)."""
        return self._pending

    # -- the component-invoked path ----------------------------------------------------------

    def report_fault(self, reason: str, recommended: Recovery = Recovery.NONE, *,
                     source: str = "report_fault") -> None:
        """Queue a fault for ``on_fault`` (merged with one already waiting). Never blocks and
        never raises for a valid ``recommended``; callable before :meth:`start`, in which case
        the fault is handled once the monitor runs."""
        self._enqueue(Fault(reason, Recovery(recommended), source))

    def _enqueue(self, fault: Fault) -> None:
        log.warning("%s: fault: %s", self._name, fault.describe())
        self._pending = fault if self._pending is None else merge(self._pending, fault)
        self._wake.set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every check's task and the fault handler."""
        if self._task is not None:
            raise RuntimeError(f"{self._name}: health monitor already started")
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-health")

    async def stop(self) -> None:
        """Cancel every task and wait for them (a check or a fault handler in progress is
        cancelled). Idempotent."""
        task, self._task = self._task, None
        await stop_task(task)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                for c in self._checks:
                    tasks.create_task(self._check_loop(c), name=f"{self._name}-check-{c.name}")
                tasks.create_task(self._fault_loop(), name=f"{self._name}-faults")
        except Exception:
            log.exception("%s: health monitor failed", self._name)
            raise
        finally:
            await self._close_checks()

    async def _close_checks(self) -> None:
        for c in self._checks:
            if c.close is None:
                continue
            try:
                await c.close()
            except Exception:
                log.exception("%s: closing health check %s failed", self._name, c.name)

    # -- checks ------------------------------------------------------------------------------

    async def _check_loop(self, c: MonitoredCheck) -> None:
        next_run = self._clock.monotonic() + c.policy.period_s
        while True:
            await self._clock.sleep(next_run - self._clock.monotonic())
            next_run = self._clock.monotonic() + c.policy.period_s
            ok, reason = await self._run_once(c)
            self._record(c, ok, reason)

    async def _run_once(self, c: MonitoredCheck) -> tuple[bool, str]:
        """Run the check once under its timeout: (passed, reason)."""
        try:
            await self._clock.wait_for(c.check(), c.policy.timeout_s)
        except HealthCheckFailed as e:
            return False, e.reason
        except TimeoutError:
            return False, f"no answer within {c.policy.timeout_s:g} s"
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the monitor is stopping
            return False, "the check was cancelled"
        except Exception as e:
            return False, f"{type(e).__name__}: {e}"
        return True, "ok"

    def _record(self, c: MonitoredCheck, ok: bool, reason: str) -> None:
        state, transition = observe(c.policy, self._states[c.name], ok, self._clock.monotonic())
        self._states[c.name] = state
        if not ok:
            self._call(self._on_check_failed, c.name, c.kind, reason)
        if transition is None:
            return
        log.warning("%s: health check %s %s after %d: %s", self._name, c.name,
                    transition.change, transition.streak, reason)
        self._call(self._on_transition, c.name, transition, reason)
        if transition.change is not Change.RECOVERED and not self._handling:
            self._enqueue(Fault(f"health check {c.name} {transition.change}: {reason}",
                                c.recommended, f"check:{c.name}"))

    def _call(self, callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("%s: health callback %r failed", self._name, callback)

    # -- faults ------------------------------------------------------------------------------

    async def _fault_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending is not None:
                fault, self._pending = self._pending, None
                self._handling = True
                try:
                    await self._on_fault(fault)
                except Exception:
                    log.exception("%s: handling fault %s failed", self._name, fault.describe())
                finally:
                    self._handling = False
                    self._states = {n: rearm(s) for n, s in self._states.items()}
