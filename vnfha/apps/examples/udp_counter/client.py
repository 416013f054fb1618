"""Traffic for the session counter: steady requests over several sessions, with retries, and a
check that no acknowledged increment is ever lost.

    python -m vnfha.apps.examples.udp_counter.client --port 5300 --rate 200 --duration-s 30
    python examples/udp_counter/client.py --port 5300 ...     # the same, from a checkout

Each session sends ``<session> <seq>`` with seq 1, 2, 3... one at a time, ``--rate`` requests
per second over all sessions. A request is retransmitted (same seq, so the counter does not
count it twice) every ``--retry-after-s`` until answered, and given up after ``--timeout-s``.
Session names are new on every run, so every counter starts at 0.

What it checks, per session: the count in a reply is above the last count acknowledged to
this client. A reply at or below it means an increment the service had acknowledged was lost
(``lost_increments``). A reply above what the requests sent so far could produce is a
``double_increments`` (an increment applied twice).

What it checks about who answers (:class:`ReplyCheck`): it sends to ``--host`` only and takes
replies from that address and port only; a reply from anywhere else is not used and is counted
in ``replies_from_elsewhere`` (with its sources). Each reply names the epoch of the active that
sent it: a reply whose epoch is below one that has already answered comes from a deposed active
after its successor's first reply, and is counted in ``stale_replies`` (it is still used, as a
client that cannot see epochs would use it, so that the increment check judges what such a
client gets). ``replies_by_epoch`` says which epochs answered and when.

It prints a line on stderr when it starts sending (``sending to HOST:PORT: ...``), a progress
line a second and, at the end, a JSON report on stdout:
requests ``sent`` (distinct), ``answered``, ``lost`` (given up), ``retransmissions``, the
longest outage (``outage_ms``: the longest time with no reply at all, and when:
``outage_start`` / ``outage_end``, Unix times), every gap over ``--outage-threshold-ms``
(``outages``), latency percentiles and the checks' findings. Exit status 1 when an acknowledged
increment was lost or a reply came from a deposed active or from elsewhere (``ok`` false),
else 0.

Import it to drive traffic from Python: ``report = await run_client(ClientOptions(port=5300))``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import ipaddress
import json
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

# -- what the client checks (pure) -------------------------------------------------------------


@dataclass(slots=True)
class SessionCheck:
    """One session's view of its counter: what was acknowledged and what a reply may say.

    After ``acked`` was acknowledged and ``uncertain`` requests were given up unanswered (each
    may or may not have been applied), the next request's reply must be in
    ``acked + 1 .. acked + 1 + uncertain``.
    """

    session: str
    acked: int = 0
    uncertain: int = 0

    def answered(self, count: int) -> str | None:
        """Record a reply; ``"lost"`` if it went back, ``"double"`` if it jumped, else None."""
        verdict = None
        if count <= self.acked:
            verdict = "lost"
        elif count > self.acked + 1 + self.uncertain:
            verdict = "double"
        self.acked, self.uncertain = max(count, self.acked), 0
        return verdict

    def given_up(self) -> None:
        """A request was given up: it may or may not have been applied."""
        self.uncertain += 1


@dataclass(slots=True)
class OutageMeter:
    """Gaps between consecutive replies (from any session): the longest, and every gap of at
    least ``threshold_s``. Times are the caller's monotonic seconds; ``wall`` maps them to Unix
    time for reports."""

    start: float
    wall: float
    threshold_s: float
    last: float = field(init=False)
    longest: tuple[float, float] = field(init=False)
    outages: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.last = self.start
        self.longest = (self.start, self.start)

    def answered(self, now: float) -> None:
        """A reply arrived at ``now``: the gap since the previous one is over."""
        self._gap(now)
        self.last = now

    def given_up(self, now: float) -> None:
        """A request was given up at ``now``: nothing answered since :attr:`last`, so far."""
        self._gap(now)

    def _gap(self, now: float) -> None:
        begin = self.last
        if now - begin > self.longest[1] - self.longest[0]:
            self.longest = (begin, now)
        if now - begin >= self.threshold_s:
            if self.outages and self.outages[-1][0] == begin:
                self.outages[-1] = (begin, now)  # the same gap, seen longer
            else:
                self.outages.append((begin, now))

    def unix(self, t: float) -> float:
        return round(self.wall + (t - self.start), 3)


EXAMPLES_KEPT = 10
"""How many stale replies and foreign sources a report lists (all are counted)."""


@dataclass(slots=True)
class ReplyCheck:
    """Who answered: the replies of each epoch, and the stale ones.

    A reply is *stale* when its epoch is below the highest epoch that has already answered: it
    comes from a deposed active after its successor's first reply (two actives serving). Times
    are the caller's, as in :class:`OutageMeter`.
    """

    highest: int = 0
    by_epoch: dict[int, list[float]] = field(default_factory=dict)
    """epoch -> [replies, first time, last time]."""
    stale: list[dict[str, Any]] = field(default_factory=list)
    """The first :data:`EXAMPLES_KEPT` stale replies: epoch, the epoch above it, session, seq."""
    stale_count: int = 0

    def reply(self, epoch: int, now: float, session: str, seq: int) -> bool:
        """Record a reply of ``epoch`` at ``now``; False when it is stale."""
        seen = self.by_epoch.setdefault(epoch, [0, now, now])
        seen[0] += 1
        seen[2] = now
        if epoch >= self.highest:
            self.highest = epoch
            return True
        self.stale_count += 1
        if len(self.stale) < EXAMPLES_KEPT:
            self.stale.append({"epoch": epoch, "after_epoch": self.highest, "session": session,
                               "seq": seq, "t": now})
        return False


# -- the report ------------------------------------------------------------------------------


PROGRESS_S = 1.0
"""The client's progress line comes this often by default (``--quiet``: never)."""


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How much traffic, to where, and how patiently."""

    port: int = 5300
    host: str = "127.0.0.1"
    rate: float = 100.0
    """Requests per second over all sessions (each session sends one at a time)."""
    sessions: int = 4
    duration_s: float = 10.0
    retry_after_s: float = 0.05
    """Retransmit an unanswered request this often."""
    timeout_s: float = 5.0
    """Give a request up this long after its first send."""
    outage_threshold_s: float = 0.05
    """Gaps between replies at least this long are listed in ``outages``."""
    session_prefix: str = "s"
    progress_s: float | None = PROGRESS_S
    """Print a progress line on stderr this often; None: never."""

    def argv(self) -> list[str]:
        """These options as the client's command-line options (to run it as a program, on
        another host say); a ``progress_s`` other than the default or None is not expressible
        and is refused with ValueError."""
        if self.progress_s not in (None, PROGRESS_S):
            raise ValueError(f"progress_s={self.progress_s!r}: the command line has 1 s or "
                             "--quiet only")
        return ["--host", self.host, "--port", str(self.port), "--rate", repr(self.rate),
                "--sessions", str(self.sessions), "--duration-s", repr(self.duration_s),
                "--retry-after-s", repr(self.retry_after_s), "--timeout-s", repr(self.timeout_s),
                "--outage-threshold-ms", repr(self.outage_threshold_s * 1000),
                "--session-prefix", self.session_prefix,
                *(("--quiet",) if self.progress_s is None else ())]


@dataclass(frozen=True, slots=True)
class ClientReport:
    """What a run saw (see the module docstring); ``as_json()`` is the printed report."""

    target: str
    duration_s: float
    sessions: int
    sent: int
    answered: int
    lost: int
    retransmissions: int
    refused: int
    """ICMP port-unreachable errors seen: nobody was bound to the service port."""
    replies_from_elsewhere: int
    """Replies from another address or port than the target (not used; must be 0)."""
    elsewhere_sources: list[str]
    stale_replies: int
    """Replies from a deposed active after its successor's first reply (must be 0)."""
    stale_examples: list[dict[str, Any]]
    replies_by_epoch: dict[str, dict[str, float]]
    """Per epoch that answered (the key, as text): ``replies``, ``first``, ``last`` (Unix
    times). Replies without an epoch (a server that does not send it) count under ``"0"``."""
    outage_ms: float
    outage_start: float | None
    outage_end: float | None
    outages: list[dict[str, float]]
    latency_ms: dict[str, float]
    lost_increments: list[dict[str, Any]]
    double_increments: int
    final_counts: dict[str, int]

    @property
    def ok(self) -> bool:
        """No acknowledged increment was lost, no deposed active answered after its successor,
        and every reply came from the target."""
        return not (self.lost_increments or self.stale_replies or self.replies_from_elsewhere)

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok}


# -- the traffic -----------------------------------------------------------------------------


RECVERR = {socket.AF_INET: (socket.IPPROTO_IP, 11), socket.AF_INET6: (socket.IPPROTO_IPV6, 25)}
"""Linux's IP_RECVERR and IPV6_RECVERR (not in the socket module): an unconnected socket
reports ICMP errors (port unreachable) only with them."""


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, client: _Client) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.client.reply(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.client.icmp_error(exc)  # the retries go on


class _Client:
    def __init__(self, options: ClientOptions) -> None:
        self.o = options
        self.loop = asyncio.get_running_loop()
        self.run_id = secrets.token_hex(3)
        self.interval = options.sessions / options.rate
        self.start = self.loop.time()
        self.meter = OutageMeter(self.start, time.time(), options.outage_threshold_s)
        self.checks = [SessionCheck(f"{options.session_prefix}{self.run_id}-{i}")
                       for i in range(options.sessions)]
        self.replies = ReplyCheck()
        self.waiting: dict[tuple[str, int], asyncio.Future[int]] = {}
        self.latencies: list[float] = []
        self.lost_increments: list[dict[str, Any]] = []
        self.sent = self.answered = self.lost = self.retransmissions = self.refused = 0
        self.doubles = self.elsewhere = 0
        self.elsewhere_sources: dict[str, None] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.sock: socket.socket | None = None
        self.target: tuple[Any, ...] = ()
        self.target_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None

    async def run(self) -> ClientReport:
        o = self.o
        family, _, _, _, self.target = (await self.loop.getaddrinfo(
            o.host, o.port, type=socket.SOCK_DGRAM))[0]
        self.target_ip = ipaddress.ip_address(self.target[0])
        # not connected, so that a reply from another address arrives and can be counted;
        # RECVERR, so that ICMP errors are still reported (a connected socket gets them anyway)
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(*RECVERR[family], 1)
        self.sock.setblocking(False)
        self.transport, _ = await self.loop.create_datagram_endpoint(
            lambda: _Socket(self), sock=self.sock)
        progress = None
        if o.progress_s:
            print(f"sending to {o.host}:{o.port}: {o.rate:g} requests/s over {o.sessions} "
                  "sessions", file=sys.stderr, flush=True)
            progress = asyncio.create_task(self._progress())
        try:
            await asyncio.gather(*(self._session(check, i * self.interval / o.sessions)
                                   for i, check in enumerate(self.checks)))
        finally:
            if progress is not None:
                progress.cancel()
            self.transport.close()
        return self._report()

    def reply(self, data: bytes, addr: Any) -> None:
        """A datagram: used when it is a reply from the target, else counted as from
        elsewhere (never used)."""
        if (ipaddress.ip_address(str(addr[0]).split("%")[0]), addr[1]) != (self.target_ip,
                                                                          self.target[1]):
            self.elsewhere += 1
            if len(self.elsewhere_sources) < EXAMPLES_KEPT:
                self.elsewhere_sources[f"{addr[0]}:{addr[1]}"] = None
            return
        with contextlib.suppress(ValueError):
            session, seq, count, *epoch = data.decode("ascii").split()
            if len(epoch) > 1:
                return
            self.replies.reply(int(epoch[0]) if epoch else 0, self.loop.time(), session,
                               int(seq))
            fut = self.waiting.get((session, int(seq)))
            if fut is not None and not fut.done():
                fut.set_result(int(count))

    def icmp_error(self, exc: Exception) -> None:
        """An ICMP error reached the socket: count port-unreachables (nobody bound to the
        service port), drain the socket's error queue (RECVERR keeps every error there)."""
        drained = refused = 0
        while self.sock is not None:
            try:
                _, ancillary, _, _ = self.sock.recvmsg(1, 256, socket.MSG_ERRQUEUE)
            except OSError:  # empty (EAGAIN), or closed
                break
            drained += 1
            refused += sum(1 for _, _, d in ancillary
                           if int.from_bytes(d[:4], sys.byteorder) == errno.ECONNREFUSED)
        if not drained and isinstance(exc, ConnectionRefusedError):
            refused = 1
        self.refused += refused

    async def _session(self, check: SessionCheck, offset: float) -> None:
        """Requests 1, 2, 3... of one session, paced at ``interval``, one at a time."""
        end = self.start + self.o.duration_s
        at, seq = self.start + offset, 0
        while at < end:
            await asyncio.sleep(max(0.0, at - self.loop.time()))
            seq += 1
            sent = self.loop.time()
            count = await self._request(check.session, seq)
            now = self.loop.time()
            if count is None:
                self.lost += 1
                check.given_up()
                self.meter.given_up(now)
            else:
                self.answered += 1
                self.latencies.append(now - sent)
                self.meter.answered(now)
                self._judge(check, seq, count, now)
            at = max(at + self.interval, now)  # no catch-up burst after a slow request

    def _judge(self, check: SessionCheck, seq: int, count: int, now: float) -> None:
        before = check.acked
        verdict = check.answered(count)
        if verdict == "lost":
            self.lost_increments.append({"session": check.session, "seq": seq, "count": count,
                                         "acknowledged_before": before,
                                         "t": self.meter.unix(now)})
        elif verdict == "double":
            self.doubles += 1

    async def _request(self, session: str, seq: int) -> int | None:
        """The count for ``session``/``seq``, retransmitting until answered; None once given
        up after ``timeout_s``."""
        assert self.transport is not None
        fut: asyncio.Future[int] = self.loop.create_future()
        self.waiting[(session, seq)] = fut
        self.sent += 1
        give_up = self.loop.time() + self.o.timeout_s
        data = f"{session} {seq}".encode()
        try:
            while True:
                self.transport.sendto(data, self.target)
                left = give_up - self.loop.time()
                try:
                    async with asyncio.timeout(min(self.o.retry_after_s, left)):
                        return await asyncio.shield(fut)
                except TimeoutError:
                    if give_up - self.loop.time() <= 0:
                        return None
                    self.retransmissions += 1
        finally:
            del self.waiting[(session, seq)]

    async def _progress(self) -> None:
        assert self.o.progress_s is not None
        while True:
            await asyncio.sleep(self.o.progress_s)
            longest = self.meter.longest
            print(f"t={self.loop.time() - self.start:5.1f}s sent {self.sent} answered "
                  f"{self.answered} lost {self.lost} retransmitted {self.retransmissions} "
                  f"longest outage {(longest[1] - longest[0]) * 1000:.0f} ms "
                  f"lost increments {len(self.lost_increments)} stale replies "
                  f"{self.replies.stale_count} from elsewhere {self.elsewhere}",
                  file=sys.stderr, flush=True)

    def _report(self) -> ClientReport:
        m = self.meter
        begin, end = m.longest
        lat = sorted(self.latencies)

        def pct(q: float) -> float:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2) if lat else 0.0

        r = self.replies
        return ClientReport(
            target=f"{self.o.host}:{self.o.port}",
            duration_s=round(self.loop.time() - self.start, 3), sessions=self.o.sessions,
            sent=self.sent, answered=self.answered, lost=self.lost,
            retransmissions=self.retransmissions, refused=self.refused,
            replies_from_elsewhere=self.elsewhere,
            elsewhere_sources=list(self.elsewhere_sources),
            stale_replies=r.stale_count,
            stale_examples=[{**e, "t": m.unix(e["t"])} for e in r.stale],
            replies_by_epoch={str(epoch): {"replies": n, "first": m.unix(first),
                                           "last": m.unix(last)}
                              for epoch, (n, first, last) in sorted(r.by_epoch.items())},
            outage_ms=round((end - begin) * 1000, 1),
            outage_start=m.unix(begin) if end > begin else None,
            outage_end=m.unix(end) if end > begin else None,
            outages=[{"start": m.unix(b), "end": m.unix(e), "ms": round((e - b) * 1000, 1)}
                     for b, e in m.outages],
            latency_ms={"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
            lost_increments=self.lost_increments, double_increments=self.doubles,
            final_counts={c.session: c.acked for c in self.checks},
        )


async def run_client(options: ClientOptions) -> ClientReport:
    """Send ``options.duration_s`` of traffic, then wait for (or give up) the requests still
    out; the report says what happened."""
    for name in ("rate", "duration_s", "retry_after_s", "timeout_s", "outage_threshold_s"):
        if not getattr(options, name) > 0:
            raise ValueError(f"{name} must be greater than 0, not {getattr(options, name)!r}")
    if options.sessions < 1:
        raise ValueError(f"sessions must be at least 1, not {options.sessions!r}")
    return await _Client(options).run()


def main(argv: list[str] | None = None) -> None:
    d = ClientOptions()
    p = argparse.ArgumentParser(description="session-counter traffic with a lost-state check")
    p.add_argument("--host", default=d.host, help="the service address: requests go there "
                   "and replies count only from there (default: %(default)s)")
    p.add_argument("--port", type=int, default=d.port)
    p.add_argument("--rate", type=float, default=d.rate, help="requests/s over all sessions")
    p.add_argument("--sessions", type=int, default=d.sessions)
    p.add_argument("--duration-s", type=float, default=d.duration_s)
    p.add_argument("--retry-after-s", type=float, default=d.retry_after_s)
    p.add_argument("--timeout-s", type=float, default=d.timeout_s)
    p.add_argument("--outage-threshold-ms", type=float, default=d.outage_threshold_s * 1000)
    p.add_argument("--session-prefix", default=d.session_prefix)
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    options = ClientOptions(
        port=args.port, host=args.host, rate=args.rate, sessions=args.sessions,
        duration_s=args.duration_s, retry_after_s=args.retry_after_s, timeout_s=args.timeout_s,
        outage_threshold_s=args.outage_threshold_ms / 1000, session_prefix=args.session_prefix,
        progress_s=None if args.quiet else d.progress_s)
    try:
        report = asyncio.run(run_client(options))
    except ValueError as e:
        p.error(str(e))
    print(json.dumps(report.as_json(), indent=2))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
