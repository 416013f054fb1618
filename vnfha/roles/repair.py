"""The active restores the group's redundancy: it asks the NFVI bridge to repair the instance of
a member that has been gone ``repair_after_s`` without a clean stop (``docs/ladder.md``,
Self-healing).

:class:`RepairDuty` is the runtime around the pure :class:`~vnfha.roles.repair_book.RepairBook`
(which decides who and when). The active's :class:`~vnfha.roles.duties.ActiveDuties` calls
:meth:`RepairDuty.turn` after every decision; a timer task of the duty's own looks at each gone
member when its look is due, since nothing in the group changes while a member is gone.

Guarantees:

- **Only the active asks, in its epoch.** Each ask is ``Faults/Escalate`` for the gone member
  (``target_member``) with the active's epoch: the bridge refuses a deposed active's (stale
  epoch), and the duty then stops. A lost grant (``may_act`` false) or a new one (another
  epoch) forgets every gone member; the next grant starts again from the ladder keys.
- **What is asked**: REBOOT of the member's instance (a hard reset; the simulator relaunches
  its process; the bridge evacuates instead when its host is down), idempotency key
  :func:`~vnfha.roles.repair_book.repair_key`, the fault naming the member, how long it has
  been gone, its incarnation and who asks, and the member's ``placement_policy`` as the
  evacuation policy (a repair that would break a hard one is refused by the bridge, naming
  the policy and the host). The ticket is the bridge's like any other (``vnfha bridge
  tickets``), owned by the NFVI.
- **Never a clean stop, a locked member or a paused group** (the member's incarnation record
  is read from its ladder key at every look), never this member, at most
  :data:`~vnfha.roles.repair_book.MAX_ATTEMPTS` tickets per incarnation.
- **Visible**: each answer is logged (a ticket at WARNING), and the latest is written to
  ``{key_prefix}/.repairs/{group}/{member}`` (not bound to a lease; outside the group's prefix,
  so it wakes no member's watch; deleted when the member is back) for ``vnfha status``, which
  shows only those of the current epoch.
- **Nothing escapes**: store and bridge errors are logged and the member looked at again
  later; a cancellation ends the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from vnfha.clock import Clock
from vnfha.errors import (
    BridgeUnavailable,
    LadderStateError,
    NfviError,
    RepairInProgress,
    StaleEpochRejected,
    StoreError,
)
from vnfha.health.counters import ladder_key, read_life
from vnfha.health.incarnation import LifeState
from vnfha.nfvi.client import NfviPort
from vnfha.nfvi.model import PlacementPolicy, RepairAction, RepairTicket
from vnfha.roles.keys import GroupKeys, GroupState
from vnfha.roles.repair_book import Look, Outcome, RepairBook, RepairRecord, Step, repairs_prefix
from vnfha.store.base import Store

__all__ = ["RepairDuty"]

log = logging.getLogger("vnfha.member")


class RepairDuty:
    """Asks for the repair of ``group``'s gone members while ``me`` is its active (see the
    module). ``state`` is the group as the member sees it, ``epoch`` its epoch, ``may_act``
    whether it may act as the active now; ``adopt`` owns the timer task; ``wall_clock`` stamps
    the records."""

    def __init__(self, *, me: str, keys: GroupKeys, store: Store, clock: Clock,
                 port: NfviPort, repair_after_s: float, policy: PlacementPolicy | None,
                 state: Callable[[], GroupState], epoch: Callable[[], int],
                 may_act: Callable[[], bool], adopt: Callable[[asyncio.Task[Any]], None],
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._me, self._keys, self._store, self._clock = me, keys, store, clock
        self._port, self._policy = port, policy
        self._state, self._epoch, self._may_act, self._adopt = state, epoch, may_act, adopt
        self._wall_clock = wall_clock
        self.book = RepairBook(me=me, group=keys.group, repair_after_s=repair_after_s)
        """Who is gone and what was asked (read-only use)."""
        self._grant = 0  # the epoch the book is about
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._records: dict[str, RepairRecord] = {}

    def turn(self) -> None:
        """After a decision that left this member active: note who is gone or back, and make
        sure the timer runs."""
        if not self._may_act():
            return
        if self._grant != self._epoch():
            self.book.clear()
            self._grant = 0
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"{self._me}-repairs")
            self._adopt(self._task)
        self._wake.set()

    async def _run(self) -> None:
        try:
            await self._loop()
        except Exception:  # a bug here must not reach the member's loop
            log.exception("%s: the repair duty failed; it starts again at the next decision",
                          self._me)
            self.book.clear()
            self._grant = 0

    async def _loop(self) -> None:
        while self._may_act():
            self._wake.clear()
            if self._grant != self._epoch():
                self.book.clear()
                await self._learn()
            now = self._clock.monotonic()
            gone, back = self.book.observe(set(self._state().members), now)
            for m in gone:
                log.info("%s: member %s is gone (no record): its repair is asked after %g s "
                         "unless it stopped cleanly", self._me, m, self.book.repair_after_s)
            for m in back:
                await self._forget(m)
            for m in self.book.due(now):
                if not await self._look(m):
                    return
            due = self.book.next_due()
            with contextlib.suppress(TimeoutError):
                if due is None:
                    await self._wake.wait()
                else:
                    await self._clock.wait_for(self._wake.wait(),
                                               max(0.0, due - self._clock.monotonic()))
        self.book.clear()
        self._grant = 0

    async def _learn(self) -> None:
        """A new grant: learn the group's members from their ladder keys (members gone before
        this member became active included)."""
        base = ladder_key(self._keys.prefix, self._keys.group, "")
        try:
            found = await self._store.range(base, prefix=True)
        except StoreError as e:
            log.warning("%s: the group's ladder keys not read (%s): only members seen from now "
                        "on are repaired", self._me, e)
        else:
            self.book.learn(kv.key[len(base):] for kv in found.kvs)
        self._grant = self._epoch()

    async def _look(self, member: str) -> bool:
        """Look at gone ``member`` (the book says what to do); False if this member is no
        longer the active the bridge knows."""
        now = self._clock.monotonic()
        try:
            life = await read_life(self._store, self._keys.prefix, self._keys.group, member)
        except (StoreError, LadderStateError) as e:
            log.warning("%s: the incarnation record of gone member %s not read (%s): looking "
                        "again later", self._me, member, e)
            self.book.answered(member, Outcome.UNREACHABLE, now)
            return True
        state = self._state()
        look = self.book.look(member, life, locked=member in state.locks,
                              paused=state.paused is not None, now=now)
        if look.step is Step.DROP:  # a clean stop is news to nobody; giving up is
            log.log(logging.INFO if life is not None and life.state is LifeState.STOPPED
                    else logging.WARNING, "%s: no repair of gone member %s: %s", self._me,
                    member, look.reason)
        if look.step is not Step.ASK:
            return True
        return await self._ask(look)

    async def _ask(self, look: Look) -> bool:
        epoch, member = self._epoch(), look.member
        fault = (f"member {member} of {self._keys.group} {look.reason}; the active {self._me} "
                 f"(epoch {epoch}) asks for its repair to restore redundancy")
        try:
            ticket = await self._port.escalate(look.key, fault, RepairAction.REBOOT, epoch,
                                               target_member=member,
                                               evacuation_policy=self._policy)
        except RepairInProgress as e:
            log.warning("%s: gone member %s is being repaired already: ticket %s owned by %s",
                        self._me, member, e.ticket, e.owner)
            outcome = Outcome.OPEN
        except StaleEpochRejected as e:
            log.warning("%s: no repair of %s: the bridge knows a newer active (%s)", self._me,
                        member, e)
            self.book.clear()
            return False
        except BridgeUnavailable as e:
            log.warning("%s: repair of gone member %s not asked: %s", self._me, member, e)
            outcome = Outcome.UNREACHABLE
        except NfviError as e:
            log.warning("%s: the bridge refused the repair of gone member %s: %s", self._me,
                        member, e)
            outcome = Outcome.REFUSED
        else:
            outcome = Outcome.ENDED if ticket.state.terminal else Outcome.OPEN
            await self._record(look, ticket, epoch)
        self.book.answered(member, outcome, self._clock.monotonic())
        return True

    async def _record(self, look: Look, ticket: RepairTicket, epoch: int) -> None:
        """Log a ticket's news and keep it for ``vnfha status``."""
        record = RepairRecord(look.member, look.incarnation, look.attempt, ticket.ticket_id,
                              ticket.action.value, ticket.state.value, ticket.owner_name,
                              self._me, epoch, self._wall_clock())
        last = self._records.get(look.member)
        if last is not None and (last.ticket, last.state) == (record.ticket, record.state):
            return
        self._records[look.member] = record
        log.warning("%s: gone member %s (%s): ticket %s, %s by %s, %s: %s", self._me,
                    look.member, look.reason, ticket.ticket_id, ticket.action,
                    ticket.owner_name, ticket.state, ticket.detail)
        try:
            await self._store.put(self._key(look.member), record.encode())
        except StoreError as e:
            log.warning("%s: the repair record of %s not written: %s", self._me, look.member, e)

    async def _forget(self, member: str) -> None:
        """``member`` is back: its repair record goes."""
        if self._records.pop(member, None) is None:
            return
        log.warning("%s: member %s is back", self._me, member)
        with contextlib.suppress(StoreError):
            await self._store.delete(self._key(member))

    def _key(self, member: str) -> str:
        return repairs_prefix(self._keys.prefix, self._keys.group) + member
