"""PURE: the worst-case failover time of each path, from a config's timers, and the failover
budgets (``failover_budget_*_ms``) a config must meet.

No I/O, no clock, no config object: :class:`FailoverTimers` holds plain numbers (read from a
:class:`vnfha.Config` by :meth:`FailoverTimers.of`) and :func:`worst_cases` returns, for each
path, a :class:`WorstCase`: a sum of named :class:`Term` values, each derived from how vnfha
acts on that path (the module that does it is cited in the table). :class:`vnfha.Config`
refuses to exist when a budget it is given is below its path's worst case
(:func:`judge_budgets`); ``vnfha check-config FILE`` prints every path.

The clock starts when the fault happens (the last message from the active reached the standby;
a switchover was asked for) and stops when the new active holds the key: its primary accepts
writes and its ``on_active`` has been started. With ``L`` = ``etcd_request_timeout_s``, ``hb``
= ``heartbeat_interval_s``, ``step`` = :func:`~vnfha.timing.backoff_step_s` (2 hb), ``k`` = the
suspicion threshold in heartbeat slots (``ceil(suspicion_s / hb)``,
:class:`~vnfha.roles.suspicion.SuspicionPolicy`), ``R`` = :data:`ETCD_REVOKE_INTERVAL_S`:

============ ================================================================================
path         worst case (TWO_N and N_WAY)
============ ================================================================================
crash        10 quick reconnects 5 ms apart, then one a step later: the connection is refused
             (:mod:`vnfha.replication.standby`); then the *takeover*: the final-position put
             (L), one step for candidates that have not published theirs, the transaction (L)
             (:mod:`vnfha.roles.policy`, :mod:`vnfha.roles.runtime`)
hang-bridge  the heartbeat slot under way (hb), ``k`` silent slots (:mod:`vnfha.roles.monitor`),
             the Fence (``bridge_timeout_s``), the takeover
hang-standby the later of the silence (the slot under way and ``k`` silent slots) and the end
             of the standby's last promise (``standby_lease_s``, from its ack of the last message)
             seen at the next slot (hb) (:mod:`vnfha.replication.promise`,
             :mod:`vnfha.roles.fastpath`), then the takeover; the hang path without a bridge
             while the standby lease is on
hang-lease   the sooner of two bounds. *Expiry proof* (only with ``lease_ttl_s >= 2`` and
             ``2 hb + 2 L < 1 s``, else a run of polls can restart for ever;
             :mod:`vnfha.roles.expiry`): the lease (TTL: a keepalive may have renewed it just
             before the active stopped) - ``lease_margin_s`` + the guard (hb) + how late the
             bound from the lease's last second can be (``max(hb + 2 L, (k + 1) hb + L + 1 -
             TTL)``, a poll period, or a suspicion that starts polling late) + the proving poll
             (hb + 2 L), then the takeover and one record update (L) in case etcd revokes the
             lease meanwhile. *Revocation*: TTL + R, two record updates (2 L, when a proof came
             just before) and the campaign (L)
switchover   the member list read (L), the write probe (L), ``on_quiesce``
             (``callback_timeout_s``), the successor's catch-up (``checkpoint_ack_timeout_s``),
             the release (L), the successor's campaign (L) (:mod:`vnfha.roles.resign`)
============ ================================================================================

Under NO_REDUNDANCY nobody follows the active, so a crash or a hang is the revocation path
(TTL + R + L) and a switchover has no catch-up; under N_WAY_ACTIVE every member is active and
nobody takes over (0 ms).

Assumptions: etcd answers every request within ``etcd_request_timeout_s`` (one that times out
is retried a step later: an outage, not a path) and grants the TTL asked for (etcd raises a TTL
below its minimum, 1.5 election timeouts, which slows every lease-bound path); the bridge
answers a Fence within ``bridge_timeout_s``; one fault at a time, so the best-ranked candidate
is alive; timers fire on time (a loaded host adds its scheduling delays); the standby's role
loop and the callback queue are idle when the path starts.

Not included (:data:`NOT_INCLUDED`): the component's own ``on_active`` time; etcd leader
elections; watch delivery and etcd's commit latency; a Fence that fails (it falls back to the
standby lease, hang-standby + ``bridge_timeout_s``, or with that off to the etcd lease); a second
fault (each better-ranked candidate that fails to campaign adds one step, the k-th ranked
waits k).

Guarantees (tested, with hypothesis against the pure detectors): sums are exact in decimal (each
timer is the decimal it prints as), so a budget equal to the worst case is met; the worst case
never decreases when ``suspicion_s``, ``etcd_request_timeout_s``, ``callback_timeout_s``,
``checkpoint_ack_timeout_s``, ``bridge_timeout_s`` or (from 2 s) ``lease_ttl_s`` grows, nor
when ``lease_margin_s`` shrinks; every figure measured in ``docs/failover.md`` lies below it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from vnfha.model import Redundancy
from vnfha.roles.suspicion import SuspicionPolicy
from vnfha.timing import BACKOFF_HEARTBEATS, exact

__all__ = [
    "BUDGET_FIELDS",
    "ETCD_REVOKE_INTERVAL_S",
    "NOT_INCLUDED",
    "RECONNECT_QUICK_RETRIES",
    "RECONNECT_QUICK_RETRY_S",
    "BudgetVerdict",
    "FailoverTimers",
    "Path",
    "Term",
    "WorstCase",
    "budget_path",
    "budget_refusal",
    "format_ms",
    "hang_path",
    "judge_budgets",
    "worst_cases",
]

ETCD_REVOKE_INTERVAL_S: Final = 0.5
"""etcd (3.5) revokes expired leases from a loop that runs every 500 ms: a key bound to an
expired lease goes up to this long after the lease's expiry (``docs/failover.md``)."""

RECONNECT_QUICK_RETRIES: Final = 10
RECONNECT_QUICK_RETRY_S: Final = 0.005
"""After a delivering stream breaks, the standby reconnects at once, then this many times this
far apart, then once per backoff step; a refused connection proves the process is gone. The
same values as :data:`vnfha.replication.standby.QUICK_RETRIES` and ``QUICK_RETRY_S`` (a test
keeps them equal; this module may not import grpc)."""

BUDGET_FIELDS: Final = ("failover_budget_crash_ms", "failover_budget_hang_ms",
                        "failover_budget_switchover_ms")
"""The config fields that state a budget, in milliseconds (None: no budget)."""

NOT_INCLUDED: Final = (
    "the component's own on_active time (bounded by callback_timeout_s)",
    "etcd leader elections (they stall requests and extend every lease)",
    "watch delivery and etcd's commit latency, the network between members",
    "scheduling delays of a loaded host",
    "a Fence that fails: the standby lease (or, when off, the etcd lease) follows, plus "
    "bridge_timeout_s",
    "a second fault: each better-ranked candidate that fails to campaign adds a backoff step",
)
"""What no worst case counts (the module docstring says why)."""


class Path(enum.StrEnum):
    """A failover path."""

    CRASH = "crash"
    """The active's process is gone, its host alive: connections to it are refused."""
    HANG_BRIDGE = "hang-bridge"
    """The active is silent (hung, frozen, cut off) and the NFVI bridge fences it."""
    HANG_STANDBY = "hang-standby-lease"
    """The active is silent, there is no bridge, and the standby lease is on: the in-sync
    standby's promise runs out."""
    HANG_LEASE = "hang-lease"
    """The active is silent, there is no bridge and the standby lease is off: its etcd lease
    has to run out."""
    SWITCHOVER = "switchover"
    """A graceful handover, asked for by an operator or the API."""

    @property
    def what(self) -> str:
        """What happened, in words."""
        return _WHAT[self]


_WHAT: Final = {
    Path.CRASH: "a crash (process killed, host alive)",
    Path.HANG_BRIDGE: "a hang with a bridge (fenced)",
    Path.HANG_STANDBY: "a hang without a bridge (standby lease)",
    Path.HANG_LEASE: "a hang without a bridge (etcd lease)",
    Path.SWITCHOVER: "a switchover",
}


@dataclass(frozen=True, slots=True)
class Term:
    """One part of a worst case: what it is, how long (exact seconds; negative for the margin
    that is taken off), and the settings it depends on, the one to change first leading."""

    label: str
    seconds: Fraction
    fields: tuple[str, ...] = ()

    @property
    def ms(self) -> Fraction:
        """The term in milliseconds, exact."""
        return self.seconds * 1000


@dataclass(frozen=True, slots=True)
class WorstCase:
    """The worst-case failover time of ``path``: the sum of ``terms``; ``note`` says which
    bound it is when the path has two (hang-lease) or why it is empty."""

    path: Path
    terms: tuple[Term, ...]
    note: str = ""

    @property
    def ms(self) -> Fraction:
        """The worst case in milliseconds, exact."""
        return sum((t.ms for t in self.terms), Fraction(0))

    def breakdown(self) -> str:
        """The terms as one line: ``lease TTL 2000 - active's margin 200 + ...``."""
        parts = [f"{'- ' if t.seconds < 0 else '+ '}{t.label} {format_ms(abs(t.ms))}"
                 for t in self.terms]
        return " ".join(parts).removeprefix("+ ") or "nothing"

    def fields(self) -> tuple[str, ...]:
        """The settings behind the largest terms, largest first, each once: what to lower."""
        out: list[str] = []
        for term in sorted(self.terms, key=lambda t: -t.seconds):
            if term.seconds > 0:
                out += [f for f in term.fields[:1] if f not in out]
        return tuple(out)


@dataclass(frozen=True, slots=True)
class FailoverTimers:
    """The settings the worst cases depend on, as plain numbers (seconds; the TTL whole)."""

    heartbeat_interval_s: float
    suspicion_s: float
    lease_ttl_s: int
    lease_margin_s: float
    etcd_request_timeout_s: float
    callback_timeout_s: float
    checkpoint_ack_timeout_s: float
    bridge_timeout_s: float
    redundancy: Redundancy = Redundancy.TWO_N
    standby_lease_s: float = 0.0

    @property
    def standby_lease_on(self) -> bool:
        """Whether a silent active is bounded by its standbys' promises (a model with
        standbys that may take over, and ``standby_lease_s`` above 0)."""
        return self.standby_lease_s > 0 and self.redundancy in (Redundancy.TWO_N,
                                                                Redundancy.N_WAY)

    @classmethod
    def of(cls, source: object) -> FailoverTimers:
        """The timers of ``source`` (a :class:`vnfha.Config`), read by field name (the value
        in force, ``<name>_effective``, where the config derives one)."""
        return cls(**{name: getattr(source, f"{name}_effective", getattr(source, name))
                      for name in _TIMER_FIELDS})


_TIMER_FIELDS: Final = tuple(f.name for f in dataclasses.fields(FailoverTimers))


def format_ms(ms: Fraction) -> str:
    """Milliseconds, short: ``1650``, ``2057.5``, at most three decimals."""
    if ms.denominator == 1:
        return str(ms.numerator)
    return f"{float(ms):.3f}".rstrip("0").rstrip(".")


# -- the paths --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Exact:
    """The timers as exact decimals, and the derived values every path uses."""

    hb: Fraction
    k: int
    ttl: Fraction
    margin: Fraction
    req: Fraction
    callback: Fraction
    catch_up: Fraction
    fence: Fraction
    standby: Fraction

    @classmethod
    def of(cls, t: FailoverTimers) -> _Exact:
        return cls(hb=exact("heartbeat_interval_s", t.heartbeat_interval_s),
                   k=SuspicionPolicy.from_timers(t.heartbeat_interval_s, t.suspicion_s).k,
                   ttl=exact("lease_ttl_s", t.lease_ttl_s),
                   margin=exact("lease_margin_s", t.lease_margin_s),
                   req=exact("etcd_request_timeout_s", t.etcd_request_timeout_s),
                   callback=exact("callback_timeout_s", t.callback_timeout_s),
                   catch_up=exact("checkpoint_ack_timeout_s", t.checkpoint_ack_timeout_s),
                   fence=exact("bridge_timeout_s", t.bridge_timeout_s),
                   standby=exact("standby_lease_s", t.standby_lease_s))

    @property
    def step(self) -> Fraction:
        return BACKOFF_HEARTBEATS * self.hb

    def request(self, label: str, count: int = 1) -> Term:
        """``count`` etcd requests on the path, each at most ``etcd_request_timeout_s``."""
        return Term(label, count * self.req, ("etcd_request_timeout_s",))

    def takeover(self) -> tuple[Term, ...]:
        """Proof in hand: publish the final position, wait a step for candidates that have not
        published theirs (the best-ranked waits one at most), take the key in one transaction."""
        return (self.request("final-position put"),
                Term("other candidates' positions (a backoff step)", self.step,
                     ("heartbeat_interval_s",)),
                self.request("takeover transaction"))

    def silence(self) -> tuple[Term, ...]:
        """The slot under way when the active stopped may count as heard; ``k`` more missed
        slots make the standby suspect it."""
        return (Term("heartbeat slot under way", self.hb, ("heartbeat_interval_s",)),
                Term(f"silence: {self.k} missed heartbeat slots", self.k * self.hb,
                     ("suspicion_s", "heartbeat_interval_s")))


def _crash(x: _Exact) -> tuple[Term, ...]:
    quick = RECONNECT_QUICK_RETRIES * exact("RECONNECT_QUICK_RETRY_S", RECONNECT_QUICK_RETRY_S)
    return (Term(f"{RECONNECT_QUICK_RETRIES} quick reconnects", quick),
            Term("reconnect after a backoff step", x.step, ("heartbeat_interval_s",)),
            *x.takeover())


def _hang_standby(x: _Exact) -> WorstCase:
    """The standby takes over once it suspects the active *and* its last promise (granted with
    its ack of the last message) ran out, whichever is later, as seen by the monitor's slot."""
    silence = x.silence()
    promise = (Term("the standby's last promise", x.standby, ("standby_lease_s",)),
               Term("monitor slot (a heartbeat)", x.hb, ("heartbeat_interval_s",)))
    later = silence if sum(t.seconds for t in silence) >= x.standby + x.hb else promise
    return WorstCase(Path.HANG_STANDBY, (*later, *x.takeover()))


def _proof_possible(x: _Exact) -> bool:
    """Whether an expiry proof can be given at all (etcd's answers carry information)."""
    return x.ttl >= 2


def _proof_certain(x: _Exact) -> bool:
    """Whether polls are always close enough for a run to hold: the tracker restarts when a
    reply comes ``1 - guard`` or more after the previous poll's send; they are at most
    ``hb + 2 L`` apart, and the guard is one heartbeat."""
    return _proof_possible(x) and 2 * x.hb + 2 * x.req < 1


def _proof(x: _Exact) -> tuple[Term, ...]:
    """The expiry proof: polls every heartbeat once suspected, bounded by the run's tightest
    bound (:class:`~vnfha.roles.expiry.ExpiryTracker`), then the takeover."""
    poll = x.hb + 2 * x.req  # send of one poll to the reply of the next, at most
    late_start = (x.k + 1) * x.hb + x.req + 1 - x.ttl  # suspected inside the last second
    if poll >= late_start:
        bound = Term("expiry bound, up to a poll late", poll,
                     ("etcd_request_timeout_s", "heartbeat_interval_s"))
    else:
        bound = Term("expiry bound, polling started late", late_start,
                     ("suspicion_s", "etcd_request_timeout_s"))
    return (Term("lease TTL", x.ttl, ("lease_ttl_s",)),
            Term("active's margin", -x.margin, ("lease_margin_s",)),
            Term("proof guard (a heartbeat)", x.hb, ("heartbeat_interval_s",)),
            bound,
            Term("proving poll", poll, ("etcd_request_timeout_s", "heartbeat_interval_s")),
            *x.takeover(),
            x.request("record update if etcd revokes meanwhile"))


def _revocation(x: _Exact, replicated: bool) -> tuple[Term, ...]:
    """etcd revokes the expired lease, the key goes with it, the best-ranked campaigns. A
    member that published a final position just before rewrites its record first."""
    updates = (x.request("record updates", 2),) if replicated and _proof_possible(x) else ()
    return (Term("lease TTL", x.ttl, ("lease_ttl_s",)),
            Term("etcd's revocation loop", exact("ETCD_REVOKE_INTERVAL_S",
                                                 ETCD_REVOKE_INTERVAL_S)),
            *updates,
            x.request("campaign transaction"))


def _hang_lease(x: _Exact) -> WorstCase:
    revocation = WorstCase(Path.HANG_LEASE, _revocation(x, True))
    if not _proof_possible(x):
        return dataclasses.replace(revocation, note="etcd revokes the lease: with a TTL of 1 s "
                                   "its whole-second answers cannot prove the expiry")
    if not _proof_certain(x):
        return dataclasses.replace(revocation, note="etcd revokes the lease: the expiry proof "
                                   "cannot be relied on, as polls may lie 2 x "
                                   "heartbeat_interval_s + 2 x etcd_request_timeout_s >= 1 s "
                                   "apart")
    proof = WorstCase(Path.HANG_LEASE, _proof(x))
    if proof.ms <= revocation.ms:
        return dataclasses.replace(proof, note=f"the expiry proof, before etcd revokes the "
                                   f"lease ({format_ms(revocation.ms)} ms)")
    return dataclasses.replace(revocation, note=f"etcd revokes the lease before the expiry "
                               f"proof's bound ({format_ms(proof.ms)} ms)")


def _switchover(x: _Exact, replicated: bool) -> tuple[Term, ...]:
    catch_up = (Term("successor's catch-up", x.catch_up, ("checkpoint_ack_timeout_s",)),)
    return (x.request("member list read"), x.request("write probe"),
            Term("on_quiesce", x.callback, ("callback_timeout_s",)),
            *(catch_up if replicated else ()),
            x.request("release transaction"), x.request("successor's campaign"))


def worst_cases(t: FailoverTimers) -> dict[Path, WorstCase]:
    """The worst case of every path under ``t`` (see the module table)."""
    x = _Exact.of(t)
    if t.redundancy is Redundancy.N_WAY_ACTIVE:
        none = "n-way-active: every member is active, nobody takes over"
        return {p: WorstCase(p, (), none) for p in Path}
    if t.redundancy is Redundancy.NO_REDUNDANCY:
        alone = WorstCase(Path.CRASH, _revocation(x, False),
                          "no-redundancy: nobody follows the active, so its lease has to end")
        return {Path.CRASH: alone,
                Path.HANG_BRIDGE: dataclasses.replace(alone, path=Path.HANG_BRIDGE),
                Path.HANG_STANDBY: dataclasses.replace(alone, path=Path.HANG_STANDBY),
                Path.HANG_LEASE: dataclasses.replace(alone, path=Path.HANG_LEASE),
                Path.SWITCHOVER: WorstCase(Path.SWITCHOVER, _switchover(x, False))}
    lease = _hang_lease(x)
    standby = _hang_standby(x) if t.standby_lease_on else dataclasses.replace(
        lease, path=Path.HANG_STANDBY, note="the standby lease is off (standby_lease_s = 0): "
        "the etcd lease bounds a silent active")
    return {Path.CRASH: WorstCase(Path.CRASH, _crash(x)),
            Path.HANG_BRIDGE: WorstCase(Path.HANG_BRIDGE, (
                *x.silence(), Term("Fence", x.fence, ("bridge_timeout_s",)), *x.takeover())),
            Path.HANG_STANDBY: standby,
            Path.HANG_LEASE: lease,
            Path.SWITCHOVER: WorstCase(Path.SWITCHOVER, _switchover(x, True))}


# -- budgets ----------------------------------------------------------------------------------


def hang_path(*, bridge: bool, standby_lease: bool) -> Path:
    """The path a hang takes: fenced with a bridge (``bridge``), else the standby lease when it
    is on (``standby_lease``), else the etcd lease."""
    if bridge:
        return Path.HANG_BRIDGE
    return Path.HANG_STANDBY if standby_lease else Path.HANG_LEASE


def budget_path(field: str, *, bridge: bool, standby_lease: bool = False) -> Path:
    """The path a budget field bounds: the hang budget bounds :func:`hang_path`."""
    if field == "failover_budget_crash_ms":
        return Path.CRASH
    if field == "failover_budget_hang_ms":
        return hang_path(bridge=bridge, standby_lease=standby_lease)
    if field == "failover_budget_switchover_ms":
        return Path.SWITCHOVER
    raise ValueError(f"{field!r} is not a budget field; they are {', '.join(BUDGET_FIELDS)}")


@dataclass(frozen=True, slots=True)
class BudgetVerdict:
    """One budget (``field`` = ``budget_ms``) against its path's ``worst`` case; ``hang_bridge``
    is the fenced hang's worst case, which a hang budget without a bridge points to."""

    field: str
    budget_ms: float
    worst: WorstCase
    hang_bridge: WorstCase | None = None

    @property
    def met(self) -> bool:
        """The worst case is at most the budget (exact: equal is met)."""
        return self.over_ms <= 0

    @property
    def over_ms(self) -> Fraction:
        """How far the worst case lies above the budget (negative: below), exact."""
        return self.worst.ms - exact(self.field, self.budget_ms)

    @property
    def message(self) -> str:
        """Why the budget is missed: the worst case, its terms, what to change."""
        hint = " or ".join(self.worst.fields()[:3])
        bridge = self.hang_bridge
        if self.worst.path in (Path.HANG_LEASE, Path.HANG_STANDBY) and bridge is not None and \
                bridge.ms < self.worst.ms:
            hint += (f", or set bridge_endpoint (a fenced hang: "
                     f"{format_ms(bridge.ms)} ms)")
        return (f"the worst case of {self.worst.path.what} is {format_ms(self.worst.ms)} ms "
                f"({self.worst.breakdown()}), {format_ms(self.over_ms)} ms over the budget; "
                f"to meet it, lower {hint}")


def judge_budgets(t: FailoverTimers, budgets: Mapping[str, float | None], *,
                  bridge: bool) -> list[BudgetVerdict]:
    """A verdict for every budget that is set in ``budgets`` (field -> ms, None: not set), in
    :data:`BUDGET_FIELDS` order; ``bridge``: a bridge is configured."""
    cases = worst_cases(t)
    return [BudgetVerdict(name, value, cases[budget_path(name, bridge=bridge,
                                                         standby_lease=t.standby_lease_on)],
                          cases[Path.HANG_BRIDGE])
            for name in BUDGET_FIELDS if (value := budgets.get(name)) is not None]


def budget_refusal(t: FailoverTimers, budgets: Mapping[str, float | None], *,
                   bridge: bool) -> tuple[str, float, str] | None:
    """What a config with timers ``t`` and ``budgets`` is refused with, as the ``field``,
    ``value`` and ``problem`` of a :class:`vnfha.ConfigError` (the first missed budget; every
    missed one in the problem), or None when every budget set is met."""
    missed = [v for v in judge_budgets(t, budgets, bridge=bridge) if not v.met]
    if not missed:
        return None
    first = missed[0]
    if len(missed) == 1:
        return first.field, first.budget_ms, first.message
    problem = f"{len(missed)} failover budgets missed: " + "; ".join(
        f"({i}) {v.field}={v.budget_ms!r}: {v.message}" for i, v in enumerate(missed, 1))
    return first.field, first.budget_ms, problem
