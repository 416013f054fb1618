"""PURE: placement policy checks and the choice of a host for an evacuation.

A group's placement is a mapping member -> host. Policies:

==================== =======================================================================
AFFINITY             every member on one host; violations: the hosts holding members apart
                     from the *main host* (the one with the most members; ties: first name)
ANTI_AFFINITY        no two members on one host; violations: each host with two or more
SOFT_*               the same violations, as advice: an evacuation may break a soft policy
                     when no host keeps it, never a hard one
==================== =======================================================================

Choosing an evacuation host (:func:`choose_host`): the candidates are the hosts that are up,
other than the member's current host; among those that keep the policy, the least loaded (fewest
instances of any group), then the first by name. If none keeps it: a soft policy takes the
least loaded candidate anyway (the decision says so), a hard one refuses.

A repair that would break a hard policy is refused (:func:`placement_problem`): a reboot in
place of a member whose host breaks it (another member shares the host under anti-affinity, or
it is apart from the main host under affinity), or an evacuation that no host can take; the
reason names the policy, the host and the members. Soft policies are never a reason to refuse.

Hosts under planned maintenance (a deadline still ahead) are avoided: the rules above run first
on the candidates without them, and only if that yields no host (no candidate left, or a hard
policy that none of the rest keeps) on every candidate. So a soft policy is broken rather than
an instance moved onto a host about to go down, and a hard one takes a host under maintenance
rather than fail the repair (the member there is told of the maintenance and hands over). No
asyncio here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from vnfha.nfvi.model import PlacementPolicy, PolicyReport, Violation

__all__ = ["HostChoice", "check_policy", "choose_host", "main_host", "placement_problem"]


def main_host(placement: Mapping[str, str]) -> str | None:
    """The host with the most members (ties: the first by name); None for an empty group."""
    counts = Counter(placement.values())
    if not counts:
        return None
    return min(counts, key=lambda h: (-counts[h], h))


def _by_host(placement: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    hosts: dict[str, list[str]] = {}
    for member, host in placement.items():
        hosts.setdefault(host, []).append(member)
    return {h: tuple(sorted(ms)) for h, ms in sorted(hosts.items())}


def check_policy(policy: PlacementPolicy, placement: Mapping[str, str]) -> PolicyReport:
    """Every violation of ``policy`` by ``placement`` (member -> host), sorted by host."""
    by_host = _by_host(placement)
    violations: list[Violation] = []
    if policy.spreads:
        for host, members in by_host.items():
            if len(members) > 1:
                violations.append(Violation(host, members, f"{policy}: members "
                                            f"{', '.join(members)} share host {host}"))
    else:
        main = main_host(placement)
        for host, members in by_host.items():
            if host != main:
                violations.append(Violation(host, members, f"{policy}: members "
                                            f"{', '.join(members)} run on {host}, apart from "
                                            f"the group's main host {main}"))
    return PolicyReport(policy, tuple(violations))


@dataclass(frozen=True, slots=True)
class HostChoice:
    """Where to evacuate ``member``: ``host``, or None when no host may take it. ``keeps_policy``
    is False when a soft policy had to be broken; ``reason`` says why, naming the hosts."""

    member: str
    host: str | None
    keeps_policy: bool
    reason: str


def _keeps(policy: PlacementPolicy, host: str, others: Mapping[str, str]) -> bool:
    """Whether putting the member on ``host`` keeps ``policy`` given the other members."""
    if policy.spreads:
        return host not in others.values()
    main = main_host(others)
    return main is None or host == main


def placement_problem(member: str, policy: PlacementPolicy, *, placement: Mapping[str, str],
                      host: str) -> str | None:
    """Why running ``member`` on ``host`` breaks ``policy`` given the other members of the
    group (``placement``: member -> host; ``member``'s own entry is ignored), or None when it
    keeps it. The reason names the policy, the host and the members involved."""
    others = {m: h for m, h in placement.items() if m != member}
    if _keeps(policy, host, others):
        return None
    if policy.spreads:
        sharing = ", ".join(sorted(m for m, h in others.items() if h == host))
        return f"{policy}: {member} on {host} would share the host with {sharing}"
    return (f"{policy}: {member} on {host} would run apart from the group's main host "
            f"{main_host(others)}")


def choose_host(member: str, policy: PlacementPolicy, *, placement: Mapping[str, str],
                hosts_up: Iterable[str], load: Mapping[str, int],
                under_maintenance: Collection[str] = frozenset()) -> HostChoice:
    """The host to evacuate ``member`` to (see the module docstring). ``placement`` is the
    group's member -> host, ``hosts_up`` the hosts that are up, ``load`` the number of
    instances (of any group) per host, ``under_maintenance`` the hosts to avoid if possible."""
    up = set(hosts_up)
    avoided = sorted(h for h in up & set(under_maintenance) if h != placement.get(member))
    if not avoided:
        return _choose(member, policy, placement, up, load)
    note = f"{', '.join(avoided)} under planned maintenance"
    choice = _choose(member, policy, placement, up - set(avoided), load)
    if choice.host is not None:
        return replace(choice, reason=f"{choice.reason}; avoided {note}")
    fallback = _choose(member, policy, placement, up, load)
    if fallback.host is None:
        return fallback
    return replace(fallback, reason=f"{fallback.reason}; only {note} qualified "
                   f"({choice.reason} otherwise)")


def _choose(member: str, policy: PlacementPolicy, placement: Mapping[str, str],
            hosts_up: Iterable[str], load: Mapping[str, int]) -> HostChoice:
    """:func:`choose_host` without regard to maintenance."""
    current = placement.get(member)
    others = {m: h for m, h in placement.items() if m != member}
    candidates = sorted(h for h in set(hosts_up) if h != current)
    if not candidates:
        return HostChoice(member, None, False,
                          f"no host is up other than {member}'s current host {current}")

    def best(hosts: list[str]) -> str:
        return min(hosts, key=lambda h: (load.get(h, 0), h))

    keeping = [h for h in candidates if _keeps(policy, h, others)]
    if keeping:
        host = best(keeping)
        return HostChoice(member, host, True, f"{host} keeps {policy} and is the least loaded "
                          f"of {', '.join(keeping)}")
    if policy.hard:
        return HostChoice(member, None, False, f"no host keeps {policy}: candidates "
                          f"{', '.join(candidates)} all break it")
    host = best(candidates)
    return HostChoice(member, host, False, f"no host keeps {policy}; {host} is the least "
                      f"loaded of {', '.join(candidates)} (soft policy broken)")
