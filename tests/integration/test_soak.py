"""A chaos soak (``pytest -s --soak tests/integration/test_soak.py``; skipped without ``--soak``).

Three member processes form an N_WAY group on the shared 3-member etcd; the active writes
checkpoints with ``Ack.ONE`` continuously, as in ``vnfha bench failover`` (whose member
arguments this reuses). For ``SOAK_SECONDS`` (default 300) a seeded random sequence of faults
is injected, one at a time, each followed by a settle pause longer than the I6 budget:

- ``kill_active``: SIGKILL of the active (a replacement member is started under a new name);
- ``freeze_active_long``: SIGSTOP of the active for 0.5-3 s, past the standby lease (0.3 s) and
  up to past the 2 s etcd lease, then SIGCONT: a failover must happen and the resumed member
  must demote itself before acting;
- ``freeze_active_short``: SIGSTOP of the active for 0.02-0.12 s, below the standby lease's
  bound (its last promise's stamp + 0.25 s, the stamp up to a heartbeat old): no failover may
  follow (I7);
- ``freeze_standby`` (0.1-3 s) and ``kill_standby`` (then a replacement): no failover may
  follow;
- ``switchover``: an operator request through etcd (:func:`vnfha.admin.request_switchover`).

At the end :func:`vnfha.testing.history.check` must find nothing over every process's whole
history (I1-I8; I3 is "no acknowledged write lost", from each takeover's state found in
``on_active``), and the group must end with exactly one active. A JSON summary goes to stdout.
``SOAK_SEED`` replays a run's fault sequence (the timing of the processes is not replayed).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from vnfha.admin import request_switchover
from vnfha.apps.bench._common import is_role, summary
from vnfha.apps.bench.failover import ARGS, left_active
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.history import Fault, WriteAcked, check, count
from vnfha.testing.member_proc import MemberProcess

SOAK_S = float(os.environ.get("SOAK_SECONDS", "300"))
pytestmark = [pytest.mark.etcd, pytest.mark.soak, pytest.mark.timeout(SOAK_S * 1.5 + 120)]

MEMBERS = 3
BUDGET_S = 5.0
"""I6: exactly one active from 5 s after each heal until the next fault."""
LONG_FREEZE_S = (0.5, 3.0)
SHORT_FREEZE_S = (0.02, 0.12)
STANDBY_FREEZE_S = (0.1, 3.0)
EXTRA_PAUSE_S = (0.5, 2.0)
"""Settle pause beyond the I6 budget, so no fault comes before the previous one is judged."""
MEMBER_ARGS = (*ARGS, "--redundancy", "n-way")
KINDS = ("kill_active", "freeze_active_long", "freeze_active_short", "freeze_standby",
         "kill_standby", "switchover")
Trial = Callable[["Soak", MemberProcess, random.Random], float | None]


class Soak:
    """The group under test: every process started (for the histories and the final kill),
    the live ones, the faults injected and each failover's takeover time."""

    def __init__(self, group: str, endpoints: tuple[str, ...]) -> None:
        self.group = group
        self.endpoints = endpoints
        self.procs: list[MemberProcess] = []
        self.live: list[MemberProcess] = []
        self.faults: list[Fault] = []
        self.kinds: list[str] = []

    def spawn(self) -> MemberProcess:
        """A new member under a new name (``m<n>``), once it has joined."""
        proc = MemberProcess(self.group, f"m{len(self.procs) + 1}", self.endpoints,
                             *MEMBER_ARGS, "--set", "poison_policy=off")  # back-to-back faults
        self.procs.append(proc)
        self.live.append(proc)
        proc.wait_for(lambda e: e["event"] == "ready", 20, "ready")
        return proc

    def kill(self, proc: MemberProcess) -> float:
        """SIGKILL ``proc``; the fault's start, taken before the signal (the harness marks the
        exit after reaping it, so the exit comes after the start, as in the benchmark)."""
        self.live.remove(proc)
        start = time.monotonic()
        proc.kill()
        return start

    def settle(self, timeout_s: float = 30.0) -> MemberProcess:
        """Until exactly one live member reports ACTIVE, the others STANDBY, and the active's
        writes are acknowledged by a standby again; the active."""
        deadline = time.monotonic() + timeout_s
        while True:
            roles = sorted((p.role() or "-", p.member) for p in self.live)
            if [r for r, _ in roles] == ["active"] + ["standby"] * (len(roles) - 1):
                active = next(p for p in self.live if p.role() == "active")
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"no settled group within {timeout_s} s: {roles}")
            time.sleep(0.05)
        since = time.monotonic()
        active.wait_for(lambda e: e["event"] == "acked" and e["protected"]
                        and e["t_start_mono"] > since, 20, "a protected write")
        return active

    def record(self, kind: str, start: float, heal: float, *, failover: bool) -> None:
        self.faults.append(Fault(start, heal, f"{kind} {len(self.faults)}",
                                 expect_failover=failover))
        self.kinds.append(kind)

    def freeze(self, kind: str, proc: MemberProcess, seconds: float) -> None:
        """SIGSTOP ``proc`` for ``seconds``, then SIGCONT: a fault below the threshold."""
        start = proc.pause()
        try:
            time.sleep(seconds)
        finally:
            self.record(kind, start, proc.resume(), failover=False)

    def pause_after(self, rng: random.Random) -> None:
        """The settle pause: past the last heal's I6 budget, plus a random extra."""
        until = self.faults[-1].heal + BUDGET_S + rng.uniform(*EXTRA_PAUSE_S)
        time.sleep(max(0.0, until - time.monotonic()))

    def grant_after(self, epoch: int, since: float, timeout_s: float) -> dict[str, Any]:
        """The first grant of the active role above ``epoch`` to a live member."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            grants = [e for p in self.live for e in list(p.events)
                      if is_role("active", epoch)(e) and e["t_mono"] > since]
            if grants:
                return min(grants, key=lambda e: e["t_mono"])
            time.sleep(0.02)
        raise AssertionError(f"no member became active above epoch {epoch} within "
                             f"{timeout_s} s")


def epoch_of(active: MemberProcess) -> int:
    """The epoch of the active's last grant."""
    return int([e for e in active.events if is_role("active")(e)][-1]["epoch"])


# -- the faults: each records itself and returns the takeover time (s) if it asks for one ----


def kill_active(soak: Soak, active: MemberProcess, rng: random.Random) -> float:
    epoch = epoch_of(active)
    start = soak.kill(active)
    soak.record("kill_active", start, start, failover=True)
    took = soak.grant_after(epoch, start, 10)
    soak.spawn()
    return float(took["t_mono"]) - start


def freeze_active_long(soak: Soak, active: MemberProcess, rng: random.Random) -> float:
    epoch = epoch_of(active)
    freeze_s = rng.uniform(*LONG_FREEZE_S)
    start = active.pause()
    try:
        took = soak.grant_after(epoch, start, freeze_s + 5)
        time.sleep(max(0.0, start + freeze_s - time.monotonic()))
    finally:
        heal = active.resume()
        soak.record("freeze_active_long", start, heal, failover=True)
    demoted = active.wait_for(left_active(start), 10, "demotion after the freeze")
    late = [e for e in active.events if e["event"] == "acked" and e["epoch"] == epoch
            and e["t_start_mono"] > demoted["t_mono"]]
    assert late == [], f"writes of epoch {epoch} accepted after the demotion: {late[:3]}"
    return float(took["t_mono"]) - start


def freeze_active_short(soak: Soak, active: MemberProcess, rng: random.Random) -> None:
    soak.freeze("freeze_active_short", active, rng.uniform(*SHORT_FREEZE_S))


def freeze_standby(soak: Soak, active: MemberProcess, rng: random.Random) -> None:
    standby = rng.choice([p for p in soak.live if p is not active])
    soak.freeze("freeze_standby", standby, rng.uniform(*STANDBY_FREEZE_S))


def kill_standby(soak: Soak, active: MemberProcess, rng: random.Random) -> None:
    start = soak.kill(rng.choice([p for p in soak.live if p is not active]))
    soak.record("kill_standby", start, start, failover=False)
    soak.spawn()


def switchover(soak: Soak, active: MemberProcess, rng: random.Random) -> float:
    async def request() -> None:
        async with EtcdStore.connect(soak.endpoints) as store:
            await request_switchover(store, "/vnfha", soak.group, timeout_s=10)

    epoch = epoch_of(active)
    start = time.monotonic()
    asyncio.run(request())
    soak.record("switchover", start, start, failover=True)
    return float(soak.grant_after(epoch, start, 10)["t_mono"]) - start


TRIALS: dict[str, Trial] = {"kill_active": kill_active, "freeze_active_long": freeze_active_long,
                            "freeze_active_short": freeze_active_short,
                            "freeze_standby": freeze_standby, "kill_standby": kill_standby,
                            "switchover": switchover}


def run(soak: Soak, rng: random.Random, duration_s: float) -> dict[str, list[float]]:
    """Faults until ``duration_s`` is over; the takeover times per kind that asks for one."""
    takeovers: dict[str, list[float]] = {}
    for _ in range(MEMBERS):
        soak.spawn()
    stop = time.monotonic() + duration_s
    while time.monotonic() < stop:
        kind = rng.choice(KINDS)
        took = TRIALS[kind](soak, soak.settle(), rng)
        if took is not None:
            takeovers.setdefault(kind, []).append(took)
        soak.pause_after(rng)
    return takeovers


def report(soak: Soak, seed: int, duration_s: float, takeovers: dict[str, list[float]],
           violations: Sequence[Any], events: int) -> dict[str, Any]:
    grants = {(p.member, e["epoch"]) for p in soak.procs for e in p.events
              if is_role("active")(e)}
    acked = [r for p in soak.procs for r in p.history()
             if isinstance(r, WriteAcked) and r.protected]
    return {
        "duration_s": duration_s, "seed": seed, "members": MEMBERS, "budget_s": BUDGET_S,
        "faults": {k: soak.kinds.count(k) for k in KINDS},
        "failovers": len(grants) - 1,
        "takeover_ms": {k: summary([t * 1000 for t in v], unit="_ms")
                        for k, v in sorted(takeovers.items())},
        "protected_writes_reported": len(acked),
        "events_checked": events,
        "violations": count(violations),
        "violation_examples": [
            {"invariant": v.invariant, "member": v.member, "t_mono": round(v.t_mono, 3),
             "detail": v.detail, "epochs": list(v.epochs)} for v in violations[:5]],
    }


def test_soak_random_faults_keep_every_invariant(etcd3: EtcdCluster, group: str) -> None:
    duration_s = SOAK_S
    seed = int(os.environ.get("SOAK_SEED", str(random.SystemRandom().randrange(2**32))))
    rng = random.Random(seed)
    soak = Soak(group, etcd3.endpoints)
    replay = f"replay with SOAK_SEED={seed}"
    try:
        try:
            takeovers = run(soak, rng, duration_s)
            final = soak.settle()
        except AssertionError as e:
            raise AssertionError(f"{replay} (after {len(soak.faults)} faults: "
                                 f"{soak.kinds[-3:]}): {e}") from e
        end = time.monotonic()
        histories = {p.member: p.history() for p in soak.procs}
        ended_active = [p.member for p in soak.live if p.role() == "active"]
    finally:
        for p in soak.procs:
            p.kill()
    violations = check(histories, budget_s=BUDGET_S, faults=soak.faults, end=end)
    out = report(soak, seed, duration_s, takeovers, violations,
                 sum(len(h) for h in histories.values()))
    print(json.dumps(out, indent=2), flush=True)
    if violations:  # the role changes, with their reasons, to see how it came about
        for p in sorted(soak.procs, key=lambda p: p.member):
            for e in p.events:
                if e["event"] in ("role", "checkpoint", "ready"):
                    print(p.member, round(e["t_mono"], 3), e["event"], e.get("role", ""),
                          e.get("epoch", ""), e.get("reason", e.get("first_missing", "")),
                          flush=True)
    assert violations == [], f"{replay}: {out['violations']} {out['violation_examples']}"
    assert ended_active == [final.member], f"{replay}: ended with {ended_active} active"
    assert out["failovers"] >= 1, f"{replay}: no failover in {duration_s} s"
