"""The hosts of a :class:`~vnfha.testing.lab.HostLab`: one network namespace each, and the
processes, sockets and pings that run in it.

A :class:`LabHost` is a name, a network namespace and an IPv4 and IPv6 address on the lab's
segment. What it starts is a :class:`LabProcess` (or, for members, a
:class:`~vnfha.testing.member_proc.MemberProcess`) that the lab tracks and kills when it closes.

Guarantees:

- Every process starts through ``ip netns exec NAME``, which execs in place: the pid the handle
  holds is the program's own, so :meth:`LabProcess.pause` (SIGSTOP), :meth:`LabProcess.kill`
  (SIGKILL) and the rest act on that one process, never on a group or by name.
- A process's stdout and stderr go to its log file in the lab's directory (no pipe to fill);
  :meth:`LabProcess.wait_output` waits for a line in it.
- :meth:`LabHost.socket` returns a socket of the host's namespace to the calling process: the
  test process talks to lab hosts without a helper process. Such sockets are the caller's to
  close.
- :meth:`LabHost.ping` sends ICMP (v4 or v6) echo requests from the host with no ``ping``
  binary, and measures round trips on ``time.monotonic()``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from socket import socket as Socket
from typing import TYPE_CHECKING, TypeVar

from vnfha.errors import VnfhaError

if TYPE_CHECKING:
    from vnfha.testing.member_proc import MemberProcess

__all__ = ["LabError", "LabHost", "LabProcess", "PingResult", "in_namespace", "namespace_pids",
           "pid_alive", "run_command"]

COMMAND_TIMEOUT_S = 30.0
"""The longest one ``ip``, ``nft`` or ``iptables`` command may take."""

_CLONE_NEWNET = 0x40000000
_NETNS_DIR = Path("/run/netns")
T = TypeVar("T")


class LabError(VnfhaError):
    """A command that builds or changes the lab failed; names the command and its output."""

    def __init__(self, command: Sequence[str], detail: str) -> None:
        super().__init__(f"{' '.join(command)}: {detail}")
        self.command = tuple(command)
        self.detail = detail


def run_command(*command: str, stdin: str | None = None,
                timeout_s: float = COMMAND_TIMEOUT_S) -> str:
    """Run ``command``; its stdout, or :class:`LabError` with its stderr if it fails."""
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True,
                              check=False, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(command, str(e)) from e
    if done.returncode != 0:
        raise LabError(command, f"exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def in_namespace(netns: str, call: Callable[[], T]) -> T:
    """``call()`` run on a fresh thread that has entered network namespace ``netns``: what it
    creates (sockets) belongs to that namespace; the calling thread's namespace is untouched."""
    results: list[T] = []
    errors: list[BaseException] = []

    def enter_and_call() -> None:
        try:
            fd = os.open(_NETNS_DIR / netns, os.O_RDONLY)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns({netns}): {os.strerror(code)}")
            finally:
                os.close(fd)
            results.append(call())
        except BaseException as e:  # handed to the caller's thread below
            errors.append(e)

    thread = threading.Thread(target=enter_and_call, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


class LabProcess:
    """A process started in a lab host (or the lab's switch), its output in ``log_path``.

    The signal methods act on ``pid`` alone and return the ``time.monotonic()`` at which they
    did, for fault timelines; on a process that already exited they do nothing.
    """

    def __init__(self, argv: Sequence[str], *, name: str, log_path: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = tuple(argv)
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=None if env is None else {**os.environ, **env}, start_new_session=True)

    @property
    def pid(self) -> int:
        """The program's pid (``ip netns exec`` execs in place)."""
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once it exited (negative: the signal that ended it), else None."""
        return self.proc.poll()

    def running(self) -> bool:
        """True until the process exits (a paused process is running)."""
        return self.proc.poll() is None

    def output(self) -> str:
        """Everything it printed so far (stdout and stderr, interleaved)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_output(self, pattern: str, timeout_s: float = 20.0) -> re.Match[str]:
        """The first match of ``pattern`` (a regex, multiline) in its output, waiting up to
        ``timeout_s``; :class:`LabError` with the output if it exits or time runs out first."""
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern, re.MULTILINE)
        while True:
            found = regex.search(self.output())
            if found:
                return found
            if not self.running() or time.monotonic() > deadline:
                why = f"exited {self.returncode}" if not self.running() else f"{timeout_s} s"
                raise LabError(self.argv, f"no {pattern!r} in its output ({why}): "
                               f"{self.output()[-4000:]}")
            time.sleep(0.01)

    def send_signal(self, signum: int) -> float:
        """Send ``signum`` to the process; the monotonic time it was sent."""
        now = time.monotonic()
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signum)
        return now

    def pause(self) -> float:
        """SIGSTOP: frozen with its sockets open (a hung process or VM)."""
        return self.send_signal(signal.SIGSTOP)

    def resume(self) -> float:
        """SIGCONT."""
        return self.send_signal(signal.SIGCONT)

    def kill(self) -> float:
        """SIGKILL and reap. Idempotent."""
        now = self.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(COMMAND_TIMEOUT_S)
        return now

    def terminate(self, timeout_s: float = 10.0) -> int | None:
        """SIGCONT and SIGTERM, then SIGKILL if it has not exited after ``timeout_s``; its exit
        status."""
        self.resume()
        self.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    def wait(self, timeout_s: float) -> int:
        """Its exit status once it exits; ``subprocess.TimeoutExpired`` after ``timeout_s``."""
        return self.proc.wait(timeout_s)


@dataclass(frozen=True, slots=True)
class PingResult:
    """What :meth:`LabHost.ping` saw: ``sent`` echo requests and one round trip (ms) per reply
    that came back in time."""

    sent: int
    rtts_ms: tuple[float, ...]

    @property
    def received(self) -> int:
        """How many requests got a reply."""
        return len(self.rtts_ms)

    @property
    def loss(self) -> float:
        """The fraction of requests without a reply, 0.0 to 1.0."""
        return 1.0 - self.received / self.sent if self.sent else 0.0

    @property
    def median_ms(self) -> float | None:
        """The median round trip of the replies, in ms (None: no reply)."""
        return statistics.median(self.rtts_ms) if self.rtts_ms else None


class LabHost:
    """One host of a lab: ``name``, network namespace ``netns``, ``ipv4`` and ``ipv6`` on
    interface ``interface``. Built by :class:`~vnfha.testing.lab.HostLab`; processes it starts
    are handed to ``track`` so that the lab kills them when it closes."""

    def __init__(self, *, name: str, index: int, netns: str, ipv4: str, ipv6: str,
                 port: str, workdir: Path,
                 track: Callable[[LabProcess | MemberProcess], None]) -> None:
        self.name = name
        self.index = index
        self.netns = netns
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.interface = "eth0"
        self.port = port
        """The host's port on the lab's bridge (in the switch namespace), where faults match."""
        self.workdir = workdir
        self._track = track
        self._started = 0

    def __repr__(self) -> str:
        return f"LabHost({self.name!r}, {self.ipv4}, {self.ipv6}, netns={self.netns!r})"

    @property
    def prefix(self) -> tuple[str, ...]:
        """The command prefix that runs a program in this host (and keeps its pid)."""
        return ("ip", "netns", "exec", self.netns)

    def address(self, family: int = socket.AF_INET) -> str:
        """``ipv4`` or, for ``socket.AF_INET6``, ``ipv6``."""
        return self.ipv6 if family == socket.AF_INET6 else self.ipv4

    def run(self, argv: Sequence[str], *, input: str | None = None, check: bool = True,
            timeout_s: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the host to completion (output captured as text); :class:`LabError`
        if it fails and ``check``."""
        command = [*self.prefix, *argv]
        try:
            done = subprocess.run(command, input=input, capture_output=True, text=True,
                                  check=False, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise LabError(command, str(e)) from e
        if check and done.returncode != 0:
            raise LabError(command, f"exit {done.returncode}: {done.stderr.strip()}")
        return done

    def popen(self, argv: Sequence[str], *, name: str | None = None,
              env: Mapping[str, str] | None = None) -> LabProcess:
        """Start ``argv`` in the host (``env`` is added to this process's environment); the
        lab kills it at close."""
        self._started += 1
        label = name or Path(argv[0]).name
        log = self.workdir / f"{self.name}.{label}.{self._started}.log"
        process = LabProcess([*self.prefix, *argv], name=label, log_path=log, env=env)
        self._track(process)
        return process

    def python(self, *args: str, name: str | None = None,
               env: Mapping[str, str] | None = None) -> LabProcess:
        """Start this interpreter with ``args`` in the host (``"-m", "module", ...``)."""
        module = args[1] if len(args) > 1 and args[0] == "-m" else "python"
        return self.popen([sys.executable, *args], name=name or module.rsplit(".", 1)[-1],
                          env=env)

    def member(self, group: str, member: str, endpoints: Sequence[str],
               *extra: str) -> MemberProcess:
        """A :class:`~vnfha.testing.member_proc.MemberProcess` in the host, its replication
        endpoint on the host's IPv4 address (unless ``extra`` has ``--listen``)."""
        from vnfha.testing.member_proc import MemberProcess  # noqa: PLC0415 - heavy imports

        listen = () if "--listen" in extra else ("--listen", f"{self.ipv4}:0")
        process = MemberProcess(group, member, endpoints, *listen, *extra, prefix=self.prefix)
        self._track(process)
        return process

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM,
               proto: int = 0) -> Socket:
        """A new socket in the host's namespace, for the calling process to use."""
        return in_namespace(self.netns, lambda: socket.socket(family, kind, proto))

    def connect(self, address: str, port: int, timeout_s: float = 2.0) -> Socket:
        """A TCP connection from the host to ``address:port`` (IPv4 or IPv6); ``OSError``
        (``TimeoutError`` included) if it cannot be made within ``timeout_s``."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = self.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout_s)
            sock.connect((address, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def ping(self, address: str, *, count: int = 5, interval_s: float = 0.05,
             timeout_s: float = 1.0, payload_bytes: int = 56) -> PingResult:
        """Send ``count`` ICMP echo requests to ``address`` every ``interval_s`` and wait up to
        ``timeout_s`` after the last for replies. Uses an unprivileged ICMP socket, which the lab
        allows in every host (``net.ipv4.ping_group_range``)."""
        v6 = ":" in address
        family = socket.AF_INET6 if v6 else socket.AF_INET
        proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
        request, reply = (128, 129) if v6 else (8, 0)
        sock = self.socket(family, socket.SOCK_DGRAM, proto)
        sent_at: dict[int, float] = {}
        rtts: dict[int, float] = {}
        try:
            start = time.monotonic()
            for seq in range(count):
                while (wait := start + seq * interval_s - time.monotonic()) > 0:
                    _collect(sock, wait, reply, sent_at, rtts)
                sent_at[seq] = time.monotonic()
                header = struct.pack("!BBHHH", request, 0, 0, 0, seq)
                sock.sendto(header + bytes(payload_bytes), (address, 0))
            end = time.monotonic() + timeout_s
            while len(rtts) < count and (wait := end - time.monotonic()) > 0:
                _collect(sock, wait, reply, sent_at, rtts)
        finally:
            sock.close()
        return PingResult(sent=count, rtts_ms=tuple(rtts[s] for s in sorted(rtts)))

    def pids(self) -> list[int]:
        """Every process whose network namespace is this host's."""
        return namespace_pids(self.netns)


def _collect(sock: Socket, wait_s: float, reply: int, sent_at: dict[int, float],
             rtts: dict[int, float]) -> None:
    """Read the echo replies that arrive within ``wait_s`` into ``rtts`` (seq -> ms)."""
    readable, _, _ = select.select([sock], [], [], wait_s)
    if not readable:
        return
    data = sock.recv(65535)
    now = time.monotonic()
    if len(data) >= 8 and data[0] == reply:
        seq = struct.unpack_from("!H", data, 6)[0]
        if seq in sent_at and seq not in rtts:
            rtts[seq] = (now - sent_at[seq]) * 1000


def namespace_pids(netns: str) -> list[int]:
    """The pids in network namespace ``netns`` (``ip netns pids``); empty if it is gone."""
    done = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True,
                          check=False, timeout=COMMAND_TIMEOUT_S)
    return [int(word) for word in done.stdout.split() if word.isdigit()]



def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists and is neither a zombie nor dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
