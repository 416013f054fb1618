"""The rig of the fault matrix across hosts (``test_hosts_matrix.py``): members on lab hosts
with a paced writer, members the NFVI bridge's sim driver launched (their events read from the
sim's log), the service-address holders over time (rtnetlink in every host) and a client that
pings each group's service address and notes which host's MAC answered.

Run as a program, it is the member: ``python hosts_rig.py --pace-s S -- PYTHON -m
vnfha.testing.member_proc ARGS`` runs ``member_proc`` with ARGS in this process (so the pid
that ``ip netns exec`` keeps is the member's), each checkpoint write followed by a pause of S
seconds. Unpaced, one writing pair takes a core (2,600 ``Ack.ONE`` writes a second); fifteen
pairs on two cores would measure the scheduler, not the failover. ``member_proc`` has no pacing
option, hence this wrapper.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from vnfha.testing.history import Record, parse

PACE_S = 0.02
"""The writer's pause after each acknowledged write: ~45 writes a second, 2 % of a core."""
RIG = str(Path(__file__).resolve())
_NETLINK_ROUTE = 0
_RTMGRP_IPV4_IFADDR = 0x10
_RTM_NEWADDR, _RTM_DELADDR = 20, 21
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_ETH_P_IP = 0x0800


def member_prefix(netns_prefix: Sequence[str], pace_s: float = PACE_S) -> tuple[str, ...]:
    """The command prefix that runs ``member_proc`` (what follows it) paced, in a host."""
    return (*netns_prefix, sys.executable, RIG, "--pace-s", str(pace_s), "--")


def member_argv(netns_prefix: Sequence[str], group: str, member: str,
                endpoints: Sequence[str], *extra: str) -> list[str]:
    """The whole command line of a paced member (for the sim driver's inventory)."""
    return [*member_prefix(netns_prefix), sys.executable, "-m", "vnfha.testing.member_proc",
            "--group", group, "--member", member, "--etcd", ",".join(endpoints), *extra]


class Member(Protocol):
    """What a row needs of a member, launched by the test or by the sim driver."""

    member: str
    events: list[dict[str, Any]]
    marks: list[dict[str, Any]]

    @property
    def pid(self) -> int: ...

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float,
                 what: str = "event") -> dict[str, Any]: ...

    def history(self) -> list[Record]: ...

    def pause(self) -> float: ...

    def resume(self) -> float: ...

    def kill(self) -> float: ...


class SimMember:
    """A member the sim driver launched: its events are the JSON lines of the sim's log of its
    instance (stdout and stderr appended there), read as they come. ``pause``/``kill`` signal
    its pid (the one in its events) and are marked like
    :class:`~vnfha.testing.member_proc.MemberProcess` marks them. A death the harness did not
    cause (a fence) is seen within 5 ms, marked ``killed`` then and kept in ``died``."""

    def __init__(self, member: str, log_path: Path) -> None:
        self.member = member
        self.log_path = log_path
        self.events: list[dict[str, Any]] = []
        self.marks: list[dict[str, Any]] = []
        self.other: list[str] = []
        self.died: float | None = None
        """When its process was first seen gone (monotonic), by whatever cause."""
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tail, daemon=True)
        self._thread.start()

    def _tail(self) -> None:
        offset, rest = 0, b""
        while not self._stop.is_set():
            try:
                with self.log_path.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            offset += len(chunk)
            *lines, rest = (rest + chunk).split(b"\n")
            with self._cond:
                for raw in lines:
                    line = raw.decode(errors="replace")
                    try:
                        self.events.append(json.loads(line))
                    except ValueError:
                        self.other.append(line)
                self._cond.notify_all()
            self._watch()
            self._stop.wait(0.005)

    def _watch(self) -> None:
        """Note the process's death, marking it killed unless the harness killed it."""
        if self.died is not None or self._pid() is None or self.alive():
            return
        self.died = time.monotonic()
        with self._cond:
            if not any(m["event"] == "killed" for m in self.marks):
                self.marks.append({"event": "killed", "t_mono": self.died})

    def _pid(self) -> int | None:
        with self._cond:
            pids = [e["pid"] for e in self.events if "pid" in e]
        return int(pids[-1]) if pids else None

    @property
    def pid(self) -> int:
        pid = self._pid()
        if pid is None:
            raise AssertionError(f"{self.member}: no event with its pid yet")
        return pid

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float,
                 what: str = "event") -> dict[str, Any]:
        deadline, seen = time.monotonic() + timeout_s, 0
        with self._cond:
            while True:
                while seen < len(self.events):
                    seen += 1
                    if predicate(self.events[seen - 1]):
                        return self.events[seen - 1]
                if time.monotonic() >= deadline:
                    raise AssertionError(f"{self.member}: no {what} within {timeout_s} s; "
                                         f"events={self.events[-5:]} log={self.other[-20:]}")
                self._cond.wait(0.05)

    def history(self) -> list[Record]:
        with self._cond:
            return parse(self.events + self.marks)

    def _mark(self, event: str) -> float:
        now = time.monotonic()
        with self._cond:
            self.marks.append({"event": event, "t_mono": now})
        return now

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def pause(self) -> float:
        now = self._mark("paused")
        self._signal(signal.SIGSTOP)
        return now

    def resume(self) -> float:
        now = self._mark("resumed")
        self._signal(signal.SIGCONT)
        return now

    def alive(self) -> bool:
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")

    def kill(self) -> float:
        if not self.alive():
            return time.monotonic()
        now = self._mark("killed")  # first: the watch must not take it for a fence
        self._signal(signal.SIGKILL)
        return now

    def log_lines(self) -> list[str]:
        with self._cond:
            return list(self.other)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _netlink_addresses(data: bytes) -> Iterable[tuple[str, bool]]:
    """(address, added) for each IPv4 address change in an rtnetlink datagram."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            return
        if kind in (_RTM_NEWADDR, _RTM_DELADDR) and data[offset + 16] == socket.AF_INET:
            attrs, found = offset + 24, {}
            while attrs + 4 <= offset + length:
                size, attr = struct.unpack_from("=HH", data, attrs)
                if size < 4:
                    break
                found[attr] = data[attrs + 4:attrs + size]
                attrs += (size + 3) & ~3
            raw = found.get(_IFA_LOCAL) or found.get(_IFA_ADDRESS)
            if raw is not None and len(raw) == 4:
                yield socket.inet_ntoa(raw), kind == _RTM_NEWADDR
        offset += (length + 3) & ~3


class Watch:
    """Observes, on one thread: IPv4 address changes in the given hosts (an rtnetlink socket
    in each) and the ICMP echo replies that reach the client host (a packet socket there),
    each stamped with ``time.monotonic()`` on arrival. ``hosts`` maps each host's namespace
    socket factory to its name; ``macs`` maps MACs to host names."""

    def __init__(self, hosts: dict[str, Callable[..., socket.socket]],
                 client: Callable[..., socket.socket], macs: dict[bytes, str]) -> None:
        self.changes: list[tuple[float, str, str, bool]] = []
        """(t, host, address, added) for every IPv4 address added or removed."""
        self.replies: list[tuple[float, str, str]] = []
        """(t, address, host) for every echo reply the client received."""
        self._macs = macs
        self._socks: dict[int, tuple[socket.socket, str | None]] = {}
        for name, make in hosts.items():
            sock = make(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_ROUTE)
            sock.bind((0, _RTMGRP_IPV4_IFADDR))
            self._socks[sock.fileno()] = (sock, name)
        sniff = client(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_IP))
        self._socks[sniff.fileno()] = (sniff, None)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        socks = [s for s, _ in self._socks.values()]
        while not self._stop.is_set():
            readable, _, _ = select.select(socks, [], [], 0.1)
            for sock in readable:
                data = sock.recv(65536)
                now = time.monotonic()
                _, host = self._socks[sock.fileno()]
                with self._lock:
                    if host is not None:
                        self.changes += [(now, host, a, up) for a, up in _netlink_addresses(data)]
                    else:
                        self._reply(now, data)

    def _reply(self, now: float, frame: bytes) -> None:
        if len(frame) < 34 or frame[23] != socket.IPPROTO_ICMP:
            return
        header = (frame[14] & 0x0F) * 4
        if len(frame) > 14 + header and frame[14 + header] == 0:  # echo reply
            host = self._macs.get(frame[6:12], frame[6:12].hex(":"))
            self.replies.append((now, socket.inet_ntoa(frame[26:30]), host))

    def holders(self, address: str) -> list[tuple[float, str, bool]]:
        """(t, host, added) for every change of ``address``, in time order."""
        with self._lock:
            return [(t, h, up) for t, h, a, up in self.changes if a == address]

    def answered(self, address: str) -> list[tuple[float, str]]:
        """(t, host) for every echo reply from ``address``, in time order."""
        with self._lock:
            return [(t, h) for t, a, h in self.replies if a == address]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock, _ in self._socks.values():
            sock.close()


class Pinger:
    """ICMP echo requests from the client host to ``address`` every ``interval_s`` until
    :meth:`close` (the replies are seen by :class:`Watch`, which knows whose MAC sent them)."""

    def __init__(self, make: Callable[..., socket.socket], address: str,
                 interval_s: float = 0.02) -> None:
        self._sock = make(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        self._sock.setblocking(False)
        self._address, self._interval_s = address, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seq = 0
        while not self._stop.wait(self._interval_s):
            seq = (seq + 1) % 65536
            with contextlib.suppress(OSError):  # no route or neighbour yet: try again
                self._sock.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, seq) + bytes(16),
                                  (self._address, 0))
            with contextlib.suppress(OSError):
                while self._sock.recv(1024):
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def main(argv: list[str]) -> None:
    """``--pace-s S -- PYTHON -m vnfha.testing.member_proc ARGS``: run the member paced."""
    import asyncio  # noqa: PLC0415

    from vnfha.checkpoint import Checkpoint  # noqa: PLC0415
    from vnfha.testing import member_proc  # noqa: PLC0415

    pace_s = float(argv[argv.index("--pace-s") + 1])
    args = argv[argv.index("vnfha.testing.member_proc") + 1:]
    put = Checkpoint.put

    async def paced(self: Checkpoint, *a: Any, **kw: Any) -> int:
        sequence = await put(self, *a, **kw)
        await asyncio.sleep(pace_s)
        return sequence

    Checkpoint.put = paced  # type: ignore[method-assign]
    member_proc.main(args)


if __name__ == "__main__":
    main(sys.argv[1:])
