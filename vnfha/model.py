"""Frozen value types shared by every layer: roles, redundancy models, ack modes, recoveries,
the kinds of role changes and ladder steps, and the rule for group and member names.

These are plain enums whose *names* are part of the public API (``vnfha.Role.ACTIVE``); their
string values are what appears in logs, etcd keys, metrics labels and ``vnfha status --json``,
and never change once released. The base layer: this module imports nothing of vnfha but the
errors.
"""

from __future__ import annotations

import enum
import re
from typing import Final

from vnfha.errors import ConfigError

__all__ = [
    "NAME_PATTERN",
    "Ack",
    "LadderAction",
    "ReasonKind",
    "Recovery",
    "Redundancy",
    "Role",
    "Rung",
    "check_name",
]

NAME_PATTERN: Final = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def check_name(field_name: str, value: object) -> str:
    """``value`` if it is a valid group or member name (a DNS label: 1-63 of ``a-z 0-9 -``,
    not starting or ending with ``-``), else ConfigError naming the field and the value."""
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise ConfigError(field_name, value, "must be 1-63 characters of a-z, 0-9 and '-', "
                          "starting and ending with a letter or digit")
    return value


class Role(enum.StrEnum):
    """The HA role a member holds (OpenSAF AMF's HA states, plus SPARE)."""

    ACTIVE = "active"
    """Serves traffic and is the only member whose checkpoint writes are accepted."""
    STANDBY = "standby"
    """Receives the active's checkpoints and is ready to take over."""
    QUIESCED = "quiesced"
    """Was active and has stopped acting (handing over, or self-demoted); holds no grant."""
    SPARE = "spare"
    """In the group but holding no assignment (beyond the model's standby count)."""


class Redundancy(enum.StrEnum):
    """How a group's members share the work."""

    TWO_N = "2n"
    """One active, one standby, the rest spare."""
    N_WAY = "n-way"
    """One active and up to N-1 ranked standbys."""
    N_WAY_ACTIVE = "n-way-active"
    """Every member active; stateless load sharing, no checkpoints between them."""
    NO_REDUNDANCY = "no-redundancy"
    """A single active member, recovered by restarting it in place."""


class Ack(enum.StrEnum):
    """When a checkpoint write returns."""

    NONE = "none"
    """Once applied locally on the active."""
    ONE = "one"
    """Once at least one in-sync standby has applied it."""
    ALL = "all"
    """Once every in-sync standby has applied it."""


class Recovery(enum.StrEnum):
    """The recovery a fault report recommends (the rungs of the escalation ladder)."""

    NONE = "none"
    """No recommendation: let the ladder decide."""
    RESTART = "restart"
    """Restart the component in place."""
    FAILOVER = "failover"
    """Give up the active role to a standby."""
    REPAIR_VM = "repair-vm"
    """Ask the NFVI to repair (reboot, rebuild or evacuate) the instance."""


class ReasonKind(enum.StrEnum):
    """Why a member's role changed, as a bounded label (the free-text reason goes to the log).
    Every role change carries one, chosen where the change is decided."""

    ELECTED = "elected"
    """Won the campaign for a free active key (first start, after a handover or a lease expiry)."""
    TAKEOVER = "takeover"
    """Replaced the key of an active proven dead, or a bad key (the fast failover path)."""
    SWITCHOVER = "switchover"
    """A graceful handover: the old active quiesced and released the key, the successor took it."""
    DEPOSED = "deposed"
    """The active key was taken, deleted or made untrustworthy by someone else while this member
    was active."""
    SESSION_LOST = "session-lost"
    """The lease expired or its local deadline passed: the member stopped acting on its own."""
    ASSIGNED = "assigned"
    """The redundancy policy assigned a standby or spare role (joining, ranking changes)."""
    STOPPED = "stopped"
    """The member is leaving the group."""
    FAULT = "fault"
    """A fault made the member step down (the ladder's failover rung, a failed role loop)."""


class Rung(enum.StrEnum):
    """A step of the escalation ladder, by meaning; the values appear in logs, metrics and
    etcd (:mod:`vnfha.health.ladder`)."""

    RESTART = "restart"
    """Restart the component in place (``Component.restart``)."""
    FAILOVER = "failover"
    """Give up the active role; the best-ranked standby takes over."""
    REBOOT_VM = "reboot-vm"
    """Ask the NFVI to reboot this instance."""
    EVACUATE_VM = "evacuate-vm"
    """Ask the NFVI to rebuild this instance, on another host if its own is suspect."""
    ALARM = "alarm"
    """No automatic recovery left: raise an alarm for an operator. The top; never counted."""


class LadderAction(enum.StrEnum):
    """What the runtime does to carry out a ladder decision (``vnfha.health.ladder.Action``)."""

    RESTART = "restart"
    """``await component.restart()`` (bounded by the callback timeout)."""
    FAILOVER = "failover"
    """Resign the active role (a switchover to the best standby)."""
    ESCALATE = "escalate"
    """Ask the NFVI bridge for the repair named by the decision's rung (REBOOT_VM or
    EVACUATE_VM), with an idempotency key built from the fault's decision."""
    ALARM = "alarm"
    """Log and count an alarm; no recovery."""
    WAIT = "wait"
    """Nothing: the bridge owns an open repair of this instance."""
