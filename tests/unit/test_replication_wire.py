"""The replication wire mapping (no sockets): the messages the active builds are byte for byte
those of the plain constructors (the wire does not change), and changes round-trip."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vnfha.replication import wire
from vnfha.replication.state import Change
from vnfha.replication.wire import pb

changes = st.lists(st.builds(Change, st.sampled_from(["s", "sessions.v2"]), st.text(min_size=1),
                             st.one_of(st.none(), st.binary(max_size=8))), max_size=20)


def _plain(c: Change) -> object:
    if c.value is None:
        return pb.Change(section=c.section, key=c.key, delete=True)
    return pb.Change(section=c.section, key=c.key, value=c.value)


@given(changes, st.integers(1, 2**63), st.integers(1, 2**63))
def test_deltas_are_the_plain_message(batch: list[Change], epoch: int, first: int) -> None:
    msg = wire.deltas_message(epoch, first, [(c.section, c.key, c.value) for c in batch])
    plain = pb.ActiveMessage(deltas=pb.Deltas(epoch=epoch, first_sequence=first,
                                              changes=[_plain(c) for c in batch]))
    assert msg.SerializeToString(deterministic=True) == \
        plain.SerializeToString(deterministic=True)
    assert msg.WhichOneof("kind") == "deltas"
    assert wire.changes_from_pb(msg.deltas.changes) == batch


@given(changes, st.integers(1, 2**63), st.integers(0, 2**63), st.booleans())
def test_snapshot_chunks_are_the_plain_message(entries: list[Change], epoch: int,
                                               sequence: int, last: bool) -> None:
    msg = wire.snapshot_message(epoch, sequence, [(c.section, c.key, c.value) for c in entries],
                                last=last)
    plain = pb.ActiveMessage(snapshot=pb.SnapshotChunk(
        epoch=epoch, sequence=sequence, entries=[_plain(c) for c in entries], last=last))
    assert msg.SerializeToString(deterministic=True) == \
        plain.SerializeToString(deterministic=True)
    assert msg.WhichOneof("kind") == "snapshot"  # even an empty chunk selects its kind
    assert wire.changes_from_pb(msg.snapshot.entries) == entries
