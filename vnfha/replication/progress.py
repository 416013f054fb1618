"""The active's replication progress, sampled on a period: into its metrics and into etcd.

Every ``progress_interval_s`` while the member is the active, :class:`ProgressReporter` takes
each streaming standby's lag from the :class:`~vnfha.replication.active.Primary`
(:mod:`vnfha.replication.lag`: entries and seconds behind) and

- sets ``vnfha_checkpoint_lag_entries`` / ``vnfha_checkpoint_lag_seconds`` for it, dropping
  the series of a standby that stopped streaming;
- writes a :class:`~vnfha.roles.keys.ProgressRecord` (epoch, last sequence, each standby's lag)
  to ``{key_prefix}/.progress/{group}``, bound to the active's lease, for ``vnfha status`` --
  **only when what it says changes**: the epoch, the lease, which standbys stream, or whether
  each is caught up (its oldest unacknowledged change younger than :data:`CAUGHT_UP_S`; a
  caught-up standby is recorded as 0 entries, 0 s behind). While a standby is behind, the
  record is refreshed every interval. So a settled group, idle or busy with healthy standbys,
  writes nothing to etcd: its revision does not move, and a fleet of idle groups does not grow
  etcd's database.

Guarantees:

- Nothing here can disturb the member: a store error is logged (once per outage) and the next
  tick tries again; each write is bounded by ``etcd_request_timeout_s``.
- The record carries the epoch it was written in, and the key lives only as long as the
  writer's lease, so a reader can tell a stale record (a deposed active's last word) from the
  current one: ``vnfha status`` shows lag only from a record of the current epoch.
- A member that is not active writes nothing and keeps no lag series.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from vnfha.clock import Clock
from vnfha.errors import StoreError
from vnfha.metrics import Metrics
from vnfha.replication.active import Primary
from vnfha.roles.keys import GroupKeys, ProgressRecord
from vnfha.store.base import Store

__all__ = ["CAUGHT_UP_S", "ProgressReporter"]

CAUGHT_UP_S = 0.5
"""A standby whose oldest unacknowledged change is younger than this counts as caught up in the
record (it is acknowledging as it goes); the metrics keep the exact figures."""

log = logging.getLogger("vnfha.replication")


class ProgressReporter:
    """See the module docstring. ``primary()`` is the member's current Primary (None unless
    it is active); ``lease()`` its session lease."""

    def __init__(self, *, member: str, keys: GroupKeys, store: Store, metrics: Metrics,
                 clock: Clock, interval_s: float, timeout_s: float,
                 primary: Callable[[], Primary | None], lease: Callable[[], int]) -> None:
        self._member = member
        self._keys = keys
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._primary = primary
        self._lease = lease
        self._shown: set[str] = set()  # standbys with lag series in the metrics
        self._failing = False
        self._said: tuple[object, ...] | None = None  # what the last record written says
        self.published = 0
        """Records written so far."""

    async def run(self) -> None:
        """Sample and publish every interval, until cancelled."""
        while True:
            await self._clock.sleep(self._interval_s)
            await self.tick()

    async def tick(self) -> None:
        """One sample: metrics, then the record (when active)."""
        primary = self._primary()
        if primary is None or primary.closed:
            self._forget(set())
            return
        lag = primary.lag()
        for standby, behind in lag.items():
            self._metrics.checkpoint_lag(standby, behind.entries, behind.seconds)
        self._forget(set(lag))
        lease = self._lease()
        if lease == 0:  # not joined: a record without a lease would outlive this member
            return
        standbys = tuple((name, 0, 0.0) if b.seconds < CAUGHT_UP_S else
                         (name, b.entries, round(b.seconds, 6)) for name, b in lag.items())
        lagging = any(entries for _, entries, _ in standbys)
        says = (primary.epoch, lease, tuple((n, entries == 0) for n, entries, _ in standbys))
        if says == self._said and not lagging:
            return  # nothing new to say: no write
        record = ProgressRecord(self._member, primary.epoch, primary.log.last_sequence, standbys)
        try:
            await self._store.put(self._keys.progress, record.encode(), lease=lease,
                                  timeout_s=self._timeout_s)
        except StoreError as e:
            if not self._failing:
                log.warning("%s: publishing replication progress failed: %s (retried every "
                            "%g s)", self._member, e, self._interval_s)
            self._failing = True
            return
        self._failing = False
        self._said = says
        self.published += 1

    def _forget(self, streaming: set[str]) -> None:
        for standby in self._shown - streaming:
            self._metrics.standby_gone(standby)
        self._shown = streaming
