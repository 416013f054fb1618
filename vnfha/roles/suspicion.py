"""PURE: when a standby suspects that the active has gone silent (k-of-n, with hysteresis).

The standby samples its replication stream once per heartbeat interval (a *slot*): a slot is
*heard* if any message (delta, snapshot, heartbeat) arrived during it, *missed* otherwise. The
active sends something at least every heartbeat interval, so a healthy link misses no slot.

==========  ==========================================================  =====================
state       entered when                                                left when
==========  ==========================================================  =====================
TRUSTED     start; or ``recover_after`` consecutive heard slots          ``k`` of the last
            while SUSPECTED                                             ``n`` slots missed,
                                                                        the latest included
SUSPECTED   as above                                                    ``recover_after``
                                                                        heard slots in a row
==========  ==========================================================  =====================

Why k-of-n and not "k in a row": over TCP, packet loss shows up as stalls followed by bursts
(a retransmission delivers everything queued behind the lost segment at once). A link that
delivers two bursts in ``n`` slots is not healthy enough to count on, yet "k in a row" would
never fire on it; and a link that stalls once for a retransmission timeout is, so ``k`` is the
suspicion threshold in slots (300 ms / 50 ms = 6 by default) and ``n`` leaves room for a burst
or two (``k + k // 2``). Why hysteresis: once suspected, one lucky message must not clear the
suspicion while the standby is already proving the active can no longer act; ``recover_after``
heard slots in a row do.

What SUSPECTED permits is decided elsewhere: it is never by itself a reason to take over. It
starts the work that *proves* the active can no longer act (fencing through the NFVI bridge,
or watching its lease run out: :mod:`vnfha.roles.expiry`).

Guarantees (tested table-driven and with hypothesis):

- A silent stream is suspected after exactly ``k`` missed slots (``k * heartbeat``, the
  configured ``suspicion_s``), never fewer.
- Fewer than ``k`` misses in any ``n`` consecutive slots never cause suspicion.
- Once suspected, only ``recover_after`` heard slots in a row restore trust.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["SilenceDetector", "Suspicion", "SuspicionPolicy"]


class Suspicion(enum.StrEnum):
    """What the standby thinks of the active's liveness."""

    TRUSTED = "trusted"
    SUSPECTED = "suspected"


@dataclass(frozen=True, slots=True)
class SuspicionPolicy:
    """``k`` misses within the last ``n`` slots to suspect; ``recover_after`` heard slots in a
    row to trust again. Build it from the timers with :meth:`from_timers`."""

    k: int
    n: int
    recover_after: int

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k={self.k}: at least one missed slot is needed to suspect")
        if self.n < self.k:
            raise ValueError(f"n={self.n} must be >= k={self.k}")
        if self.recover_after < 1:
            raise ValueError(f"recover_after={self.recover_after} must be >= 1")

    @classmethod
    def from_timers(cls, heartbeat_interval_s: float, suspicion_s: float) -> SuspicionPolicy:
        """``k = suspicion_s / heartbeat`` (rounded up), ``n = k + k // 2``, recovery after
        ``max(2, k // 2)`` heard slots."""
        k = max(1, math.ceil(round(suspicion_s / heartbeat_interval_s, 9)))
        return cls(k=k, n=k + k // 2, recover_after=max(2, k // 2))


@dataclass(slots=True)
class SilenceDetector:
    """Feed it one :meth:`slot` per heartbeat interval; it says TRUSTED or SUSPECTED.

    The state is small and owned by one standby's monitor task; it is mutable for speed (one
    call per 50 ms), but every input is a plain bool and nothing here reads a clock.
    """

    policy: SuspicionPolicy
    state: Suspicion = Suspicion.TRUSTED
    reason: str = "no silence observed"
    _window: deque[bool] = field(default_factory=deque)
    _heard_run: int = 0
    _silent_run: int = 0

    def slot(self, heard: bool) -> Suspicion:
        """Record one slot (``heard``: something arrived during it); returns the new state."""
        self._window.append(heard)
        if len(self._window) > self.policy.n:
            self._window.popleft()
        self._heard_run = self._heard_run + 1 if heard else 0
        self._silent_run = 0 if heard else self._silent_run + 1
        misses = sum(1 for h in self._window if not h)
        p = self.policy
        if self.state is Suspicion.TRUSTED and not heard and misses >= p.k:
            self.state = Suspicion.SUSPECTED
            self.reason = (f"{misses} of the last {len(self._window)} heartbeat slots missed "
                           f"({self._silent_run} in a row)")
        elif self.state is Suspicion.SUSPECTED and self._heard_run >= p.recover_after:
            self.state = Suspicion.TRUSTED
            self.reason = f"{self._heard_run} heartbeat slots heard in a row"
        return self.state

    def reset(self) -> None:
        """Forget everything (a new active, a new stream)."""
        self._window.clear()
        self._heard_run = self._silent_run = 0
        self.state = Suspicion.TRUSTED
        self.reason = "reset"
