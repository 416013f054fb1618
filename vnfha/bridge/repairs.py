"""The bridge's placement rules around a repair, on the driver's inventory now: where an
evacuation goes, whether a repair would break a hard policy (then it is refused), and how the
group's placement looks once a repair is done.

:class:`RepairPlacement` is the part of :class:`~vnfha.bridge.core.BridgeCore` that reads the
inventory for these; the rules themselves are :mod:`vnfha.bridge.placement`'s (pure).
Guarantees:

- **An evacuation host** is chosen among the hosts the driver lists that are up (as the
  bridge's HOST_DOWN / HOST_UP events say), other than the instance's, avoiding those under a
  pending planned maintenance (:func:`~vnfha.bridge.placement.choose_host`).
- **A repair that would break a hard policy is refused before it starts**
  (:meth:`RepairPlacement.refusal`): a REBOOT keeps the instance on its host, so it is refused
  when that host breaks the policy; an EVACUATE is refused when no host keeps it. The reason
  names the policy, the host and the members. Soft policies never refuse.
- **After a repair** (:meth:`RepairPlacement.after`) the group's placement is checked again
  against the escalation's policy; a violation is returned (the ticket's detail says it, and
  the bridge logs it).
- An evacuation that finds no host raises :class:`NoEvacuationHost` (the repair fails with its
  reason).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection

from vnfha.bridge import placement as rules
from vnfha.bridge.drivers.driver import Driver, Instance
from vnfha.errors import VnfhaError
from vnfha.nfvi.model import PlacementPolicy, RepairAction, RepairTicket

__all__ = ["NoEvacuationHost", "RepairPlacement"]

log = logging.getLogger("vnfha.nfvi.bridge")


class NoEvacuationHost(VnfhaError):
    """No host may take an evacuated instance (the message says why)."""


class RepairPlacement:
    """Placement around repairs on ``driver``'s inventory; ``down()`` gives the hosts known to
    be down, ``under_maintenance()`` those with a pending planned maintenance."""

    def __init__(self, driver: Driver, *, down: Callable[[], Collection[str]],
                 under_maintenance: Callable[[], Collection[str]]) -> None:
        self._driver = driver
        self._down = down
        self._under_maintenance = under_maintenance

    async def _group(self, group: str) -> tuple[dict[str, str], list[Instance]]:
        instances = await self._driver.list_instances()
        return {i.member: i.host for i in instances if i.group == group}, instances

    async def evacuation_host(self, group: str, member: str,
                              policy: PlacementPolicy) -> rules.HostChoice:
        """Where to evacuate ``member`` of ``group`` under ``policy`` now."""
        placement, instances = await self._group(group)
        down = self._down()
        up = [h for h in await self._driver.list_hosts() if h not in down]
        return rules.choose_host(member, policy, placement=placement, hosts_up=up,
                                 load=Counter(i.host for i in instances),
                                 under_maintenance=self._under_maintenance())

    async def refusal(self, instance: Instance, action: RepairAction,
                      policy: PlacementPolicy) -> str | None:
        """Why ``action`` on ``instance`` must be refused under ``policy`` (None: it may go
        on)."""
        if not policy.hard or not action.by_nfvi:
            return None
        if action is RepairAction.EVACUATE:
            choice = await self.evacuation_host(instance.group, instance.member, policy)
            return None if choice.host is not None else \
                f"no evacuation of {instance.name} from {instance.host}: {choice.reason}"
        placement, _ = await self._group(instance.group)
        problem = rules.placement_problem(instance.member, policy, placement=placement,
                                          host=instance.host)
        return None if problem is None else \
            f"a {action} of {instance.name} in place would break the hard policy: {problem}"

    async def after(self, ticket: RepairTicket, policy: PlacementPolicy) -> str | None:
        """The placement of ``ticket``'s group, once its repair is done, against ``policy``:
        the violations (logged), or None."""
        placement, _ = await self._group(ticket.group)
        report = rules.check_policy(policy, placement)
        broken = "; ".join(v.detail for v in report.violations) or None
        if broken:
            log.warning("repair %s of %s done: the group's placement breaks %s",
                        ticket.ticket_id, ticket.instance, broken)
        return broken
