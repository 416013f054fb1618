"""Checkpoint state and replication bookkeeping. Pure: no I/O, no clock, no asyncio.

- :class:`CheckpointData` holds sections of key -> bytes and enforces the size limits.
- :class:`ReplicationLog` is the active's bounded log of one epoch: sequences start at 1 and
  have no gaps; old entries are dropped beyond the backlog limits, and a standby that needs a
  dropped entry gets a snapshot instead (:meth:`ReplicationLog.since` returns None).
- :func:`check_deltas` is the standby's verdict on a batch of deltas (apply, duplicate, gap,
  stale epoch), so a standby applies each epoch's sequence in order, without gaps or repeats.
- :class:`AckTracker` knows which standbys are in sync and what each has acknowledged, and so
  which sequence is protected under ``Ack.ONE`` and ``Ack.ALL``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from vnfha.errors import CheckpointLimitError, ConfigError
from vnfha.model import Ack

__all__ = [
    "AckTracker",
    "Batch",
    "Change",
    "ChangeNotes",
    "CheckpointData",
    "Entry",
    "Limits",
    "ReplicationLog",
    "Verdict",
    "check_deltas",
    "check_section",
    "check_shape",
    "utf8_len",
]

_SECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
CHANGE_OVERHEAD_BYTES = 16
"""Wire bytes a change costs besides its section, key and value (tags, lengths): used to keep
batches under the message limit without serialising twice."""


_KNOWN_SECTIONS: set[str] = set()
"""Section names that passed :func:`check_section` (a write checks its section once, not every
time). Bounded: past ``_KNOWN_SECTIONS_MAX`` names, further ones are checked every time."""
_KNOWN_SECTIONS_MAX = 4096


def check_section(section: object) -> str:
    """A section name: 1-63 of ``A-Z a-z 0-9 _ . -``, starting with a letter or digit."""
    # exactly str: a subclass could compare equal to a known name and still differ
    if type(section) is str and section in _KNOWN_SECTIONS:
        return section
    if not isinstance(section, str) or not _SECTION.match(section):
        raise ConfigError("section", section, "must be 1-63 characters of letters, digits, "
                          "'_', '.' and '-', starting with a letter or digit")
    if type(section) is str and len(_KNOWN_SECTIONS) < _KNOWN_SECTIONS_MAX:
        _KNOWN_SECTIONS.add(section)
    return section


def utf8_len(text: str) -> int:
    """``len(text.encode("utf-8"))``, without encoding ASCII text (the common case: for it the
    two are equal, and ``isascii`` does not scan the string). UnicodeEncodeError for text with
    surrogates, which has no UTF-8 form (and so cannot travel in a protobuf string)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def check_shape(change: Change, limits: Limits) -> int:
    """Check the names and sizes of one change on its own; returns the key's size in bytes."""
    check_section(change.section)
    key = change.key
    if not isinstance(key, str) or not key:
        raise ConfigError("key", key, "must be a non-empty string")
    try:
        key_bytes = utf8_len(key)
    except UnicodeEncodeError:  # a lone surrogate: applied here, it could never replicate
        raise ConfigError("key", key, "must be valid Unicode text, without surrogates: keys "
                          "travel to the standbys as UTF-8") from None
    if key_bytes > limits.max_key_bytes:
        raise CheckpointLimitError("max_key_bytes", f"key {_where(change)}", key_bytes,
                                   limits.max_key_bytes)
    value = change.value
    if value is not None:
        if not isinstance(value, bytes):
            raise ConfigError("value", type(value).__name__, "must be bytes")
        if len(value) > limits.max_value_bytes:
            raise CheckpointLimitError("max_value_bytes", f"value of {_where(change)}",
                                       len(value), limits.max_value_bytes)
    return key_bytes


def _where(change: Change) -> str:
    return f"{change.section}/{change.key[:64]}"


@dataclass(frozen=True, slots=True, init=False)
class Change:
    """Set ``section``/``key`` to ``value``, or delete it when ``value`` is None."""

    section: str
    key: str
    value: bytes | None

    def __init__(self, section: str, key: str, value: bytes | None) -> None:
        # what the generated __init__ of a frozen dataclass does (object.__setattr__ per
        # field), through the slots' own setters: 0.26 instead of 0.41 us, and every write
        # builds one Change on the active and one on each standby
        _set_section(self, section)
        _set_key(self, key)
        _set_value(self, value)

    @property
    def wire_bytes(self) -> int:
        """An upper estimate of the change's size in a message."""
        value = len(self.value) if self.value is not None else 0
        return len(self.section) + utf8_len(self.key) + value + CHANGE_OVERHEAD_BYTES


Entry = tuple[str, str, bytes | None]
"""A change as the active's log keeps it and the wire encodes it: (section, key, value), the
value None for a delete."""

_set_section: Callable[[Change, str], None] = Change.__dict__["section"].__set__
_set_key: Callable[[Change, str], None] = Change.__dict__["key"].__set__
_set_value: Callable[[Change, bytes | None], None] = Change.__dict__["value"].__set__


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits, each named in the error that enforces it."""

    max_key_bytes: int = 1024
    max_value_bytes: int = 1 << 20
    max_section_bytes: int = 64 << 20
    max_message_bytes: int = 4 << 20
    max_backlog_entries: int = 100_000
    max_backlog_bytes: int = 64 << 20

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(name, value, "must be a positive integer")
        need = self.max_key_bytes + self.max_value_bytes + 64 + CHANGE_OVERHEAD_BYTES
        if self.max_message_bytes < need:
            raise ConfigError("max_message_bytes", self.max_message_bytes,
                              f"must hold one change of the largest key and value ({need})")


class ChangeNotes(Protocol):
    """What keeps undo information (:class:`vnfha.replication.undo.UndoLog`)."""

    def note(self, section: str, key: str, old: bytes | None) -> None: ...
    def reset(self) -> None: ...


class CheckpointData:
    """Sections of key -> bytes, with per-section byte accounting (keys plus values).
    ``undo``, when set, is told each key's old value before every change, and of every
    wholesale replacement."""

    def __init__(self) -> None:
        self._sections: dict[str, dict[str, bytes]] = {}
        self._bytes: dict[str, int] = {}
        self.undo: ChangeNotes | None = None

    def check(self, change: Change, limits: Limits) -> None:
        """Raise ConfigError (bad name) or CheckpointLimitError if ``change`` is refused."""
        key_bytes = check_shape(change, limits)
        value = change.value
        if value is None:
            return
        name = change.section
        # the most the section can grow by (a new key); only near the limit is it worth finding
        # out whether the key replaces an old value instead
        grown = self._bytes.get(name, 0) + len(value) + key_bytes
        if grown <= limits.max_section_bytes:
            return
        section = self._sections.get(name)
        old = section.get(change.key) if section is not None else None
        if old is not None:
            grown -= len(old) + key_bytes
        if grown > limits.max_section_bytes:
            raise CheckpointLimitError("max_section_bytes", f"section {name}", grown,
                                       limits.max_section_bytes)

    def apply(self, change: Change) -> None:
        """Apply without checks (the active checked before logging it)."""
        name, key, value = change.section, change.key, change.value
        section = self._sections.get(name)
        if self.undo is not None:
            self.undo.note(name, key, section.get(key) if section is not None else None)
        if value is None:
            if section is not None:
                old = section.pop(key, None)
                if old is not None:
                    self._bytes[name] -= len(old) + utf8_len(key)
                    if not section:
                        del self._sections[name]
                        del self._bytes[name]
            return
        if section is None:
            section = self._sections[name] = {}
            self._bytes[name] = 0
        old = section.get(key)
        section[key] = value
        self._bytes[name] += len(value) + (utf8_len(key) if old is None else -len(old))

    def get(self, section: str, key: str) -> bytes | None:
        s = self._sections.get(section)
        return s.get(key) if s is not None else None

    def items(self, section: str) -> Iterator[tuple[str, bytes]]:
        """The section's entries in insertion order (a copy: safe to write while iterating)."""
        return iter(list(self._sections.get(section, {}).items()))

    def sections(self) -> list[str]:
        return sorted(self._sections)

    def count(self, section: str) -> int:
        """How many keys ``section`` has."""
        return len(self._sections.get(section, ()))

    def section_bytes(self, section: str) -> int:
        return self._bytes.get(section, 0)

    def __len__(self) -> int:
        return sum(len(s) for s in self._sections.values())

    def entries(self) -> list[Change]:
        """Every entry as a put, for a snapshot (a copy taken now)."""
        return [Change(name, k, v) for name, s in self._sections.items() for k, v in s.items()]

    def replace(self, entries: Iterable[Change]) -> None:
        """Become exactly ``entries`` (a snapshot): nothing before can be undone."""
        self._sections.clear()
        self._bytes.clear()
        undo, self.undo = self.undo, None
        try:
            for change in entries:
                self.apply(change)
        finally:
            self.undo = undo
        if undo is not None:
            undo.reset()


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive entries of a :class:`ReplicationLog` from sequence ``first``, as parallel
    lists; iterating gives each as an :data:`Entry`."""

    first: int
    sections: list[str]
    keys: list[str]
    values: list[bytes | None]

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[Entry]:
        # zip hands out one tuple again and again when each is unpacked and dropped: a batch
        # of any size allocates nothing the garbage collector tracks
        return zip(self.sections, self.keys, self.values, strict=True)


_COMPACT_AT = 4096
"""Dropped entries a log lets accumulate at the head of its columns before it deletes them
(and only once they are at least half of the columns, so deleting is amortized O(1))."""


class ReplicationLog:
    """The active's log for one ``epoch``, on top of ``base`` = the (epoch, sequence) its state
    had when the epoch began (a standby at exactly ``base`` can take the deltas from 1).

    The entries are kept as columns: lists of sections, keys, values and sizes, which hold
    strings, bytes and numbers only, none of which the garbage collector tracks; a batch is
    slices of them (:meth:`batch`), encoded without building an object per change. As
    :class:`Change` objects in tuples, a full backlog (100,000 entries by default) was
    200,000 objects that every full collection scanned (pauses of 40-60 ms for every writer on
    the loop), and tuples alone stayed tracked in the youngest generation until a collection
    ran, whose pause then grew with them (issue 14). A list with a moving head, not a deque:
    a batch starts anywhere in the log, and indexing a deque there walks it.
    """

    def __init__(self, epoch: int, limits: Limits, base: tuple[int, int] = (0, 0)) -> None:
        self.epoch = epoch
        self.base = base
        self.limits = limits
        # the same epoch resumed (a handover that did not happen): sequences carry on
        self.last_sequence = base[1] if base[0] == epoch else 0
        self._sections: list[str] = []
        self._keys: list[str] = []
        self._values: list[bytes | None] = []
        self._sizes: list[int] = []
        self._head = 0
        """Index in the columns of the oldest retained entry (those before it are dropped)."""
        self._bytes = 0

    @property
    def first_retained(self) -> int:
        """The oldest sequence still in the log (last + 1 when it is empty)."""
        return self.last_sequence - len(self) + 1

    def __len__(self) -> int:
        return len(self._keys) - self._head

    def append(self, change: Change) -> int:
        """Log ``change``; returns its sequence. Drops the oldest entries beyond the limits."""
        seq = self.last_sequence = self.last_sequence + 1
        size = change.wire_bytes
        self._sections.append(change.section)
        self._keys.append(change.key)
        self._values.append(change.value)
        self._sizes.append(size)
        self._bytes += size
        limits = self.limits
        while len(self) > limits.max_backlog_entries or (
                self._bytes > limits.max_backlog_bytes and len(self) > 1):
            self._drop_oldest()
        return seq

    def _drop_oldest(self) -> None:
        head = self._head
        self._bytes -= self._sizes[head]
        self._sections[head] = self._keys[head] = ""  # the data goes now, the slots later
        self._values[head] = None
        head += 1
        if head >= _COMPACT_AT and 2 * head >= len(self._keys):
            del self._sections[:head], self._keys[:head], self._values[:head]
            del self._sizes[:head]
            head = 0
        self._head = head

    def retains(self, sequence: int) -> bool:
        """Whether a standby that has ``sequence`` can be sent the rest from this log."""
        return self.first_retained - 1 <= sequence <= self.last_sequence

    def batch(self, sequence: int, max_bytes: int | None = None) -> Batch | None:
        """The entries after ``sequence`` (in order, at most ``max_bytes`` of them on the wire,
        at least one), or None if some are no longer in the log: that standby needs a snapshot."""
        if sequence >= self.last_sequence:
            return Batch(sequence + 1, [], [], [])
        first = self.first_retained
        if sequence + 1 < first:
            return None
        sizes = self._sizes
        start = self._head + sequence + 1 - first
        budget = (max_bytes if max_bytes is not None else self.limits.max_message_bytes) \
            - sizes[start]
        end, stop = start + 1, len(sizes)
        while end < stop and sizes[end] <= budget:
            budget -= sizes[end]
            end += 1
        return Batch(sequence + 1, self._sections[start:end], self._keys[start:end],
                     self._values[start:end])

    def since(self, sequence: int, max_bytes: int | None = None) -> list[Change] | None:
        """:meth:`batch` as changes."""
        batch = self.batch(sequence, max_bytes)
        return None if batch is None else [Change(s, k, v) for s, k, v in batch]


class Verdict(enum.Enum):
    """What a standby does with a batch of deltas."""

    APPLY = "apply"
    DUPLICATE = "duplicate"
    """Everything in it is applied already: ignore."""
    GAP = "gap"
    """It starts after the next expected sequence, or is of an epoch the standby has no base
    for: resync (a snapshot)."""
    STALE = "stale"
    """Its epoch is lower than the highest the standby has seen: a deposed active. Reject."""


def check_deltas(applied: tuple[int, int], highest_epoch: int, epoch: int, first: int,
                 count: int) -> tuple[Verdict, int]:
    """The verdict on ``count`` deltas of ``epoch`` starting at sequence ``first``, for a
    standby that has applied ``applied`` = (epoch, sequence) and seen ``highest_epoch``; with
    APPLY, how many leading deltas to skip (already applied)."""
    if epoch < highest_epoch:
        return Verdict.STALE, 0
    applied_epoch, applied_seq = applied
    if epoch != applied_epoch or first < 1 or count < 1:
        return Verdict.GAP, 0
    if first > applied_seq + 1:
        return Verdict.GAP, 0
    last = first + count - 1
    if last <= applied_seq:
        return Verdict.DUPLICATE, 0
    return Verdict.APPLY, applied_seq + 1 - first


class AckTracker:
    """Which sequence of ``epoch`` each standby has acknowledged, and which standbys are in
    sync (published in etcd: only their acknowledgements count)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.in_sync: frozenset[str] = frozenset()
        self.acked: dict[str, int] = {}

    def on_ack(self, member: str, sequence: int) -> None:
        """Record an ack; acknowledgements never go backwards."""
        if sequence > self.acked.get(member, 0):
            self.acked[member] = sequence

    def forget(self, member: str) -> None:
        self.acked.pop(member, None)

    def protected(self, ack: Ack) -> int:
        """The highest sequence protected under ``ack``: every write up to it is applied on at
        least one in-sync standby (ONE) or on every in-sync standby (ALL). 0 when no standby is
        in sync; NONE protects nothing beyond the active (returns 0 too: callers do not wait)."""
        if ack is Ack.NONE or not self.in_sync:
            return 0
        acks = [self.acked.get(m, 0) for m in self.in_sync]
        return max(acks) if ack is Ack.ONE else min(acks)
