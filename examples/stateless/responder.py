"""A stateless "DNS-like" responder with vnfha's N-way-active model: every member serves, all on
one shared UDP port, and the kernel spreads the load between them.

    python examples/stateless/responder.py --member a --port 5500
    python examples/stateless/responder.py --member b --port 5500
    python examples/stateless/responder.py --member c --port 5500

A query is one datagram holding a name (``www.example.test``); the answer is
``<name> A <address> <member>``. The address is a pure function of the name, so every member
gives the same one and nothing needs to be shared or checkpointed; the member's name is there
only to show who answered.

Guarantees (what to copy into your own VNF):

- **Every member with a session is active** (``Redundancy.N_WAY_ACTIVE``), and serves while it
  is: it binds the shared port with SO_REUSEPORT in ``on_active`` and closes it in
  ``on_standby`` (its session was lost: it stops until it has rejoined) and ``on_quiesce``;
  ``member.is_active()`` is checked before every answer.
- **Load sharing by the kernel.** Linux hashes each client address and port to one of the
  sockets bound to the port. When a member dies its socket goes with it, and its clients are
  hashed to the members left; no failover is needed and no query is lost beyond the ones in
  flight, which clients retry.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import signal
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

import vnfha

GROUP = "resolver"
"""The default group name."""

NETWORK = ipaddress.IPv4Network("198.51.100.0/24")
"""Where answers come from (TEST-NET-2: documentation addresses)."""

MAX_NAME_BYTES = 253
"""Longest name answered (as in DNS)."""

Report = Callable[..., None]


def resolve(name: str) -> str:
    """The address of ``name``: the same on every member, every time."""
    host = 1 + zlib.crc32(name.lower().encode()) % (NETWORK.num_addresses - 2)
    return str(NETWORK[host])


def answer(query: bytes, member: str) -> bytes | None:
    """The answer datagram to ``query``; None for a malformed one (dropped)."""
    try:
        name = query.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    if not name or len(name) > MAX_NAME_BYTES or not all(c.isalnum() or c in "-." for c in name):
        return None
    return f"{name} A {resolve(name)} {member}".encode()


class Responder(vnfha.Component, asyncio.DatagramProtocol):
    """The responder: a vnfha component and the protocol of its socket. Set :attr:`member`
    before the member starts."""

    def __init__(self, host: str, port: int, report: Report) -> None:
        self.host, self.port = host, port
        self.report = report
        self.member: vnfha.Member | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.answered = 0

    async def on_active(self, a: vnfha.Assignment) -> None:
        self.report("active", epoch=a.epoch, previous=a.previous_role.value, reason=a.reason)
        await self.restart()

    async def on_standby(self, a: vnfha.Assignment) -> None:
        self._close()
        self.report("standby", role=a.role.value, reason=a.reason)

    async def on_quiesce(self) -> None:
        self._close()

    async def health_check(self) -> None:
        if self.member is not None and self.member.is_active() and self.transport is None:
            raise RuntimeError(f"active but {self.host}:{self.port} is not bound")

    async def restart(self) -> None:
        """Bind the shared port again (the ladder's first rung, and how serving starts)."""
        self._close()
        try:
            self.transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: self, local_addr=(self.host, self.port), reuse_port=True)
        except OSError as e:
            self.report("bind_failed", address=f"{self.host}:{self.port}", error=str(e))
            return
        self.report("serving", address=f"{self.host}:{self.port}")

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
            self.report("closed", address=f"{self.host}:{self.port}", answered=self.answered)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.member is None or not self.member.is_active() or self.transport is None:
            return  # check before acting
        reply = answer(data, self.member.name)
        if reply is not None:
            self.transport.sendto(reply, addr)
            self.answered += 1


def printer(member: str, *, json_lines: bool) -> Report:
    """A Report printing one line per event on stdout: JSON, or text for people."""
    def report(event: str, **fields: Any) -> None:
        if json_lines:
            print(json.dumps({"event": event, "member": member, "t": time.time(),
                              "pid": os.getpid(), **fields}), flush=True)
        else:
            print(f"[{member}] {event}", *(f"{k}={v}" for k, v in fields.items()), flush=True)
    return report


async def run_member(config: vnfha.Config, port: int, *, host: str = "127.0.0.1",
                     stop: asyncio.Event, report: Report) -> None:
    """Run one responder until ``stop`` is set."""
    responder = Responder(host, port, report)
    member = vnfha.Member(config, responder)
    responder.member = member
    async with member:
        report("ready", group=config.group, pid=os.getpid())
        await stop.wait()
    report("stopped", answered=responder.answered)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="a stateless responder: N-way-active, one port")
    p.add_argument("--member", required=True)
    p.add_argument("--etcd", default="127.0.0.1:2379", help="comma-separated endpoints")
    p.add_argument("--group", default=GROUP)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5500)
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        config = vnfha.Config(group=args.group, member=args.member,
                              etcd_endpoints=tuple(args.etcd.split(",")),
                              redundancy=vnfha.Redundancy.N_WAY_ACTIVE)
    except vnfha.ConfigError as e:
        p.error(str(e))

    async def run() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await run_member(config, args.port, host=args.host, stop=stop,
                         report=printer(args.member, json_lines=args.json))

    asyncio.run(run())


if __name__ == "__main__":
    main()
