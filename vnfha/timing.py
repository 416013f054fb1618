"""PURE: the relations vnfha's timers must satisfy, and the values derived from them.

No I/O, no clock, no config object: every function takes plain numbers, so the rules can be
tested (and reasoned about) on their own. :class:`vnfha.Config` calls :func:`check_timing` when
it is built and refuses to exist if any relation is violated.

The relations, and why each exists (``docs/configuration.md`` has the long form):

=== ================================================================ ===========================
id  relation                                                         otherwise
=== ================================================================ ===========================
R1  ``heartbeat_interval_s < suspicion_s``                           the active is suspected
                                                                     between two heartbeats
R2  ``suspicion_s >= 2 x heartbeat_interval_s``                      one late heartbeat causes
                                                                     a failover
R3  ``suspicion_s < lease_ttl_s``                                    the lease expires before
                                                                     silence is noticed
R4  ``keepalive_interval_s <= lease_ttl_s / 3``                      a lost keepalive leaves no
                                                                     second attempt
R5  ``lease_margin_s < lease_ttl_s / 2``                             the margin eats the lease
R6  ``keepalive_interval_s + etcd_request_timeout_s``                one timed-out keepalive
    ``< lease_ttl_s - lease_margin_s``                               costs the lease
R7  ``lease_ttl_s >= 1``                                             etcd leases are whole
                                                                     seconds
R8  ``standby_lease_s >= 2 x (heartbeat_interval_s``                 a standby that misses one
    ``+ standby_lease_margin_s)`` (when on)                           heartbeat is dropped from
                                                                     the in-sync set, or the
                                                                     drop cannot land in time
R9  ``standby_lease_s < lease_ttl_s - lease_margin_s`` (when on)     the standby lease is no
                                                                     faster than the etcd lease
=== ================================================================ ===========================

Guarantees:

- Comparisons are exact in decimal: each number is compared as the decimal it prints as
  (``0.1 + 0.7`` is ``0.8`` here, not ``0.7999999999999999``), so a value exactly on a
  boundary is judged the way the operator who wrote it expects.
- :func:`check_timing` reports **every** violated relation, in the order of the table, each with
  a message that names the fields involved *and* their values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "BACKOFF_HEARTBEATS",
    "KEEPALIVE_TTL_FRACTION",
    "POLLS_PER_HEARTBEAT",
    "TimingProblem",
    "backoff_step_s",
    "check_timing",
    "default_keepalive_interval_s",
    "derived_standby_lease_s",
    "exact",
    "poll_interval_s",
]

KEEPALIVE_TTL_FRACTION = 4
"""When no keepalive interval is configured, keepalives are sent every ``lease_ttl_s / 4``."""

BACKOFF_HEARTBEATS = 2
"""One backoff step is two heartbeat intervals (:func:`backoff_step_s`)."""

POLLS_PER_HEARTBEAT = 10
"""A bounded wait that polls does so ten times per heartbeat interval (:func:`poll_interval_s`)."""


def backoff_step_s(heartbeat_interval_s: float) -> float:
    """The member's backoff step: the k-th ranked candidate waits k steps before it campaigns;
    a failed etcd call, a lost watch, a stream that cannot connect and the bridge's event
    stream are retried after one step. Two heartbeats: long enough for the better-ranked
    candidate's campaign (one etcd transaction, about 0.6 ms) and its watch event to land, short
    against the failover budgets (a crash failover's 250 ms holds a 2nd-ranked candidate)."""
    return BACKOFF_HEARTBEATS * heartbeat_interval_s


def poll_interval_s(heartbeat_interval_s: float) -> float:
    """How often a bounded wait checks its condition (the successor has applied the last
    change, the watch has delivered our release): a tenth of a heartbeat, so such a wait adds
    at most that to a switchover's 100 ms budget."""
    return heartbeat_interval_s / POLLS_PER_HEARTBEAT


@dataclass(frozen=True, slots=True)
class TimingProblem:
    """One violated timer relation.

    ``relation`` is its id in the module table (``"R2"``); ``fields`` names the settings
    involved, the one to change first leading; ``message`` names each of them with its value and
    says why the relation exists.
    """

    relation: str
    fields: tuple[str, ...]
    message: str

    @property
    def field(self) -> str:
        """The first field involved: the one an error report points at."""
        return self.fields[0]


def default_keepalive_interval_s(lease_ttl_s: float) -> float:
    """The keepalive interval used when none is configured: ``lease_ttl_s / 4``."""
    return lease_ttl_s / KEEPALIVE_TTL_FRACTION


def check_timing(
    *,
    heartbeat_interval_s: float,
    suspicion_s: float,
    lease_ttl_s: float,
    keepalive_interval_s: float,
    lease_margin_s: float,
    etcd_request_timeout_s: float,
    keepalive_derived: bool = False,
    standby_lease_s: float = 0.0,
    standby_lease_margin_s: float = 0.05,
) -> list[TimingProblem]:
    """Every relation of the module table that these values violate (empty when all hold).

    Every argument must be a finite number (``ValueError`` otherwise); checking that each one is
    positive is the caller's job, done per field before the relations. ``keepalive_interval_s``
    is the interval actually used; pass ``keepalive_derived=True`` when it was derived from the
    TTL rather than configured, and the messages say so.
    """
    hb = exact("heartbeat_interval_s", heartbeat_interval_s)
    sus = exact("suspicion_s", suspicion_s)
    ttl = exact("lease_ttl_s", lease_ttl_s)
    ka = exact("keepalive_interval_s", keepalive_interval_s)
    margin = exact("lease_margin_s", lease_margin_s)
    timeout = exact("etcd_request_timeout_s", etcd_request_timeout_s)

    hb_s = _given("heartbeat_interval_s", heartbeat_interval_s)
    sus_s = _given("suspicion_s", suspicion_s)
    ttl_s = _given("lease_ttl_s", lease_ttl_s)
    ka_s = _given("keepalive_interval_s", keepalive_interval_s)
    if keepalive_derived:
        ka_s += f" (lease_ttl_s / {KEEPALIVE_TTL_FRACTION})"
    margin_s = _given("lease_margin_s", lease_margin_s)
    timeout_s = _given("etcd_request_timeout_s", etcd_request_timeout_s)

    problems: list[TimingProblem] = []

    def violated(relation: str, fields: tuple[str, ...], message: str) -> None:
        problems.append(TimingProblem(relation, fields, message))

    if not hb < sus:
        violated("R1", ("heartbeat_interval_s", "suspicion_s"),
                 f"{hb_s} must be less than {sus_s}: otherwise the active is suspected "
                 "between two of its own heartbeats")
    if not sus >= 2 * hb:
        violated("R2", ("suspicion_s", "heartbeat_interval_s"),
                 f"{sus_s} must be at least 2 x {hb_s} ({_num(2 * hb)}): otherwise one late "
                 "heartbeat triggers a failover")
    if not sus < ttl:
        violated("R3", ("suspicion_s", "lease_ttl_s"),
                 f"{sus_s} must be less than {ttl_s}: otherwise the lease expires before the "
                 "standbys notice the silence, and fast failover never happens")
    if not ka <= ttl / 3:
        violated("R4", ("keepalive_interval_s", "lease_ttl_s"),
                 f"{ka_s} must be at most {ttl_s} / 3 ({_num(ttl / 3)}): otherwise a lost "
                 "keepalive leaves no second attempt before the lease expires")
    if not margin < ttl / 2:
        violated("R5", ("lease_margin_s", "lease_ttl_s"),
                 f"{margin_s} must be less than {ttl_s} / 2 ({_num(ttl / 2)}): otherwise the "
                 "safety margin eats most of the lease and the active self-demotes on ordinary "
                 "keepalive jitter")
    if not ka + timeout < ttl - margin:
        violated("R6", ("keepalive_interval_s", "etcd_request_timeout_s", "lease_ttl_s",
                        "lease_margin_s"),
                 f"{ka_s} + {timeout_s} ({_num(ka + timeout)}) must be less than "
                 f"{ttl_s} - {margin_s} ({_num(ttl - margin)}): otherwise one keepalive that "
                 "times out costs the lease before the next one is sent")
    if not ttl >= 1:
        violated("R7", ("lease_ttl_s",),
                 f"{ttl_s} must be at least 1: etcd leases are whole seconds")
    sl = exact("standby_lease_s", standby_lease_s)
    if sl:
        sl_s = _given("standby_lease_s", standby_lease_s)
        slm = exact("standby_lease_margin_s", standby_lease_margin_s)
        slm_s = _given("standby_lease_margin_s", standby_lease_margin_s)
        if not sl >= 2 * (hb + slm):
            violated("R8", ("standby_lease_s", "heartbeat_interval_s", "standby_lease_margin_s"),
                     f"{sl_s} must be at least 2 x ({hb_s} + {slm_s}) ({_num(2 * (hb + slm))}): "
                     "the active drops a silent standby from the in-sync set after half the "
                     "standby lease, which must leave a heartbeat for a late answer and a "
                     "heartbeat for the drop to land before the promise runs out")
        if not sl < ttl - margin:
            violated("R9", ("standby_lease_s", "lease_ttl_s", "lease_margin_s"),
                     f"{sl_s} must be less than {ttl_s} - {margin_s} ({_num(ttl - margin)}): "
                     "otherwise the etcd lease bounds a silent active sooner, and the standby "
                     "lease only adds work (0 turns it off)")
    return problems


def derived_standby_lease_s(*, heartbeat_interval_s: float, suspicion_s: float,
                            standby_lease_margin_s: float, lease_ttl_s: float,
                            lease_margin_s: float) -> float:
    """The standby lease when none is configured: as long as the suspicion, and at least what
    R8 asks; 0 (off) when R9 would not hold (the etcd lease is as fast)."""
    lease = max(suspicion_s, 2 * (heartbeat_interval_s + standby_lease_margin_s))
    return lease if lease < lease_ttl_s - lease_margin_s else 0.0


def exact(name: str, value: float) -> Fraction:
    """``value`` as the exact decimal it prints as (``0.1`` -> 1/10, not the binary float);
    TypeError for a non-number (a bool included), ValueError for one that is not finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}={value!r}: expected a number")
    if isinstance(value, int):
        return Fraction(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r}: expected a finite number")
    return Fraction(repr(value))


def _given(name: str, value: float) -> str:
    """``name=value`` as the operator wrote it."""
    return f"{name}={value!r}"


def _num(value: Fraction) -> str:
    """A derived value, short: 6 significant digits, no trailing zeros."""
    return f"{float(value):.6g}"
