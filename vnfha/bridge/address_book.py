"""PURE: the bridge's record of where it moved each service address, and the verdict on a move
(``Network/MoveAddress``).

A move is fenced first as every acting request is (:mod:`vnfha.bridge.epochs`: an epoch below
the group's highest is refused). :func:`decide` adds what only an address needs, from the
driver's word on which instance holds the address now (``holder``, resolved to its group and
member through the inventory) and the bridge's record of the last move (``record``, kept per
address by :class:`AddressBook`). Guarantees:

- **One group per address.** An address held by an instance of another group, or by an
  instance the inventory does not list, is refused (:attr:`MoveRefusal.ADDRESS_IN_USE`):
  epochs order one group's grants only, so one group's epoch says nothing about another's; the
  holder must give the address up first.
- **Never back.** A move in an epoch below the one that last moved the address within the
  group is refused (:attr:`MoveRefusal.STALE_EPOCH`, naming both epochs), whatever else
  allowed it.
- **One epoch, one member.** A move in the epoch that moved the address to another member of
  the group is refused (:attr:`MoveRefusal.EPOCH_CONFLICT`): an epoch is one grant, to one
  member (a standby fencing in the active's epoch is not the active).
- **Idempotent.** Anything else is accepted. ``changed`` is False exactly when the record
  already binds the address to the same member's instance in the same epoch and the driver
  agrees (a repeat, whatever the prefix): the bridge then publishes no event.

The record is bounded (``max_addresses``: the address moved least recently is forgotten first,
which loses only its epoch: the group's epochs still fence every move) and lives in memory: a
restarted bridge knows the binding again from the driver, and its epoch from the next move. No
asyncio, grpc or time here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["AddressBook", "Bound", "Holder", "MoveRefusal", "MoveVerdict", "decide"]


class MoveRefusal(enum.StrEnum):
    """Why a move is refused; the values are the refusal's ``vnfha-reason``."""

    STALE_EPOCH = "stale-epoch"
    """An older epoch than the one that last moved the address (the caller is deposed)."""
    ADDRESS_IN_USE = "address-in-use"
    """Another group's instance (or one outside the inventory) holds the address."""
    EPOCH_CONFLICT = "epoch-conflict"
    """This epoch already moved the address to another member of the group."""


@dataclass(frozen=True, slots=True)
class Bound:
    """A binding as the bridge made it: ``address`` (canonical ``ADDRESS/PREFIX``) to
    ``member``'s ``instance`` of ``group`` in ``epoch``; also a move asked for."""

    address: str
    group: str
    member: str
    instance: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Holder:
    """The instance the driver says holds an address, with the group, member and host the
    inventory lists for it (all None: the inventory does not list the instance)."""

    instance: str
    group: str | None = None
    member: str | None = None
    host: str | None = None


@dataclass(frozen=True, slots=True)
class MoveVerdict:
    """The decision on one move: ``refusal`` None when accepted; ``reason`` says why, naming
    the address, members and epochs; ``changed`` (accepted only) False for a repeat;
    ``previous_member`` the member of the group whose instance held the address before."""

    refusal: MoveRefusal | None
    reason: str
    changed: bool = False
    previous_member: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the move may go ahead."""
        return self.refusal is None


def decide(move: Bound, record: Bound | None, holder: Holder | None) -> MoveVerdict:
    """The verdict on ``move`` given the bridge's last ``record`` for the address (any group's,
    or None) and the driver's ``holder`` (None: nobody holds it). See the module docstring."""
    if holder is not None and holder.group != move.group:
        whose = (f"of group {holder.group!r}" if holder.group is not None
                 else "that runs no member the bridge knows")
        return MoveVerdict(MoveRefusal.ADDRESS_IN_USE, f"address {move.address} is held by "
                           f"instance {holder.instance!r} {whose}, not by group {move.group!r}: "
                           "one group's epochs do not order another's; it must be released "
                           "there first")
    last = record if record is not None and record.group == move.group else None
    if last is not None and move.epoch < last.epoch:
        return MoveVerdict(MoveRefusal.STALE_EPOCH, f"epoch {move.epoch} is stale: address "
                           f"{move.address} was moved to member {last.member!r} in epoch "
                           f"{last.epoch}")
    if last is not None and move.epoch == last.epoch and move.member != last.member:
        return MoveVerdict(MoveRefusal.EPOCH_CONFLICT, f"epoch {move.epoch} already moved "
                           f"address {move.address} to member {last.member!r}: an epoch is one "
                           f"grant, to one member, not also to {move.member!r}")
    previous = holder.member if holder is not None else None
    same = last is not None and (last.member, last.instance, last.epoch) == (
        move.member, move.instance, move.epoch)
    if same and holder is not None and holder.instance == move.instance:
        return MoveVerdict(None, f"address {move.address} is on {move.instance} in epoch "
                           f"{move.epoch} already (a repeat)", False, previous)
    was = f"from member {previous!r}" if previous is not None else "held by no instance before"
    return MoveVerdict(None, f"address {move.address} moved to member {move.member!r} "
                       f"({move.instance}) in epoch {move.epoch}, {was}", True, previous)


class AddressBook:
    """The last move of each address (by a key: its IP), at most ``max_addresses`` of them."""

    def __init__(self, *, max_addresses: int) -> None:
        """Start empty; keep at most ``max_addresses`` (>= 1) records."""
        if max_addresses < 1:
            raise ValueError(f"max_addresses={max_addresses}: must be at least 1")
        self.max_addresses = max_addresses
        self._records: dict[str, Bound] = {}  # least recently moved first

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> Bound | None:
        """The last move of the address ``key``, None if none is remembered."""
        return self._records.get(key)

    def record(self, key: str, bound: Bound) -> Bound | None:
        """Remember ``bound`` as the last move of ``key``; returns the record forgotten to stay
        within ``max_addresses`` (the least recently moved), if any."""
        self._records.pop(key, None)
        self._records[key] = bound
        if len(self._records) <= self.max_addresses:
            return None
        oldest = next(iter(self._records))
        return self._records.pop(oldest)
