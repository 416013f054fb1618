"""PURE: repair tickets. Which repair a fault gets, who owns it, and duplicate and concurrent
escalations.

Who repairs what (the table :func:`plan_repair` implements):

=====================  ======================================  ===========  ===============
requested              condition                               action       owner
=====================  ======================================  ===========  ===============
NONE                   any (e.g. a VNF's ALARM)                NONE         VNF (recorded)
REBOOT                 the instance's host is down             EVACUATE     NFVI
REBOOT                 REBOOT is among the actions tried       EVACUATE     NFVI
REBOOT                 otherwise                               REBOOT       NFVI
EVACUATE               any                                     EVACUATE     NFVI
=====================  ======================================  ===========  ===============

The :class:`TicketBook` guarantees:

- Idempotency: an escalation whose (group, idempotency key) is known gets that same ticket back
  (the first request decides its content); a known key naming another member is a conflict.
- One owner per instance: while a ticket owned by the NFVI is open (not terminal) for an
  instance, a new escalation for it is refused, naming that ticket and its owner.
- Bounded memory: past ``max_tickets``, the oldest terminal tickets are forgotten, with their
  keys (so a retry must come within the last ``max_tickets`` escalations to be recognised).
- A ticket's ``version`` grows by one with each change; terminal tickets never change.
- Across a bridge restart (``--state-file``, :meth:`TicketBook.restore`): the tickets and their
  keys are kept; one that was not terminal is FAILED with :data:`RESTARTED` (its repair task is
  gone; the instance may be half repaired), so a duplicate escalation gets it back like any
  finished ticket and a new key may escalate the instance again. Ticket ids are never reused.
- Listing (:meth:`TicketBook.query`) reads only: newest first (the order the tickets were
  opened, reversed; restored tickets keep theirs), with the count of every match.

No asyncio, grpc or time here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from vnfha.nfvi.model import (
    RepairAction,
    RepairOwner,
    RepairState,
    RepairTicket,
    TicketList,
)

__all__ = ["RESTARTED", "Busy", "KeyConflict", "Opened", "RepairPlan", "TicketBook",
           "plan_repair"]

RESTARTED = "bridge restarted during the repair"
"""The detail of a ticket that was open when the bridge stopped (:meth:`TicketBook.restore`)."""


@dataclass(frozen=True, slots=True)
class RepairPlan:
    """The repair a fault gets: ``action`` by ``owner``, with the ``reason`` for the choice."""

    action: RepairAction
    owner: RepairOwner
    reason: str


def plan_repair(requested: RepairAction, tried: Iterable[RepairAction], *,
                host: str, host_up: bool, fault: str = "") -> RepairPlan:
    """Decide the repair for a fault (see the module's table). ``requested`` must be REBOOT,
    EVACUATE or NONE (``ValueError`` otherwise: the other actions are the VNF's own rungs).
    A NONE plan's reason ends with ``fault`` (when given), so the recorded ticket says what
    was reported."""
    if requested is RepairAction.NONE:
        return RepairPlan(RepairAction.NONE, RepairOwner.VNF,
                          "report only: the fault is recorded and the VNF owns the repair"
                          + (f": {fault}" if fault else ""))
    if requested is RepairAction.EVACUATE:
        return RepairPlan(RepairAction.EVACUATE, RepairOwner.NFVI, "evacuation requested")
    if requested is not RepairAction.REBOOT:
        raise ValueError(f"requested={requested}: the NFVI performs only reboot, evacuate or "
                         "none")
    if not host_up:
        return RepairPlan(RepairAction.EVACUATE, RepairOwner.NFVI,
                          f"reboot requested but host {host} is down: evacuating instead")
    if RepairAction.REBOOT in set(tried):
        return RepairPlan(RepairAction.EVACUATE, RepairOwner.NFVI,
                          "reboot requested but already tried: evacuating instead")
    return RepairPlan(RepairAction.REBOOT, RepairOwner.NFVI, "reboot requested")


@dataclass(frozen=True, slots=True)
class Opened:
    """The escalation has ``ticket``: a new one (``new``) or the one its key already named."""

    ticket: RepairTicket
    new: bool


@dataclass(frozen=True, slots=True)
class Busy:
    """Refused: ``ticket`` (open, owned by the NFVI) is already repairing the instance."""

    ticket: RepairTicket


@dataclass(frozen=True, slots=True)
class KeyConflict:
    """Refused: the idempotency key already names ``ticket``, which is for another member."""

    ticket: RepairTicket


class TicketBook:
    """Every ticket the bridge remembers (see the module docstring for the guarantees)."""

    def __init__(self, *, max_tickets: int = 10_000) -> None:
        if max_tickets < 1:
            raise ValueError(f"max_tickets={max_tickets}: must be at least 1")
        self._max = max_tickets
        self._tickets: dict[str, RepairTicket] = {}  # insertion order = age
        self._by_key: dict[tuple[str, str], str] = {}
        self._open_by_instance: dict[str, str] = {}
        self._next = 1

    @property
    def next_number(self) -> int:
        """The number in the next ticket's id (``t-<number>``)."""
        return self._next

    def tickets(self) -> tuple[RepairTicket, ...]:
        """Every remembered ticket, oldest first."""
        return tuple(self._tickets.values())

    def restore(self, tickets: Iterable[RepairTicket], *,
                next_number: int) -> list[RepairTicket]:
        """Fill an empty book with saved ``tickets`` (oldest first; an earlier :meth:`tickets`)
        after a bridge restart; ids continue at ``next_number``. A ticket that was not terminal
        becomes FAILED with :data:`RESTARTED` (version + 1); those are returned. Past
        ``max_tickets``, the oldest are forgotten. ``ValueError`` if the book is not empty."""
        if self._tickets:
            raise ValueError(f"restore into a book holding {len(self._tickets)} ticket(s)")
        interrupted = []
        for saved in tickets:
            ticket = saved
            if not saved.state.terminal:
                ticket = replace(saved, state=RepairState.FAILED, detail=RESTARTED,
                                 version=saved.version + 1)
                interrupted.append(ticket)
            self._tickets[ticket.ticket_id] = ticket
            self._by_key[(ticket.group, ticket.idempotency_key)] = ticket.ticket_id
        self._next = next_number
        self._forget_oldest()
        return interrupted

    def query(self, *, group: str | None = None, open_only: bool = False,
              limit: int) -> TicketList:
        """The remembered tickets of ``group`` (None: every group), only those not terminal if
        ``open_only``, newest first, at most ``limit`` (``ValueError`` below 1); ``matched``
        counts every ticket that passed the filters."""
        if limit < 1:
            raise ValueError(f"limit={limit}: must be at least 1")
        found = [t for t in reversed(self._tickets.values())
                 if (group is None or t.group == group) and not (open_only and t.state.terminal)]
        return TicketList(tuple(found[:limit]), len(found))

    def get(self, ticket_id: str) -> RepairTicket | None:
        """The ticket, or None if unknown (never issued, or forgotten)."""
        return self._tickets.get(ticket_id)

    def find(self, group: str, key: str) -> RepairTicket | None:
        """The ticket ``key`` names in ``group``, or None if unknown (never used, or
        forgotten)."""
        ticket_id = self._by_key.get((group, key))
        return None if ticket_id is None else self._tickets[ticket_id]

    def open_for(self, instance: str) -> RepairTicket | None:
        """The open NFVI-owned ticket repairing ``instance``, if any."""
        ticket_id = self._open_by_instance.get(instance)
        return None if ticket_id is None else self._tickets[ticket_id]

    def open(self, *, key: str, group: str, member: str, instance: str, host: str, epoch: int,
             plan: RepairPlan, owner_name: str) -> Opened | Busy | KeyConflict:
        """Decide an escalation: the ticket its key names, a refusal, or a new ticket (QUEUED
        for the NFVI, RECORDED for the VNF)."""
        known = self._by_key.get((group, key))
        if known is not None:
            ticket = self._tickets[known]
            if ticket.member != member:
                return KeyConflict(ticket)
            return Opened(ticket, new=False)
        busy = self.open_for(instance)
        if busy is not None:
            return Busy(busy)
        ticket_id = f"t-{self._next}"
        self._next += 1
        nfvi = plan.owner is RepairOwner.NFVI
        ticket = RepairTicket(
            ticket_id=ticket_id, idempotency_key=key, group=group, member=member,
            instance=instance, action=plan.action, owner=plan.owner, owner_name=owner_name,
            state=RepairState.QUEUED if nfvi else RepairState.RECORDED, detail=plan.reason,
            host=host, epoch=epoch)
        self._tickets[ticket_id] = ticket
        self._by_key[(group, key)] = ticket_id
        if nfvi:
            self._open_by_instance[instance] = ticket_id
        self._forget_oldest()
        return Opened(ticket, new=True)

    def update(self, ticket_id: str, state: RepairState, detail: str, *,
               host: str | None = None) -> RepairTicket:
        """Move an open ticket to ``state``; returns the new version. ``KeyError`` for an
        unknown ticket, ``ValueError`` for a terminal one."""
        ticket = self._tickets[ticket_id]
        if ticket.state.terminal:
            raise ValueError(f"ticket {ticket_id} is {ticket.state}: it cannot change")
        updated = replace(ticket, state=state, detail=detail,
                          host=ticket.host if host is None else host,
                          version=ticket.version + 1)
        self._tickets[ticket_id] = updated
        if state.terminal and self._open_by_instance.get(ticket.instance) == ticket_id:
            del self._open_by_instance[ticket.instance]
        return updated

    def _forget_oldest(self) -> None:
        excess = len(self._tickets) - self._max
        if excess <= 0:
            return
        for ticket_id in [t.ticket_id for t in self._tickets.values() if t.state.terminal
                          ][:excess]:
            ticket = self._tickets.pop(ticket_id)
            self._by_key.pop((ticket.group, ticket.idempotency_key), None)

    def __len__(self) -> int:
        return len(self._tickets)
