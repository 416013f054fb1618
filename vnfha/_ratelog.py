"""A log line per kind of bad input, at most once per interval: what any peer can trigger must
not flood the VNF's own log.

:class:`RateLimitedLog` is used by every server vnfha runs (replication, grpc.health.v1, the NFVI
bridge) for refusals of malformed or hostile input. Guarantees:

- The first refusal of a ``kind`` is logged at once; later ones of that kind within
  ``interval_s`` are only counted, and the next line logged for the kind says how many were
  suppressed since the last one. So the log holds at most one line per kind per interval, however
  fast a peer sends, and no refusal goes uncounted.
- Kinds are bounded: past ``max_kinds`` distinct kinds, further ones share one bucket (a peer
  cannot grow the table by inventing kinds).
- The clock is injected (``monotonic``), so the limit is tested on a fake clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]

_OVERFLOW = "(other)"


class RateLimitedLog:
    """At most one line per ``kind`` every ``interval_s`` on ``logger`` (see the module)."""

    def __init__(self, logger: logging.Logger, *, interval_s: float = 10.0,
                 level: int = logging.INFO, max_kinds: int = 64,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s={interval_s!r} must be > 0")
        self._logger = logger
        self._interval_s = interval_s
        self._level = level
        self._max_kinds = max_kinds
        self._monotonic = monotonic
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        """Every refusal seen, logged or not, per kind."""

    def __call__(self, kind: str, message: str, *args: object) -> bool:
        """Count one refusal of ``kind``; log ``message % args`` unless one of its kind was
        logged within the interval. True if it was logged."""
        if kind not in self._last and len(self._last) >= self._max_kinds:
            kind = _OVERFLOW
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = self._monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        self._last[kind] = now
        suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            if not args:  # the message was not a format until now: its own '%' are literal
                message = message.replace("%", "%%")
            message += " (and %d more like it suppressed in the last %g s)"
            args = (*args, suppressed, self._interval_s)
        self._logger.log(self._level, message, *args)
        return True
