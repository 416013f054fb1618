"""Placement policy checks and the evacuation host choice."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.bridge.placement import check_policy, choose_host, main_host
from vnfha.nfvi.model import PlacementPolicy as P


@pytest.mark.parametrize(("policy", "placement", "violations"), [
    (P.ANTI_AFFINITY, {"a": "h1", "b": "h2"}, []),
    (P.ANTI_AFFINITY, {"a": "h1", "b": "h1", "c": "h2"}, [("h1", ("a", "b"))]),
    (P.SOFT_ANTI_AFFINITY, {"a": "h1", "b": "h1"}, [("h1", ("a", "b"))]),
    (P.AFFINITY, {"a": "h1", "b": "h1"}, []),
    (P.AFFINITY, {"a": "h1", "b": "h1", "c": "h2"}, [("h2", ("c",))]),
    (P.SOFT_AFFINITY, {"a": "h2", "b": "h1"}, [("h2", ("a",))]),  # tie: main is h1
    (P.AFFINITY, {}, []),
])
def test_check_policy(policy: P, placement: dict[str, str],
                      violations: list[tuple[str, tuple[str, ...]]]) -> None:
    report = check_policy(policy, placement)
    assert [(v.host, v.members) for v in report.violations] == violations
    assert report.satisfied == (not violations)
    for v in report.violations:
        assert v.host in v.detail and all(m in v.detail for m in v.members)


@pytest.mark.parametrize(("policy", "placement", "up", "load", "host", "keeps"), [
    # anti-affinity: avoid the standby's host, least loaded wins
    (P.ANTI_AFFINITY, {"a": "h1", "b": "h2"}, ["h1", "h2", "h3", "h4"], {"h3": 2}, "h4", True),
    (P.ANTI_AFFINITY, {"a": "h1", "b": "h2"}, ["h1", "h2", "h3"], {}, "h3", True),
    # only the standby's host is left: soft breaks, hard refuses
    (P.SOFT_ANTI_AFFINITY, {"a": "h1", "b": "h2"}, ["h1", "h2"], {}, "h2", False),
    (P.ANTI_AFFINITY, {"a": "h1", "b": "h2"}, ["h1", "h2"], {}, None, False),
    # affinity: join the others
    (P.AFFINITY, {"a": "h1", "b": "h2", "c": "h2"}, ["h1", "h2", "h3"], {}, "h2", True),
    (P.AFFINITY, {"a": "h1", "b": "h1"}, ["h1", "h2"], {}, None, False),
    (P.SOFT_AFFINITY, {"a": "h1", "b": "h1"}, ["h1", "h2"], {}, "h2", False),
    # nothing else is up
    (P.SOFT_ANTI_AFFINITY, {"a": "h1"}, ["h1"], {}, None, False),
])
def test_choose_host(policy: P, placement: dict[str, str], up: list[str],
                     load: dict[str, int], host: str | None, keeps: bool) -> None:
    choice = choose_host("a", policy, placement=placement, hosts_up=up, load=load)
    assert (choice.host, choice.keeps_policy) == (host, keeps), choice.reason
    assert choice.reason


placements = st.dictionaries(st.sampled_from("abcde"), st.sampled_from(["h1", "h2", "h3"]),
                             min_size=1)


@given(placements, st.sets(st.sampled_from(["h1", "h2", "h3", "h4"])),
       st.sampled_from(list(P)))
def test_a_chosen_host_keeps_a_hard_policy_and_is_never_the_current_one(
        placement: dict[str, str], up: set[str], policy: P) -> None:
    member = min(placement)
    choice = choose_host(member, policy, placement=placement, hosts_up=up, load={})
    if choice.host is None:
        return
    assert choice.host in up and choice.host != placement[member]
    if choice.keeps_policy:
        others = {m: h for m, h in placement.items() if m != member}
        if policy.spreads:
            assert choice.host not in others.values()
        elif others:
            assert choice.host == main_host(others)
    else:
        assert not policy.hard


@given(placements)
def test_anti_affinity_violations_cover_exactly_the_shared_hosts(
        placement: dict[str, str]) -> None:
    report = check_policy(P.ANTI_AFFINITY, placement)
    shared = {h for h in placement.values() if list(placement.values()).count(h) > 1}
    assert {v.host for v in report.violations} == shared


@pytest.mark.parametrize(("policy", "placement", "up", "load", "maint", "host", "keeps", "says"), [
    # the least loaded host is under maintenance: the next one is taken
    (P.ANTI_AFFINITY, {"a": "h1", "b": "h2"}, ["h1", "h2", "h3", "h4"], {"h3": 2}, {"h4"},
     "h3", True, "avoided h4"),
    # only the host under maintenance keeps a hard policy: better than failing the repair
    (P.ANTI_AFFINITY, {"a": "h1", "b": "h2"}, ["h1", "h2", "h3"], {}, {"h3"},
     "h3", True, "only h3 under planned maintenance qualified"),
    # a soft policy is broken rather than moving onto a host about to go down
    (P.SOFT_ANTI_AFFINITY, {"a": "h1", "b": "h2"}, ["h1", "h2", "h3"], {}, {"h3"},
     "h2", False, "avoided h3"),
    # affinity: the others' host is under maintenance; hard follows them, soft goes elsewhere
    (P.AFFINITY, {"a": "h1", "b": "h2", "c": "h2"}, ["h1", "h2", "h3"], {}, {"h2"},
     "h2", True, "only h2 under planned maintenance qualified"),
    (P.SOFT_AFFINITY, {"a": "h1", "b": "h2", "c": "h2"}, ["h1", "h2", "h3"], {}, {"h2"},
     "h3", False, "avoided h2"),
    # the current host's maintenance, or a down host's, changes nothing
    (P.ANTI_AFFINITY, {"a": "h1", "b": "h2"}, ["h1", "h2", "h3"], {}, {"h1", "h9"},
     "h3", True, "least loaded"),
    # nothing but the host under maintenance: taken (soft), and still nothing else for hard
    (P.SOFT_ANTI_AFFINITY, {"a": "h1"}, ["h1", "h2"], {}, {"h2"},
     "h2", True, "only h2 under planned maintenance qualified"),
    (P.ANTI_AFFINITY, {"a": "h1", "b": "h2"}, ["h1", "h2"], {}, {"h2"},
     None, False, "no host keeps"),
])
def test_choose_host_avoids_hosts_under_maintenance(
        policy: P, placement: dict[str, str], up: list[str], load: dict[str, int],
        maint: set[str], host: str | None, keeps: bool, says: str) -> None:
    choice = choose_host("a", policy, placement=placement, hosts_up=up, load=load,
                         under_maintenance=maint)
    assert (choice.host, choice.keeps_policy) == (host, keeps), choice.reason
    assert says in choice.reason


@given(placements, st.sets(st.sampled_from(["h1", "h2", "h3", "h4"])),
       st.sets(st.sampled_from(["h1", "h2", "h3", "h4"])), st.sampled_from(list(P)))
def test_a_host_under_maintenance_is_chosen_only_when_no_other_qualifies(
        placement: dict[str, str], up: set[str], maint: set[str], policy: P) -> None:
    member = min(placement)
    choice = choose_host(member, policy, placement=placement, hosts_up=up, load={},
                         under_maintenance=maint)
    plain = choose_host(member, policy, placement=placement, hosts_up=up, load={})
    assert (choice.host is None) == (plain.host is None)  # maintenance never fails a repair
    if choice.host in maint:
        rest = choose_host(member, policy, placement=placement, hosts_up=up - maint, load={})
        assert rest.host is None
