"""PURE: the highest epoch the bridge has seen per group, and the verdict on a request's epoch.

An epoch is the etcd revision at which a member was granted ACTIVE; grants only grow. The
bridge accepts a request whose epoch is at least the highest it has seen for the group (and
raises its record to it), and refuses a lower one: that member's grant has been superseded, so
it must not act on the NFVI any more (invariant I1: receivers never accept a lower epoch).

A bridge started with a state file (``vnfha bridge serve --state-file``) saves the table after
every rise (:attr:`EpochVerdict.raised`), before the request goes on, and starts from the saved
table (:meth:`EpochTable.snapshot`, ``EpochTable(highest)``): a deposed active stays refused across
a restart. Without one the table lives in memory only: a restarted bridge starts empty and learns
the current epoch from the first request of the current active (or of a standby fencing it), so
until then a stale epoch is accepted. No asyncio, grpc or time here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["EpochTable", "EpochVerdict"]


@dataclass(frozen=True, slots=True)
class EpochVerdict:
    """The decision on one request's ``epoch`` in ``group``. ``highest`` is the group's highest
    epoch after the decision; ``raised`` is True when the decision raised it (the record
    changed); ``reason`` says why, naming both epochs when refused."""

    group: str
    epoch: int
    accepted: bool
    highest: int
    reason: str
    raised: bool = False


class EpochTable:
    """Highest epoch per group. Invariant: ``highest(g)`` never decreases."""

    def __init__(self, highest: Mapping[str, int] | None = None) -> None:
        """Start from ``highest`` (group -> epoch, e.g. a saved :meth:`snapshot`) or empty."""
        self._highest: dict[str, int] = dict(highest or {})

    def snapshot(self) -> dict[str, int]:
        """Every group's highest epoch (a copy)."""
        return dict(self._highest)

    def highest(self, group: str) -> int:
        """The highest epoch accepted for ``group`` (0 if none yet)."""
        return self._highest.get(group, 0)

    def check(self, group: str, epoch: int) -> EpochVerdict:
        """Accept ``epoch`` (and remember it) if it is at least the group's highest; refuse it
        otherwise. Never lowers the record."""
        highest = self.highest(group)
        if epoch < highest:
            return EpochVerdict(group, epoch, False, highest,
                                f"epoch {epoch} is stale: group {group!r} is at epoch {highest}")
        self._highest[group] = epoch
        reason = "current epoch" if epoch == highest else f"new epoch (was {highest})"
        return EpochVerdict(group, epoch, True, epoch, reason, raised=epoch > highest)
