"""A fault in, a stored decision out: the runtime glue around the pure ladder.

:class:`LadderRunner` takes a :class:`~vnfha.health.ladder.Fault` and the member's situation,
reads the ladder history (from the store once per process, then from memory), calls
:func:`vnfha.health.ladder.decide`, stores the new history and returns the
:class:`~vnfha.health.ladder.Decision` for the member to execute. It executes nothing itself.

Guarantees:

- **Stored before returned.** The new history is written before the decision is returned, so
  a member that dies while executing a decision (a restart that crashes the process) finds the
  use counted when it comes back.
- **A store outage never blocks a recovery.** If the store cannot be read or written, the
  decision is still made from what the runner knows, and the failure is logged and counted
  (:attr:`LadderRunner.store_failures`). Nothing is lost:

  - only this member writes its key, so once the runner has read it, its memory is a superset
    of the store and every later write carries the whole history (a failed write is simply
    superseded by the next one);
  - until the first successful read, nothing is written (counters that were not read are never
    overwritten), and the decisions made meanwhile are replayed onto the stored history when it
    is read (:func:`~vnfha.health.ladder.replay`), at most :data:`MAX_UNREAD` of them.

  Unreadable stored bytes are logged and replaced by the runner's history.
- **One decision at a time.** Calls are serialized, so two faults never read the same history.
- **Every decision is logged with its reason verbatim and counted** by (action, rung) in
  :attr:`LadderRunner.decisions`.
- **Incarnations** (:mod:`vnfha.health.incarnation`): every write carries the member's
  incarnation record as this runner knows it. :meth:`LadderRunner.begin` counts the previous
  incarnation's end and records the new one, in memory only once the store has the write (so
  a retry after a failed write counts the same things, once); :meth:`LadderRunner.mark` records
  a clean stop or a repair of the member's own instance, and only after :meth:`begin`: an
  incarnation that never recorded its start never overwrites its predecessor's record.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from vnfha.clock import Clock
from vnfha.errors import LadderStateError, StoreError, StoreUnavailable
from vnfha.health.counters import LadderCounters
from vnfha.health.incarnation import Failover, Life, LifeState, Start, begin
from vnfha.health.ladder import (
    Action,
    Decision,
    Fault,
    LadderHistory,
    LadderPolicy,
    Rung,
    decide,
    replay,
)
from vnfha.model import Role

__all__ = ["MAX_UNREAD", "LadderRunner"]

log = logging.getLogger("vnfha.health")

MAX_UNREAD: Final = 1000
"""Decisions kept for replay while the stored history cannot be read (the oldest are dropped)."""


class LadderRunner:
    """Decides on faults for one member and keeps its ladder counters (see the module).

    ``clock`` gives the monotonic time decisions are made on; ``wall_clock`` the Unix time the
    stored counters are stamped with (to carry them across a restart); ``name`` prefixes the
    log lines.
    """

    def __init__(self, counters: LadderCounters, policy: LadderPolicy, clock: Clock, *,
                 wall_clock: Callable[[], float] = time.time, name: str = "") -> None:
        self._counters = counters
        self._policy = policy
        self._clock = clock
        self._wall = wall_clock
        self._name = name or counters.key
        self._lock = asyncio.Lock()
        self._history = LadderHistory()
        self._life = Life()
        self._begun = False  # begin() stored this incarnation's start
        self._read = False  # the stored history has been read (and merged) in this process
        self._unread: collections.deque[tuple[float, Rung | None]] = collections.deque(
            maxlen=MAX_UNREAD)
        self.decisions: collections.Counter[tuple[Action, Rung | None]] = collections.Counter()
        """How many decisions were made, by (action, rung)."""
        self.store_failures = 0
        """How many reads or writes of the counters failed (the decision was made anyway)."""

    @property
    def history(self) -> LadderHistory:
        """The ladder history as this runner knows it (empty before the first fault)."""
        return self._history

    @property
    def life(self) -> Life:
        """The incarnation record as this runner knows it (the stored one once read)."""
        return self._life

    async def _catch_up(self, now: float, wall: float) -> None:
        """Read the stored history once and replay the decisions made before onto it."""
        life: Life | None = None
        try:
            stored, life = await self._counters.read(now, wall)
        except LadderStateError as e:
            log.warning("%s: %s; replacing them", self._name, e)
            stored = LadderHistory()
        except StoreError as e:
            self.store_failures += 1
            log.warning("%s: ladder counters not read (%s); deciding from what is known",
                        self._name, e)
            return
        self._history = replay(self._policy, stored, self._unread)
        self._life = life or Life()
        self._unread.clear()
        self._read = True

    async def _save(self, now: float, wall: float) -> None:
        try:
            await self._counters.save(self._history, now, wall, self._life)
        except StoreError as e:
            self.store_failures += 1
            log.warning("%s: ladder counters not saved (%s); the next decision writes them",
                        self._name, e)

    async def handle(self, fault: Fault, *, role: Role, has_bridge: bool,
                     open_repair: str | None = None, standby_ready: bool = True) -> Decision:
        """Decide the recovery for ``fault`` (arguments as in :func:`~vnfha.health.ladder.decide`),
        store the new history, log and count the decision, and return it."""
        async with self._lock:
            now, wall = self._clock.monotonic(), self._wall()
            if not self._read:
                await self._catch_up(now, wall)
            decision = decide(self._policy, self._history, fault, now, role=role,
                              has_bridge=has_bridge, open_repair=open_repair,
                              standby_ready=standby_ready)
            self._history = decision.history
            if self._read:
                await self._save(now, wall)
            else:
                self._unread.append((now, decision.rung if decision.attempt else None))
            self.decisions[decision.action, decision.rung] += 1
            log.warning("%s: ladder: %s", self._name, decision.reason)
            return decision

    async def begin(self, failovers: list[Failover], *, role: Role, has_bridge: bool,
                    standby_ready: bool) -> Start:
        """Count what ended the previous incarnation and record this one's start
        (:func:`vnfha.health.incarnation.begin`; ``failovers``: the history records naming
        this member as the old active); log and count its decision. Raises StoreError (nothing
        is counted then: call again) if the counters cannot be read or the write fails."""
        async with self._lock:
            now, wall = self._clock.monotonic(), self._wall()
            if not self._read:
                await self._catch_up(now, wall)
                if not self._read:
                    raise StoreUnavailable(f"{self._name}: ladder counters not read")
            if self._begun:
                raise RuntimeError(f"{self._name}: this incarnation has begun already")
            start = begin(self._policy, self._history, self._life, failovers, now=now,
                          wall_now=wall, member=self._name, role=role, has_bridge=has_bridge,
                          standby_ready=standby_ready)
            await self._counters.save(start.history, now, wall, start.life)  # before memory
            self._history, self._life, self._begun = start.history, start.life, True
            if start.decision is not None:
                d = start.decision
                self.decisions[d.action, d.rung] += 1
            log.warning("%s: ladder: %s", self._name, start.reason)
            return start

    async def mark(self, state: LifeState) -> bool:
        """Record that this incarnation is ``state`` now (STOPPED at a clean stop, REPAIRING
        before it asks the NFVI to repair its own instance, RUNNING again when that repair
        ended and it still runs). Only after :meth:`begin`; a failed write is logged. True if
        it was stored."""
        async with self._lock:
            if not self._begun or self._life.state is state:
                return self._begun
            self._life = replace(self._life, state=state)
            now, wall = self._clock.monotonic(), self._wall()
            failures = self.store_failures
            await self._save(now, wall)
            return self.store_failures == failures
