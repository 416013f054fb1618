"""The standby-granted lease (:mod:`vnfha.replication.promise`): its pieces one by one, then an
adversarial simulation of one active and its standbys on a fake clock, etcd ordering the
transactions, where the deposed active must never act once a takeover applied."""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnfha.replication.promise import (
    OFF,
    PromiseLedger,
    PromiseTimers,
    StandbyPromises,
    may_take_over,
)

INF = math.inf
TIMERS = PromiseTimers(0.5, 0.125)  # exact in binary: drop lead 0.125

# -- the pieces -----------------------------------------------------------------------------


def test_grant_moves_until_and_lapse_needs_a_grant() -> None:
    p = StandbyPromises(7, 0.5)
    assert p.until == -INF and not p.lapsed(1e9)  # nothing promised: nothing lapses
    assert p.grant(1.0) == 0.5 and p.until == 1.5
    assert p.grant(2.0) == 0.5 and p.until == 2.5
    assert p.grant(1.0) == 0.5 and p.until == 2.5  # never shortened
    assert not p.lapsed(2.499) and p.lapsed(2.5) and p.lapsed(9.0)


def test_hold_refused_before_the_lapse_changes_nothing() -> None:
    p = StandbyPromises(7, 0.5)
    assert not p.hold(5.0)  # never promised
    p.grant(1.0)
    assert not p.hold(1.25) and not p.held and p.until == 1.5
    assert p.grant(1.25) == 0.5 and p.until == 1.75
    off = StandbyPromises(7, 0.0)  # the lease off: nothing promised, nothing lapses
    assert off.grant(1.0) == 0.0 and off.until == -INF and not off.lapsed(9.0)
    assert not off.hold(9.0)


def test_no_promise_while_held_until_released() -> None:
    p = StandbyPromises(7, 0.5)
    p.grant(1.0)
    assert p.hold(1.5) and p.held
    assert p.grant(1.75) == 0.0 and p.until == 1.5 and p.lapsed(1.75)
    p.release()
    assert not p.held and p.grant(2.0) == 0.5 and p.until == 2.5 and not p.lapsed(2.25)


def test_bound_is_stamp_plus_capped_promise_less_margin_and_only_grows() -> None:
    ledger = PromiseLedger(TIMERS)
    assert ledger.bound("a") == -INF
    ledger.promised("a", 10.0, 0.25)
    assert ledger.bound("a") == 10.125
    ledger.promised("a", 10.0, 9.0)  # at most the lease counts
    assert ledger.bound("a") == 10.375
    for stamp, promise in [(9.0, 0.5), (11.0, 0.0), (11.0, -1.0)]:  # older, or no promise
        ledger.promised("a", stamp, promise)
        assert ledger.bound("a") == 10.375
    ledger.promised("a", 11.0, 0.5)
    assert ledger.bound("a") == 11.375


def test_acting_deadline() -> None:
    ledger = PromiseLedger(TIMERS)
    ledger.promised("a", 10.0, 0.5)
    ledger.promised("b", 11.0, 0.5)
    assert ledger.acting_deadline() == INF  # counts nobody
    ledger.publishing(frozenset({"b"}))
    assert ledger.acting_deadline() == 11.375
    ledger.publishing(frozenset({"a"}))  # a publish under way may add a: counted at once
    assert ledger.counted == {"a", "b"} and ledger.acting_deadline() == 10.375
    ledger.publishing(frozenset({"c"}))  # counted, but never promised
    assert ledger.acting_deadline() == -INF
    ledger.published(frozenset({"b"}))  # etcd confirmed: exactly b
    assert ledger.counted == {"b"} and ledger.acting_deadline() == 11.375
    ledger.published(frozenset())
    assert ledger.acting_deadline() == INF
    off = PromiseLedger(OFF)
    off.published(frozenset({"c"}))
    assert off.acting_deadline() == INF  # the lease off: never bounded


def test_drops_due_a_drop_lead_before_the_bound_and_may_count() -> None:
    assert TIMERS.on and not OFF.on and TIMERS.drop_lead_s == 0.125
    assert PromiseTimers(0.3, 0.05).drop_lead_s == pytest.approx(0.1)
    ledger = PromiseLedger(TIMERS)
    ledger.promised("a", 10.0, 0.5)  # bound 10.375: due at 10.25
    ledger.promised("b", 11.0, 0.5)  # bound 11.375: due at 11.25
    ab = frozenset({"a", "b"})
    assert ledger.next_drop(ab) == 10.25 and ledger.next_drop(frozenset({"b"})) == 11.25
    assert ledger.next_drop(frozenset()) == INF and ledger.due_drops(ab, 10.249) == frozenset()
    assert ledger.due_drops(ab, 10.25) == {"a"} and ledger.due_drops(ab, 11.25) == ab
    assert ledger.due_drops(frozenset({"x"}), 0.0) == {"x"}  # never promised: drop at once
    off = PromiseLedger(OFF)
    assert off.due_drops(frozenset({"x"}), 0.0) == frozenset() and off.next_drop(ab) == INF
    # (re-)added only with more than a drop lead left
    assert ledger.may_count("a", 10.249) and not ledger.may_count("a", 10.25)
    assert not ledger.may_count("x", 0.0) and off.may_count("x", 1e9)


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=4)))
def test_may_take_over_needs_all_four(flags: tuple[bool, bool, bool, bool]) -> None:
    suspected, lapsed, listed, written = flags
    assert may_take_over(suspected=suspected, lapsed=lapsed, listed=listed,
                         written_in_epoch=written) is all(flags)


# -- the simulation -------------------------------------------------------------------------

L, M, H = 0.3, 0.05, 0.05  # lease, margin, heartbeat interval
EPOCH = 5  # the active key's revision; a stale in-sync record is at revision 3
Txn = tuple[float | None, float, bool]
"""An etcd request's fate: its apply after the send (None: never), its answer after that, and
whether the answer is lost (outcome unknown; always when it never applies)."""
Snap = tuple[int, int, frozenset[str], str]
"""What a read of etcd returns: active epoch, in-sync revision, in-sync members, key holder."""


@dataclass
class Faults:
    """The adversary's choices (kind, member, send time); the defaults: all prompt."""

    msg: Callable[[str, str, float], float | None] = lambda kind, m, t: 0.001
    txn: Callable[[str, str, float], Txn] = lambda kind, m, t: (0.002, 0.002, False)
    prep: Callable[[str, float], float] = lambda m, t: 0.0


class Sim:
    """The active of EPOCH and its standbys (name: clock rate) on one fake clock. The active
    acts at every instant it may: its windows ``acted`` are half-open [start, end)."""

    def __init__(self, faults: Faults, standbys: dict[str, float], *, horizon: float = 2.0,
                 freeze: dict[str, tuple[float, float]] | None = None, every: float = 0.001,
                 stale_record: bool = False) -> None:
        self.f, self.rate, self.horizon, self.every = faults, standbys, horizon, every
        self.freeze = freeze or {}  # node: [from, to)
        self.q: list[tuple[float, int, str, Callable[..., Any], tuple[Any, ...]]] = []
        self.seq = itertools.count()
        self.rev, self.epoch, self.holder = EPOCH, EPOCH, "A"  # etcd
        self.sync = (3, frozenset(standbys)) if stale_record else (0, frozenset[str]())
        self.t_apply, self.winner = INF, ""
        self.ledger = PromiseLedger(PromiseTimers(L, M))  # the active
        self.wanted = self.in_sync = frozenset[str]()
        self.in_flight = self.deposed = False
        self.window: tuple[float, float] | None = None
        self.acted: list[tuple[float, float]] = []
        self.confirmed: list[tuple[float, frozenset[str]]] = []  # (when, what) etcd confirmed
        self.acks: list[tuple[float, str, float, float]] = []  # (when, who, stamp, promise)
        self.checks: set[float] = set()
        self.promises = {m: StandbyPromises(EPOCH, L) for m in standbys}  # the standbys
        self.busy: set[str] = set()
        self.holds: list[tuple[float, str, bool]] = []  # refused: it promised again since

    def at(self, t: float, node: str, fn: Callable[..., Any], *args: Any) -> None:
        heapq.heappush(self.q, (t, next(self.seq), node, fn, args))

    def local(self, m: str, t: float) -> float:
        """Standby ``m``'s monotonic clock at real time ``t`` (the active's clock is real)."""
        return 100.0 + self.rate[m] * t

    def run(self) -> Sim:
        """Play every event up to the horizon; a frozen node's events wait for its resume."""
        self.at(0.0, "A", self.tick)
        for m in self.rate:
            self.at(0.0, m, self.attempt, m)
        if "A" in self.freeze:
            self.at(self.freeze["A"][0], "", self.close)
        while self.q:
            t, _, node, fn, args = heapq.heappop(self.q)
            if t > self.horizon:
                break
            f0, f1 = self.freeze.get(node, (INF, INF))
            if f0 <= t < f1:
                self.at(f1, node, fn, *args)
                continue
            if node == "A":
                if self.deposed:
                    continue
                self.close(t)
            fn(t, *args)
            if node == "A" and not self.deposed:
                self.window = (t, self.ledger.acting_deadline())
        self.close(self.horizon)
        return self

    def close(self, t: float) -> None:
        """The active stops (or is frozen) at ``t``: record where it might have acted."""
        if self.window is not None and self.window[0] < min(t, self.window[1]):
            self.acted.append((self.window[0], min(t, self.window[1])))
        self.window = None

    def request(self, t: float, kind: str, who: str, apply: Callable[..., Any],
                answer: Callable[..., Any], *args: Any) -> None:
        """An etcd request: applied (or not) between its send and its answer (None: lost)."""
        apply_d, reply_d, lost = self.f.txn(kind, who, t)
        result: list[Any] = [None]
        if apply_d is not None:
            self.at(t + apply_d, "", lambda ta: result.__setitem__(0, apply(ta, *args)))
        lost = lost or apply_d is None
        self.at(t + (apply_d or 0.0) + reply_d, who,
                lambda tr: answer(tr, None if lost else result[0], *args))

    # the active
    def tick(self, t: float) -> None:
        for m in self.rate:  # stamped with the send time
            if (delay := self.f.msg("hb", m, t)) is not None:
                self.at(t + delay, m, self.heartbeat, m, t)
        self.check(t)
        self.at(t + H, "A", self.tick)

    def ack(self, t: float, m: str, stamp: float, promise: float) -> None:
        self.acks.append((t, m, stamp, promise))
        self.ledger.promised(m, stamp, promise)
        if m not in self.wanted and self.ledger.may_count(m, t):
            self.wanted |= {m}
        self.check(t)

    def check(self, t: float) -> None:
        """Drop the silent standbys from the wanted set; look again at the next drop."""
        self.wanted -= self.ledger.due_drops(self.wanted, t)
        nxt = self.ledger.next_drop(self.wanted)
        if nxt < self.horizon and nxt not in self.checks:
            self.checks.add(nxt)
            self.at(nxt, "A", self.check)
        self.publish(t)

    def publish(self, t: float) -> None:
        if self.in_flight or self.wanted == self.in_sync:
            return
        self.in_flight = True
        self.ledger.publishing(self.wanted)
        self.request(t, "publish", "A", self.apply_publish, self.published, self.wanted)

    def apply_publish(self, t: float, members: frozenset[str]) -> bool:
        if ok := self.epoch == EPOCH:  # fenced by the active key's epoch
            self.rev += 1
            self.sync = (self.rev, members)
        return ok

    def published(self, t: float, ok: bool | None, members: frozenset[str]) -> None:
        self.in_flight = False
        if ok is None:  # outcome unknown: try again a heartbeat interval later
            self.at(t + H, "A", self.publish)
        elif ok:
            self.in_sync = members
            self.ledger.published(members)
            self.confirmed.append((t, members))
            self.publish(t)
        else:
            self.deposed = True

    # the standbys
    def heartbeat(self, t: float, m: str, stamp: float) -> None:
        promise = self.promises[m].grant(self.local(m, t))  # acks at once, echoing the stamp
        if (delay := self.f.msg("ack", m, t)) is not None:
            self.at(t + delay, "A", self.ack, m, stamp, promise)

    def attempt(self, t: float, m: str) -> None:
        """Standby ``m`` suspects the active all along: every ``every`` it reads etcd if lapsed
        (a heartbeat interval after a read that did not let it take over)."""
        self.at(t + self.every, m, self.attempt, m)
        if m not in self.busy and self.promises[m].lapsed(self.local(m, t)):
            self.busy.add(m)
            self.request(t, "read", m, self.read, self.decide, m)

    def read(self, t: float, m: str) -> Snap:
        return self.epoch, self.sync[0], self.sync[1], self.holder

    def decide(self, t: float, snap: Snap | None, m: str) -> None:
        p = self.promises[m]
        if snap is None or snap[0] != p.epoch or not may_take_over(
                suspected=True, lapsed=p.lapsed(self.local(m, t)), listed=m in snap[2],
                written_in_epoch=snap[1] >= snap[0]):
            self.at(t + H, m, lambda _: self.busy.discard(m))
            return
        self.at(t + self.f.prep(m, t), m, self.hold, m, snap)

    def hold(self, t: float, m: str, snap: Snap) -> None:
        self.holds.append((t, m, ok := self.promises[m].hold(self.local(m, t))))
        if not ok:
            self.busy.discard(m)
            return
        self.request(t, "takeover", m, self.apply_takeover, self.taken, m, snap)

    def apply_takeover(self, t: float, m: str, snap: Snap) -> bool:
        if ok := (self.epoch, self.sync[0]) == snap[:2]:  # the epoch and the in-sync record
            self.rev += 1
            self.epoch, self.holder, self.sync = self.rev, m, (self.rev, frozenset())
            self.t_apply, self.winner = t, m
        return ok

    def taken(self, t: float, ok: bool | None, m: str, snap: Snap) -> None:
        if ok is None:  # unknown: read back (it applied before the answer, or never)
            self.request(t, "read", m, self.read, self.read_back, m)
        elif not ok:
            self.promises[m].release()
            self.busy.discard(m)

    def read_back(self, t: float, snap: Snap | None, m: str) -> None:
        if snap is not None and snap[3] != m:  # certainly failed (unread: stay held)
            self.taken(t, False, m, snap)


def assert_safe(sim: Sim) -> None:
    """Every instant the active might have acted lies before the takeover applied."""
    late = [w for w in sim.acted if w[1] > sim.t_apply]
    assert not late, f"acted in {late} after {sim.winner}'s takeover at {sim.t_apply}"


def gaps(sim: Sim) -> list[tuple[float, float]]:
    """Where in [0, horizon) the active did not act (lapsed, frozen or deposed)."""
    out, covered = [], 0.0
    for start, end in sim.acted:
        if start > covered:
            out.append((covered, start))
        covered = max(covered, end)
    return [*out, (covered, sim.horizon)] if covered < sim.horizon else out


OUTAGES = st.lists(st.tuples(st.floats(0, 1.5), st.floats(0, 1.0), st.none() | st.floats(0, 0.6),
                             st.floats(0, 0.3), st.booleans()), max_size=2)
"""Spells (start, length) when a channel's messages are lost (None) or late (so much), and its
etcd requests' answers come so much later still, or are lost (a flag)."""
BASE, LATE, LOST = st.sampled_from([0.0, 0.001, 0.02]), st.none() | st.floats(0, 0.4), st.booleans()
ANSWER, PREP = st.floats(0, 0.2), st.sampled_from([0.0, 0.0, 0.01]) | st.floats(0, 0.1)


def drawn(data: st.DataObject) -> Faults:
    """Faults chosen by hypothesis: per channel (kind, member) a usual delay, outages, and
    maybe (jitter) a fresh draw for every message outside them."""
    chans: dict[tuple[str, str], tuple[float, list[Any], bool]] = {}

    def fate(kind: str, m: str, t: float, txn: bool = True) -> Txn:
        if (kind, m) not in chans:
            chans[kind, m] = data.draw(BASE), data.draw(OUTAGES), data.draw(LOST)
        base, outages, jitter = chans[kind, m]
        for start, length, apply, reply, lost in outages:
            if start <= t < start + length:
                return apply, reply, lost
        if not jitter:
            return base, base, False
        apply = data.draw(LATE)
        return (apply, data.draw(ANSWER), data.draw(LOST)) if txn else (apply, 0.0, False)

    return Faults(msg=lambda kind, m, t: fate(kind, m, t, txn=False)[0], txn=fate,
                  prep=lambda m, t: data.draw(PREP))


FAST = 1 + M / L  # the fastest standby clock the margin allows for (M more over L)
RATE = st.sampled_from([FAST, FAST, 1.0, 1 - M / L]) | st.floats(1 - M / L, FAST)
FREEZE = st.none() | st.tuples(st.floats(0, 1.5), st.floats(0, 1.5)).map(
    lambda w: (w[0], w[0] + w[1]))
ONE_OR_TWO, EVERY = st.integers(1, 2), st.sampled_from([0.005, 0.02])


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_never_acts_at_or_after_a_takeover(data: st.DataObject) -> None:
    standbys = {f"s{i}": data.draw(RATE) for i in range(data.draw(ONE_OR_TWO))}
    freeze = {n: w for n in ["A", *standbys] if (w := data.draw(FREEZE)) is not None}
    sim = Sim(drawn(data), standbys, horizon=1.5, freeze=freeze,
              every=data.draw(EVERY), stale_record=data.draw(LOST)).run()
    assert_safe(sim)


# -- liveness, with prompt messages ---------------------------------------------------------


def test_prompt_active_never_lapses() -> None:
    sim = Sim(Faults(), {"s0": 1.0, "s1": 1.0}, horizon=3.0).run()
    assert gaps(sim) == [] and sim.in_sync == {"s0", "s1"}
    assert not sim.winner and not sim.holds and sim.ledger.acting_deadline() > 3.0


def test_frozen_active_is_taken_over_within_a_lease_and_a_heartbeat() -> None:
    t0 = 1.0
    sim = Sim(Faults(), {"s0": 1.0}, freeze={"A": (t0, INF)}).run()
    assert sim.promises["s0"].lapsed(sim.local("s0", t0 + L + H))
    assert sim.winner == "s0" and sim.t_apply <= t0 + L + H and sim.holder == "s0"
    assert gaps(sim) == [(t0, 2.0)]
    assert_safe(sim)


@pytest.mark.parametrize("fault", ["frozen", "partitioned"])
def test_silent_standby_is_dropped_before_the_active_lapses(fault: str) -> None:
    t0 = 1.0
    faults = Faults(txn=lambda kind, m, t: (0.045, 0.045, False))  # answered in < lead 0.1
    if fault == "partitioned":
        faults.msg = lambda kind, m, t: None if m == "s0" and t >= t0 else 0.001
    sim = Sim(faults, {"s0": 1.0, "s1": 1.0},
              freeze={"s0": (t0, INF)} if fault == "frozen" else None).run()
    dropped = [t for t, members in sim.confirmed if t > t0 and "s0" not in members]
    assert dropped and dropped[0] < sim.ledger.bound("s0")
    assert gaps(sim) == [] and sim.ledger.counted == {"s1"} and not sim.winner


# -- the adversarial cases, scripted --------------------------------------------------------


def test_promise_granted_just_before_the_suspicion() -> None:
    """Heartbeats to s0 are lost after 0.45, but the one sent at 0.7 arrives at 0.765: after
    s0 read etcd on its lapse at 0.751, before its hold at 0.775. The hold refuses; the active,
    promised again, acts until 0.95; s0 takes over only once that promise ran out."""

    def msg(kind: str, m: str, t: float) -> float | None:
        if kind == "hb" and t > 0.48:  # all lost but the one sent at 0.7
            return 0.065 if abs(t - 0.7) < 1e-9 else None
        return 0.001

    faults = Faults(msg, lambda kind, m, t: (0.7, 0.1, False) if kind == "publish" and t >= 0.5
                    else (0.002, 0.002, False), lambda m, t: 0.02)
    sim = Sim(faults, {"s0": 1.0}).run()
    assert_safe(sim)
    assert [(round(t, 3), ok) for t, _, ok in sim.holds] == [(0.775, False), (1.089, True)]
    assert max(end for _, end in sim.acted) == pytest.approx(0.95)
    assert sim.winner == "s0" and 1.065 < sim.t_apply < 1.1 and sim.deposed


def test_fast_standby_clock_within_the_margin() -> None:
    """s0's clock runs M faster over L, and it hears nothing after 0.45: its promise of
    0.4505 lapses at 0.7079 (real time) and it takes over at once, the drop being slow. The
    active stopped at 0.70: the margin is what keeps it before the takeover."""
    faults = Faults(msg=lambda kind, m, t: None if kind == "hb" and t > 0.48 else 0.0005,
                    txn=lambda kind, m, t: (0.3 if kind == "publish" and t > 0.48 else 0.0005,
                                            0.0005, False))
    sim = Sim(faults, {"s0": FAST}, horizon=1.0).run()
    assert_safe(sim)
    assert sim.winner == "s0" and sim.t_apply < 0.71
    assert max(end for _, end in sim.acted) == pytest.approx(0.7)


@pytest.mark.parametrize("first", ["drop", "takeover"])
def test_drop_racing_a_takeover(first: str) -> None:
    """s0 hears nothing after 0.45: the active drops it at 0.6 (applied at 0.8 or 0.85), s0
    lapses at 0.751 and sends its takeover at 0.755 (applied at 0.85 or 0.8). etcd's order
    decides, and the loser's transaction fails."""
    drop_at, take_at = (0.8, 0.85) if first == "drop" else (0.85, 0.8)

    def txn(kind: str, m: str, t: float) -> Txn:
        if kind == "publish" and t >= 0.5:
            return drop_at - t, 0.02, False
        return (take_at - t if kind == "takeover" else 0.002), 0.002, False

    sim = Sim(Faults(msg=lambda kind, m, t: None if kind == "hb" and t > 0.48 else 0.001,
                     txn=txn), {"s0": 1.0}).run()
    assert_safe(sim)
    assert [(round(t, 3), ok) for t, _, ok in sim.holds][:1] == [(0.755, True)]
    if first == "drop":  # the takeover failed: s0 promises again
        assert not sim.winner and not sim.promises["s0"].held and not sim.deposed
        [(lapse, confirmed)] = gaps(sim)  # stops at its deadline, acts again once confirmed
        assert (lapse, confirmed) == pytest.approx((0.7, 0.82))
    else:
        assert sim.winner == "s0" and sim.t_apply == pytest.approx(0.8) and sim.deposed
        assert max(end for _, end in sim.acted) == pytest.approx(0.7)


@pytest.mark.parametrize("answer", ["slow", "lost"])
def test_active_resumed_after_a_long_freeze(answer: str) -> None:
    """The active sleeps through [0.52, 2); s0's takeover lands only at 2.055, after the
    active resumed and heartbeated: s0, held, answers without a promise, so the active,
    long past its deadline, never acts again."""
    faults = Faults(txn=lambda kind, m, t: (1.25, 0.05, answer == "lost") if kind == "takeover"
                    else (0.1, 0.05, False) if t >= 2.0 else (0.002, 0.002, False))
    sim = Sim(faults, {"s0": 1.0}, freeze={"A": (0.52, 2.0)}, horizon=2.5).run()
    assert_safe(sim)
    late = [promise for t, _, stamp, promise in sim.acks if stamp >= 2.0]
    assert late and set(late) == {0.0}
    assert sim.winner == "s0" and sim.t_apply == pytest.approx(2.055) and sim.deposed
    assert max(end for _, end in sim.acted) == 0.52
