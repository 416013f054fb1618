"""What a VNF implements: a :class:`Component` with optional async callbacks, and the
:class:`Assignment` it is given with each role.

Every callback is optional and async. vnfha calls them one at a time, in the order the role
changes happened, each bounded by ``Config.callback_timeout_s``; a callback that raises or
overruns is reported (log line, ``CallbackFailed`` event, metric) and the member carries on with
the role it has: the callback cannot veto a role, because the role is decided by etcd.

One hook is not a callback: :meth:`Component.checks` declares built-in health checks, read
once when the member is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vnfha.config import CheckSpec
from vnfha.model import Role

__all__ = ["Assignment", "Component"]


@dataclass(frozen=True, slots=True)
class Assignment:
    """A role given to this member.

    ``epoch`` is the epoch of the active grant the role belongs to (for a standby: the active's),
    ``previous_role`` the role held before, ``active`` the active member's name (None when
    there is none), ``reason`` why vnfha decided it.
    """

    role: Role
    epoch: int
    previous_role: Role
    active: str | None
    reason: str
    rolled_back: tuple[str, ...] = ()
    """For ``on_active`` only: the checkpoint keys (``"section/key"``) whose changes vnfha
    rolled back before this takeover, because the state the group inherited was suspected of
    making its actives fail (``poison_policy = "rollback"``, ``docs/failover.md``); each now
    holds its value (or absence) from before the rollback window. Empty: nothing rolled back."""


class Component:
    """Subclass and override what you need; the defaults do nothing."""

    async def on_active(self, a: Assignment) -> None:
        """Start serving. Called once this member holds the active key (``a.epoch``)."""

    async def on_standby(self, a: Assignment) -> None:
        """Stop serving, follow the active. Also called when an active is deposed (its lease
        deadline passed or another member took the key), with ``a.role`` QUIESCED or STANDBY:
        by then vnfha already refuses this member's checkpoint writes."""

    async def on_quiesce(self) -> None:
        """Graceful handover (switchover, clean stop): drain, write the last checkpoint. The
        active key is released when this returns (or times out)."""

    async def health_check(self) -> None:
        """Raise to report the component unhealthy."""

    def checks(self) -> Sequence[CheckSpec]:
        """Built-in health checks (process, tcp, grpc-health) the member runs beside
        :meth:`health_check`, each on its own period, timeout and hysteresis, after those of
        ``Config.checks``; a failing one is a fault for the ladder like a failing
        ``health_check``. Called once, when the :class:`vnfha.Member` is built (plain, not
        async); a name used twice refuses the member (ConfigError). Default: none."""
        return ()

    async def restart(self) -> None:
        """Restart the component in place (the escalation ladder's first rung)."""
