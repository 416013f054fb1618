"""PURE: the settings every member of a group must share, and who disagrees.

Each member publishes, in its record, the settings of :data:`AGREED` as it runs them. A member
whose settings differ from a member already in the group refuses to join
(:class:`~vnfha.errors.GroupConfigMismatch`, naming the field, both values and the other
member), and ``vnfha status`` names any disagreement it finds between the records.

Why each must agree:

- ``redundancy``: one member started with N_WAY_ACTIVE in a TWO_N group is active beside the
  active (two actives);
- ``heartbeat_interval_s`` and ``suspicion_s``: a standby judges the active's silence by its own
  values, so an active that beats more slowly than a standby's suspicion is suspected between
  two heartbeats (failovers nobody asked for);
- ``lease_ttl_s``: the lease-expiry proof of a standby assumes the active's lease TTL;
- ``standby_lease_s`` and ``standby_lease_margin_s``: the active bounds its own acting by the
  promises its standbys grant, and a standby takes over when its own promise ran out, so both
  sides must count the same promise (an active that counts a longer one than its standby
  grants would act after the standby took over);
- the checkpoint size limits: a standby with smaller limits refuses what its active accepted
  and acknowledged, and can never take over with it.

Records of an older vnfha publish no settings: they are not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from vnfha.config import Config

__all__ = ["AGREED", "Disagreement", "disagreements", "settings_of"]

AGREED: tuple[str, ...] = (
    "redundancy",
    "lease_ttl_s",
    "heartbeat_interval_s",
    "suspicion_s",
    "standby_lease_s",
    "standby_lease_margin_s",
    "checkpoint_max_key_bytes",
    "checkpoint_max_value_bytes",
    "checkpoint_max_section_bytes",
    "checkpoint_max_message_bytes",
)
"""The fields of :class:`~vnfha.Config` every member of a group must share."""


@dataclass(frozen=True, slots=True)
class Disagreement:
    """``member``'s ``field`` is ``theirs`` where this member (or another) has ``mine``."""

    field: str
    mine: str
    member: str
    theirs: str

    def __str__(self) -> str:
        return f"{self.field}={self.mine} here, but {self.member} has {self.field}={self.theirs}"


def settings_of(config: Config) -> tuple[tuple[str, str], ...]:
    """The :data:`AGREED` settings of ``config`` as (field, text) pairs, as in force (a derived
    value, ``<name>_effective``, where the config derives one), numbers written so that equal
    values compare equal (``2`` and ``2.0`` alike)."""
    out: list[tuple[str, str]] = []
    for name in AGREED:
        value = getattr(config, f"{name}_effective", getattr(config, name))
        if name == "redundancy":
            out.append((name, value.value))
        else:
            out.append((name, _number(value)))
    return tuple(out)


def _number(value: float) -> str:
    return format(Decimal(str(value)).normalize(), "f")


def disagreements(mine: Mapping[str, str], others: Mapping[str, Mapping[str, str]]
                  ) -> list[Disagreement]:
    """Every setting in which a member of ``others`` (name to settings) differs from ``mine``,
    by member name then in the order of :data:`AGREED`; settings one side does not publish are
    not compared."""
    found: list[Disagreement] = []
    for member in sorted(others):
        theirs = others[member]
        found += [Disagreement(name, mine[name], member, theirs[name]) for name in AGREED
                  if name in mine and name in theirs and mine[name] != theirs[name]]
    return found
