"""``member.checkpoint``: the VNF's replicated state (OpenSAF CKPT's role).

Sections of key -> bytes. Only the active writes; every member reads its own copy. Guarantees:

- ``put``/``delete`` on a member that is not ACTIVE, or whose epoch has ended (deposed, lease
  deadline passed), raise :class:`vnfha.NotActive` and change nothing.
- ``Ack.NONE`` returns once applied on the active. ``Ack.ONE`` once at least one standby that
  etcd lists as in sync has applied it, ``Ack.ALL`` once every such standby has. Only in-sync
  standbys may take over, so a write acknowledged with ONE/ALL survives a failover to one of
  them. With no standby in sync, ONE/ALL raise :class:`vnfha.AckTimeout` after
  ``checkpoint_ack_timeout_s`` (the write stays applied on the active) unless
  ``checkpoint_degrade_ack`` is set, which returns instead and counts it in ``degraded_acks``.
- Bad section names, empty keys and values over the limits raise ConfigError /
  CheckpointLimitError naming the limit, before anything is applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from vnfha.clock import Clock
from vnfha.errors import AckTimeout, CheckpointLimitError, ConfigError, NotActive
from vnfha.metrics import Metrics, WriteResult
from vnfha.model import Ack, Role
from vnfha.replication.active import Primary
from vnfha.replication.standby import Applied, Replica
from vnfha.replication.state import Change, CheckpointData, Limits

__all__ = ["AckPolicy", "Applied", "Checkpoint", "WriteGate"]

log = logging.getLogger("vnfha.checkpoint")

_YIELD_EVERY = 512
"""Ack.NONE writes the event loop may run without a turn of its own (see :meth:`_write`)."""


class WriteGate(Protocol):
    """What the checkpoint asks of its member before a write (``vnfha.Member`` is one)."""

    @property
    def name(self) -> str:
        """The member's name (for NotActive)."""
        ...

    @property
    def role(self) -> Role:
        """The member's role now (for NotActive)."""
        ...

    def check_active(self) -> int:
        """The epoch writes may be made in now, or NotActive."""
        ...

    def is_active(self) -> bool:
        """Whether the member still acts as the active (re-checked when an ack wait ends)."""
        ...


@dataclass(frozen=True, slots=True)
class AckPolicy:
    """How long ``Ack.ONE``/``ALL`` wait by default, and whether they return unprotected
    (``degrade``) instead of raising AckTimeout when no standby acknowledged in time."""

    timeout_s: float
    degrade: bool = False


class Checkpoint:
    """The member's checkpoint (see the module docstring). ``gate`` says whether this member
    may write now; the member promotes and demotes it with :meth:`promote` / :meth:`demote`."""

    def __init__(self, gate: WriteGate, replica: Replica, limits: Limits, *, acks: AckPolicy,
                 metrics: Metrics, clock: Clock) -> None:
        self._gate = gate
        self._acks = acks
        self._metrics = metrics
        self._clock = clock
        self._replica = replica
        self._data: CheckpointData = replica.data
        self._limits = limits
        self._primary: Primary | None = None
        self._unyielded = 0
        self._turn_pending = False
        self.degraded_acks = 0
        """ONE/ALL writes returned unprotected because ``checkpoint_degrade_ack`` is set."""

    # -- writes (active only) --------------------------------------------------------------------

    async def put(self, section: str, key: str, value: bytes, *, ack: Ack = Ack.NONE,
                  timeout_s: float | None = None) -> int:
        """Set ``section``/``key`` to ``value``; returns the write's sequence in this epoch."""
        if not isinstance(value, bytes):
            raise ConfigError("value", type(value).__name__, "must be bytes")
        return await self._write(Change(section, key, value), ack, timeout_s)

    async def delete(self, section: str, key: str, *, ack: Ack = Ack.NONE,
                     timeout_s: float | None = None) -> int:
        """Remove ``section``/``key`` (a no-op change if absent, still replicated)."""
        return await self._write(Change(section, key, None), ack, timeout_s)

    async def _write(self, change: Change, ack: Ack, timeout_s: float | None) -> int:
        """Apply ``change``; wait as ``ack`` asks.

        A burst of NONE writes never suspends on its own, and would starve the keepalives and
        the replication streams on the same loop. Once the loop has run ``_YIELD_EVERY`` of
        them (from any number of tasks) without a turn of its own, every NONE write yields
        until the loop has had that turn (everything that was ready ran). So a writer that
        yields waits for at most ``_YIELD_EVERY`` writes plus one from each other writer. (A
        count that reset at each yield let each of 32 writers run 1,024 writes before the
        yielding one resumed: one put in ~30,000 stalled 200-260 ms; issue 14.)
        """
        seq = self._apply(change, ack)
        if ack is not Ack.NONE:
            return await self._protect(seq, ack, timeout_s)
        if self._unyielded >= _YIELD_EVERY:
            if not self._turn_pending:
                self._turn_pending = True
                asyncio.get_running_loop().call_soon(self._loop_turned)
            await asyncio.sleep(0)
        return seq

    def _loop_turned(self) -> None:
        """Everything that was ready when a burst yielded has run: NONE writes go on."""
        self._unyielded = 0
        self._turn_pending = False

    def _apply(self, change: Change, ack: Ack) -> int:
        """Check ``change`` and that this member may write, then apply and log it; its
        sequence. Counts an Ack.NONE write as done (it is, once applied here)."""
        if not isinstance(ack, Ack):
            raise ConfigError("ack", ack, f"must be one of {', '.join(a.name for a in Ack)}")
        gate, metrics = self._gate, self._metrics
        try:
            epoch = gate.check_active()
        except NotActive:
            metrics.checkpoint_write(ack, WriteResult.NOT_ACTIVE)
            raise
        primary = self._primary
        if primary is None or primary.closed or primary.epoch != epoch:
            metrics.checkpoint_write(ack, WriteResult.NOT_ACTIVE)
            raise NotActive(gate.name, gate.role.value, epoch)
        try:
            self._data.check(change, self._limits)
        except (ConfigError, CheckpointLimitError):
            metrics.checkpoint_write(ack, WriteResult.REJECTED)
            raise
        seq = primary.write(change)
        if ack is Ack.NONE:
            metrics.checkpoint_write(ack, WriteResult.OK)
            self._unyielded += 1
        return seq

    async def _protect(self, seq: int, ack: Ack, timeout_s: float | None) -> int:
        """Wait until write ``seq`` (just applied by :meth:`_apply`) is protected as ``ack``
        asks; its sequence, or the error the module docstring names."""
        primary = self._primary
        assert primary is not None  # _apply checked it, and nothing ran since
        epoch = primary.epoch
        metrics, gate = self._metrics, self._gate
        timeout = timeout_s if timeout_s is not None else self._acks.timeout_s
        start = self._clock.monotonic()
        if await primary.wait_protected(seq, ack, timeout):
            metrics.checkpoint_write(ack, WriteResult.OK, self._clock.monotonic() - start)
            return seq
        if primary.closed or not gate.is_active():
            metrics.checkpoint_write(ack, WriteResult.NOT_ACTIVE)
            raise NotActive(gate.name, gate.role.value, epoch)
        if self._acks.degrade:
            self.degraded_acks += 1
            metrics.checkpoint_write(ack, WriteResult.DEGRADED)
            log.warning("checkpoint write %d/%d returned unprotected (ack=%s, in sync: %s)",
                        epoch, seq, ack.value, ", ".join(primary.in_sync) or "none")
            return seq
        metrics.checkpoint_write(ack, WriteResult.TIMEOUT)
        raise AckTimeout(ack.value, epoch, seq, timeout, primary.in_sync)

    # -- reads (any member) ----------------------------------------------------------------------

    def get(self, section: str, key: str) -> bytes | None:
        """This member's copy of ``section``/``key``, or None."""
        return self._data.get(section, key)

    def items(self, section: str) -> Iterator[tuple[str, bytes]]:
        """This member's copy of the section, as (key, value) pairs."""
        return self._data.items(section)

    def sections(self) -> list[str]:
        """The names of this member's non-empty sections, sorted."""
        return self._data.sections()

    def count(self, section: str) -> int:
        """How many keys this member's copy of ``section`` has."""
        return self._data.count(section)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def position(self) -> tuple[int, int]:
        """(epoch, sequence) of the last change in this member's copy."""
        if self._primary is not None and not self._primary.closed:
            return (self._primary.epoch, self._primary.log.last_sequence)
        return self._replica.applied

    @property
    def in_sync(self) -> tuple[str, ...]:
        """On the active: the standbys published as in sync (their acks count)."""
        return self._primary.in_sync if self._primary is not None else ()

    def track(self, callback: Callable[[Applied], None]) -> None:
        """On a standby, call ``callback(applied)`` after every batch of changes it applies
        (and after a snapshot replaced its state); synchronously, so keep it short."""
        self._replica.listeners.append(callback)

    # -- role changes (called by the member) -----------------------------------------------------

    @property
    def primary(self) -> Primary | None:
        """The active's replication of its current epoch (None unless this member is active,
        or quiesces for a handover)."""
        return self._primary

    def promote(self, primary: Primary) -> None:
        """This member became the active of ``primary.epoch``: writes go through it."""
        self._primary = primary

    def demote(self) -> None:
        """The epoch is over: close its Primary (every waiting write fails with NotActive) and
        keep its last position as this member's own. Idempotent."""
        primary, self._primary = self._primary, None
        if primary is not None:
            self._replica.applied = (primary.epoch, primary.log.last_sequence)
            self._replica.observe_epoch(primary.epoch)
            primary.close()
