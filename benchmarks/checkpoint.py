"""Checkpoint replication throughput and latency: an active and one standby on loopback.

    python benchmarks/checkpoint.py [--writes 200000] [--latency-samples 5000] [--writers 32]

Two members of one group in this process (each with its own gRPC server and etcd client), a
1-member etcd started for the run. 100-byte values over 1,000 keys. Measures:

- ``none``: Ack.NONE writes, from the first put to the moment the standby has applied the last
  one (so "replicated", not just "accepted"); writes/s.
- ``one_concurrent``: Ack.ONE writes from ``--writers`` concurrent tasks, each returning only
  once the standby has applied it; writes/s.
- ``one_latency``: single-writer Ack.ONE, one put at a time; p50/p99/max in ms.

Targets (issue 4, on a 2-core machine): none >= 100,000/s, one_concurrent >= 20,000/s,
one_latency p50 <= 1 ms and p99 <= 5 ms. Prints one JSON object; exit 0 when every target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from vnfha import Ack, Config, Member, Role
from vnfha.testing.etcd import EtcdCluster

VALUE = b"v" * 100
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
        for i in range(2000):  # warm-up
            await put("bench", f"k{i % 1000}", VALUE, ack=Ack.ONE)

        n = opts.writes
        t0 = time.perf_counter()
        for i in range(n):
            await put("bench", f"k{i % 1000}", VALUE)
        accepted = time.perf_counter() - t0
        await wait_applied(a, b)
        none_s = time.perf_counter() - t0

        per_writer = opts.concurrent_writes // opts.writers

        async def writer(w: int) -> None:
            for i in range(per_writer):
                await put("bench", f"k{(w * per_writer + i) % 1000}", VALUE, ack=Ack.ONE)

        t0 = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(opts.writers)))
        one_s = time.perf_counter() - t0

        lat: list[float] = []
        for i in range(opts.latency_samples):
            t1 = time.perf_counter()
            await put("bench", f"k{i % 1000}", VALUE, ack=Ack.ONE)
            lat.append((time.perf_counter() - t1) * 1000)
        lat.sort()
        assert b.checkpoint.get("bench", "k0") == a.checkpoint.get("bench", "k0")
        return {
            "none": {"writes": n, "accepted_per_s": round(n / accepted),
                     "replicated_per_s": round(n / none_s)},
            "one_concurrent": {"writes": per_writer * opts.writers, "writers": opts.writers,
                               "per_s": round(per_writer * opts.writers / one_s)},
            "one_latency": {"n": len(lat), "p50_ms": round(statistics.median(lat), 3),
                            "p99_ms": round(lat[int(len(lat) * 0.99)], 3),
                            "max_ms": round(lat[-1], 3)},
        }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--writes", type=int, default=200_000)
    p.add_argument("--concurrent-writes", type=int, default=100_000)
    p.add_argument("--writers", type=int, default=32)
    p.add_argument("--latency-samples", type=int, default=5000)
    opts = p.parse_args()
    with EtcdCluster(1) as cluster:
        results = asyncio.run(run(cluster.endpoints, opts))
    figures = {"none_per_s": results["none"]["replicated_per_s"],
               "one_concurrent_per_s": results["one_concurrent"]["per_s"],
               "one_p50_ms": results["one_latency"]["p50_ms"],
               "one_p99_ms": results["one_latency"]["p99_ms"]}
    met = {k: (figures[k] >= t if k.endswith("_per_s") else figures[k] <= t)
           for k, t in TARGETS.items()}
    print(json.dumps({"benchmark": "checkpoint", "value_bytes": len(VALUE), "results": results,
                      "targets": {k: {"target": TARGETS[k], "measured": figures[k],
                                      "met": met[k]} for k in TARGETS},
                      "all_met": all(met.values())}, indent=2))
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
