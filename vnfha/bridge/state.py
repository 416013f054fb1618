"""The bridge's state file (``vnfha bridge serve --state-file PATH``): what survives a restart.

Kept: the highest epoch per group (so a deposed active stays refused), the repair tickets with
their idempotency keys and the next ticket number (so a repeated escalation gets its ticket back
and ids are never reused), and the pending planned maintenances (so members that watch after the
restart still hear of them). Not kept: armed watchdogs (members re-arm at their next confirmed
keepalive; firing a watchdog restored from a file could reset a healthy instance), down hosts
(the driver reports them again) and event sequence numbers (they continue above the restored
maintenances' own).

The file, version 1 (JSON, one object; maintenance deadlines on the wall clock, since the
bridge's monotonic clock does not survive it)::

    {"version": 1,
     "epochs": {"vfw": 7},
     "next_ticket": 3,
     "tickets": [{"ticket_id": "t-2", "idempotency_key": "vfw-a-7-1", "group": "vfw",
                  "member": "vfw-a", "instance": "vm-vfw-a", "action": "reboot",
                  "owner": "nfvi", "owner_name": "nfvi:sim", "state": "succeeded",
                  "detail": "...", "host": "h1", "epoch": 7, "version": 3}],
     "maintenance": [{"host": "h1", "deadline_unix_s": 1767225600.0,
                      "detail": "planned maintenance: kernel", "sequence": 4}]}

Two parts:

- PURE (:class:`BridgeState`, :func:`to_dict`, :func:`from_dict`): the snapshot and its JSON
  form. :func:`from_dict` accepts only what :func:`to_dict` can write and refuses anything else
  with a :class:`StateFormatError` naming the field and value (``tickets[2].state='done'``).
- I/O (:class:`StateStore`): :meth:`~StateStore.load` (a missing file is None; anything
  unreadable, corrupt or of another version is :class:`StateFileError` naming the path: the
  bridge refuses to start rather than forget its epochs), :meth:`~StateStore.open` (what a
  bridge does before it launches anything: claim, load, and write the file back to prove it
  writable) and :meth:`~StateStore.save`, which
  writes atomically (a temporary file in the same directory, flushed and fsynced, renamed over
  the file, then the directory fsynced), off the event loop, one write at a time; a crash at
  any moment leaves the old file or the new one, never a mix.

One bridge per file: :meth:`StateStore.claim` takes an exclusive ``flock`` on ``PATH.lock``
(the state file itself is replaced on every save, so it cannot carry the lock) and writes the
owner's pid into it. A second bridge on the same file is refused with the holder's pid named;
two bridges writing one file would each overwrite the other's epochs. The kernel drops the lock
when the owner exits, however it exits, so a crashed bridge never blocks its successor.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fcntl
import json
import math
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from vnfha.errors import VnfhaError
from vnfha.nfvi.model import BridgeEvent, EventKind, RepairAction, RepairOwner, RepairState
from vnfha.nfvi.model import RepairTicket as Ticket

__all__ = ["STATE_VERSION", "BridgeState", "StateFileError", "StateFormatError", "StateStore",
           "from_dict", "replace_durably", "to_dict"]

STATE_VERSION = 1
"""The only file version this bridge reads and writes."""

_TOP = ("version", "epochs", "next_ticket", "tickets", "maintenance")
_MAINTENANCE = ("host", "deadline_unix_s", "detail", "sequence")
_TICKET_ENUMS: dict[str, type[enum.StrEnum]] = {
    "action": RepairAction, "owner": RepairOwner, "state": RepairState}
_TICKET_INTS = {"epoch": 0, "version": 1}  # field -> minimum
_TICKET_FIELDS = tuple(f.name for f in fields(Ticket))
_COMPACT = (",", ":")


# -- PURE: the snapshot and its JSON form ----------------------------------------------------------


class StateFormatError(VnfhaError, ValueError):
    """A state document is not one :func:`to_dict` could have written: ``field`` (a path such
    as ``tickets[2].state``) holds ``value``, and ``problem`` says what is wrong."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={value!r}: {problem}")


@dataclass(frozen=True, slots=True)
class BridgeState:
    """What the bridge keeps across a restart (see the module docstring). ``tickets`` oldest
    first; ``maintenance``: MAINTENANCE_PLANNED events (host, wall-clock deadline, detail,
    sequence; no members), oldest announcement first."""

    epochs: Mapping[str, int]
    tickets: tuple[Ticket, ...] = ()
    next_ticket: int = 1
    maintenance: tuple[BridgeEvent, ...] = ()


def to_dict(state: BridgeState) -> dict[str, Any]:
    """The JSON-able form of ``state`` (the file's content)."""
    return {
        "version": STATE_VERSION,
        "epochs": dict(sorted(state.epochs.items())),
        "next_ticket": state.next_ticket,
        "tickets": [_ticket_dict(t) for t in state.tickets],
        "maintenance": [{"host": e.host, "deadline_unix_s": e.deadline_unix_s,
                         "detail": e.detail, "sequence": e.sequence}
                        for e in state.maintenance],
    }


def _ticket_dict(ticket: Ticket) -> dict[str, Any]:
    return {name: getattr(ticket, name) for name in _TICKET_FIELDS}


def from_dict(data: object) -> BridgeState:
    """The state a parsed file holds; :class:`StateFormatError` naming the first offending
    field otherwise (the version is checked first)."""
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(data, dict) and version != STATE_VERSION:  # before the fields it defines
        raise StateFormatError("version", version, f"this bridge reads version {STATE_VERSION} "
                               "only")
    top = _object(data, "state", _TOP)
    epochs_in = top["epochs"]
    if not isinstance(epochs_in, dict):
        raise StateFormatError("epochs", epochs_in, "must be an object (group -> epoch)")
    epochs = {group: _int(epoch, f"epochs[{group!r}]", 0) for group, epoch in epochs_in.items()}
    next_ticket = _int(top["next_ticket"], "next_ticket", 1)
    tickets = tuple(_ticket(item, f"tickets[{i}]", next_ticket)
                    for i, item in enumerate(_list(top["tickets"], "tickets")))
    _unique([t.ticket_id for t in tickets], "tickets", "ticket_id")
    _unique([f"{t.group}/{t.idempotency_key}" for t in tickets], "tickets",
            "group/idempotency_key")
    maintenance = tuple(_maintenance(item, f"maintenance[{i}]")
                        for i, item in enumerate(_list(top["maintenance"], "maintenance")))
    _unique([e.host for e in maintenance], "maintenance", "host")
    return BridgeState(epochs, tickets, next_ticket, maintenance)


def _ticket(data: object, where: str, next_ticket: int) -> Ticket:
    item = _object(data, where, _TICKET_FIELDS)
    values: dict[str, Any] = {}
    for name in _TICKET_FIELDS:
        value, field = item[name], f"{where}.{name}"
        if name in _TICKET_ENUMS:
            values[name] = _enum(_TICKET_ENUMS[name], value, field)
        elif name in _TICKET_INTS:
            values[name] = _int(value, field, _TICKET_INTS[name])
        else:
            values[name] = _str(value, field)
    number = values["ticket_id"].removeprefix("t-")
    if not (number.isdigit() and number.isascii() and int(number) < next_ticket):
        raise StateFormatError(f"{where}.ticket_id", values["ticket_id"], "must be t-<n> with "
                               f"n below next_ticket ({next_ticket})")
    return Ticket(**values)


def _maintenance(data: object, where: str) -> BridgeEvent:
    item = _object(data, where, _MAINTENANCE)
    deadline = item["deadline_unix_s"]
    if isinstance(deadline, bool) or not isinstance(deadline, int | float) \
            or not math.isfinite(deadline):
        raise StateFormatError(f"{where}.deadline_unix_s", deadline, "must be a finite number "
                               "(Unix seconds)")
    host = _str(item["host"], f"{where}.host")
    if not host:
        raise StateFormatError(f"{where}.host", host, "must not be empty")
    return BridgeEvent(EventKind.MAINTENANCE_PLANNED, host=host,
                       deadline_unix_s=float(deadline),
                       detail=_str(item["detail"], f"{where}.detail"),
                       sequence=_int(item["sequence"], f"{where}.sequence", 1))


def _object(data: object, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """``data`` as an object with exactly ``keys``."""
    if not isinstance(data, dict):
        raise StateFormatError(where, data if not isinstance(data, list) else "[...]",
                               "must be a JSON object")
    missing = [k for k in keys if k not in data]
    if missing:
        raise StateFormatError(f"{where}.{missing[0]}", None, "is missing")
    unknown = sorted(str(k) for k in data if k not in keys)
    if unknown:
        raise StateFormatError(f"{where}.{unknown[0]}", data[unknown[0]], "unknown field")
    return data


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise StateFormatError(where, value, "must be a list")
    return value


def _int(value: object, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise StateFormatError(where, value, f"must be an integer >= {minimum}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise StateFormatError(where, value, "must be a string")
    return value


def _enum(kind: type[enum.StrEnum], value: object, where: str) -> enum.StrEnum:
    try:
        return kind(_str(value, where))
    except ValueError:
        raise StateFormatError(where, value, "must be one of "
                               f"{', '.join(str(m) for m in kind)}") from None


def _unique(values: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise StateFormatError(f"{where}[{i}].{what}", value, "appears twice")
        seen.add(value)


# -- I/O: load, and save atomically ---------------------------------------------------------------


class StateFileError(VnfhaError):
    """The state file at ``path`` cannot be used: unreadable, not JSON, not a valid state (the
    message names the field), or not writable. A bridge refuses to start on it."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"state file {path}: {problem}")


class StateStore:
    """One state file. :meth:`open` (a bridge's start) or :meth:`load`, then :meth:`save` after
    each change.

    Guarantees: a save returns once a file holding every change made before the call is on disk
    (renamed into place, directory fsynced); saves run one at a time, in a worker thread, and
    calls arriving while one runs share the next write. A failed save raises
    :class:`StateFileError` and the next save writes everything again.

    Cost: each ticket is encoded once and its JSON kept (tickets never change in place: a change
    is a new object), so a save encodes only what changed; the rest is joining, writing and one
    fsync. With 10,000 tickets (a 2.5 MB file) that keeps the event loop from stalling for the
    tens of milliseconds a whole ``json.dumps`` holds the interpreter lock.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()
        self._changes = 0  # changes announced by save() calls
        self._saved = 0  # changes covered by the last completed save
        self._write_lock = threading.Lock()
        self._written = 0
        self._encoded: dict[str, tuple[Ticket, str]] = {}  # ticket id -> (ticket, its JSON)
        self._claim: int | None = None  # the open, flock'ed PATH.lock while claimed

    @property
    def lock_path(self) -> Path:
        """The file whose ``flock`` says which bridge owns the state file."""
        return self.path.with_name(self.path.name + ".lock")

    def claim(self) -> None:
        """Become the only bridge using this state file, until :meth:`release` or exit.
        :class:`StateFileError` naming the holder's pid if another process holds it; idempotent
        for this store."""
        if self._claim is not None:
            return
        lock = self.lock_path
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise StateFileError(self.path, f"cannot open its lock file {lock}: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StateFileError(self.path, f"in use by another bridge (pid {holder}, holding "
                                 f"{lock}): one bridge per state file") from None
        except OSError as e:
            os.close(fd)
            raise StateFileError(self.path, f"cannot lock {lock}: {e}") from e
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._claim = fd

    def release(self) -> None:
        """Give up the claim (the lock file stays, empty of meaning until the next claim)."""
        fd, self._claim = self._claim, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the flock

    def open(self) -> BridgeState | None:
        """Make the file ready for a bridge, before the bridge launches anything: :meth:`claim`
        it, :meth:`load` it, and prove it writable by writing what was read back in place, the
        way :meth:`save` writes (a first start writes an empty state, creating the file).
        Returns what was read (None: a first start).

        :class:`StateFileError` if any of the three fails (held by another bridge; unreadable,
        corrupt, another version: the file is then left as it was; cannot be written: a
        read-only directory, a full disk, a name too long for the temporary file beside it). A
        claim this call took is released again when it fails; one held before is kept.
        Blocking (file I/O and fsync): a bridge runs it in a worker thread."""
        claimed_here = self._claim is None
        self.claim()
        try:
            saved = self.load()
            with self._write_lock:
                try:
                    replace_durably(self.path, self._encode(saved or BridgeState({})))
                except OSError as e:
                    raise StateFileError(self.path, f"cannot write it: {e}") from e
        except BaseException:
            if claimed_here:
                self.release()
            raise
        return saved

    @property
    def behind(self) -> bool:
        """True while a change announced to :meth:`save` is not on disk: a save is running, or
        the last one failed."""
        return self._saved < self._changes

    def load(self) -> BridgeState | None:
        """The saved state; None if there is no file (a first start)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise StateFileError(self.path, f"cannot read it: {e}") from e
        try:
            return from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise StateFileError(self.path, f"not valid JSON ({e})") from e
        except StateFormatError as e:
            raise StateFileError(self.path, f"not a valid bridge state: {e}") from e

    def _encode(self, state: BridgeState) -> bytes:
        """``json.dumps(to_dict(state))``, reusing the JSON of the tickets already encoded."""
        encoded: dict[str, tuple[Ticket, str]] = {}
        for t in state.tickets:
            cached = self._encoded.get(t.ticket_id)
            encoded[t.ticket_id] = cached if cached is not None and cached[0] is t else (
                t, json.dumps(_ticket_dict(t), separators=_COMPACT))
        self._encoded = encoded  # forgotten tickets go
        head = to_dict(replace(state, tickets=()))
        del head["tickets"]
        tickets = ",".join(text for _, text in encoded.values())
        return f'{json.dumps(head, separators=_COMPACT)[:-1]},"tickets":[{tickets}]}}'.encode()

    async def save(self, snapshot: Callable[[], BridgeState]) -> None:
        """Write ``snapshot()`` unless a write that started after this call already covered it.
        ``snapshot`` runs on the event loop (it must only copy references); encoding, writing
        and fsync run in a thread."""
        self._changes += 1
        wanted = self._changes
        async with self._lock:
            if self._saved >= wanted:
                return
            covered = self._changes
            await asyncio.to_thread(self.write, snapshot(), covered)
            self._saved = covered

    def write(self, state: BridgeState, generation: int) -> None:
        """Replace the file with ``state`` (change ``generation``), atomically and durably,
        unless a later generation is already written (a cancelled save's thread may finish after
        the next save's has started)."""
        with self._write_lock:
            if generation <= self._written:
                return
            data = self._encode(state)
            try:
                replace_durably(self.path, data)
            except OSError as e:
                raise StateFileError(self.path, f"cannot write it: {e}") from e
            self._written = generation


def replace_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it over ``path``,
    fsync the directory: after a crash, ``path`` is the old content or the new, whole."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
