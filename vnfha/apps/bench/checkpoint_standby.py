"""The standby of ``vnfha bench checkpoint`` in a process of its own, as a deployment runs it:

    python -m vnfha.apps.bench.checkpoint_standby --etcd H:P[,H:P...] --group G --member b

A whole :class:`vnfha.Member` that joins group ``G`` once the benchmark's active holds it, and
so becomes its standby. It talks to the benchmark over its standard streams, one JSON object a
line:

- prints ``{"event": "standby"}`` once it is a standby;
- on ``{"until": [epoch, sequence]}`` read from stdin, prints ``{"event": "applied",
  "position": [epoch, sequence], "digest": HEX}`` as soon as it has applied that position (the
  wake-up comes from its tracking callback, so it is exact): ``digest`` is
  :func:`section_digest` of the section the benchmark writes, to compare with the active's;
- stops cleanly (its lease revoked) at the end of its input, then prints
  ``{"event": "stopped"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from vnfha.config import Config
from vnfha.member import Member
from vnfha.model import Role

SECTION = "bench"
"""The section the benchmark writes."""


def section_digest(items: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over a section's (key, value) pairs in key order: equal on two members exactly
    when their copies of the section are."""
    h = hashlib.sha256()
    for key, value in sorted(items):
        h.update(f"{len(key)}:{key}{len(value)}:".encode())
        h.update(value)
    return h.hexdigest()


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout, flushed."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class Applied:
    """Wakes a waiter once the member has applied a position (through one tracking callback,
    registered once)."""

    def __init__(self, member: Member) -> None:
        self._member = member
        self._target = (0, 0)
        self._done = asyncio.Event()
        member.checkpoint.track(self._check)

    def _check(self, _: object) -> None:
        if self._member.checkpoint.position >= self._target:
            self._done.set()

    async def wait(self, position: tuple[int, int]) -> None:
        """Return once the member has applied ``position``."""
        self._target = position
        self._done.clear()
        self._check(None)
        await self._done.wait()


async def run(config: Config) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with Member(config) as member:
        await member.wait_for_role(Role.STANDBY, config.lease_ttl_s * 10)
        emit("standby")
        waiter = Applied(member)
        while line := await reader.readline():
            epoch, sequence = json.loads(line)["until"]
            await waiter.wait((epoch, sequence))
            emit("applied", position=list(member.checkpoint.position),
                 digest=section_digest(member.checkpoint.items(SECTION)))
    emit("stopped")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m vnfha.apps.bench.checkpoint_standby")
    p.add_argument("--etcd", required=True, help="comma-separated endpoints")
    p.add_argument("--group", required=True)
    p.add_argument("--member", required=True)
    args = p.parse_args(argv)
    asyncio.run(run(Config(group=args.group, member=args.member,
                           etcd_endpoints=tuple(args.etcd.split(",")))))


if __name__ == "__main__":
    main()
