"""The NFVI bridge's bounds (:class:`BridgeLimits`), checked when built: what it refuses and how
much it keeps, so that no client can grow its memory without bound."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BridgeLimits"]


@dataclass(frozen=True, slots=True)
class BridgeLimits:
    """The bridge's bounds. Watchdog timeouts outside ``[watchdog_min_s, watchdog_max_s]`` are
    refused; a repair longer than ``repair_timeout_s`` fails, and so does a service address
    move the driver does not confirm within ``address_move_timeout_s``; ``max_tickets``
    tickets, ``max_queued_events`` events per watcher, ``max_pending_maintenance`` planned
    maintenances (one per host) and the epochs of ``max_addresses`` moved addresses are
    kept."""

    watchdog_min_s: float = 0.01
    watchdog_max_s: float = 3600.0
    repair_timeout_s: float = 60.0
    max_tickets: int = 10_000
    max_queued_events: int = 1_000
    max_pending_maintenance: int = 1_000
    address_move_timeout_s: float = 10.0
    max_addresses: int = 10_000

    def __post_init__(self) -> None:
        if not 0 < self.watchdog_min_s <= self.watchdog_max_s:
            raise ValueError(f"watchdog_min_s={self.watchdog_min_s}, watchdog_max_s="
                             f"{self.watchdog_max_s}: need 0 < min <= max")
        if self.repair_timeout_s <= 0:
            raise ValueError(f"repair_timeout_s={self.repair_timeout_s}: must be > 0")
        if self.max_pending_maintenance < 1:
            raise ValueError(f"max_pending_maintenance={self.max_pending_maintenance}: must "
                             "be at least 1")
        if self.address_move_timeout_s <= 0:
            raise ValueError(f"address_move_timeout_s={self.address_move_timeout_s}: must be "
                             "> 0")
        if self.max_addresses < 1:
            raise ValueError(f"max_addresses={self.max_addresses}: must be at least 1")
