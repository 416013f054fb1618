"""One process of the fleet benchmark: many real members, one of each of its groups.

    python -m vnfha.apps.bench.fleet_worker --etcd H:P[,H:P...] --member a \\
        --prefix fleet --first 0 --count 50

Runs member ``--member`` of the groups ``<prefix>-<first>`` .. ``<prefix>-<first + count - 1>``
(TWO_N), each a whole :class:`vnfha.Member` with its own etcd connection, lease session,
watch, replication server and metrics registry, on one event loop. A group's other member runs
in another process, so its checkpoints and heartbeats cross a process boundary as they would
cross hosts.

It prints one JSON object per line on stdout:

- ``{"event": "ready", "members", "start_s"}`` once every member has started (joined);
- on each ``stats`` line read from stdin, ``{"event": "stats", ...}`` with what its members
  record: roles (count per role), role changes since the start, the keepalive round-trip
  histogram summed over the members (cumulative bucket counts by upper bound, ``sum``,
  ``count``), leases lost and failed etcd requests by kind;
- ``{"event": "stopped"}`` after ``stop`` on stdin (or end of input): every member stopped
  cleanly (its lease revoked).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from vnfha.config import Config
from vnfha.member import Member, MemberEvent, RoleChanged
from vnfha.metrics import MemberMetrics

START_BATCH = 25
"""Members started at once: a burst of thousands of lease grants and campaigns at the same
instant measures the start-up storm, not the fleet."""


def group_names(prefix: str, first: int, count: int) -> list[str]:
    """The groups of one worker: ``<prefix>-<n>`` with ``n`` zero-padded to 4 digits."""
    return [f"{prefix}-{n:04d}" for n in range(first, first + count)]


class Fleet:
    """The members of one worker and what they recorded."""

    def __init__(self, configs: Sequence[Config]) -> None:
        self.metrics = [MemberMetrics(c.group, c.member) for c in configs]
        self.members = [Member(c, metrics=m) for c, m in zip(configs, self.metrics, strict=True)]
        self.role_changes = 0
        for member in self.members:
            member.add_listener(self._on_event)

    def _on_event(self, event: MemberEvent) -> None:
        if isinstance(event, RoleChanged):
            self.role_changes += 1

    async def start(self) -> None:
        for i in range(0, len(self.members), START_BATCH):
            await asyncio.gather(*(m.start() for m in self.members[i:i + START_BATCH]))

    async def stop(self) -> None:
        await asyncio.gather(*(m.stop() for m in self.members), return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        roles = Counter(m.role.value for m in self.members)
        buckets: Counter[str] = Counter()
        rtt_sum = rtt_count = lost = 0.0
        errors: Counter[str] = Counter()
        for metrics in self.metrics:
            for family in metrics.registry.collect():
                for s in family.samples:
                    if s.name == "vnfha_lease_keepalive_seconds_bucket":
                        buckets[s.labels["le"]] += int(s.value)
                    elif s.name == "vnfha_lease_keepalive_seconds_sum":
                        rtt_sum += s.value
                    elif s.name == "vnfha_lease_keepalive_seconds_count":
                        rtt_count += s.value
                    elif s.name == "vnfha_leases_lost_total":
                        lost += s.value
                    elif s.name == "vnfha_etcd_errors_total" and s.value:
                        errors[f"{s.labels['request']}/{s.labels['kind']}"] += int(s.value)
        return {"event": "stats", "roles": dict(roles), "role_changes": self.role_changes,
                "keepalive_buckets": dict(buckets), "keepalive_sum_s": rtt_sum,
                "keepalive_count": int(rtt_count), "leases_lost": int(lost),
                "etcd_errors": dict(errors)}


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


async def run(opts: argparse.Namespace) -> None:
    configs = [Config(group=g, member=opts.member, etcd_endpoints=opts.etcd,
                      heartbeat_interval_s=opts.heartbeat_s,
                      suspicion_s=max(0.3, 6 * opts.heartbeat_s))
               for g in group_names(opts.prefix, opts.first, opts.count)]
    fleet = Fleet(configs)
    t0 = time.monotonic()
    await fleet.start()
    emit({"event": "ready", "members": len(fleet.members),
          "start_s": round(time.monotonic() - t0, 3)})
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            command = line.strip()
            if command == "stats":
                emit(fleet.stats())
            elif command in ("stop", ""):
                break
    finally:
        await fleet.stop()
    emit({"event": "stopped"})


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m vnfha.apps.bench.fleet_worker",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--etcd", required=True, help="comma-separated etcd endpoints")
    p.add_argument("--member", required=True, help="this worker's member name in each group")
    p.add_argument("--prefix", default="fleet", help="group name prefix")
    p.add_argument("--first", type=int, required=True, help="the first group's number")
    p.add_argument("--count", type=int, required=True, help="how many groups")
    p.add_argument("--heartbeat-s", type=float, default=0.05,
                   help="replication heartbeat interval of every member (default: %(default)s)")
    opts = p.parse_args(argv)
    asyncio.run(run(opts))


if __name__ == "__main__":
    main()
