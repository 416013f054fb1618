"""What a member tells its listeners, and how: role changes, callback failures and alarms.

A :class:`~vnfha.member.Member` reports three kinds of :data:`MemberEvent` to the listeners
added with ``member.add_listener``: :class:`RoleChanged` (every change of its role or epoch,
with the decision's reason verbatim), :class:`CallbackFailed` (a component callback that raised
or overran) and :class:`AlarmRaised` (the escalation ladder reached ALARM: no automatic
recovery is left). Guarantees of :class:`Listeners`:

- **Synchronous and in order.** Every listener is called with every event, in the order the
  listeners were added, before :meth:`Listeners.emit` returns; the member emits a role change
  in the same step that makes it (an active that stops acting tells its listeners before any
  other await).
- **A listener cannot hurt the member.** One that raises is logged with its traceback and
  skipped; the others are still called, and the member carries on.
- A listener added while an event is being delivered gets the next event, not that one.

Each :class:`RoleChanged` carries its :class:`~vnfha.model.ReasonKind`, chosen where the change
was decided: the bounded label the metrics use (``vnfha_role_transitions_total{reason_kind=...}``),
so rewording a reason never changes a label.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from vnfha.model import ReasonKind, Role

__all__ = ["AlarmRaised", "CallbackFailed", "Listeners", "MemberEvent", "RoleChanged"]

log = logging.getLogger("vnfha.member")  # part of the member: it logs on the member's logger


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """The member's role or epoch changed."""

    member: str
    role: Role
    previous: Role
    epoch: int
    reason: str
    kind: ReasonKind = ReasonKind.ASSIGNED
    """Why, as a bounded label (the metrics' ``reason_kind``)."""


@dataclass(frozen=True, slots=True)
class CallbackFailed:
    """A component callback raised (``error``) or overran ``callback_timeout_s``."""

    member: str
    callback: str
    error: str
    timed_out: bool


@dataclass(frozen=True, slots=True)
class AlarmRaised:
    """The escalation ladder of member ``member`` of ``group`` reached its last rung, ALARM, or
    the member held the group on a suspected poisoned state (:mod:`vnfha.roles.poison`): no
    automatic recovery is left and an operator must act. Emitted once per ALARM decision (each
    fault decided while the ladder stays at ALARM is a new alarm), before the configured
    ``alarm_command`` runs and before the bridge is told."""

    member: str
    group: str
    epoch: int | None
    """The epoch of the active grant the member knew of (None: none known)."""
    reason: str
    """The ladder decision's reason, verbatim (the rungs used or skipped, and the fault)."""
    fault: str | None
    """The fault that led there (``Fault.describe()``: reason and source), None if unknown."""
    at: float
    """Wall-clock time of the decision, in seconds since the Unix epoch (``time.time()``)."""


MemberEvent = RoleChanged | CallbackFailed | AlarmRaised


class Listeners:
    """The listeners of the member named ``member`` (see the module docstring)."""

    def __init__(self, member: str) -> None:
        self._member = member
        self._listeners: list[Callable[[MemberEvent], None]] = []

    def add(self, listener: Callable[[MemberEvent], None]) -> None:
        """Call ``listener(event)`` for every event emitted from now on."""
        self._listeners.append(listener)

    def emit(self, event: MemberEvent) -> None:
        """Call every listener with ``event``; a listener that raises is logged and skipped."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("%s: member listener %r failed", self._member, listener)
