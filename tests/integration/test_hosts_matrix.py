"""The fault matrix across hosts (issue 18, item 5): each row a fault between lab hosts that
must cause exactly one failover or none, checked with the history checker (I1-I8) and from a
client host. docs/failover.md ("The fault matrix across hosts") gives the table, the figures
measured and what the rows found.

One lab (``vnfha.testing.lab.HostLab``), every row at once: a 3-member etcd on three hosts,
shared by every row but the one that cuts off etcd's leader (its own etcd on three more
hosts), an NFVI bridge (sim driver) on a host of its own, one client host, and per row a group
of two members, the active and the standby each on its own host. Members are
``vnfha.testing.member_proc`` processes writing ``Ack.ONE`` checkpoints (paced, see
``hosts_rig.py``), each with its row's service address. In the bridge rows the sim driver
launched the active (so the bridge can fence it) and knows the standby's instance.

Each row: the active, then the standby in sync, every row ready (a barrier), the fault,
``OBSERVE_S`` of it, the heal, the group settled (the old active back as a standby, or the
standby back in sync), ``BUDGET_S`` more, then the checks:

- the history checker finds nothing (I1-I8; I3 is "no acknowledged write lost", I2 "no act
  of the old epoch after the new epoch's first act"; a fault that must not fail over is below
  the threshold for I7), and the number of new actives after the fault is the row's (one row,
  30 % loss with a bridge, may go either way: the docs' known limit);
- the client's view: the client pings the row's service address every 20 ms and notes whose
  MAC answered; after the first reply from the new active's host, none from the old one's;
  with no failover, the address never moves;
- the address follows the role: at the end the new active's host holds it and the old one's
  not (unless the old active was killed holding it: nothing released it), and an old active
  that stops at its own deadline lets it go before the new one takes it;
- a takeover in a bridge row follows the fence of the old active's process;
- with no failover, the standby is back in sync soon after the heal, and stays in sync through
  the fault or not where the row says so.

Root only (skipped otherwise; failed instead with ``VNFHA_REQUIRE_NETNS=1``, as in CI).
``VNFHA_MATRIX_ROWS`` runs some rows only, ``VNFHA_MATRIX_OUT`` collects the outcomes.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hosts_rig import Member, Pinger, SimMember, Watch, member_argv, member_prefix

from vnfha.testing.history import Fault, check
from vnfha.testing.lab import REQUIRE_ENV, HostLab, LabEtcd, LabHost, unavailable
from vnfha.testing.lab_faults import Direction
from vnfha.testing.member_proc import MemberProcess

pytestmark = pytest.mark.etcd

TTL_S = 2
OBSERVE_S = 3.0
"""How long each fault lasts: past the suspicion, the standby lease and the etcd lease."""
BUDGET_S = 1.5
"""I6: exactly one active from this long after the heal (the standby lease's p99 is 450 ms)."""
SETTLE_S = 0.5
"""Writes started this long after the fault and acknowledged before the heal show how it goes
on (before: the ones in flight; after: the ones the heal let through)."""
RESYNC_S = 5.0
"""How long after the heal the standby may take to be back in sync (a protected write)."""
STARTING = 4
"""Rows starting their members at once: two dozen at once would starve the running ones."""
STAGGER_S = 0.1
"""After the barrier, row i injects its fault (i + 1) x this later: not every failover at once."""
SETUP_S = 60.0
"""Generous: thirty members start, four rows at a time, on two cores."""
ARGS = ("--write", "1000000", "--ack", "one", "--rewrite", "--report-every", "10",
        "--trace-applied", "--lease-ttl-s", str(TTL_S))
SLEEPER = [sys.executable, "-c", "import time; time.sleep(3600)"]
BRIDGE_PORT = 50070
OUT_ENV = "VNFHA_MATRIX_OUT"
"""A file to append each row's outcome to, as a JSON line (for docs/failover.md's figures)."""
ROWS_ENV = "VNFHA_MATRIX_ROWS"
"""Comma-separated row names: run only those (the others skip); unset: every row."""


@dataclass
class Scene:
    """One row's world: the lab, its etcd, its two hosts and members."""

    lab: HostLab
    etcd: LabEtcd
    host_a: LabHost
    host_b: LabHost
    a: Member
    b: Member


Injected = tuple[float, Callable[[], None] | None]
"""When the fault took effect (monotonic) and how to heal it (None: over at once)."""


def kill_active(s: Scene) -> Injected:
    t = time.monotonic()
    s.a.kill()
    return t, None


def stop_active(s: Scene) -> Injected:
    def resume() -> None:
        s.a.resume()
    return s.a.pause(), resume


def isolate_active(s: Scene) -> Injected:
    fault = s.lab.partition(s.host_a)
    return time.monotonic(), fault.undo


def one_way(direction: Direction) -> Callable[[Scene], Injected]:
    def cut(s: Scene) -> Injected:
        fault = s.lab.partition(s.host_a, s.host_b, direction=direction)
        return time.monotonic(), fault.undo
    return cut


def cut_pair(s: Scene) -> Injected:
    fault = s.lab.partition(s.host_a, s.host_b)
    return time.monotonic(), fault.undo


def cut_from_etcd(s: Scene) -> Injected:
    faults = [s.lab.partition(s.host_a, h) for h in s.etcd.hosts]

    def heal() -> None:
        for fault in faults:
            fault.undo()
    return time.monotonic(), heal


def lossy_pair(s: Scene) -> Injected:
    fault = s.lab.drop(s.host_a, s.host_b, 0.3)
    return time.monotonic(), fault.undo


def slow_pair(ms: float) -> Callable[[Scene], Injected]:
    def slow(s: Scene) -> Injected:
        fault = s.lab.delay(s.host_a, s.host_b, ms)  # each way: twice that on a round trip
        return time.monotonic(), fault.undo
    return slow


def cut_etcd_leader(s: Scene) -> Injected:
    leader = s.etcd.leader_index()
    assert leader is not None, "the etcd has no leader"
    fault = s.lab.partition(s.etcd.hosts[leader])
    return time.monotonic(), fault.undo



@dataclass(frozen=True)
class Row:
    """One fault of the matrix (``fault`` says it in words) and what it must do:

    - ``failovers``: 0, 1, or None for either (the fault may or may not pass for a dead
      active); after a failover, the new active's first act within ``limit_ms`` of the fault;
    - ``bridge``: the active is the sim's, and a takeover follows its fence; ``own_etcd``: the
      row gets the second etcd;
    - ``old_keeps``: whether the old active's host still holds the service address at the end
      (None: either). An old active killed holding it (by the harness, or the fence) released
      nothing, so its host keeps it until its lifetime runs out, 4 s after the last renewal:
      about when the observation ends, so those rows say None
      (tests/integration/test_service_address_member.py checks the expiry itself);
    - ``releases_first``: the old active, still running, stops at its own deadline before the
      takeover, so its host lets the address go before the new active's host adds it;
    - ``in_sync``: whether the standby stays in sync through the fault (protected writes go
      on), where that is the point (None: not checked);
    - ``known_issue``: why the standby may not be back in sync within ``RESYNC_S`` of the heal
      (a bug found here, not yet fixed): the test then xfails on that alone.
    """

    name: str
    fault: str
    failovers: int | None
    inject: Callable[[Scene], Injected]
    limit_ms: float = 0.0
    bridge: bool = False
    own_etcd: bool = False
    old_keeps: bool | None = False
    releases_first: bool = False
    in_sync: bool | None = None
    known_issue: str | None = None


ROWS = (
    Row("sigkill", "SIGKILL of the active", 1, kill_active, 1000, old_keeps=None),
    Row("sigstop", "SIGSTOP of the active", 1, stop_active, 1500),
    Row("sigstop-bridge", "SIGSTOP of the active, bridge", 1, stop_active, 1500, bridge=True,
        old_keeps=None),
    Row("isolated", "the active's host cut off from every host", 1, isolate_active, 1500,
        releases_first=True),
    Row("isolated-bridge", "the active's host cut off from every host, bridge", 1,
        isolate_active, 1500, bridge=True, releases_first=True),
    Row("cut-a-to-b", "one way: active -> standby cut", 0, one_way("a->b"),
        in_sync=False),
    Row("cut-b-to-a", "one way: standby -> active cut", 0, one_way("b->a"),
        in_sync=False),
    Row("etcd-cut", "the active's host cut off from etcd's three hosts only", 1,
        cut_from_etcd, 3500, releases_first=True),
    Row("pair-cut", "the standby cut off from the active only (both ways)", 0, cut_pair,
        in_sync=False),
    Row("loss-30", "30 % loss each way between the pair", 0, lossy_pair),
    Row("loss-30-bridge", "30 % loss each way between the pair, bridge", None, lossy_pair,
        OBSERVE_S * 1000 + 1500, bridge=True, old_keeps=None),
    Row("delay-25", "25 ms delay each way between the pair", 0, slow_pair(25), in_sync=True),
    Row("delay-50", "50 ms delay each way between the pair", 0, slow_pair(50)),
    Row("delay-100", "100 ms delay each way between the pair", 0, slow_pair(100),
        in_sync=False),
    Row("etcd-leader", "etcd's leader's host cut off from every host", 0, cut_etcd_leader,
        own_etcd=True, in_sync=True),
)


@dataclass
class Outcome:
    """What one row did; times in ms from the fault."""

    row: str
    error: str | None = None
    failovers: int = 0
    takeover_ms: float | None = None
    first_act_ms: float | None = None
    first_write_ms: float | None = None
    old_last_act_ms: float | None = None
    old_left: str | None = None
    new_reason: str | None = None
    fenced_ms: float | None = None
    address_added_ms: float | None = None
    address_removed_ms: float | None = None
    holders_at_end: list[str] = field(default_factory=list)
    resync_ms: float | None = None
    observed_s: float = 0.0
    client_switch_ms: float | None = None
    client_old_after_new: int = 0
    protected_during: int = 0
    ack_timeouts: int = 0
    dropped_in_sync: int = 0
    violations: list[str] = field(default_factory=list)
    events: int = 0


def chosen() -> tuple[Row, ...]:
    names = os.environ.get(ROWS_ENV)
    return ROWS if not names else tuple(r for r in ROWS if r.name in names.split(","))


class Matrix:
    """Runs every row at once in one lab and keeps the outcomes."""

    def __init__(self, lab: HostLab) -> None:
        self.lab = lab
        self.rows = chosen()
        hosts = {h.name: h for h in lab.hosts}
        self.client = hosts["client"]
        self.etcd = lab.etcd([hosts["e0"], hosts["e1"], hosts["e2"]])
        self.etcd2 = lab.etcd([hosts["f0"], hosts["f1"], hosts["f2"]])
        self.pairs = {row.name: (hosts[f"r{i}a"], hosts[f"r{i}b"]) for i, row in enumerate(ROWS)}
        self.addresses = {row.name: f"198.51.100.{100 + i}" for i, row in enumerate(ROWS)}
        self.endpoint = f"{hosts['nfvi'].ipv4}:{BRIDGE_PORT}"
        macs = {bytes.fromhex(_mac(h).replace(":", "")): h.name for h in lab.hosts}
        members = [h for pair in self.pairs.values() for h in pair]
        self.watch = Watch({h.name: h.socket for h in members}, self.client.socket, macs)
        self.sim_logs = lab.workdir / "sim"
        self.sim_logs.mkdir()
        inventory = lab.workdir / "instances.toml"
        inventory.write_text(self._inventory())
        if any(row.bridge for row in self.rows):
            lab.bridge(hosts["nfvi"], "--instances", str(inventory), "--log-dir",
                       str(self.sim_logs), port=BRIDGE_PORT)
        self.barrier = threading.Barrier(len(self.rows))
        self.starting = threading.Semaphore(STARTING)

    def member_args(self, row: Row, host: LabHost) -> list[str]:
        return ["--listen", f"{host.ipv4}:0", *ARGS, "--set",
                f"service_addresses={self.addresses[row.name]}/24",
                *(("--set", f"bridge_endpoint={self.endpoint}") if row.bridge else ())]

    def etcd_of(self, row: Row) -> LabEtcd:
        return self.etcd2 if row.own_etcd else self.etcd

    def _inventory(self) -> str:
        """The sim's instances: per bridge row, the active member and the standby's VM."""
        lines = []
        for row in self.rows:
            if not row.bridge:
                continue
            host_a, host_b = self.pairs[row.name]
            argv_a = member_argv(host_a.prefix, group_of(row), "a", self.etcd_of(row).endpoints,
                                 *self.member_args(row, host_a))
            for member, host, argv in (("a", host_a, argv_a), ("b", host_b, SLEEPER)):
                lines += ["[[instances]]", f"name = {json.dumps(f'{row.name}-{member}')}",
                          f"group = {json.dumps(group_of(row))}",
                          f"member = {json.dumps(member)}", f"host = {json.dumps(host.name)}",
                          f"argv = {json.dumps(argv)}", ""]
        return "\n".join(lines)

    def run(self) -> dict[str, Outcome]:
        with ThreadPoolExecutor(len(self.rows)) as pool:
            done = {row.name: pool.submit(self.run_row, row) for row in self.rows}
        return {name: future.result() for name, future in done.items()}

    def run_row(self, row: Row) -> Outcome:
        out = Outcome(row.name)
        members: list[Member] = []
        pinger: Pinger | None = None
        try:
            try:
                with self.starting:
                    scene = self.set_up(row, members)
                pinger = Pinger(self.client.socket, self.addresses[row.name])
                host_a = scene.host_a.name
                until(lambda: any(h == host_a for _, h in self.watch.answered(
                    self.addresses[row.name])), 10, "the client's first reply")
            finally:  # every row's fault comes after every row's start-up
                self.barrier.wait(SETUP_S * 2)
            self.fault(row, scene, out)
        except Exception:
            out.error = traceback.format_exc()
        finally:
            if pinger is not None:
                pinger.close()
            for member in reversed(members):  # the standby first: no failover at the end
                member.kill()
                if isinstance(member, SimMember):
                    member.close()
        _record(out)
        return out

    def set_up(self, row: Row, members: list[Member]) -> Scene:
        host_a, host_b = self.pairs[row.name]
        etcd, group = self.etcd_of(row), group_of(row)
        a: Member
        if row.bridge:
            a = SimMember("a", self.sim_logs / f"{row.name}-a.log")
        else:
            a = MemberProcess(group, "a", etcd.endpoints, *self.member_args(row, host_a),
                              prefix=member_prefix(host_a.prefix))
        members.append(a)
        a.wait_for(role_is("active"), SETUP_S, "a active")
        b = MemberProcess(group, "b", etcd.endpoints, *self.member_args(row, host_b),
                          prefix=member_prefix(host_b.prefix))
        members.append(b)
        synced = b.wait_for(role_is("standby"), SETUP_S, "b standby")["t_mono"]
        a.wait_for(lambda e: e["event"] == "acked" and e["protected"]
                   and e["t_start_mono"] > synced, SETUP_S, "a write acknowledged by b")
        return Scene(self.lab, etcd, host_a, host_b, a, b)

    def fault(self, row: Row, s: Scene, out: Outcome) -> None:
        a, b = s.a, s.b
        first = next(e for e in a.events if e["event"] == "role" and e["role"] == "active")["epoch"]
        time.sleep(STAGGER_S * (1 + self.rows.index(row)))
        early = [e for m in (a, b) for e in m.events if e["event"] == "role"
                 and e["role"] == "active" and e["epoch"] != first]
        assert not early, (f"{row.name}: the group failed over before the fault (a machine too "
                           f"busy for the standby lease's 250 ms bound?): {early}")
        t0, heal = row.inject(s)
        time.sleep(max(0.0, t0 + OBSERVE_S - time.monotonic()))
        t_heal = t0
        if heal is not None:
            out.observed_s = time.monotonic() - t0  # the heal starts: the fault's last moment
            heal()
            t_heal = time.monotonic()  # undone (a delay's queue drained)
        new = [e for m in (a, b) for e in m.events if e["event"] == "role"
               and e["role"] == "active" and e["epoch"] > first and e["t_mono"] > t0]
        if new and running(a):
            a.wait_for(lambda e: e["event"] == "callback" and e["name"] == "on_standby"
                       and e["epoch"] >= new[0]["epoch"], 20, "a back as a standby")
        elif not new:
            with contextlib.suppress(AssertionError):  # judged by the test (known_issue)
                back = a.wait_for(lambda e: e["event"] == "acked" and e["protected"]
                                  and e["t_start_mono"] > t_heal, RESYNC_S, "b back in sync")
                out.resync_ms = ms(back["t_start_mono"], t_heal)
        time.sleep(max(0.0, t_heal + BUDGET_S - time.monotonic()))
        end = time.monotonic()
        histories = {"a": a.history(), "b": b.history()}
        fault = Fault(t0, t_heal, row.name, expect_failover=row.failovers != 0)
        out.violations = [f"{v.invariant} {v.member} {v.detail}" for v in
                          check(histories, budget_s=BUDGET_S, faults=[fault], end=end)]
        out.events = sum(len(h) for h in histories.values())
        if isinstance(a, SimMember) and a.died is not None:
            out.fenced_ms = ms(a.died, t0)
        self.measure(row, s, out, first, t0, t_heal, end)

    def measure(self, row: Row, s: Scene, out: Outcome, first: int, t0: float,
                t_heal: float, end: float) -> None:
        a, b = s.a, s.b
        events = {"a": list(a.events), "b": list(b.events)}
        grants = sorted((e["t_mono"], m, e) for m, evs in events.items() for e in evs
                        if e["event"] == "role" and e["role"] == "active" and e["epoch"] > first
                        and t0 < e["t_mono"] < end)
        out.failovers = len({e["epoch"] for _, _, e in grants})
        old_acts = [e["t_mono"] for e in events["a"] if e["event"] == "act"
                    and e["epoch"] == first and e["t_mono"] > t0 - 1]
        out.old_last_act_ms = ms(max(old_acts), t0) if old_acts else None
        left = [e for e in events["a"] if e["event"] == "role" and e["previous"] == "active"
                and e["t_mono"] > t0]
        out.old_left = f"{ms(left[0]['t_mono'], t0):.1f} ms: {left[0]['reason']}" if left else None
        during = [e for e in events["a"] if e["event"] == "acked" and e["protected"]
                  and t0 + SETTLE_S < e["t_start_mono"] and e["t_mono"] < t0 + out.observed_s]
        out.protected_during = len(during)
        out.ack_timeouts = sum(1 for e in events["a"] if e["event"] == "ack_timeout"
                               and e["t_mono"] > t0)
        out.dropped_in_sync = sum("dropping it from the in-sync set" in line
                                  for line in log_lines(a))
        if grants:
            t_new, who, grant = grants[0]
            epoch = grant["epoch"]
            out.takeover_ms, out.new_reason = ms(t_new, t0), f"{who}: {grant['reason']}"
            acts = [e["t_mono"] for e in events[who] if e["event"] == "act"
                    and e["epoch"] == epoch]
            writes = [e["t_start_mono"] for e in events[who] if e["event"] == "acked"
                      and e["epoch"] == epoch]
            out.first_act_ms = ms(min(acts), t0) if acts else None
            out.first_write_ms = ms(min(writes), t0) if writes else None
        self.client_view(row, s, out, t0, end, bool(grants))

    def client_view(self, row: Row, s: Scene, out: Outcome, t0: float, end: float,
                    moved: bool) -> None:
        address = self.addresses[row.name]
        old, new = s.host_a.name, s.host_b.name
        changes = self.watch.holders(address)
        added = [t for t, h, up in changes if h == new and up and t > t0]
        removed = [t for t, h, up in changes if h == old and not up and t > t0]
        out.address_added_ms = ms(added[0], t0) if added else None
        out.address_removed_ms = ms(removed[0], t0) if removed else None
        held: dict[str, bool] = {}
        for t, h, up in changes:
            if t <= end:
                held[h] = up
        out.holders_at_end = sorted(h for h, up in held.items() if up)
        replies = [(t, h) for t, h in self.watch.answered(address) if t0 < t <= end]
        first_new = next((t for t, h in replies if h == new), None)
        out.client_switch_ms = ms(first_new, t0) if first_new is not None and moved else None
        if first_new is not None:
            out.client_old_after_new = sum(1 for t, h in replies if h == old and t > first_new)


def running(member: Member) -> bool:
    """The member's process has not exited (a frozen one is running)."""
    if isinstance(member, SimMember):
        return member.alive()
    assert isinstance(member, MemberProcess)
    return member.proc.poll() is None


def log_lines(member: Member) -> list[str]:
    """What the member logged (on stderr; in the sim's log for the sim's)."""
    if isinstance(member, SimMember):
        return member.log_lines()
    assert isinstance(member, MemberProcess)
    return list(member.stderr)


def group_of(row: Row) -> str:
    return f"hm-{row.name}"


def role_is(role: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == "role" and e["role"] == role


def ms(t: float, t0: float) -> float:
    return round((t - t0) * 1000, 1)


def until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s} s")
        time.sleep(0.02)


def _mac(host: LabHost) -> str:
    shown = subprocess.run(["ip", "-j", "-n", host.netns, "link", "show", host.interface],
                           capture_output=True, text=True, check=True).stdout
    return str(json.loads(shown)[0]["address"])


def _record(out: Outcome) -> None:
    path = os.environ.get(OUT_ENV)
    if path:
        with Path(path).open("a") as f:
            f.write(json.dumps(out.__dict__) + "\n")


@pytest.fixture(scope="module")
def matrix() -> Iterator[dict[str, Outcome]]:
    reason = unavailable(delay=True)
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    names = ["e0", "e1", "e2", "f0", "f1", "f2", "nfvi", "client",
             *(f"r{i}{x}" for i in range(len(ROWS)) for x in "ab")]
    with HostLab(names) as lab:
        rig = Matrix(lab)
        try:
            yield rig.run()
        finally:
            rig.watch.close()


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_each_fault_fails_over_once_or_not_at_all(matrix: dict[str, Outcome], row: Row) -> None:
    if row.name not in matrix:
        pytest.skip(f"not in {ROWS_ENV}")
    out = matrix[row.name]
    assert out.error is None, out.error
    assert out.violations == [], out
    assert out.failovers in ((0, 1) if row.failovers is None else (row.failovers,)), out
    if out.failovers:
        assert out.first_act_ms is not None and out.first_act_ms < row.limit_ms, out
        # the client follows the address to the new active and never hears the old one again
        assert out.client_switch_ms is not None and out.client_old_after_new == 0, out
        final, old = matrix_hosts(row)
        assert final in out.holders_at_end, out
        if row.old_keeps is not None:
            assert (old in out.holders_at_end) == row.old_keeps, out
        if row.releases_first:  # no moment with both hosts holding it
            assert out.address_removed_ms is not None and out.address_added_ms is not None, out
            assert out.address_removed_ms < out.address_added_ms, out
        if row.bridge:  # the takeover followed the fence
            # A KILL fence is confirmed by the pause (the frozen process is stopped already)
            # and the power-off runs right after it, so the process dies within a few ms of
            # the takeover, on either side (seen within 5 ms); nothing else kills it this
            # early (the bridge's watchdog would fire 1.8 s after the last kick).
            assert out.fenced_ms is not None and out.takeover_ms is not None, out
            assert out.fenced_ms <= out.takeover_ms + 100, out
        return
    assert out.address_added_ms is None and out.client_switch_ms is None, out
    if row.in_sync is not None:
        assert (out.protected_during > 0) == row.in_sync, out
    if out.resync_ms is None:
        if row.known_issue:
            pytest.xfail(row.known_issue)
        raise AssertionError(f"the standby was not back in sync {RESYNC_S} s after the heal: "
                             f"{out}")


def matrix_hosts(row: Row) -> tuple[str, str]:
    i = ROWS.index(row)
    return f"r{i}b", f"r{i}a"
