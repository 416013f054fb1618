"""The faults of a :class:`~vnfha.testing.lab.HostLab` as values, and the rules that make them.

Pure: this module builds rule text and argument lists; the lab runs them. A fault names one
host ``a``, optionally a second ``b`` (``None``: every other host), and a direction:
``"a->b"`` (packets from ``a`` to ``b``), ``"b->a"`` (from ``b`` to ``a``) or ``"both"``.

Where they act: every packet between two hosts crosses the lab's bridge, which lives in the
lab's own switch namespace; each host's bridge port is named ``p<index>``, so a fault matches
the ports a packet enters and leaves by, whatever its addresses.

- ``partition`` and ``drop`` are nftables rules in table ``bridge <lab>`` of the switch
  namespace (chain ``faults``, jumped to from the ``forward`` hook at the filter priority).
  They match IPv4 and IPv6 frames only, and never neighbour discovery (ICMPv6 types 133-137):
  ARP and ND go on working, so hosts keep resolving each other and a cut looks like silence
  (packets vanish), not like ``EHOSTUNREACH``; healing is immediate, with no neighbour entry to
  relearn.
- ``delay`` is an ``iptables``/``ip6tables`` ``NFQUEUE`` rule in the switch namespace's
  ``FORWARD`` chain, which bridged IPv4 and IPv6 packets traverse (``br_netfilter``), matching
  the bridge ports with ``-m physdev``; a :mod:`~vnfha.testing.lab_delay` process holds each
  queued packet for the delay. (nftables' own ``queue`` statement is not built into this kernel,
  and neither is ``netem``.) Every IPv4 and IPv6 packet of the flow is delayed, ND included, as
  on a slow link.

Several faults may cover one packet: drops and partitions apply in turn (two 50 % drop rates
lose 75 %), a packet is dropped before it would be delayed, and the first delay installed that
matches a packet is the only one it gets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

__all__ = ["DIRECTIONS", "ND_RULES", "Direction", "Fault", "FaultKind", "iptables_rules",
           "nft_faults", "nft_table"]

Direction = Literal["both", "a->b", "b->a"]
DIRECTIONS: tuple[Direction, ...] = ("both", "a->b", "b->a")
FaultKind = Literal["partition", "drop", "delay"]

FAULTS_CHAIN = "faults"
_ND_TYPES = ("nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
             "nd-redirect")
ND_RULES = [["FORWARD", "-p", "ipv6-icmp", "--icmpv6-type", str(kind), "-j", "ACCEPT"]
            for kind in range(133, 138)]
"""``ip6tables`` rule specifications, ahead of any delay, that let neighbour discovery
(router and neighbour solicitations and advertisements, redirects) through undelayed."""
_RATE_SCALE = 10_000
"""Drop rates are drawn from ``numgen random mod 10000``: a resolution of 0.01 %."""


@dataclass(frozen=True, slots=True, eq=False)
class Fault:
    """One fault in force in a lab (see the module docstring for what each kind does).

    ``undo()`` removes it (idempotent); used as a context manager, it is undone on exit.
    Equality is identity: two equal-looking faults are two faults, undone separately.
    """

    kind: FaultKind
    a: str
    b: str | None
    direction: Direction = "both"
    rate: float = 0.0
    """``drop``: the fraction of matching packets dropped, 0.0 to 1.0."""
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    """``delay``: each packet is held ``delay_ms`` plus a uniform draw in +-``jitter_ms``."""
    queue: int = 0
    """``delay``: the nfqueue number its delayer serves."""
    on_undo: Callable[[Fault], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction={self.direction!r}: one of {', '.join(DIRECTIONS)}")
        if self.b == self.a:
            raise ValueError(f"a fault between {self.a!r} and itself")
        if self.kind == "drop" and not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate={self.rate}: a fraction from 0.0 to 1.0")
        if self.kind == "delay" and not 0.0 <= self.jitter_ms <= self.delay_ms:
            raise ValueError(f"delay_ms={self.delay_ms}, jitter_ms={self.jitter_ms}: need "
                             "0 <= jitter_ms <= delay_ms")

    def flows(self) -> tuple[tuple[str | None, str | None], ...]:
        """The (from, to) host pairs whose packets it covers; ``None`` is any other host."""
        forward, backward = (self.a, self.b), (self.b, self.a)
        if self.direction == "a->b":
            return (forward,)
        if self.direction == "b->a":
            return (backward,)
        return forward, backward

    def between(self, a: str | None, b: str | None = None) -> bool:
        """True when the fault was declared on host ``a`` (either end; any fault when ``a`` is
        None) and, if ``b`` is given, on the pair ``a``, ``b`` in either order."""
        if a is None:
            return True
        if b is None:
            return a in (self.a, self.b)
        return {a, b} == {self.a, self.b}

    def undo(self) -> None:
        """Remove the fault from its lab; nothing if it is already gone."""
        if self.on_undo is not None:
            self.on_undo(self)

    def __enter__(self) -> Fault:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.undo()


def nft_table(table: str) -> str:
    """The nft script that creates the lab's (empty) fault table in the switch namespace."""
    return (f"table bridge {table} {{\n"
            f"  chain {FAULTS_CHAIN} {{\n  }}\n"
            "  chain forward {\n"
            "    type filter hook forward priority filter; policy accept;\n"
            f"    icmpv6 type {{ {_ND_TYPES} }} accept\n"
            f"    jump {FAULTS_CHAIN}\n"
            "  }\n"
            "}\n")


def _match(src: str | None, dst: str | None, port: Mapping[str, str]) -> str:
    words = [f'iifname "{port[src]}"' if src else "", f'oifname "{port[dst]}"' if dst else ""]
    return " ".join(word for word in words if word)


def nft_faults(table: str, faults: list[Fault], port: Mapping[str, str]) -> str:
    """One nft transaction that replaces the fault chain's rules with those of the
    ``partition`` and ``drop`` faults in ``faults`` (``port``: host name -> bridge port)."""
    lines = [f"flush chain bridge {table} {FAULTS_CHAIN}"]
    for fault in faults:
        if fault.kind == "delay":
            continue
        verdict = "drop" if fault.kind == "partition" else (
            f"numgen random mod {_RATE_SCALE} < {round(fault.rate * _RATE_SCALE)} drop")
        lines += [f"add rule bridge {table} {FAULTS_CHAIN} {_match(src, dst, port)} "
                  f"ether type {{ ip, ip6 }} counter {verdict}"
                  for src, dst in fault.flows()]
    return "\n".join(lines) + "\n"


def iptables_rules(fault: Fault, port: Mapping[str, str]) -> list[list[str]]:
    """The ``FORWARD`` rule specifications (after ``-A``/``-D``) that queue a ``delay``
    fault's packets to its delayer; the same for ``iptables`` and ``ip6tables``."""
    rules = []
    for src, dst in fault.flows():
        ports = [*(("--physdev-in", port[src]) if src else ()),
                 *(("--physdev-out", port[dst]) if dst else ())]
        rules.append(["FORWARD", "-m", "physdev", "--physdev-is-bridged", *ports,
                      "-j", "NFQUEUE", "--queue-num", str(fault.queue)])
    return rules
