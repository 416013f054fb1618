"""Checkpoint replication throughput and latency: an active and one standby on loopback.

    vnfha bench checkpoint [--writes 200000] [--concurrent-writes 100000] [--writers 32]
                           [--latency-samples 5000]

Two members of one group in this process (each with its own gRPC server and etcd client), a
1-member etcd started for the run. 100-byte values over 1,000 keys. Measures:

- ``none``: Ack.NONE writes, from the first put to the moment the standby has applied the last
  one (so "replicated", not just "accepted"); writes/s.
- ``one_concurrent``: Ack.ONE writes from ``--writers`` concurrent tasks, each returning only
  once the standby has applied it; writes/s.
- ``one_latency``: single-writer Ack.ONE, one put at a time; p50/p99/max in ms.

Targets (issue 4, on a 2-core machine): none >= 100,000/s, one_concurrent >= 20,000/s,
one_latency p50 <= 1 ms and p99 <= 5 ms. Checked at the end: the standby holds the same value as
the active for every key (``standby_matches_active``). Prints one JSON object; exit 0 when every
target is met and the check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

from vnfha import Ack, Config, Member, Role
from vnfha.apps.bench._common import parser, positive_int, report, summary
from vnfha.testing.etcd import EtcdCluster

VALUE = b"v" * 100
KEYS = 1000
TARGETS = {"none_per_s": 100_000, "one_concurrent_per_s": 20_000, "one_p50_ms": 1.0,
           "one_p99_ms": 5.0}


async def wait_applied(active: Member, standby: Member) -> None:
    """Until the standby has applied everything the active has written (via its tracking
    callback, so the wake-up is exact)."""
    target = active.checkpoint.position
    done = asyncio.Event()

    def check(_: object) -> None:
        if standby.checkpoint.position >= target:
            done.set()

    standby.checkpoint.track(check)
    check(None)
    await done.wait()


async def run(endpoints: tuple[str, ...], opts: argparse.Namespace) -> dict[str, Any]:
    def cfg(name: str) -> Config:
        return Config(group="bench-cp", member=name, etcd_endpoints=endpoints,
                      checkpoint_ack_timeout_s=5.0)

    async with Member(cfg("a")) as a, Member(cfg("b")) as b:
        await a.wait_for_role(Role.ACTIVE, 10)
        await b.wait_for_role(Role.STANDBY, 10)
        while a.checkpoint.in_sync != ("b",):  # noqa: ASYNC110 - a state with no event to await
            await asyncio.sleep(0.01)
        put = a.checkpoint.put
        for i in range(2 * KEYS):  # warm-up, and every key exists
            await put("bench", f"k{i % KEYS}", VALUE, ack=Ack.ONE)

        n = opts.writes
        t0 = time.perf_counter()
        for i in range(n):
            await put("bench", f"k{i % KEYS}", VALUE)
        accepted = time.perf_counter() - t0
        await wait_applied(a, b)
        none_s = time.perf_counter() - t0

        per_writer = opts.concurrent_writes // opts.writers

        async def writer(w: int) -> None:
            for i in range(per_writer):
                await put("bench", f"k{(w * per_writer + i) % KEYS}", VALUE, ack=Ack.ONE)

        t0 = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(opts.writers)))
        one_s = time.perf_counter() - t0

        lat: list[float] = []
        for i in range(opts.latency_samples):
            t1 = time.perf_counter()
            await put("bench", f"k{i % KEYS}", VALUE, ack=Ack.ONE)
            lat.append((time.perf_counter() - t1) * 1000)
        await wait_applied(a, b)
        matches = all(b.checkpoint.get("bench", f"k{i}") == a.checkpoint.get("bench", f"k{i}")
                      for i in range(KEYS))
        return {
            "none": {"writes": n, "accepted_per_s": round(n / accepted),
                     "replicated_per_s": round(n / none_s)},
            "one_concurrent": {"writes": per_writer * opts.writers, "writers": opts.writers,
                               "per_s": round(per_writer * opts.writers / one_s)},
            "one_latency": {"n": len(lat), **summary(lat, digits=3, unit="_ms")},
            "standby_matches_active": matches,
        }


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the benchmark; the exit status (0: every target met, the standby agrees)."""
    p = parser(__doc__, prog)
    p.add_argument("--writes", type=positive_int, default=200_000,
                   help="Ack.NONE writes (default: %(default)s)")
    p.add_argument("--concurrent-writes", type=positive_int, default=100_000,
                   help="Ack.ONE writes shared by the --writers (default: %(default)s)")
    p.add_argument("--writers", type=positive_int, default=32,
                   help="concurrent Ack.ONE writer tasks (default: %(default)s)")
    p.add_argument("--latency-samples", type=positive_int, default=5000,
                   help="single-writer Ack.ONE writes timed (default: %(default)s)")
    opts = p.parse_args(argv)
    if opts.concurrent_writes < opts.writers:
        p.error(f"--concurrent-writes {opts.concurrent_writes} must be at least --writers "
                f"{opts.writers}")
    with EtcdCluster(1) as cluster:
        results = asyncio.run(run(cluster.endpoints, opts))
    figures = {"none_per_s": results["none"]["replicated_per_s"],
               "one_concurrent_per_s": results["one_concurrent"]["per_s"],
               "one_p50_ms": results["one_latency"]["p50_ms"],
               "one_p99_ms": results["one_latency"]["p99_ms"]}
    met = {k: (figures[k] >= t if k.endswith("_per_s") else figures[k] <= t)
           for k, t in TARGETS.items()}
    ok = all(met.values()) and results["standby_matches_active"]
    return report({"benchmark": "checkpoint", "value_bytes": len(VALUE), "results": results,
                   "targets": {k: {"target": TARGETS[k], "measured": figures[k], "met": met[k]}
                               for k in TARGETS},
                   "all_met": ok}, ok)
