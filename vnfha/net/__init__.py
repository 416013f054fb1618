"""Service addresses: IP addresses that move with a group's active role (issue 18).

The active of a group adds each of its service addresses to a device of its host and announces
it to the link (gratuitous ARP, unsolicited neighbour advertisement), and removes it when it
stops being active. This package gives the building blocks, with no external tool but
iproute2's ``ip``:

- :mod:`vnfha.net.address` (PURE): :class:`ServiceAddress` (parsed, checked, printed),
  the config check :func:`service_addresses`, the host's links as data (:class:`Link`,
  :func:`parse_links`, :func:`holds`) and the choice of a device (:func:`choose_device`);
  :class:`ServiceAddressError` and its :class:`Problem`.
- :mod:`vnfha.net.announce`: the frames (pure builders) and the raw-socket senders:
  :func:`announce` after a move, :func:`probe` for another holder before one.
- :mod:`vnfha.net.local`: the host's side: :func:`list_links`, :func:`add` (probe, then add),
  :func:`remove`, :func:`held`, :func:`renew` (of an address added with a lifetime); every
  command bounded in time, add and remove idempotent.

Taking an address needs CAP_NET_ADMIN (to add and remove it) and CAP_NET_RAW (to probe and
announce); without them every call says so in a :class:`ServiceAddressError`.
"""

from vnfha.net.address import (
    FIELD,
    Interface,
    Link,
    Problem,
    ServiceAddress,
    ServiceAddressError,
    choose_device,
    holds,
    parse_links,
    service_addresses,
)
from vnfha.net.announce import (
    ANNOUNCE_COUNT,
    ANNOUNCE_INTERVAL_S,
    announce,
    arp_probe_frame,
    claimant,
    dad_probe_frame,
    format_mac,
    garp_frame,
    icmpv6_checksum,
    parse_mac,
    probe,
    read_mac,
    solicited_node,
    unsolicited_na,
)
from vnfha.net.local import COMMAND_TIMEOUT_S, PROBE_S, add, held, list_links, remove, renew

__all__ = [
    "ANNOUNCE_COUNT",
    "ANNOUNCE_INTERVAL_S",
    "COMMAND_TIMEOUT_S",
    "FIELD",
    "Interface",
    "Link",
    "PROBE_S",
    "Problem",
    "ServiceAddress",
    "ServiceAddressError",
    "add",
    "announce",
    "arp_probe_frame",
    "choose_device",
    "claimant",
    "dad_probe_frame",
    "format_mac",
    "garp_frame",
    "held",
    "holds",
    "icmpv6_checksum",
    "list_links",
    "parse_links",
    "parse_mac",
    "probe",
    "read_mac",
    "remove",
    "renew",
    "service_addresses",
    "solicited_node",
    "unsolicited_na",
]
