"""Undo information for a rollback of a poisoned state (:mod:`vnfha.roles.poison`).

Every change applied to a member's checkpoint data (as a standby applying the active's
deltas, and as the active applying its own writes) is noted here first: when it was applied
(this member's wall clock), the key, and what the key held before (its old value, or None for
absent). A rollback to a cutoff time is then the set of compensating changes that give every
key touched since the cutoff its value from just before the cutoff.

Guarantees:

- **Bounded**: at most ``max_entries`` notes and ``max_bytes`` of keys and old values; the
  oldest go first, and :attr:`UndoLog.since` moves past them.
- **Honest coverage**: :attr:`UndoLog.since` is the earliest time from which every change
  applied to the data is noted. It starts at creation, moves forward when a bound drops notes,
  and to the present when the data is replaced wholesale (a snapshot) (:meth:`UndoLog.reset`).
  :meth:`UndoLog.plan` refuses (None) a cutoff before it, rather than undo part of a window.
- **Exact**: applying :meth:`UndoLog.plan`'s changes to the data gives, for every key, the
  value it had after every change noted before the cutoff and none after (tested with
  hypothesis). A write applied before the cutoff is never undone.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from vnfha.replication.state import Change

__all__ = ["NOTE_OVERHEAD_BYTES", "UndoLog"]

NOTE_OVERHEAD_BYTES = 64
"""What one note costs beyond its key and old value, as counted against ``max_bytes``."""


class UndoLog:
    """The undo notes of one member's checkpoint data (see the module docstring).
    ``wall`` is the wall clock (seconds since the Unix epoch)."""

    def __init__(self, *, max_entries: int, max_bytes: int,
                 wall: Callable[[], float] = time.time) -> None:
        self._notes: deque[tuple[float, str, str, bytes | None]] = deque()
        self._bytes = 0
        self._max_entries, self._max_bytes, self._wall = max_entries, max_bytes, wall
        self.since = wall()
        """From when every applied change is noted (see the module docstring)."""

    def __len__(self) -> int:
        return len(self._notes)

    @property
    def size(self) -> int:
        """What the notes count against ``max_bytes``."""
        return self._bytes

    def note(self, section: str, key: str, old: bytes | None) -> None:
        """``section``/``key`` is about to change; it holds ``old`` (None: absent)."""
        self._notes.append((self._wall(), section, key, old))
        self._bytes += _cost(section, key, old)
        while len(self._notes) > self._max_entries or self._bytes > self._max_bytes:
            at, s, k, v = self._notes.popleft()
            self._bytes -= _cost(s, k, v)
            # coverage now starts after the dropped note: a cutoff at or before it cannot
            # be restored any more
            self.since = max(self.since, at + 1e-6)

    def reset(self) -> None:
        """The data was replaced wholesale: nothing before now can be undone."""
        self._notes.clear()
        self._bytes = 0
        self.since = max(self.since, self._wall())

    def plan(self, cutoff: float) -> list[Change] | None:
        """The changes that undo everything applied at or after ``cutoff``, one per key in the
        order the keys were first changed; None if the notes do not reach back to ``cutoff``."""
        if cutoff < self.since:
            return None
        first: dict[tuple[str, str], bytes | None] = {}
        for at, section, key, old in self._notes:
            if at >= cutoff and (section, key) not in first:
                first[(section, key)] = old
        return [Change(section, key, old) for (section, key), old in first.items()]


def _cost(section: str, key: str, old: bytes | None) -> int:
    return len(section) + len(key) + (len(old) if old is not None else 0) + NOTE_OVERHEAD_BYTES
