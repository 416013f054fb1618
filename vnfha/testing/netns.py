"""Network namespaces for partition tests: each member in its own namespace, isolable by nftables.

:class:`NetLab` builds, as root, a bridge in the root namespace with an address (where etcd
listens: ``lab.host_address``) and one network namespace per slot, joined to the bridge by a veth
pair. A member process runs in slot ``i`` under ``lab.prefix(i)`` (``ip netns exec NAME``, which
execs in place, so the pid is the member's) and listens on ``lab.address(i)``.
:meth:`NetLab.isolate` drops every packet in and out of a slot except on loopback (nftables rules
in that namespace: its peers and etcd see silence, not refusals); :meth:`NetLab.heal` removes them.

Guarantees:

- Every name (namespaces, bridge, veths) carries a token unique to this lab, and the lab deletes
  exactly the names it created, in :meth:`NetLab.close`, at interpreter exit for a lab left open,
  and on a failed :meth:`NetLab.start`. It never deletes anything by pattern.
- :func:`unavailable` says why a lab cannot be built here (not root, no ``ip`` or ``nft``), so
  callers skip with that reason.
- The subnet is a /24 in 10.0.0.0/8 that no interface of the root namespace uses.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import secrets
import shutil
import subprocess
import weakref
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from vnfha.errors import VnfhaError

__all__ = ["NetLab", "NetLabError", "unavailable"]

_TABLE = "vnfha_isolate"
_ISOLATE = f"""table inet {_TABLE} {{
  chain input {{ type filter hook input priority -300; policy drop; iif "lo" accept; }}
  chain output {{ type filter hook output priority -300; policy drop; oif "lo" accept; }}
}}
"""
"""Drop everything in and out of a namespace but loopback (the member's own process is fine)."""

_CUT_TABLE = "vnfha_cut"
"""One-way cuts out of a namespace (:meth:`NetLab.cut`)."""

_COMMAND_TIMEOUT_S = 20.0


class NetLabError(VnfhaError):
    """A command building or changing the lab failed; names the command and its output."""

    def __init__(self, command: Sequence[str], detail: str) -> None:
        super().__init__(f"{' '.join(command)}: {detail}")
        self.command = tuple(command)
        self.detail = detail


def unavailable() -> str | None:
    """Why a NetLab cannot be built in this process (a reason to skip), or None if it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        return f"needs {' and '.join(missing)} (Debian packages iproute2, nftables)"
    return None


_open_labs: weakref.WeakSet[NetLab] = weakref.WeakSet()


@atexit.register
def _close_leftovers() -> None:
    for lab in list(_open_labs):
        lab.close()


class NetLab:
    """``size`` namespaces on one bridge (see the module docstring). Use ``with``."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size={size}: a lab needs at least one namespace")
        self.size = size
        self.token = secrets.token_hex(3)
        self.bridge = f"vhb{self.token}"
        self.namespaces = [f"vnfha-{self.token}-{i}" for i in range(size)]
        self._network = ipaddress.IPv4Network("10.0.0.0/24")
        self._made_links: list[str] = []
        self._made_namespaces: list[str] = []
        self._isolated: set[int] = set()
        self._cut: set[int] = set()

    @property
    def host_address(self) -> str:
        """The bridge's address in the root namespace: every namespace reaches it."""
        return str(self._network[1])

    def address(self, slot: int) -> str:
        """Namespace ``slot``'s own address."""
        return str(self._network[10 + slot])

    def prefix(self, slot: int) -> list[str]:
        """The command prefix that runs a program inside namespace ``slot``."""
        return ["ip", "netns", "exec", self.namespaces[slot]]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Create the bridge, the namespaces and their links; NetLabError (after removing what
        was made) if a command fails."""
        self._network = _free_subnet()
        _open_labs.add(self)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        cidr = self._network.prefixlen
        self._made_links.append(self.bridge)
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.host_address}/{cidr}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for slot, ns in enumerate(self.namespaces):
            outer, inner = f"vh{self.token}{slot}h", f"vh{self.token}{slot}n"
            self._made_namespaces.append(ns)
            _run("ip", "netns", "add", ns)
            self._made_links.append(outer)
            _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            _run("ip", "link", "set", outer, "master", self.bridge)
            _run("ip", "link", "set", outer, "up")
            _run("ip", "link", "set", inner, "netns", ns)
            _run("ip", "-n", ns, "addr", "add", f"{self.address(slot)}/{cidr}", "dev", inner)
            _run("ip", "-n", ns, "link", "set", inner, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")

    def close(self) -> None:
        """Delete every namespace and link this lab made, by name. Idempotent; never raises.
        Processes still running in a namespace keep it alive, unnamed, until they exit: kill
        them first."""
        for ns in reversed(self._made_namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False,
                           timeout=_COMMAND_TIMEOUT_S)
        for link in reversed(self._made_links):
            if _link_exists(link):
                subprocess.run(["ip", "link", "del", link], capture_output=True, check=False,
                               timeout=_COMMAND_TIMEOUT_S)
        self._made_namespaces.clear()
        self._made_links.clear()
        self._isolated.clear()
        self._cut.clear()
        _open_labs.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- faults ----------------------------------------------------------------------------------

    def isolate(self, slot: int) -> None:
        """From the return on, nothing enters or leaves namespace ``slot`` but loopback."""
        if slot in self._isolated:
            return
        _run(*self.prefix(slot), "nft", "-f", "-", stdin=_ISOLATE)
        self._isolated.add(slot)

    def cut(self, slot: int, to: int) -> None:
        """From the return on, nothing namespace ``slot`` sends to namespace ``to`` arrives
        (one way: ``to``'s packets still reach ``slot``, and both still reach the bridge's
        address, where etcd listens)."""
        rules = (f"add table inet {_CUT_TABLE}\n"
                 f"add chain inet {_CUT_TABLE} output {{ type filter hook output priority -300; "
                 "}\n"
                 f"add rule inet {_CUT_TABLE} output ip daddr {self.address(to)} drop\n")
        _run(*self.prefix(slot), "nft", "-f", "-", stdin=rules)
        self._cut.add(slot)

    def heal(self, slot: int) -> None:
        """Remove :meth:`isolate`'s and :meth:`cut`'s rules from namespace ``slot``."""
        if slot in self._cut:
            _run(*self.prefix(slot), "nft", "delete", "table", "inet", _CUT_TABLE)
            self._cut.discard(slot)
        if slot not in self._isolated:
            return
        _run(*self.prefix(slot), "nft", "delete", "table", "inet", _TABLE)
        self._isolated.discard(slot)

    def isolated(self, slot: int) -> bool:
        """True while namespace ``slot`` is isolated."""
        return slot in self._isolated


def _run(*command: str, stdin: str | None = None) -> None:
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True,
                              check=False, timeout=_COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NetLabError(command, str(e)) from e
    if done.returncode != 0:
        raise NetLabError(command, f"exit {done.returncode}: {done.stderr.strip()}")


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True, check=False,
                          timeout=_COMMAND_TIMEOUT_S).returncode == 0


def _free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that overlaps no address or route of the root namespace."""
    used = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                          check=False, timeout=_COMMAND_TIMEOUT_S).stdout
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                            text=True, check=False, timeout=_COMMAND_TIMEOUT_S).stdout
    taken = [ipaddress.IPv4Network(word, strict=False)
             for word in (used + " " + routes).split() if "/" in word and word[0].isdigit()]
    for _ in range(100):
        candidate = ipaddress.IPv4Network(
            f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}.0/24")
        if not any(candidate.overlaps(net) for net in taken):
            return candidate
    raise NetLabError(["ip", "addr"], "no free 10.x.y.0/24 subnet found in 100 tries")
