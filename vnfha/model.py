"""Frozen value types shared by every layer: roles, redundancy models, ack modes, recoveries.

These are plain enums whose *names* are part of the public API (``vnfha.Role.ACTIVE``); their
string values are what appears in logs, etcd keys and ``vnfha status --json``, and never change
once released.
"""

from __future__ import annotations

import enum

__all__ = ["Ack", "Recovery", "Redundancy", "Role"]


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
