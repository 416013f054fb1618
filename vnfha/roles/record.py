"""This member's record under ``members/{me}``: published when it changes, written back when
someone else deletes or overwrites it.

Guarantees:

- **Only changes are written.** :meth:`RecordKeeper.publish` puts the record, bound to the
  session's lease, only when it differs from the last one written, or when it was lost.
- **A lost record comes back.** :meth:`RecordKeeper.check`, called after every watch batch,
  notices a record deleted or overwritten by someone else (a careless ``etcdctl``) and asks for
  it to be written back: at once the first time, then at most once per ``rewrite_every_s``
  while it keeps happening, so two processes started under one name do not overwrite each
  other without end. Each case is one rate-limited warning naming the other writer's lease, pid
  and host.
- Our own puts are never taken for an overwrite: one the watch shows before the put returns,
  nor an earlier one the watch delivers after a later put has returned (the watch and the put's
  reply travel on different streams).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from vnfha._ratelog import RateLimitedLog
from vnfha.clock import Clock
from vnfha.errors import GroupConfigMismatch
from vnfha.roles.agreement import disagreements
from vnfha.roles.keys import GroupKeys, MemberRecord
from vnfha.store.base import Store

__all__ = ["RecordKeeper"]


class RecordKeeper:
    """The record of member ``me`` (see the module docstring). ``poke`` asks the role loop to
    publish again; ``adopt`` owns the delayed rewrite's task."""

    def __init__(self, *, me: str, keys: GroupKeys, store: Store, clock: Clock,
                 rewrite_every_s: float, warn: RateLimitedLog, poke: Callable[[], None],
                 adopt: Callable[[asyncio.Task[Any]], None],
                 settings: tuple[tuple[str, str], ...] = ()) -> None:
        self._me = me
        self._settings = settings
        self._keys = keys
        self._store = store
        self._clock = clock
        self._rewrite_every_s = rewrite_every_s
        self._warn = warn
        self._poke = poke
        self._adopt = adopt
        self.published: MemberRecord | None = None
        """The record last written (None before the first write of a session)."""
        self._recent: deque[MemberRecord] = deque(maxlen=8)
        """The records this session wrote last, the one being written included."""
        self._lost = False
        self._rewritten_at = -float("inf")
        self.joined_revision = 0
        """The revision of the session's first write (the N_WAY_ACTIVE epoch)."""

    def new_session(self) -> None:
        """A new lease: the next :meth:`publish` writes whatever it is given."""
        self.published = None
        self._recent.clear()

    async def publish(self, record: MemberRecord, lease: int) -> None:
        """Write ``record`` bound to ``lease`` if it changed or was lost."""
        if self._settings:
            record = replace(record, settings=self._settings)
        if record == self.published and not self._lost:
            return
        self._lost = False
        self._recent.append(record)
        res = await self._store.put(self._keys.member(self._me), record.encode(), lease=lease)
        if self.published is None:
            self.joined_revision = res.revision
        self.published = record

    def check_agreement(self, members: Mapping[str, tuple[MemberRecord, int]]) -> None:
        """GroupConfigMismatch for the first setting in which another member's record differs
        from this member's (:mod:`vnfha.roles.agreement`)."""
        others = {name: dict(rec.settings) for name, (rec, _) in members.items()
                  if name != self._me}
        found = disagreements(dict(self._settings), others)
        if found:
            d = found[0]
            raise GroupConfigMismatch(self._keys.group, d.field, d.mine, d.member, d.theirs)

    def check(self, found: tuple[MemberRecord, int] | None, lease: int) -> None:
        """Take in what the watch shows under our key (record and lease, or None): if it is
        not what we wrote, ask for it to be written back (see the module docstring)."""
        if self.published is None or self._lost:
            return
        if found is not None and found[1] == lease and found[0] in self._recent:
            return
        what = "deleted" if found is None else \
            f"overwritten (lease {found[1]:x}, pid {found[0].pid}, host {found[0].host!r})"
        now = self._clock.monotonic()
        wait = self._rewritten_at + self._rewrite_every_s - now
        self._lost = True
        self._warn(what, "%s: our member record was %s; writing it back%s", self._me, what,
                   f" in {wait:.1f} s" if wait > 0 else "")
        if wait <= 0:
            self._rewritten_at = now
            return

        async def later() -> None:
            await self._clock.sleep(wait)
            self._rewritten_at = self._clock.monotonic()
            self._poke()

        self._adopt(asyncio.create_task(later(), name=f"{self._me}-record"))
