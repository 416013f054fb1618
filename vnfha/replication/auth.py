"""Who may replicate: a standby proves it knows the grant's secret before the active streams to
it, and the active proves it too. Pure: no I/O, no clock.

Each grant of the active role carries a fresh secret (32 random bytes,
:func:`vnfha.roles.keys.new_secret`) in the active key's record in etcd, which the members read
anyway. A stream starts with a challenge-response on both sides:

1. the standby's ``Hello`` carries a nonce ``ns`` (16 random bytes, new per stream);
2. the active answers ``Challenge(epoch, na, proof_a)``: its own nonce ``na`` and
   ``proof_a = HMAC(secret, "active" | group | standby | epoch | ns | na)``;
3. the standby checks ``proof_a`` (so it streams only from the holder of the grant it follows,
   not from whatever now listens at that address) and answers
   ``Proof(HMAC(secret, "standby" | group | standby | epoch | ns | na))``;
4. the active checks it, in constant time, and only then sends state or counts acks.

Guarantees: neither the secret nor a proof that works twice crosses the wire (both nonces are
fresh per stream, and each side's proof has its own label, so one side's proof is never valid as
the other's); a proof is bound to the group, the standby's name and the epoch, so a proof for one
cannot be used for another. Who can forge one: only who can read the group's active key in etcd
(``docs/security.md`` draws the threat model).
"""

from __future__ import annotations

import hashlib
import hmac
import os

__all__ = ["NONCE_BYTES", "PROOF_BYTES", "Side", "new_nonce", "proof", "verify"]

NONCE_BYTES = 16
PROOF_BYTES = 32
_LABEL = b"vnfha-replication-v1"


class Side:
    """The two labels a proof can carry."""

    ACTIVE = b"active"
    STANDBY = b"standby"


def new_nonce() -> bytes:
    """A fresh nonce for one stream."""
    return os.urandom(NONCE_BYTES)


def proof(secret: str, side: bytes, *, group: str, standby: str, epoch: int,
          standby_nonce: bytes, active_nonce: bytes) -> bytes:
    """``side``'s proof that it knows ``secret`` (hex) for this stream. An empty or non-hex
    secret gives a proof that matches nothing (it is keyed with random bytes)."""
    try:
        key = bytes.fromhex(secret)
    except ValueError:
        key = b""
    if not key:  # no secret: an unguessable key, so the proof never matches anything
        key = os.urandom(32)
    message = b"\0".join((_LABEL, side, group.encode(), standby.encode(),
                          epoch.to_bytes(8, "big"), standby_nonce, active_nonce))
    return hmac.new(key, message, hashlib.sha256).digest()


def verify(expected: bytes, got: bytes) -> bool:
    """True if ``got`` is ``expected``, compared in constant time."""
    return len(got) == PROOF_BYTES and hmac.compare_digest(expected, got)
