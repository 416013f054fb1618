"""A stateful UDP network function with vnfha: a per-session request counter, active/standby.

    python -m vnfha.apps.examples.udp_counter.vnf --member a --etcd 127.0.0.1:2379 --port 5300
    python examples/udp_counter/vnf.py --member a ...     # the same, from a source checkout
    python -m vnfha.apps.examples.udp_counter.vnf --member a --etcd 10.0.0.9:2379 \
        --service-address 10.0.0.100/24                    # one host of a pair across hosts

Run two (``--member a`` and ``--member b``); they form the 2N group ``udp-counter``. The
protocol is one ASCII datagram each way:

- ``<session>`` increments the session's counter and the reply is ``<session> <count>
  <epoch>``.
- ``<session> <seq>`` does the same at most once per ``seq`` (the client numbers its requests
  1, 2, 3... per session); the reply is ``<session> <seq> <count> <epoch>``. A retransmission
  of the session's last ``seq`` is answered with the same count and no second increment; an
  older ``seq`` is dropped. This is what makes client retries safe across a failover.
- ``<epoch>`` is the epoch of the active that answered: a client can tell a deposed active's
  reply (a lower epoch than one it has seen) from its successor's.

Where it serves: ``--host``:``--port`` (default ``127.0.0.1:5300``: both members on one host).
With ``--service-address ADDR/PREFIX`` (``Config.service_addresses``; repeatable) the members
run on different hosts and the address follows the active: vnfha adds and announces it before
``on_active`` and removes it when the role ends, and the member binds the first one (unless
``--host`` says otherwise) in ``on_active``. So a client sends to that address only, and every
reply comes from it. That needs CAP_NET_ADMIN and CAP_NET_RAW, and ``VNFHA_LISTEN`` on an
address the peer can reach (the replication endpoint defaults to loopback).

Guarantees (what to copy into your own VNF):

- **Only the active serves.** It binds the service address (``--host``:``--port``) in
  ``on_active`` and closes it in ``on_standby`` (deposed) and ``on_quiesce`` (handover), and it
  checks ``member.is_active()`` before acting on every request. The bind is exclusive (no
  SO_REUSEPORT): if the port is busy the active says ``bind_failed`` and retries until it gets
  it. A port shared silently would let another process (a leftover of another group) answer
  with state that is not this group's; a busy port is an outage you can see. A deposed active
  that is frozen (SIGSTOP) holds the port until it runs again and demotes itself (dropping
  what reaches it meanwhile), or until the NFVI fences it. With a service address the frozen
  one holds it on its own host only: the successor binds the address on its host, and vnfha's
  announcements send the clients there.
- **A reply means the increment survives a failover.** The session's record (count and last
  seq) is checkpointed with ``Ack.ONE`` before the reply goes out: it is then on the in-sync
  standby, the only member that may take over. While no standby is in sync (the survivor of a
  failover, until its peer is back) the member runs *simplex*: it writes with ``Ack.NONE`` and
  says so, since there is nobody to fail over to. ``--require-standby`` refuses to answer then.
- **The checkpoint is the state.** Reads go to ``member.checkpoint``; a promoted standby serves
  from the copy it received, with nothing to rebuild.
- **Health.** ``health_check`` raises when the active has no bound socket or a non-active
  member still has one; ``restart`` closes and rebinds, so the escalation ladder has a first
  rung to call.

Events (``--json``: one JSON object per line with ``event``, ``member``, ``t``, ``pid``):
``ready``, ``active`` (epoch, previous, sessions inherited), ``standby``, ``quiesce``,
``serving`` / ``closed`` (the service socket), ``bind_failed``, ``in_sync`` (the standbys the
active counts), ``simplex``, ``stopped``.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import vnfha

SECTION = "sessions"
"""The checkpoint section holding one record per session."""

MAX_SESSION_CHARS = 64
"""Longest session id accepted (printable ASCII, no spaces)."""

GROUP = "udp-counter"
"""The default group name."""

Report = Callable[..., None]
"""``report(event, **fields)``: where the member says what it does (see :func:`printer`)."""

log = logging.getLogger("udp_counter")


# -- the protocol and the per-session decision (pure) --------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request: the session, and its sequence number when the client gave one."""

    session: str
    seq: int | None

    def reply(self, count: int, epoch: int | None = None) -> bytes:
        """The reply datagram: the request's words followed by the count, and the epoch of the
        active answering when given."""
        words = [self.session] if self.seq is None else [self.session, str(self.seq)]
        tail = [str(count)] if epoch is None else [str(count), str(epoch)]
        return " ".join([*words, *tail]).encode()


@dataclass(frozen=True, slots=True)
class Record:
    """A session's checkpointed state: its counter and the last sequence number applied."""

    count: int = 0
    seq: int = 0

    def encode(self) -> bytes:
        return f"{self.count} {self.seq}".encode()

    @classmethod
    def decode(cls, value: bytes | None) -> Record:
        if value is None:
            return cls()
        count, seq = value.split()
        return cls(int(count), int(seq))


def parse_request(data: bytes) -> Request | None:
    """The request in ``data``, or None when it is malformed (dropped, never answered)."""
    try:
        words = data.decode("ascii").split()
    except UnicodeDecodeError:
        return None
    if not 1 <= len(words) <= 2:
        return None
    session = words[0]
    if len(session) > MAX_SESSION_CHARS or not session.isprintable():
        return None
    if len(words) == 1:
        return Request(session, None)
    if not words[1].isdigit() or int(words[1]) < 1:
        return None
    return Request(session, int(words[1]))


def apply_request(record: Record, seq: int | None) -> Record | None:
    """The session's record after a request with ``seq``; None to drop it (an old seq).

    No seq: one more. A new seq: one more, remembered. The last seq again (a retransmission):
    the same record, so the reply repeats the count without a second increment.
    """
    if seq is None:
        return Record(record.count + 1, record.seq)
    if seq > record.seq:
        return Record(record.count + 1, seq)
    if seq == record.seq:
        return record
    return None


# -- the component ---------------------------------------------------------------------------


class ServiceDown(Exception):
    """The service socket is not in the state the member's role requires."""


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, counter: SessionCounter) -> None:
        self.counter = counter

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.counter.received(data, addr)


class SessionCounter(vnfha.Component):
    """The counter service; set :attr:`member` before the member starts.

    ``require_standby``: never answer a request whose record is not on an in-sync standby
    (no simplex mode). ``bind_retry_s``: how often an active retries binding a busy port.
    """

    def __init__(self, host: str, port: int, report: Report, *,
                 require_standby: bool = False, bind_retry_s: float = 0.02) -> None:
        self.host, self.port = host, port
        self.report = report
        self.require_standby = require_standby
        self.bind_retry_s = bind_retry_s
        self.member: vnfha.Member | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self._binder: asyncio.Task[None] | None = None
        self.answered = 0
        """Replies sent since start."""
        self.epoch = 0
        """The epoch this member last became active in: every reply carries it."""
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._simplex = False

    # -- role callbacks ------------------------------------------------------------------------

    async def on_active(self, a: vnfha.Assignment) -> None:
        member = self._member()
        self.epoch = a.epoch  # the service addresses are on this host by now: bind them
        self.report("active", epoch=a.epoch, previous=a.previous_role.value,
                    sessions=member.checkpoint.count(SECTION), reason=a.reason)
        self._start_binding()

    async def on_standby(self, a: vnfha.Assignment) -> None:
        self._close(drop_in_flight=True)  # deposed, or never active: serve nothing
        self.report("standby", role=a.role.value, epoch=a.epoch, active=a.active,
                    sessions=self._member().checkpoint.count(SECTION))

    async def on_quiesce(self) -> None:
        """Take no new requests (``is_active()`` is already False), let the ones in flight
        write their last checkpoint and reply, then close the socket."""
        self.report("quiesce", in_flight=len(self._tasks))
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        self._close(drop_in_flight=False)

    async def health_check(self) -> None:
        active = self._member().is_active()
        if active and self.transport is None:
            raise ServiceDown(f"active, but {self.host}:{self.port} is not bound")
        if self.transport is not None and not active:
            raise ServiceDown(f"not active, but {self.host}:{self.port} is still bound")

    async def restart(self) -> None:
        self._close(drop_in_flight=True)
        if self._member().is_active():
            self._start_binding()

    # -- the socket ----------------------------------------------------------------------------

    def _start_binding(self) -> None:
        if self.transport is None and (self._binder is None or self._binder.done()):
            self._binder = asyncio.create_task(self._bind())

    async def _bind(self) -> None:
        """Bind the service address, retrying every ``bind_retry_s`` while this member is
        active: the port may still be held by a deposed active that is frozen (until it runs
        again and demotes itself, or is fenced), or by something else, which is reported."""
        attempts = 0
        while self._member().is_active():
            attempts += 1
            try:
                self.transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: _Endpoint(self), local_addr=(self.host, self.port))
            except OSError as e:
                if attempts == 1:
                    self.report("bind_failed", address=f"{self.host}:{self.port}",
                                error=str(e), retry_s=self.bind_retry_s)
                await asyncio.sleep(self.bind_retry_s)
                continue
            self.report("serving", address=f"{self.host}:{self.port}", attempts=attempts)
            return

    def _close(self, *, drop_in_flight: bool) -> None:
        if self._binder is not None:
            self._binder.cancel()
        if drop_in_flight:
            for task in self._tasks:
                task.cancel()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
            self.report("closed", address=f"{self.host}:{self.port}")

    # -- requests --------------------------------------------------------------------------------

    def received(self, data: bytes, addr: Any) -> None:
        """One datagram: served in its own task, at most one per session at a time (a second
        request of a busy session is a retransmission; the first one's reply answers it)."""
        request = parse_request(data)
        if request is None or request.session in self._busy:
            return
        if not self._member().is_active():  # check before acting: a deposed active must not
            return
        self._busy.add(request.session)
        task = asyncio.create_task(self._serve(request, addr))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("request failed", exc_info=task.exception())

    async def _serve(self, request: Request, addr: Any) -> None:
        try:
            checkpoint = self._member().checkpoint
            record = apply_request(Record.decode(checkpoint.get(SECTION, request.session)),
                                   request.seq)
            if record is None or not await self._save(request.session, record):
                return
            if self.transport is not None:
                self.transport.sendto(request.reply(record.count, self.epoch), addr)
                self.answered += 1
        finally:
            self._busy.discard(request.session)

    async def _save(self, session: str, record: Record) -> bool:
        """Checkpoint ``record``; True when it may be acknowledged: on an in-sync standby, or
        (simplex) applied here while no standby is in sync."""
        checkpoint = self._member().checkpoint
        duplex = bool(checkpoint.in_sync)
        self._note_simplex(not duplex)
        ack = vnfha.Ack.ONE if duplex or self.require_standby else vnfha.Ack.NONE
        try:
            await checkpoint.put(SECTION, session, record.encode(), ack=ack)
        except vnfha.AckTimeout:
            # the write is applied here; it may be acknowledged only if no standby could take
            # over without it (none in sync any more) and simplex service is allowed
            return not checkpoint.in_sync and not self.require_standby
        except vnfha.NotActive:
            return False  # deposed while writing: the new active answers the retransmission
        return True

    def _note_simplex(self, simplex: bool) -> None:
        if simplex != self._simplex:
            self._simplex = simplex
            if not simplex:
                self.report("duplex", ack=vnfha.Ack.ONE.value)
            elif self.require_standby:
                self.report("simplex", ack=vnfha.Ack.ONE.value, answering=False)
            else:
                self.report("simplex", ack=vnfha.Ack.NONE.value, answering=True)

    def _member(self) -> vnfha.Member:
        if self.member is None:
            raise RuntimeError("SessionCounter.member must be set before the member starts")
        return self.member


# -- running it ------------------------------------------------------------------------------


def printer(member: str, *, json_lines: bool) -> Report:
    """A Report that prints one line per event on stdout: JSON, or text for people."""
    def report(event: str, **fields: Any) -> None:
        if json_lines:
            line = json.dumps({"event": event, "member": member, "t": time.time(),
                               "pid": os.getpid(), **fields})
        else:
            details = " ".join(f"{k}={v}" for k, v in fields.items())
            line = f"[{member}] {event} {details}".rstrip()
        print(line, flush=True)
    return report


async def run_member(config: vnfha.Config, port: int, *, host: str = "127.0.0.1",
                     stop: asyncio.Event, report: Report, require_standby: bool = False,
                     poll_s: float = 0.1) -> None:
    """Run one member of the counter pair until ``stop`` is set, then leave cleanly (an
    active hands over first). Reports the in-sync standbys whenever they change, polled every
    ``poll_s``."""
    counter = SessionCounter(host, port, report, require_standby=require_standby)
    member = vnfha.Member(config, counter)
    counter.member = member  # before start: callbacks may come at once
    async with member:
        report("ready", group=config.group, pid=os.getpid(), replication=member.listen)
        in_sync: tuple[str, ...] = ()
        while not stop.is_set():
            now = member.checkpoint.in_sync if member.is_active() else ()
            if now != in_sync and member.is_active():
                report("in_sync", standbys=list(now))
            in_sync = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)
    report("stopped", answered=counter.answered)


def member_config(member: str, etcd: str, *, group: str = GROUP,
                  config_file: str | None = None,
                  service_addresses: Sequence[str] = ()) -> vnfha.Config:
    """A TWO_N Config: ``config_file`` (TOML) and ``VNFHA_*`` variables, then these values
    (``service_addresses``, when given, replace the variables' and the file's)."""
    environ = {**os.environ, "VNFHA_GROUP": group, "VNFHA_MEMBER": member,
               "VNFHA_ETCD_ENDPOINTS": etcd, "VNFHA_REDUNDANCY": vnfha.Redundancy.TWO_N.value}
    if service_addresses:
        environ["VNFHA_SERVICE_ADDRESSES"] = ",".join(service_addresses)
    return vnfha.load_config(config_file, environ=environ)


def service_host(config: vnfha.Config, host: str | None) -> str:
    """Where the member binds: ``host`` when given, else the first service address, else
    loopback."""
    if host is not None:
        return host
    if config.service_addresses:
        return str(config.service_addresses[0].interface.ip)
    return "127.0.0.1"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="the session counter: a 2N pair serving UDP")
    p.add_argument("--member", required=True, help="this member's name, e.g. a or b")
    p.add_argument("--etcd", default="127.0.0.1:2379", help="comma-separated endpoints")
    p.add_argument("--group", default=GROUP)
    p.add_argument("--host", default=None, help="the address to serve on (default: the first "
                   "--service-address, else 127.0.0.1)")
    p.add_argument("--port", type=int, default=5300, help="service UDP port (default: 5300)")
    p.add_argument("--service-address", action="append", default=[], metavar="ADDR/PREFIX",
                   help="an address that follows the active (e.g. 198.51.100.100/24, "
                   "ADDR/PREFIX@DEVICE to name the device); repeatable. Needs CAP_NET_ADMIN and "
                   "CAP_NET_RAW")
    p.add_argument("--config", default=None, help="a vnfha.toml with more settings")
    p.add_argument("--require-standby", action="store_true",
                   help="answer only once the record is on an in-sync standby (no simplex)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--log-level", default="WARNING", help="vnfha's log level on stderr")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = member_config(args.member, args.etcd, group=args.group,
                               config_file=args.config, service_addresses=args.service_address)
    except vnfha.ConfigError as e:
        p.error(str(e))
    host = service_host(config, args.host)

    async def run() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await run_member(config, args.port, host=host, stop=stop,
                         report=printer(args.member, json_lines=args.json),
                         require_standby=args.require_standby)

    asyncio.run(run())


if __name__ == "__main__":
    main()
