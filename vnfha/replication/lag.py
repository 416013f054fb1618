"""How far each standby is behind the active: entries and seconds. PURE.

The active stamps every sequence of its epoch with the (monotonic) time it was written; a
standby's lag is then

- **entries**: the active's last sequence minus the last sequence the standby acknowledged;
- **seconds**: how long ago the oldest change it has not acknowledged was written (0 when it
  has them all). This is the age of its oldest missing write, not a guess from rates: a standby
  that stopped acknowledging 2 s ago shows 2 s even when the active wrote nothing since.

Guarantees:

- :class:`WriteStamps` keeps at most ``capacity`` stamps (the active's bounded log, whose
  limit is ``checkpoint_max_backlog_entries``): memory stays bounded. For a standby behind the
  oldest stamp kept, the seconds are those of the oldest stamp, a lower bound; such a standby
  gets a snapshot anyway.
- Stamps are taken in order: a sequence that is not the next one is refused (ValueError), so a
  lag can never be computed against the wrong write.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

__all__ = ["Lag", "WriteStamps"]


@dataclass(frozen=True, slots=True)
class Lag:
    """One standby's distance behind the active."""

    entries: int
    """Changes of this epoch the active wrote and the standby has not acknowledged."""
    seconds: float
    """Age of the oldest of them (0.0 when there is none)."""


class WriteStamps:
    """The write time of each of the last ``capacity`` sequences of one epoch."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._times: collections.deque[float] = collections.deque(maxlen=capacity)
        self._last = 0  # the last sequence stamped; sequences of an epoch start at 1

    @property
    def last(self) -> int:
        """The last sequence stamped (0 before the first)."""
        return self._last

    def stamp(self, sequence: int, now: float) -> None:
        """Record that ``sequence`` (the next one) was written at ``now``."""
        if sequence != self._last + 1:
            raise ValueError(f"sequence {sequence} stamped after {self._last}: not the next one")
        self._times.append(now)
        self._last = sequence

    def lag(self, acknowledged: int, now: float) -> Lag:
        """The lag of a standby that acknowledged up to ``acknowledged`` (0: nothing yet)."""
        entries = self._last - max(0, acknowledged)
        if entries <= 0 or not self._times:
            return Lag(0, 0.0)
        first_kept = self._last - len(self._times) + 1
        index = max(0, acknowledged + 1 - first_kept)
        return Lag(entries, max(0.0, now - self._times[index]))
