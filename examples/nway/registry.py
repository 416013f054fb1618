"""A subscriber registry with vnfha's N-way model: one active, ranked standbys that each hold
the whole registry, and take over in turn.

    python examples/nway/registry.py --member a --port 5400
    python examples/nway/registry.py --member b --port 5400 --priority 10
    python examples/nway/registry.py --member c --port 5400 --priority 20

A TCP service, one line per command and per reply (try ``nc 127.0.0.1 5400``):

    SET <subscriber> <value>    OK <subscriber> v<version>
    GET <subscriber>            <subscriber> v<version> <value>   or   NOTFOUND <subscriber>
    DEL <subscriber>            OK <subscriber> deleted
    COUNT                       <number of subscribers>
    WHO                         <member> epoch <epoch> standbys <in-sync standbys, or ->

anything else gets ``ERR <why>``.

Guarantees (what to copy into your own VNF):

- **Only the active listens.** It opens the service port in ``on_active`` and closes it, with
  every connection, in ``on_standby`` (deposed) and ``on_quiesce`` (handover); every command
  checks ``member.is_active()`` first. The port is not shared (no SO_REUSEPORT): while it is
  busy the active reports ``bind_failed`` and keeps trying, rather than let another process
  answer with another registry.
- **An ``OK`` means every in-sync standby has the change.** Writes are checkpointed with
  ``Ack.ALL``, not ``Ack.ONE``: with two standbys, ``ONE`` would let the change sit on one of
  them while the other, if it is the first to notice the crash, takes over without it. While
  no standby is in sync (right after a takeover, until the others have caught up) the active
  runs simplex with ``Ack.NONE``, and says so.
- **Ranked standbys.** Every standby receives every change. When the active fails, the in-sync
  standby with the most recent position takes over, then the highest ``--priority``, then the
  name; the next one follows the new active and is next in line.

- **A poison input, and the group surviving it.** The active *provisions* every subscriber it
  holds when it takes over, and each one it sets. A value with the word ``!panic`` in it stands
  for a record the VNF's own code cannot handle: provisioning it crashes the process. vnfha
  copies it to every standby, so without protection each successor would crash in turn. With
  ``--poison-policy hold`` (vnfha's default) the group stops promoting after the first
  successor crashes too, and raises an alarm until ``vnfha unlock registry``; with
  ``rollback`` the second successor takes over with the changes of the last
  ``--poison-window-s`` before the first crash undone, and reports what was rolled back
  (``docs/failover.md``, poisoned-state protection).

Events (``--json``: one JSON object per line with ``event``, ``member``, ``t``, ``pid``):
``ready``, ``active`` (epoch, previous, subscribers inherited, ``rolled_back``: the keys vnfha
undid before this takeover), ``standby``, ``quiesce``, ``serving`` / ``closed``,
``bind_failed``, ``in_sync``, ``simplex`` / ``duplex``, ``poisoned`` (about to crash on a
poison record), ``alarm``, ``stopped``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import vnfha

SECTION = "subscribers"
"""The checkpoint section: subscriber -> ``b"<version> <value>"``."""

GROUP = "registry"
"""The default group name."""

MAX_LINE_BYTES = 4096
"""Longest command line accepted."""

POISON = "!panic"
"""A word that makes provisioning a subscriber crash the process (the poison input)."""

Report = Callable[..., None]
"""``report(event, **fields)``: where the member says what it does."""


def execute(words: list[str], read: Callable[[str], bytes | None]
            ) -> tuple[str, tuple[str, bytes | None] | None]:
    """A command's reply and the change it makes (subscriber, new value or None to delete),
    from the words of its line and ``read`` (the registry). Pure: the caller writes the change
    and sends the reply only once the change is checkpointed."""
    match words:
        case ["SET", subscriber, *value] if value:
            old = read(subscriber)
            version = int(old.split(b" ", 1)[0]) + 1 if old else 1
            new = f"{version} {' '.join(value)}".encode()
            return f"OK {subscriber} v{version}", (subscriber, new)
        case ["GET", subscriber]:
            record = read(subscriber)
            if record is None:
                return f"NOTFOUND {subscriber}", None
            number, data = record.decode().split(" ", 1)
            return f"{subscriber} v{number} {data}", None
        case ["DEL", subscriber]:
            return f"OK {subscriber} deleted", (subscriber, None)
    return f"ERR unknown command {' '.join(words[:1])!r}: SET, GET, DEL, COUNT or WHO", None


class Registry(vnfha.Component):
    """The registry service; set :attr:`member` before the member starts."""

    def __init__(self, host: str, port: int, report: Report, *,
                 listen_retry_s: float = 0.02) -> None:
        self.host, self.port = host, port
        self.report = report
        self.listen_retry_s = listen_retry_s
        self.member: vnfha.Member | None = None
        self.server: asyncio.Server | None = None
        self._opener: asyncio.Task[None] | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._simplex = False

    # -- role callbacks ------------------------------------------------------------------------

    async def on_active(self, a: vnfha.Assignment) -> None:
        checkpoint = self._member().checkpoint
        self.report("active", epoch=a.epoch, previous=a.previous_role.value,
                    subscribers=checkpoint.count(SECTION), reason=a.reason,
                    rolled_back=list(a.rolled_back))
        for subscriber, value in checkpoint.items(SECTION):
            self.provision(subscriber, value)
        self._opener = asyncio.create_task(self._open())

    def provision(self, subscriber: str, value: bytes) -> None:
        """Act on one record: here, crash on a poison one, as a VNF's bug would."""
        if POISON.encode() in value.split():
            self.report("poisoned", subscriber=subscriber, epoch=self._member().epoch)
            os._exit(70)

    async def on_standby(self, a: vnfha.Assignment) -> None:
        await self._close()
        self.report("standby", role=a.role.value, epoch=a.epoch, active=a.active,
                    subscribers=self._member().checkpoint.count(SECTION))

    async def on_quiesce(self) -> None:
        self.report("quiesce")
        await self._close()

    async def health_check(self) -> None:
        if self._member().is_active() != (self.server is not None):
            raise RuntimeError(f"active={self._member().is_active()} but listening="
                               f"{self.server is not None} on {self.host}:{self.port}")

    async def restart(self) -> None:
        await self._close()
        if self._member().is_active():
            self._opener = asyncio.create_task(self._open())

    # -- the listener ------------------------------------------------------------------------

    async def _open(self) -> None:
        """Listen on the service port while active, trying again every ``listen_retry_s``
        while it is busy (a frozen deposed active, or another process: reported)."""
        failed = False
        while self.server is None and self._member().is_active():
            try:
                self.server = await asyncio.start_server(self._serve, self.host, self.port,
                                                         limit=MAX_LINE_BYTES)
            except OSError as e:
                if not failed:
                    self.report("bind_failed", address=f"{self.host}:{self.port}",
                                error=str(e))
                failed = True
                await asyncio.sleep(self.listen_retry_s)
        if self.server is not None:
            self.report("serving", address=f"{self.host}:{self.port}")

    async def _close(self) -> None:
        if self._opener is not None:
            self._opener.cancel()
        server, self.server = self.server, None
        if server is None:
            return
        server.close()
        for writer in list(self._connections):
            writer.close()
        await server.wait_closed()
        self.report("closed", address=f"{self.host}:{self.port}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while self.server is not None:
                line = await reader.readline()
                if not line:
                    break
                if not self._member().is_active():  # check before acting
                    break
                reply = await self._command(line.decode(errors="replace").split())
                if reply is None:
                    break  # deposed while writing: the client reconnects to the new active
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError):  # reset by the client, or a line over the limit
            pass
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _command(self, words: list[str]) -> str | None:
        """The reply to one command, once its change (if any) is checkpointed; None when this
        member stopped being the active before it was."""
        member = self._member()
        if words == ["COUNT"]:
            return str(member.checkpoint.count(SECTION))
        if words == ["WHO"]:
            standbys = ",".join(member.checkpoint.in_sync) or "-"
            return f"{member.name} epoch {member.epoch} standbys {standbys}"
        reply, change = execute(words, lambda key: member.checkpoint.get(SECTION, key))
        if change is None:
            return reply
        checkpoint = member.checkpoint
        self._note_simplex(not checkpoint.in_sync)
        ack = vnfha.Ack.ALL if checkpoint.in_sync else vnfha.Ack.NONE
        subscriber, value = change
        try:
            if value is None:
                await checkpoint.delete(SECTION, subscriber, ack=ack)
            else:
                await checkpoint.put(SECTION, subscriber, value, ack=ack)
        except vnfha.AckTimeout:
            return "ERR not acknowledged by the standbys in time; retry"
        except vnfha.NotActive:
            return None
        if value is not None:
            self.provision(subscriber, value)
        return reply

    def _note_simplex(self, simplex: bool) -> None:
        if simplex != self._simplex:
            self._simplex = simplex
            ack = vnfha.Ack.NONE if simplex else vnfha.Ack.ALL
            self.report("simplex" if simplex else "duplex", ack=ack.value)

    def _member(self) -> vnfha.Member:
        if self.member is None:
            raise RuntimeError("Registry.member must be set before the member starts")
        return self.member


def printer(member: str, *, json_lines: bool) -> Report:
    """A Report printing one line per event on stdout: JSON, or text for people."""
    def report(event: str, **fields: Any) -> None:
        record = {"event": event, "member": member, "t": time.time(), "pid": os.getpid(),
                  **fields}
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        print(json.dumps(record) if json_lines else f"[{member}] {event} {text}", flush=True)
    return report


async def run_member(config: vnfha.Config, port: int, *, host: str = "127.0.0.1",
                     stop: asyncio.Event, report: Report, poll_s: float = 0.1) -> None:
    """Run one registry member until ``stop`` is set, then leave cleanly (an active hands
    over first). While active, reports the in-sync standbys when they change."""
    registry = Registry(host, port, report)
    member = vnfha.Member(config, registry)
    registry.member = member
    member.add_listener(lambda e: report("alarm", reason=e.reason)
                        if isinstance(e, vnfha.AlarmRaised) else None)
    async with member:
        report("ready", group=config.group, pid=os.getpid(), priority=config.priority)
        seen: tuple[str, ...] = ()
        while not stop.is_set():
            active = member.is_active()
            in_sync = member.checkpoint.in_sync if active else ()
            if active and in_sync != seen:
                report("in_sync", standbys=list(in_sync))
            seen = in_sync
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)
    report("stopped")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="a subscriber registry: N-way, ranked standbys")
    p.add_argument("--member", required=True)
    p.add_argument("--etcd", default="127.0.0.1:2379", help="comma-separated endpoints")
    p.add_argument("--group", default=GROUP)
    p.add_argument("--priority", type=int, default=0,
                   help="0..1000: among in-sync standbys the highest takes over first")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5400)
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--poison-policy", default="hold", choices=("rollback", "hold", "off"))
    p.add_argument("--poison-window-s", type=float, default=10.0,
                   help="how far before the first crash a rollback reaches")
    p.add_argument("--log-level", default="WARNING", help="vnfha's log level on stderr")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = vnfha.Config(group=args.group, member=args.member,
                              etcd_endpoints=tuple(args.etcd.split(",")), priority=args.priority,
                              redundancy=vnfha.Redundancy.N_WAY,
                              poison_policy=args.poison_policy,
                              poison_window_s=args.poison_window_s)
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
