"""A lab of hosts: network namespaces on one Linux bridge, with network faults, for tests,
benchmarks and demos. Needs root.

``HostLab(3)`` builds, on :meth:`HostLab.start` (or ``with``):

- a switch namespace ``<prefix><pid>-<n>-sw`` holding bridge ``br0`` and the lab's nftables
  table ``bridge <prefix><pid>_<n>``, where every fault acts;
- per host ``i`` a namespace ``<prefix><pid>-<n>-<name>`` (names ``h0``, ``h1``, ... unless
  given) with loopback up and an interface ``eth0`` carrying ``198.51.100.<10+i>/24`` and
  ``fd00:5a::<10+i>/64``, the other end of a veth pair whose switch end ``p<i>`` is a port of
  the bridge.

``<pid>`` is the owner's pid and ``<n>`` counts the labs it made. Nothing is created in the root
namespace, so labs of several processes (even with the same addresses) never collide, and the
machine's own interfaces and firewall are untouched; the test process reaches the hosts through
:meth:`LabHost.socket`, or by running programs in them (:meth:`LabHost.run`,
:meth:`LabHost.popen`, :meth:`LabHost.python`, :meth:`LabHost.member`), and starts services
across them with :meth:`HostLab.etcd` and :meth:`HostLab.bridge`.

Faults (:mod:`~vnfha.testing.lab_faults` says exactly which packets each rule matches), each
returning a :class:`~vnfha.testing.lab_faults.Fault` with ``undo()``:

- :meth:`HostLab.partition`: drop every IPv4 and IPv6 packet from ``a`` to ``b``, ``b`` to
  ``a`` or both ways (``b=None``: to and from every other host). ARP and neighbour discovery
  still pass, so the partition is silence, not an unreachable host.
- :meth:`HostLab.drop`: drop that fraction of the flow's IPv4 and IPv6 packets, at random,
  each packet drawn independently.
- :meth:`HostLab.delay`: hold each of the flow's IPv4 and IPv6 packets (neighbour discovery
  excepted) ``ms`` milliseconds, plus jitter, in a user-space nfqueue delayer
  (:mod:`~vnfha.testing.lab_delay`; no ``netem`` in this kernel) before it goes on unchanged.
  The delay is per direction: ``delay(a, b, 100)`` both ways adds 200 ms to a round trip.
- :meth:`HostLab.heal` undoes every fault declared on a host, a pair, or all; and
  :class:`LabProcess` (``pause``, ``resume``, ``kill``) and the members' and etcd's own handles
  stop and kill single processes by pid.

Cleanup guarantees:

- :meth:`HostLab.close` (also at the end of ``with``, at interpreter exit for a lab left open,
  and after a failed :meth:`HostLab.start`) SIGKILLs every process in the lab's namespaces,
  tracked or not, deletes every namespace, which takes the bridge, the veths, the nftables and
  iptables rules and the nfqueues with it, and removes the lab's directory (logs, etcd data).
  It is idempotent and never raises.
- A SIGKILLed owner cannot clean up: :func:`sweep`, run by every :meth:`HostLab.start`, removes
  the namespaces, processes and directories of labs (of the same prefix) whose owner pid is
  dead or a zombie. A live owner's lab is never touched. (If the dead owner's pid was reused,
  its leftovers wait for the next sweep after that process exits.)
- :func:`unavailable` says why a lab cannot be built here (not root, a tool missing), so tests
  skip with that reason; ``VNFHA_REQUIRE_NETNS=1`` (:data:`REQUIRE_ENV`) asks them to fail
  instead, as CI does.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from vnfha.testing import lab_delay
from vnfha.testing.lab_faults import (
    ND_RULES,
    Direction,
    Fault,
    iptables_rules,
    nft_faults,
    nft_table,
)
from vnfha.testing.lab_host import (
    LabError,
    LabHost,
    LabProcess,
    PingResult,
    in_namespace,
    namespace_pids,
    pid_alive,
    run_command,
)
from vnfha.testing.lab_services import LabBridge, LabEtcd, start_bridge

if TYPE_CHECKING:
    from vnfha.testing.member_proc import MemberProcess

__all__ = ["REQUIRE_ENV", "Fault", "HostLab", "LabBridge", "LabError", "LabEtcd", "LabHost",
           "LabProcess", "PingResult", "sweep", "unavailable"]

REQUIRE_ENV = "VNFHA_REQUIRE_NETNS"
"""Set to ``1``, tests that need a lab fail instead of skipping when :func:`unavailable`."""

MAX_HOSTS = 200
_PREFIX = re.compile(r"[a-z]{1,8}")
"""Letters only: the owner's pid follows it, and a sweep must read where the prefix ends."""
_HOST_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")
_SWITCH = "sw"
_DIR_SUFFIX = ".vnfha-lab"
_DRAIN_MARGIN_S = 2.0
_lab_numbers = itertools.count()


def unavailable(*, delay: bool = False) -> str | None:
    """Why a :class:`HostLab` cannot be built in this process (a reason to skip), or None.
    ``delay=True`` also asks for what :meth:`HostLab.delay` needs: ``iptables``,
    ``ip6tables`` and the kernel's ``br_netfilter``."""
    if os.geteuid() != 0:
        return "a host lab needs root (network namespaces, bridges, nftables)"
    tools = ("ip", "nft", *(("iptables", "ip6tables") if delay else ()))
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return (f"a host lab needs {', '.join(missing)} (Debian packages iproute2, nftables"
                f"{', iptables' if delay else ''})")
    if delay and not Path("/proc/sys/net/bridge").is_dir():
        return "lab delays need the kernel's br_netfilter (modprobe br_netfilter)"
    return None


def _work_root() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def sweep(prefix: str = "vl") -> list[str]:
    """Remove what labs named with ``prefix`` left behind when their owner died: SIGKILL the
    processes in their namespaces, delete the namespaces, remove their directories. Labs whose
    owner is alive are left alone. Returns the names removed."""
    namespaces = run_command("ip", "netns", "list").split()
    owned = re.compile(rf"{re.escape(prefix)}(\d+)-\d+-\w+")
    removed = []
    for name in namespaces:
        match = owned.fullmatch(name)
        if match and not pid_alive(int(match.group(1))):
            _remove_namespace(name)
            removed.append(name)
    for root in {_work_root(), Path(tempfile.gettempdir())}:
        for path in root.glob(f"{prefix}*{_DIR_SUFFIX}"):
            match = re.fullmatch(rf"{re.escape(prefix)}(\d+)-\d+{re.escape(_DIR_SUFFIX)}",
                                 path.name)
            if match and not pid_alive(int(match.group(1))):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(str(path))
    return removed


def _remove_namespace(name: str) -> None:
    for pid in namespace_pids(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(LabError):
        run_command("ip", "netns", "del", name)


_open_labs: weakref.WeakSet[HostLab] = weakref.WeakSet()


@atexit.register
def _close_leftovers() -> None:
    for lab in list(_open_labs):
        lab.close()


class HostLab:
    """``hosts`` hosts (a count, or their names) on one bridge; see the module docstring.
    Use ``with``, or :meth:`start` and :meth:`close`."""

    def __init__(self, hosts: int | Sequence[str] = 3, *, name_prefix: str = "vl") -> None:
        names = [f"h{i}" for i in range(hosts)] if isinstance(hosts, int) else list(hosts)
        if not 1 <= len(names) <= MAX_HOSTS:
            raise ValueError(f"{len(names)} hosts: a lab has 1 to {MAX_HOSTS}")
        if not _PREFIX.fullmatch(name_prefix):
            raise ValueError(f"name_prefix={name_prefix!r}: 1 to 8 lowercase letters")
        bad = [n for n in names if not _HOST_NAME.fullmatch(n) or n == _SWITCH]
        if bad or len(set(names)) != len(names):
            raise ValueError(f"host names {names}: distinct, a lowercase letter then up to 15 "
                             f"of [a-z0-9_], not {_SWITCH!r}")
        self.prefix = name_prefix
        self.name = f"{name_prefix}{os.getpid()}-{next(_lab_numbers)}"
        """The lab's base name: every namespace and its directory start with it."""
        self.table = self.name.replace("-", "_")
        """The nftables table (family ``bridge``, in the switch namespace) holding the faults."""
        self.switch_netns = f"{self.name}-{_SWITCH}"
        self.workdir = _work_root() / f"{self.name}{_DIR_SUFFIX}"
        """Logs of the lab's processes and its etcd data; removed at close."""
        self._lock = threading.RLock()
        self._processes: list[LabProcess | MemberProcess] = []
        self._etcds: list[LabEtcd] = []
        self._faults: list[Fault] = []
        self._delayers: dict[Fault, tuple[LabProcess, list[list[str]]]] = {}
        self._queues = itertools.count(1)
        self._made: list[str] = []
        self._br_netfilter = False
        self.hosts = tuple(
            LabHost(name=n, index=i, netns=f"{self.name}-{n}", ipv4=f"198.51.100.{10 + i}",
                    ipv6=f"fd00:5a::{10 + i}", port=f"p{i}", workdir=self.workdir,
                    track=self._track)
            for i, n in enumerate(names))

    def _track(self, process: LabProcess | MemberProcess) -> None:
        with self._lock:
            self._processes.append(process)

    def host(self, which: LabHost | str | int) -> LabHost:
        """A host by name, index or itself (KeyError if the lab has no such host)."""
        if isinstance(which, LabHost):
            if which not in self.hosts:
                raise KeyError(f"{which!r} is not a host of lab {self.name}")
            return which
        for host in self.hosts:
            if which in (host.name, host.index):
                return host
        raise KeyError(f"lab {self.name} has no host {which!r}")

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Sweep the leftovers of dead owners, then build the lab; :class:`LabError` (after
        removing what was made) if a command fails."""
        reason = unavailable()
        if reason is not None:
            raise LabError(["HostLab.start"], reason)
        sweep(self.prefix)
        _open_labs.add(self)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        switch = self.switch_netns
        self._made.append(switch)
        run_command("ip", "netns", "add", switch)
        run_command("ip", "-n", switch, "link", "add", "br0", "type", "bridge",
                    "mcast_snooping", "0")
        run_command("ip", "-n", switch, "link", "set", "br0", "up")
        run_command("ip", "netns", "exec", switch, "nft", "-f", "-", stdin=nft_table(self.table))
        for host in self.hosts:
            self._made.append(host.netns)
            run_command("ip", "netns", "add", host.netns)
            run_command("ip", "-n", host.netns, "link", "add", host.interface, "type", "veth",
                        "peer", "name", host.port, "netns", switch)
            run_command("ip", "-n", switch, "link", "set", host.port, "master", "br0", "up")
            for address in (f"{host.ipv4}/24", f"{host.ipv6}/64"):
                run_command("ip", "-n", host.netns, "addr", "add", address, "dev",
                            host.interface, *(("nodad",) if ":" in address else ()))
            run_command("ip", "-n", host.netns, "link", "set", host.interface, "up")
            run_command("ip", "-n", host.netns, "link", "set", "lo", "up")
            # every group may use ICMP sockets (LabHost.ping, and ping without privileges)
            _set_sysctl(host.netns, "net/ipv4/ping_group_range", "0 2147483647")

    def close(self) -> None:
        """Kill every process of the lab and delete everything it made (see the module
        docstring). Idempotent; never raises."""
        with self._lock:
            for etcd in self._etcds:
                with contextlib.suppress(Exception):
                    etcd.stop()
            for process in reversed(self._processes):
                with contextlib.suppress(Exception):
                    process.kill()
            for name in reversed(self._made):
                with contextlib.suppress(Exception):
                    _remove_namespace(name)
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._etcds.clear()
            self._processes.clear()
            self._faults.clear()
            self._delayers.clear()
            self._made.clear()
            _open_labs.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- services --------------------------------------------------------------------------------

    def etcd(self, hosts: Sequence[LabHost | str] | None = None, *, heartbeat_ms: int = 10,
             election_ms: int = 100, timeout_s: float = 30.0,
             extra_args: Sequence[str] = ()) -> LabEtcd:
        """An etcd cluster with one member on each of ``hosts`` (default: the first host),
        started and healthy; stopped at close. Its ``endpoints`` serve the lab's hosts. A host
        runs one member at a time (the ports are fixed: 2379 client, 2380 peer, 2381 metrics);
        ValueError for a host whose member is still running."""
        chosen = [self.host(h) for h in hosts] if hosts else [self.hosts[0]]
        with self._lock:
            busy = {m.name for e in self._etcds for m in e.members if m.is_running()}
            if busy & {h.name for h in chosen}:
                raise ValueError(f"hosts {sorted(busy)} already run an etcd member")
            number = len(self._etcds)
            etcd = LabEtcd(chosen, data_root=self.workdir / f"etcd{number}",
                           heartbeat_ms=heartbeat_ms, election_ms=election_ms,
                           extra_args=extra_args)
            self._etcds.append(etcd)
        return etcd.start(timeout_s)

    def bridge(self, host: LabHost | str, *args: str, port: int = 50070,
               timeout_s: float = 30.0) -> LabBridge:
        """``vnfha bridge serve --driver sim`` (plus ``args``) serving on ``host``'s IPv4
        address at ``port``; killed at close."""
        return start_bridge(self.host(host), *args, port=port, timeout_s=timeout_s)

    # -- faults ----------------------------------------------------------------------------------

    @property
    def faults(self) -> tuple[Fault, ...]:
        """The faults in force, oldest first."""
        with self._lock:
            return tuple(self._faults)

    def partition(self, a: LabHost | str, b: LabHost | str | None = None, *,
                  direction: Direction = "both") -> Fault:
        """From the return on, the IPv4 and IPv6 packets between ``a`` and ``b`` (every
        other host if None) in ``direction`` are dropped."""
        return self._add_rule_fault(Fault("partition", *self._ends(a, b), direction,
                                          on_undo=self._undo))

    def drop(self, a: LabHost | str, b: LabHost | str | None, rate: float, *,
             direction: Direction = "both") -> Fault:
        """From the return on, each IPv4 and IPv6 packet between ``a`` and ``b`` (every
        other host if None) in ``direction`` is dropped with probability ``rate``."""
        return self._add_rule_fault(Fault("drop", *self._ends(a, b), direction, rate=rate,
                                          on_undo=self._undo))

    def delay(self, a: LabHost | str, b: LabHost | str | None, ms: float, *,
              jitter_ms: float = 0.0, direction: Direction = "both") -> Fault:
        """From the return on, each IPv4 and IPv6 packet between ``a`` and ``b`` (every
        other host if None) in ``direction`` is held ``ms`` (+- ``jitter_ms``) before it goes
        on. Each direction is delayed: both ways add ``2 * ms`` to a round trip."""
        reason = unavailable(delay=True)
        if reason is not None:
            raise LabError(["HostLab.delay"], reason)
        with self._lock:
            fault = Fault("delay", *self._ends(a, b), direction, delay_ms=ms,
                          jitter_ms=jitter_ms, queue=next(self._queues), on_undo=self._undo)
            self._enable_br_netfilter()
            delayer = LabProcess(
                # run as a file: no vnfha imports, a faster start
                ["ip", "netns", "exec", self.switch_netns, sys.executable, lab_delay.__file__,
                 "--queue", str(fault.queue), "--delay-ms", str(ms), "--jitter-ms",
                 str(jitter_ms)],
                name=f"delay-q{fault.queue}", log_path=self.workdir / f"delay-q{fault.queue}.log")
            self._processes.append(delayer)
            rules = iptables_rules(fault, self._ports())
            self._delayers[fault] = (delayer, [])
            self._faults.append(fault)
            try:
                delayer.wait_output(r"^ready$")
                for tool in ("iptables", "ip6tables"):
                    for rule in rules:
                        self._switch(tool, "-w", "-A", *rule)
                        self._delayers[fault][1].append([tool, *rule])
            except BaseException:
                self._undo(fault)
                raise
        return fault

    def heal(self, a: LabHost | str | None = None, b: LabHost | str | None = None) -> int:
        """Undo every fault declared on host ``a`` (either end), on the pair ``a``, ``b``, or,
        with no argument, every fault; the number undone."""
        name_a, name_b = (self.host(a).name if a is not None else None,
                          self.host(b).name if b is not None else None)
        chosen = [f for f in self.faults if f.between(name_a, name_b)]
        for fault in chosen:
            self._undo(fault)
        return len(chosen)

    def _ends(self, a: LabHost | str, b: LabHost | str | None) -> tuple[str, str | None]:
        return self.host(a).name, (self.host(b).name if b is not None else None)

    def _ports(self) -> dict[str, str]:
        return {host.name: host.port for host in self.hosts}

    def _switch(self, *argv: str, stdin: str | None = None) -> str:
        return run_command("ip", "netns", "exec", self.switch_netns, *argv, stdin=stdin)

    def _add_rule_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
            try:
                self._switch("nft", "-f", "-",
                             stdin=nft_faults(self.table, self._faults, self._ports()))
            except BaseException:
                self._faults.remove(fault)
                raise
        return fault

    def _undo(self, fault: Fault) -> None:
        with self._lock:
            if fault not in self._faults:
                return
            self._faults.remove(fault)
            if fault.kind != "delay":
                self._switch("nft", "-f", "-",
                             stdin=nft_faults(self.table, self._faults, self._ports()))
                return
            delayer, installed = self._delayers.pop(fault)
            for tool, *rule in installed:
                self._switch(tool, "-w", "-D", *rule)
            # the packets it holds still go out when due; then it exits
            delayer.terminate((fault.delay_ms + fault.jitter_ms) / 1000 + _DRAIN_MARGIN_S)

    def _enable_br_netfilter(self) -> None:
        """Make bridged IPv4 and IPv6 packets traverse the switch's iptables (per namespace),
        neighbour discovery exempted from delays."""
        if self._br_netfilter:
            return
        for family in ("iptables", "ip6tables"):
            _set_sysctl(self.switch_netns, f"net/bridge/bridge-nf-call-{family}", "1")
        for rule in ND_RULES:
            self._switch("ip6tables", "-w", "-A", *rule)
        self._br_netfilter = True


def _set_sysctl(netns: str, name: str, value: str) -> None:
    """Set sysctl ``name`` (a path under /proc/sys) in network namespace ``netns``."""
    path = Path("/proc/sys") / name
    in_namespace(netns, lambda: path.write_text(f"{value}\n"))
