"""vnfha's benchmarks: each measures one thing on this machine and prints one JSON object with
its figures against DESIGN.md's targets.

- ``store``: etcd client latencies (put, get, txn, keepalive, put-to-watch) on loopback.
- ``roles``: switchover, clean-stop and crash handover times (members in one process).
- ``checkpoint``: replicated write throughput and ``Ack.ONE`` latency, active and standby.
- ``failover``: every failover path with member processes on a 3-member etcd: takeover times,
  lost acknowledged writes, history checks.
- ``fence``: the hang path with an NFVI bridge (SIGSTOP, fence, takeover) against 600 ms, and
  next to it the takeover on the bridge's VM_CRASHED report of the hung active's host failure.
- ``fleet``: N groups of real members on one 3-member etcd, growing: etcd's load and CPU,
  keepalive round trips, lost leases, and a sample group's failover against the group alone.
- ``hosts``: the pair on two hosts of a lab (root) behind a service address: the client's
  outage through the address after SIGKILL, SIGSTOP and a partition of the active's host.

Run one as ``vnfha bench NAME [OPTIONS]`` (or ``python benchmarks/NAME.py`` from a checkout);
``vnfha bench NAME --help`` says what it measures and its targets. Exit status 0 when every
target is met and every check passed, 1 otherwise, 2 for bad options. Each starts the etcd it
needs (``store`` may use one given with ``--endpoint``) and stops everything it started.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol

__all__ = ["BENCHMARKS", "Main", "load"]

BENCHMARKS: dict[str, str] = {
    "store": "etcd client latencies (put, get, txn, keepalive, put-to-watch) on loopback",
    "roles": "switchover, clean-stop and crash handover times against the budgets",
    "checkpoint": "replicated write throughput and Ack.ONE latency, active and standby",
    "failover": "failover paths with member processes: takeover times, lost writes, histories",
    "fence": "the hang path with an NFVI bridge: SIGSTOP, fence, takeover, against 600 ms; "
             "and the takeover on the bridge's VM_CRASHED report",
    "fleet": "N groups on one 3-member etcd: etcd load, lost leases, failover vs one group",
    "hosts": "the pair on two lab hosts behind a service address (root): the client's outage "
             "after SIGKILL, SIGSTOP and a partition, stale replies, lost increments",
}
"""Each benchmark's name (its module in this package) and what it measures, in one line."""


class Main(Protocol):
    """A benchmark's entry point: parses ``argv`` (None: ``sys.argv[1:]``) with ``prog`` as the
    command's name in usage lines, runs, prints its JSON and returns the exit status."""

    def __call__(self, argv: Sequence[str] | None = None, *, prog: str | None = None) -> int: ...


def load(name: str) -> Main:
    """The ``main(argv, prog=...)`` of benchmark ``name`` (a key of :data:`BENCHMARKS`); its
    module is imported only now, as each imports what it exercises (grpc, the NFVI bridge)."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    main: Main = importlib.import_module(f"vnfha.apps.bench.{name}").main
    return main
