"""What an active does between decisions besides acting: it answers an operator's switchover
request, it moves off a host whose planned maintenance is ahead, and, with a bridge, it asks for
the repair of members gone without a clean stop (:mod:`vnfha.roles.repair`).

Guarantees:

- **Each switchover request is answered once**: by a handover to the requested (or the best)
  eligible standby, or by a refusal written in the same transaction that consumes the request,
  saying why (``vnfha switchover`` prints it).
- **A maintenance moves the active in time, once**: while a planned maintenance of this
  member's host is ahead, the active hands over to the best eligible standby that is not on
  that host, as soon as there is one (a standby on the same host would only have to hand
  back). It is checked after every decision, so a member that becomes active, or gets an
  eligible standby, after the announcement still moves; one handover at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from vnfha.clock import Clock
from vnfha.errors import NotActive, StoreError, SwitchoverError
from vnfha.nfvi.agent import NfviAgent
from vnfha.roles.handover import best_target, choose_target, failing_target, refusal_ops
from vnfha.roles.keys import GroupKeys, SwitchoverRequest
from vnfha.roles.policy import GroupView
from vnfha.roles.repair import RepairDuty
from vnfha.roles.watch import GroupWatch
from vnfha.store.base import Store

__all__ = ["ActiveDuties", "pick_target"]

log = logging.getLogger("vnfha.member")

Resign = Callable[[str | None, str, SwitchoverRequest | None], Awaitable[object]]



def pick_target(view: GroupView, to: str | None, group: str, *, force: bool = False) -> str:
    """:func:`~vnfha.roles.handover.choose_target`, with a warning in the log when the target's
    health checks are failing (no healthy eligible member was left, or ``force``)."""
    target = choose_target(view, to, group, force=force)
    if warning := failing_target(view, target):
        log.warning("%s: %s", view.me, warning)
    return target

class ActiveDuties:
    """The duties of member ``me`` while it is active (see the module docstring).
    ``view`` is the group as the active sees it, ``epoch`` its epoch; ``resign`` hands over for
    a request, ``switchover`` for a maintenance; ``may_move`` says whether a maintenance may
    move it now (active and not stopping) and so whether it may ask for repairs; ``adopt``
    owns the handover's and the repairs' tasks. :attr:`repairs` is the repair duty, with a
    bridge whose agent has ``repair_after_s`` set (None otherwise)."""

    def __init__(self, *, me: str, group: str, keys: GroupKeys, store: Store, watch: GroupWatch,
                 nfvi: NfviAgent | None, view: Callable[[], GroupView],
                 epoch: Callable[[], int], resign: Resign,
                 switchover: Callable[[str], Awaitable[object]], may_move: Callable[[], bool],
                 adopt: Callable[[asyncio.Task[Any]], None], clock: Clock) -> None:
        self._me, self._group, self._keys, self._store = me, group, keys, store
        self._watch, self._nfvi, self._view, self._epoch = watch, nfvi, view, epoch
        self._resign, self._switchover, self._adopt = resign, switchover, adopt
        self._may_move = may_move
        self._handled: set[str] = set()
        self._moving: asyncio.Task[None] | None = None
        after = None if nfvi is None else nfvi.settings.repair_after_s
        self.repairs = None if nfvi is None or after is None else RepairDuty(
            me=me, keys=keys, store=store, clock=clock, port=nfvi.port, repair_after_s=after,
            policy=nfvi.settings.placement_policy, state=lambda: watch.state, epoch=epoch,
            may_act=may_move, adopt=adopt)

    async def turn(self) -> None:
        """After a decision that left this member active."""
        view = self._view()
        if view.me_locked and not view.paused:
            await self._leave_for_lock(view)
            return
        await self._serve_request()
        self._serve_maintenance()
        if self.repairs is not None:
            self.repairs.turn()

    async def _leave_for_lock(self, view: GroupView) -> None:
        """Locked by an operator while active: hand over as a switchover does, to the best
        eligible standby; with none (a forced lock), release the key and leave the group
        without an active until a member is unlocked. In a paused group this waits for the
        pause to end (a pause allows no switchover)."""
        target = best_target(view)
        if target is None:
            log.warning("%s: locked by an operator and no eligible member can take over: "
                        "releasing the active role; the group has no active until one is "
                        "unlocked", self._me)
        await self._resign(target, "locked by an operator" +
                           (f": handing over to {target}" if target else ""), None)

    async def _serve_request(self) -> None:
        request = self._watch.state.switchover
        if request is None or request.id in self._handled:
            return
        self._handled.add(request.id)
        try:
            target = pick_target(self._view(), request.to, self._group, force=request.force)
        except SwitchoverError as e:
            await self._store.txn([], refusal_ops(self._keys, request, e.problem, self._me,
                                                  self._epoch()))
            log.warning("%s: refused switchover request %s: %s", self._me, request.id, e)
            return
        await self._resign(target, f"switchover to {target} requested by an operator", request)

    def _serve_maintenance(self) -> None:
        if self._nfvi is None or not self._may_move() or \
                (self._moving is not None and not self._moving.done()):
            return
        move = self._nfvi.maintenance_move(self._view())
        if move is None:
            return
        event, target = move

        async def hand_over() -> None:
            try:
                await self._switchover(target)
            except (SwitchoverError, NotActive, StoreError) as e:
                log.warning("%s: switchover to %s before the maintenance of %s failed: %s",
                            self._me, target, event.host, e)

        log.warning("%s: planned maintenance of %s (deadline %s): handing over to %s",
                    self._me, event.host, event.deadline_unix_s, target)
        self._moving = asyncio.create_task(hand_over(), name=f"{self._me}-maintenance")
        self._adopt(self._moving)
