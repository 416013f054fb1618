"""The side effects of a role change, as data: which :class:`Move` a change is, the
:class:`Effect` each move has (:data:`TRANSITIONS`, run in table order by
:meth:`vnfha.roles.runtime.RoleRuntime.set_role`), and the component callback it starts
(:data:`CALLBACKS`). Pure: no I/O, tested as tables (``tests/component/test_role_kinds.py``)."""

from __future__ import annotations

import enum
from typing import Final

from vnfha.model import Role

__all__ = ["CALLBACKS", "TRANSITIONS", "Effect", "Move", "callback_of", "move_of"]


class Move(enum.Enum):
    """A role change, as far as its side effects go."""

    ENTER = "enter"
    """Another role -> ACTIVE."""
    RENEW = "renew"
    """ACTIVE -> ACTIVE under a new epoch."""
    LEAVE = "leave"
    """ACTIVE -> another role."""
    OTHER = "other"
    """Between roles other than ACTIVE."""


class Effect(enum.Enum):
    """One side effect of a role change, run in table order."""

    FORGET_GRANT = "forget the old epoch's grant: never active in it again"
    CLOSE_PRIMARY = "close the old epoch's Primary: its writes are refused from here on"
    OPEN_PRIMARY = "stop following; start replicating as the active of the new epoch"
    NFVI_PROMOTED = "the NFVI agent arms the watchdog for the new epoch"
    NFVI_DEMOTED = "the NFVI agent disarms the old epoch's watchdog"
    ADDRESSES_RELEASED = "the service addresses go, as the writes stop (taken again before " \
        "on_active: roles/addresses.py)"


TRANSITIONS: Final[dict[Move, tuple[Effect, ...]]] = {
    Move.ENTER: (Effect.OPEN_PRIMARY, Effect.NFVI_PROMOTED),
    Move.RENEW: (Effect.FORGET_GRANT, Effect.CLOSE_PRIMARY, Effect.OPEN_PRIMARY,
                 Effect.NFVI_PROMOTED),
    Move.LEAVE: (Effect.FORGET_GRANT, Effect.CLOSE_PRIMARY, Effect.NFVI_DEMOTED,
                 Effect.ADDRESSES_RELEASED),
    Move.OTHER: (),
}
"""The side effects of each move. CLOSE_PRIMARY is skipped while quiescing for a handover (the
last writes of ``on_quiesce`` still replicate; the resigner closes it after the release)."""

CALLBACKS: Final[dict[tuple[Role | None, Role], str]] = {
    (None, Role.ACTIVE): "on_active",
    (None, Role.STANDBY): "on_standby",
    (None, Role.SPARE): "on_standby",
    (Role.ACTIVE, Role.QUIESCED): "on_standby",  # deposed: stop serving now
}
"""The component callback a change of role starts: by (from, to), ``None`` for any role; none
for a change not listed (or an epoch change within one role)."""


def move_of(previous: Role, role: Role, same_epoch: bool) -> Move:
    """The kind of role change from ``previous`` to ``role``. Pure."""
    if role is Role.ACTIVE:
        if previous is not Role.ACTIVE:
            return Move.ENTER
        return Move.OTHER if same_epoch else Move.RENEW
    return Move.LEAVE if previous is Role.ACTIVE else Move.OTHER


def callback_of(previous: Role, role: Role) -> str | None:
    """The component callback a change from ``previous`` to ``role`` starts, if any. Pure."""
    return CALLBACKS.get((previous, role)) or CALLBACKS.get((None, role))
