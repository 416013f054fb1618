"""The pure replication state: data and limits, the bounded log, delta verdicts, ack tracking."""

from __future__ import annotations

import dataclasses
import gc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.errors import CheckpointLimitError, ConfigError
from vnfha.model import Ack
from vnfha.replication.state import (
    AckTracker,
    Change,
    CheckpointData,
    Limits,
    ReplicationLog,
    Verdict,
    check_deltas,
    check_section,
    check_shape,
    utf8_len,
)

SMALL = Limits(max_key_bytes=8, max_value_bytes=16, max_section_bytes=40,
               max_message_bytes=200, max_backlog_entries=5, max_backlog_bytes=10_000)


def test_data_put_get_delete_and_accounting() -> None:
    d = CheckpointData()
    d.apply(Change("s", "k1", b"abc"))
    d.apply(Change("s", "k2", b"de"))
    d.apply(Change("s", "k1", b"x"))
    assert d.get("s", "k1") == b"x" and list(d.items("s")) == [("k1", b"x"), ("k2", b"de")]
    assert d.section_bytes("s") == (2 + 1) + (2 + 2)
    d.apply(Change("s", "k1", None))
    d.apply(Change("s", "nope", None))
    assert d.get("s", "k1") is None and len(d) == 1 and d.section_bytes("s") == 4
    d.apply(Change("s", "k2", None))
    assert d.sections() == [] and d.section_bytes("s") == 0


@pytest.mark.parametrize(
    ("change", "error", "text"),
    [
        (Change("bad name", "k", b""), ConfigError, "section"),
        (Change("s", "", b""), ConfigError, "key"),
        (Change("s", "k" * 9, b""), CheckpointLimitError, "max_key_bytes=8"),
        (Change("s", "k", b"v" * 17), CheckpointLimitError, "max_value_bytes=16"),
    ],
)
def test_refusals_name_the_limit(change: Change, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        CheckpointData().check(change, SMALL)


def test_a_change_is_a_frozen_value() -> None:
    c = Change("s", "k", b"v")
    assert c == Change(section="s", key="k", value=b"v") and hash(c) == hash(Change("s", "k", b"v"))
    assert c != Change("s", "k", None) and dataclasses.replace(c, value=None).value is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.key = "other"  # type: ignore[misc]
    assert repr(c) == "Change(section='s', key='k', value=b'v')"


def test_a_section_name_is_checked_every_time_it_is_refused() -> None:
    """Names that passed are remembered; the check itself never weakens."""
    for _ in range(3):
        assert check_section("ok.name-1") == "ok.name-1"
        for bad in ("", "bad name", "-lead", "x" * 64, None, 7, b"ok"):
            with pytest.raises(ConfigError, match="section"):
                check_section(bad)

    class Sneaky(str):  # equal to a remembered name, yet a different string
        def __hash__(self) -> int:
            return hash("ok.name-1")

        def __eq__(self, other: object) -> bool:
            return True

    with pytest.raises(ConfigError, match="section"):
        check_section(Sneaky("bad name"))


@given(st.text(st.characters(codec="utf-8")))
def test_utf8_len_is_the_encoded_length(text: str) -> None:
    assert utf8_len(text) == len(text.encode("utf-8"))


@pytest.mark.parametrize("key", ["\udcff", "\ud800", "ok\udfffok"])
def test_a_key_with_a_surrogate_is_refused(key: str) -> None:
    # it has no UTF-8 form: accepted, it would be applied on the active and then break every
    # stream (and snapshot) that tried to carry it to a standby
    with pytest.raises(ConfigError, match="without surrogates"):
        check_shape(Change("s", key, b"v"), Limits())


@given(st.lists(st.tuples(st.sampled_from(["k", "é", "\U0001f600", "ключ", "k2"]),
                          st.one_of(st.none(), st.binary(max_size=12))), max_size=40))
def test_section_accounting_and_limit_match_the_definition(
        ops: list[tuple[str, bytes | None]]) -> None:
    """Section bytes are the UTF-8 size of the keys plus the values, whatever the keys; a change
    is refused exactly when it would take the section over its limit."""
    d = CheckpointData()
    for key, value in ops:
        c = Change("s", key, value)
        entries = dict(d.items("s"))
        if value is not None:
            entries[key] = value
        else:
            entries.pop(key, None)
        after = sum(utf8_len(k) + len(v) for k, v in entries.items())
        if value is not None and after > SMALL.max_section_bytes:
            with pytest.raises(CheckpointLimitError, match="max_section_bytes"):
                d.check(c, SMALL)
            continue
        d.check(c, SMALL)
        d.apply(c)
        assert d.section_bytes("s") == after
        assert dict(d.items("s")) == entries


def test_section_limit_counts_replacements() -> None:
    d = CheckpointData()
    for i in range(3):
        c = Change("s", f"k{i}", b"v" * 10)
        d.check(c, SMALL)
        d.apply(c)
    assert d.section_bytes("s") == 36
    d.check(Change("s", "k0", b"w" * 10), SMALL)  # a replacement does not grow it
    with pytest.raises(CheckpointLimitError, match="section s is 48 bytes, over max_section"):
        d.check(Change("s", "k3", b"v" * 10), SMALL)


def test_limits_validate_themselves() -> None:
    with pytest.raises(ConfigError, match="max_value_bytes"):
        Limits(max_value_bytes=0)
    with pytest.raises(ConfigError, match="max_message_bytes"):
        Limits(max_message_bytes=100)


def test_log_since_and_backlog_limit() -> None:
    log = ReplicationLog(7, SMALL)
    changes = [Change("s", f"k{i}", b"v") for i in range(8)]
    for c in changes:
        log.append(c)
    assert log.last_sequence == 8 and len(log) == 5 and log.first_retained == 4
    assert log.since(8) == []
    assert log.since(3) == changes[3:]
    assert log.since(2) is None  # sequence 3 was dropped: snapshot
    assert log.since(6, max_bytes=1) == [changes[6]]  # at least one, however small the budget


def test_a_batch_is_the_log_s_entries_cut_by_the_byte_budget() -> None:
    log = ReplicationLog(7, Limits())
    changes = [Change("s", f"k{i}", b"v" * 10 if i % 3 else None) for i in range(1, 9)]
    for c in changes:
        log.append(c)
    batch = log.batch(2)
    assert batch is not None and batch.first == 3 and len(batch) == 6
    assert list(batch) == [(c.section, c.key, c.value) for c in changes[2:]]
    # each entry costs its wire_bytes: the budget takes whole entries, at least one
    sizes = [c.wire_bytes for c in changes]
    two = log.batch(2, max_bytes=sizes[2] + sizes[3])
    assert two is not None and len(two) == 2
    assert len(log.batch(2, max_bytes=sizes[2] + sizes[3] - 1) or ()) == 1
    empty = log.batch(8)
    assert empty is not None and len(empty) == 0 and empty.first == 9
    assert log.retains(0) and log.retains(8) and not log.retains(9)


def test_the_log_drops_and_compacts_and_still_serves_every_retained_entry() -> None:
    """Far past the point where the dropped head is deleted from the columns (4,096 entries),
    every retained sequence is still where it was, and nothing dropped is returned."""
    log = ReplicationLog(2, Limits(max_backlog_entries=1000))
    for i in range(1, 10_001):
        log.append(Change("s", f"k{i}", b"%d" % i))
        if i % 997 == 0:
            assert len(log) == min(i, 1000) and log.first_retained == max(1, i - 999)
            assert log.since(log.first_retained - 2) is None  # dropped: a snapshot
            batch = log.since(log.first_retained - 1, max_bytes=100_000)
            assert batch is not None and len(batch) == len(log)
            assert [c.value for c in batch] == \
                [b"%d" % n for n in range(log.first_retained, i + 1)]
    assert not log.retains(8999) and log.retains(9000)


def test_the_log_leaves_the_garbage_collector_nothing_to_track() -> None:
    """Issue 14: a full backlog of Change objects was 200,000 tracked objects that every full
    collection scanned (40-60 ms pauses under 32 writers); its columns hold none, and a batch
    builds none."""
    log = ReplicationLog(2, Limits(max_backlog_entries=5000))
    gc.collect()
    before = len(gc.get_objects())
    for i in range(20_000):
        log.append(Change("s", f"k{i}", b"v"))
    batch = log.batch(15_000)
    assert batch is not None and len(batch) == 5000
    assert sum(1 for _ in batch) == 5000
    # counted before any collection could untrack anything: none was ever tracked
    assert len(gc.get_objects()) - before < 50


@pytest.mark.parametrize(
    ("applied", "highest", "epoch", "first", "count", "verdict", "skip"),
    [
        ((5, 10), 5, 5, 11, 3, Verdict.APPLY, 0),
        ((5, 10), 5, 5, 9, 4, Verdict.APPLY, 2),  # overlap: skip the two applied
        ((5, 10), 5, 5, 8, 3, Verdict.DUPLICATE, 0),
        ((5, 10), 5, 5, 12, 1, Verdict.GAP, 0),
        ((5, 10), 9, 5, 11, 1, Verdict.STALE, 0),  # a deposed active
        ((5, 10), 5, 9, 1, 1, Verdict.GAP, 0),  # another epoch with no base: snapshot
        ((9, 0), 9, 9, 1, 2, Verdict.APPLY, 0),
    ],
)
def test_delta_verdicts(applied: tuple[int, int], highest: int, epoch: int, first: int,
                        count: int, verdict: Verdict, skip: int) -> None:
    assert check_deltas(applied, highest, epoch, first, count) == (verdict, skip)


def test_ack_tracker_one_and_all() -> None:
    t = AckTracker(3)
    t.on_ack("b", 10)
    assert t.protected(Ack.ONE) == 0  # b is not in sync yet: its acks do not count
    t.in_sync = frozenset({"b", "c"})
    t.on_ack("c", 4)
    t.on_ack("b", 2)  # never backwards
    assert t.protected(Ack.ONE) == 10 and t.protected(Ack.ALL) == 4
    assert t.protected(Ack.NONE) == 0


changes = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["k1", "k2", "k3"]),
              st.one_of(st.none(), st.binary(max_size=4))),
    max_size=60,
)


@given(changes, st.integers(1, 7), st.lists(st.integers(1, 6), max_size=30))
def test_standby_following_the_log_ends_equal(
    ops: list[tuple[str, str, bytes | None]], backlog: int, pulls: list[int]
) -> None:
    """A standby that pulls deltas in arbitrary batch sizes, and takes a snapshot whenever the
    log has dropped what it needs, ends with exactly the active's data."""
    limits = Limits(max_backlog_entries=backlog)
    active, standby = CheckpointData(), CheckpointData()
    log = ReplicationLog(1, limits)
    applied = (1, 0)
    pull = iter(pulls)

    def catch_up(limit: int | None) -> None:
        nonlocal applied
        batch = log.since(applied[1])
        if batch is None:
            standby.replace(active.entries())
            applied = (1, log.last_sequence)
            return
        batch = batch[:limit] if limit else batch
        if not batch:
            return
        verdict, skip = check_deltas(applied, 1, 1, applied[1] + 1, len(batch))
        assert verdict is Verdict.APPLY and skip == 0
        for c in batch:
            standby.apply(c)
        applied = (1, applied[1] + len(batch))

    for section, key, value in ops:
        c = Change(section, key, value)
        active.apply(c)
        log.append(c)
        catch_up(next(pull, 0))
    catch_up(None)
    catch_up(None)
    assert applied == (1, log.last_sequence)
    assert {s: dict(active.items(s)) for s in active.sections()} == \
        {s: dict(standby.items(s)) for s in standby.sections()}
