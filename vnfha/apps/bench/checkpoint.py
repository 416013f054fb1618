"""Checkpoint replication throughput and latency: an active and one standby on loopback.

    vnfha bench checkpoint [--writes 200000] [--concurrent-writes 100000] [--writers 32]
                           [--latency-samples 5000] [--one-process]

The active runs in this process; its standby, by default, in a process of its own
(:mod:`vnfha.apps.bench.checkpoint_standby`), as a deployment runs them and as the peers it is
compared with were measured (issue 14). ``--one-process`` runs both members on this process's
event loop instead (the setup before issue 14: the standby's applying then competes with the
active's writing, and no message crosses a process boundary). Each member has its own gRPC
server and etcd client; a 1-member etcd is started for the run. 100-byte values over 1,000
keys. Measures:

- ``none``: Ack.NONE writes from one task, from the first put to the moment the standby has
  applied the last one (so "replicated", not just "accepted"); writes/s.
- ``none_concurrent``: the same ``--writes`` Ack.NONE writes shared by ``--writers``
  concurrent tasks, each put timed: writes/s and p50/p99/max of one put in ms (a put that
  stalls is one that yielded to the event loop and waited for the others' turns).
- ``one_concurrent``: Ack.ONE writes from ``--writers`` concurrent tasks, each returning only
  once the standby has applied it; writes/s and p50/p99/max of one put in ms.
- ``one_latency``: single-writer Ack.ONE, one put at a time; writes/s and p50/p99/max in ms.
- ``transport_floor``: the same round trip (``--latency-samples`` of them, one write's deltas
  out and an ack back) over a bare grpc.aio stream between two processes, with none of vnfha
  in it (:mod:`vnfha.apps.bench.grpc_floor`): what ``one_latency`` cannot go below.

Targets (issues 4 and 14, on a 2-core machine, standby in its own process): none >= 100,000/s;
one_concurrent >= 35,000/s (no lower than before issue 14's work: 35,000-41,000/s on this
machine); single-writer Ack.ONE p50 <= 0.25 ms, p99 <= 5 ms and >= 4,000 writes/s; Ack.NONE
under 32 writers, max <= 20 ms.
Checked at the end: the standby holds the same value as the active for every key
(``standby_matches_active``). Prints one JSON object; exit 0 when every target is met and the
check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from vnfha import Ack, Config, Member, Role
from vnfha.apps.bench import grpc_floor
from vnfha.apps.bench._common import parser, positive_int, report, summary
from vnfha.apps.bench.checkpoint_standby import SECTION, Applied, section_digest
from vnfha.replication import wire
from vnfha.testing.etcd import EtcdCluster

VALUE = b"v" * 100
KEYS = 1000
GROUP = "bench-cp"
START_S = 30.0
"""How long the members may take to take their roles (and the child process to start)."""
TARGETS = {"none_per_s": 100_000, "one_concurrent_per_s": 35_000, "one_p50_ms": 0.25,
           "one_p99_ms": 5.0, "one_per_s": 4_000, "none_concurrent_max_ms": 20.0}
"""Each figure's target: a floor for rates (``_per_s``), a ceiling for times (``_ms``)."""

Put = Callable[..., Any]


class Standby(Protocol):
    """The benchmark's view of its standby, wherever it runs."""

    async def applied(self, position: tuple[int, int]) -> str:
        """Once the standby has applied ``position``: the digest of its copy of the section."""
        ...


class LocalStandby:
    """A standby member on this event loop (``--one-process``)."""

    def __init__(self, member: Member) -> None:
        self._member = member
        self._waiter = Applied(member)

    async def applied(self, position: tuple[int, int]) -> str:
        await self._waiter.wait(position)
        return section_digest(self._member.checkpoint.items(SECTION))


class ChildStandby:
    """A standby member in a child process (:mod:`vnfha.apps.bench.checkpoint_standby`)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    async def next_event(self, event: str) -> dict[str, Any]:
        """The child's next line, which must be ``event``."""
        assert self._proc.stdout is not None
        line = await self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the standby process exited ({await self._proc.wait()}) "
                               f"before printing {event!r}")
        message: dict[str, Any] = json.loads(line)
        if message.get("event") != event:
            raise RuntimeError(f"the standby process printed {message}, not {event!r}")
        return message

    async def applied(self, position: tuple[int, int]) -> str:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"until": list(position)}).encode() + b"\n")
        await self._proc.stdin.drain()
        digest: str = (await self.next_event("applied"))["digest"]
        return digest


@asynccontextmanager
async def standby_process(endpoints: tuple[str, ...]) -> AsyncIterator[ChildStandby]:
    """Member ``b`` in a child process, once it is the standby; stopped cleanly at the end."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnfha.apps.bench.checkpoint_standby", "--etcd",
        ",".join(endpoints), "--group", GROUP, "--member", "b",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        child = ChildStandby(proc)
        async with asyncio.timeout(START_S):
            await child.next_event("standby")
        yield child
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the end of its input: it stops cleanly
        try:
            async with asyncio.timeout(START_S):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


def config(endpoints: tuple[str, ...], name: str) -> Config:
    return Config(group=GROUP, member=name, etcd_endpoints=endpoints,
                  checkpoint_ack_timeout_s=5.0)


async def timed_writers(put: Put, writers: int, per_writer: int, ack: Ack) -> list[float]:
    """``writers`` concurrent tasks doing ``per_writer`` puts each; every put's time in ms."""
    lat: list[float] = []
    clock = time.perf_counter

    async def writer(w: int) -> None:
        for i in range(per_writer):
            t = clock()
            await put(SECTION, f"k{(w * per_writer + i) % KEYS}", VALUE, ack=ack)
            lat.append((clock() - t) * 1000)

    await asyncio.gather(*(writer(w) for w in range(writers)))
    return lat


async def measure(active: Member, standby: Standby, opts: argparse.Namespace) -> dict[str, Any]:
    """Every figure of the module docstring, with ``active`` in sync with ``standby``."""
    put = active.checkpoint.put
    for i in range(2 * KEYS):  # warm-up, and every key exists
        await put(SECTION, f"k{i % KEYS}", VALUE, ack=Ack.ONE)

    n = opts.writes
    t0 = time.perf_counter()
    for i in range(n):
        await put(SECTION, f"k{i % KEYS}", VALUE)
    accepted = time.perf_counter() - t0
    await standby.applied(active.checkpoint.position)
    none_s = time.perf_counter() - t0

    per_writer = n // opts.writers
    t0 = time.perf_counter()
    none_lat = await timed_writers(put, opts.writers, per_writer, Ack.NONE)
    await standby.applied(active.checkpoint.position)
    none_concurrent_s = time.perf_counter() - t0

    per_writer = opts.concurrent_writes // opts.writers
    t0 = time.perf_counter()
    one_lat = await timed_writers(put, opts.writers, per_writer, Ack.ONE)
    one_s = time.perf_counter() - t0

    lat: list[float] = []
    t0 = time.perf_counter()
    for i in range(opts.latency_samples):
        t1 = time.perf_counter()
        await put(SECTION, f"k{i % KEYS}", VALUE, ack=Ack.ONE)
        lat.append((time.perf_counter() - t1) * 1000)
    single_s = time.perf_counter() - t0
    digest = await standby.applied(active.checkpoint.position)
    return {
        "none": {"writes": n, "accepted_per_s": round(n / accepted),
                 "replicated_per_s": round(n / none_s)},
        "none_concurrent": {"writes": len(none_lat), "writers": opts.writers,
                            "replicated_per_s": round(len(none_lat) / none_concurrent_s),
                            **summary(none_lat, digits=4, unit="_ms")},
        "one_concurrent": {"writes": len(one_lat), "writers": opts.writers,
                           "per_s": round(len(one_lat) / one_s),
                           **summary(one_lat, digits=3, unit="_ms")},
        "one_latency": {"n": len(lat), "per_s": round(len(lat) / single_s),
                        **summary(lat, digits=3, unit="_ms")},
        "standby_matches_active": digest == section_digest(active.checkpoint.items(SECTION)),
    }


async def run(endpoints: tuple[str, ...], opts: argparse.Namespace) -> dict[str, Any]:
    async with Member(config(endpoints, "a")) as a:
        await a.wait_for_role(Role.ACTIVE, START_S)
        if opts.one_process:
            async with Member(config(endpoints, "b")) as b:
                await b.wait_for_role(Role.STANDBY, START_S)
                results = await in_sync(a, LocalStandby(b), opts)
        else:
            async with standby_process(endpoints) as child:
                results = await in_sync(a, child, opts)
    # one write's deltas out, its ack back: the sizes vnfha's single writer sends
    deltas = wire.deltas_message(3, 12_345, [(SECTION, f"k{KEYS - 1}", VALUE)])
    results["transport_floor"] = await grpc_floor.measure(
        opts.latency_samples, message_bytes=deltas.ByteSize(),
        reply_bytes=wire.ack_message(3, 12_345).ByteSize())
    return results


async def in_sync(active: Member, standby: Standby, opts: argparse.Namespace) -> dict[str, Any]:
    """:func:`measure`, once the active has published its standby as in sync."""
    async with asyncio.timeout(START_S):
        while active.checkpoint.in_sync != ("b",):  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.01)
    return await measure(active, standby, opts)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the benchmark; the exit status (0: every target met, the standby agrees)."""
    p = parser(__doc__, prog)
    p.add_argument("--writes", type=positive_int, default=200_000,
                   help="Ack.NONE writes, from one task and then from the --writers "
                   "(default: %(default)s)")
    p.add_argument("--concurrent-writes", type=positive_int, default=100_000,
                   help="Ack.ONE writes shared by the --writers (default: %(default)s)")
    p.add_argument("--writers", type=positive_int, default=32,
                   help="concurrent writer tasks (default: %(default)s)")
    p.add_argument("--latency-samples", type=positive_int, default=5000,
                   help="single-writer Ack.ONE writes timed (default: %(default)s)")
    p.add_argument("--one-process", action="store_true",
                   help="run the standby on this process's event loop, not in its own process")
    opts = p.parse_args(argv)
    for option, count in (("--writes", opts.writes),
                          ("--concurrent-writes", opts.concurrent_writes)):
        if count < opts.writers:
            p.error(f"{option} {count} must be at least --writers {opts.writers}")
    with EtcdCluster(1) as cluster:
        results = asyncio.run(run(cluster.endpoints, opts))
    figures = {"none_per_s": results["none"]["replicated_per_s"],
               "one_concurrent_per_s": results["one_concurrent"]["per_s"],
               "one_p50_ms": results["one_latency"]["p50_ms"],
               "one_p99_ms": results["one_latency"]["p99_ms"],
               "one_per_s": results["one_latency"]["per_s"],
               "none_concurrent_max_ms": results["none_concurrent"]["max_ms"]}
    met = {k: (figures[k] >= t if k.endswith("_per_s") else figures[k] <= t)
           for k, t in TARGETS.items()}
    ok = all(met.values()) and results["standby_matches_active"]
    return report({"benchmark": "checkpoint", "value_bytes": len(VALUE),
                   "standby": "this process" if opts.one_process else "own process",
                   "grpc_experiments": os.environ.get("GRPC_EXPERIMENTS", ""),
                   "results": results,
                   "targets": {k: {"target": TARGETS[k], "measured": figures[k], "met": met[k]}
                               for k in TARGETS},
                   "all_met": ok}, ok)
