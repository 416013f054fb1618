"""The settings a group's members must share (issue 16, item 5): what a member publishes, who
disagrees, and how a record carries them."""

from __future__ import annotations

from vnfha import Config
from vnfha.roles.agreement import AGREED, Disagreement, disagreements, settings_of
from vnfha.roles.keys import MemberRecord


def test_settings_cover_every_agreed_field_and_write_numbers_alike() -> None:
    s = dict(settings_of(Config(group="g", member="a", suspicion_s=0.30, lease_ttl_s=2)))
    assert tuple(s) == AGREED
    assert (s["redundancy"], s["lease_ttl_s"], s["suspicion_s"]) == ("2n", "2", "0.3")
    assert s["heartbeat_interval_s"] == "0.05"
    assert dict(settings_of(Config(group="g", member="b", suspicion_s=0.3)))["suspicion_s"] == \
        "0.3"


def test_disagreements_name_the_field_both_values_and_the_member() -> None:
    mine = dict(settings_of(Config(group="g", member="a")))
    theirs = dict(settings_of(Config(group="g", member="b", lease_ttl_s=3,
                                     redundancy="n-way-active")))
    found = disagreements(mine, {"b": theirs, "c": mine})
    assert found == [Disagreement("redundancy", "2n", "b", "n-way-active"),
                     Disagreement("lease_ttl_s", "2", "b", "3")]
    assert str(found[1]) == "lease_ttl_s=2 here, but b has lease_ttl_s=3"


def test_a_record_without_settings_is_not_compared() -> None:
    mine = dict(settings_of(Config(group="g", member="a")))
    assert disagreements(mine, {"old": {}}) == []
    assert disagreements({}, {"b": mine}) == []


def test_a_record_carries_its_settings_and_an_old_one_has_none() -> None:
    rec = MemberRecord("a", "2n", settings=settings_of(Config(group="g", member="a")))
    assert MemberRecord.decode(rec.encode()) == rec
    assert MemberRecord.decode(b'{"member": "a", "redundancy": "2n"}').settings == ()
