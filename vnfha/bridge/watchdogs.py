"""PURE: the bridge's watchdog timers, one per instance, on a time base the caller passes in.

The bridge keeps the watchdogs (not the drivers): a timer armed with ``timeout_s`` and an
action expires ``timeout_s`` after the last arm or kick. The async server asks
:meth:`WatchdogTable.next_deadline` when to wake up, and :meth:`WatchdogTable.expire` which
watchdogs have expired; it then performs each one's action on the driver. An expired watchdog is
removed (it is one-shot, like a hardware watchdog after it reset the machine): the instance
must be armed again once it is back.

Invariants: at most one watchdog per instance; :meth:`expire` returns exactly the watchdogs whose
deadline is at or before ``now``, in deadline order, and each only once. No asyncio or time here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vnfha.nfvi.model import WatchdogAction

__all__ = ["Armed", "WatchdogTable"]


@dataclass(frozen=True, slots=True)
class Armed:
    """An armed watchdog: ``instance`` (of ``group``/``member``, armed in ``epoch``) expires at
    ``deadline`` (the caller's monotonic seconds) unless kicked."""

    instance: str
    group: str
    member: str
    epoch: int
    timeout_s: float
    action: WatchdogAction
    deadline: float

    def remaining_s(self, now: float) -> float:
        """Seconds left before expiry (never negative)."""
        return max(0.0, self.deadline - now)


class WatchdogTable:
    """Every armed watchdog, by instance."""

    def __init__(self) -> None:
        self._armed: dict[str, Armed] = {}

    def get(self, instance: str) -> Armed | None:
        """The instance's watchdog, or None when it is not armed."""
        return self._armed.get(instance)

    def arm(self, instance: str, *, group: str, member: str, epoch: int, timeout_s: float,
            action: WatchdogAction, now: float) -> Armed:
        """Arm (or re-arm with new settings): it expires at ``now + timeout_s``."""
        if timeout_s <= 0:
            raise ValueError(f"watchdog timeout_s={timeout_s}: must be > 0")
        armed = Armed(instance, group, member, epoch, timeout_s, action, now + timeout_s)
        self._armed[instance] = armed
        return armed

    def kick(self, instance: str, *, epoch: int, now: float) -> Armed | None:
        """Push the deadline to ``now + timeout_s``; None when the watchdog is not armed."""
        armed = self._armed.get(instance)
        if armed is None:
            return None
        kicked = replace(armed, epoch=max(epoch, armed.epoch), deadline=now + armed.timeout_s)
        self._armed[instance] = kicked
        return kicked

    def disarm(self, instance: str) -> Armed | None:
        """Remove the instance's watchdog; returns it, or None if none was armed."""
        return self._armed.pop(instance, None)

    def next_deadline(self) -> float | None:
        """The earliest deadline of any armed watchdog, or None when none is armed."""
        return min((a.deadline for a in self._armed.values()), default=None)

    def expire(self, now: float) -> list[Armed]:
        """Remove and return every watchdog whose deadline is at or before ``now``, earliest
        first."""
        due = sorted((a for a in self._armed.values() if a.deadline <= now),
                     key=lambda a: (a.deadline, a.instance))
        for armed in due:
            del self._armed[armed.instance]
        return due

    def __len__(self) -> int:
        return len(self._armed)
