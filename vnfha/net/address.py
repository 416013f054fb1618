"""PURE: service addresses as values: their text form, their checks, the choice of the device
that carries one, and the host's links as read from ``ip -j addr show``.

A service address is an interface address (an IP address with the prefix of its subnet) that
the active of a group holds on one of its host's devices and that moves with the active role.
Its text form is ``ADDRESS/PREFIX`` with an optional ``@DEVICE``: ``198.51.100.10/24``,
``fd00:5a::10/64``, ``198.51.100.10/24@eth1``.

Guarantees:

- **Parsing is total and strict.** :meth:`ServiceAddress.parse` returns a valid
  :class:`ServiceAddress` or raises :class:`~vnfha.ConfigError` naming the field and the text
  given. The prefix is required and is a number of bits (no netmask, no zone index). Refused:
  a /0; unspecified, loopback, multicast and link-local addresses (IPv4 169.254.0.0/16, IPv6
  fe80::/10); IPv4 reserved (240.0.0.0/4, 255.255.255.255) and IPv4-mapped IPv6 addresses;
  the network and broadcast addresses of an IPv4 prefix shorter than /31 (a /31 or /32 has
  neither, RFC 3021); the Subnet-Router anycast address (host bits zero) of an IPv6 prefix
  shorter than /127 (RFC 4291 2.6.1; RFC 6164 for /127); and a device name the Linux kernel
  would refuse (empty, over 15 bytes, ``.`` or ``..``, ``/``, ``:``, ``@``, whitespace,
  anything but printable ASCII).
- **One spelling.** ``str(address)`` is the canonical text (compressed IPv6, lower case), and
  ``ServiceAddress.parse(str(a)) == a`` for every valid ``a`` (tested with hypothesis). Equal
  values have equal text.
- **The device is chosen by a rule, never guessed** (:func:`choose_device`): the named device if
  there is one, else the only device with an address of its own in the same subnet; none or
  several is an error that lists the candidates.

Nothing here touches the host; :mod:`vnfha.net.local` and :mod:`vnfha.net.announce` do.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from vnfha.errors import ConfigError, VnfhaError

__all__ = [
    "FIELD",
    "Interface",
    "Link",
    "Problem",
    "ServiceAddress",
    "ServiceAddressError",
    "choose_device",
    "device_problem",
    "holds",
    "parse_links",
    "service_addresses",
]

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
"""An address with its prefix, as a device carries it."""

FIELD: Final = "service_addresses"
"""The config field service addresses come from, named in parse errors by default."""

IFNAMSIZ: Final = 16
"""Linux's buffer for a device name, the terminating NUL included: at most 15 bytes."""

_PREFIX_RE: Final = re.compile(r"[0-9]{1,3}")
_LINK_LOCAL_V4: Final = ipaddress.IPv4Network("169.254.0.0/16")


class Problem(enum.Enum):
    """Why a service address could not be taken, announced or given up. The values are stable
    (log and metric label vocabulary)."""

    NO_PERMISSION = "no-permission"
    """The process lacks CAP_NET_ADMIN (changing addresses) or CAP_NET_RAW (probes and
    announcements on raw sockets)."""
    NO_DEVICE = "no-device"
    """The named device does not exist, or no device has an address in the subnet."""
    AMBIGUOUS_DEVICE = "ambiguous-device"
    """Several devices have an address in the subnet: the address must name one."""
    IN_USE = "in-use"
    """Another host (not a tolerated member) answered for the address."""
    TIMEOUT = "timeout"
    """A command or socket wait did not finish within its deadline."""
    FAILED = "failed"
    """Anything else: a command or a socket call failed; the reason carries its words."""


class ServiceAddressError(VnfhaError):
    """Taking, announcing or giving up service address ``address`` (its text form) on
    ``device`` (None: before a device was chosen) failed; ``problem`` says which way, ``reason``
    says why in words, ``holder`` is the MAC (``aa:bb:...``) of the host that answered for the
    address when ``problem`` is :attr:`Problem.IN_USE`.

    A member that gets this error while taking its addresses must not become active."""

    def __init__(self, address: str, device: str | None, problem: Problem, reason: str, *,
                 holder: str | None = None) -> None:
        self.address = address
        self.device = device
        self.problem = problem
        self.reason = reason
        self.holder = holder
        where = f" on {device}" if device else ""
        super().__init__(f"service address {address}{where}: {reason}")


def device_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a Linux device name (the kernel's ``dev_valid_name``, plus
    ``@``, which separates it from the address, and non-printable or non-ASCII bytes), or None
    if it is valid."""
    if not name:
        return "the device name is empty"
    if len(name.encode()) >= IFNAMSIZ:
        return f"the device name is longer than {IFNAMSIZ - 1} bytes"
    if name in (".", ".."):
        return f"{name!r} is not a device name"
    bad = sorted({c for c in name if c in "/:@" or c.isspace() or not c.isprintable()
                  or not c.isascii()})
    if bad:
        return f"the device name contains {', '.join(repr(c) for c in bad)}"
    return None


def _address_problem(interface: Interface) -> str | None:
    """What makes ``interface`` unfit as a service address (see the module docstring), or
    None."""
    ip, network = interface.ip, interface.network
    if interface.network.prefixlen == 0:
        return "a /0 prefix covers every address: give the prefix of the subnet"
    kinds = [(ip.is_unspecified, "the unspecified address"), (ip.is_loopback, "a loopback address"),
             (ip.is_multicast, "a multicast address")]
    if isinstance(ip, ipaddress.IPv4Address):
        kinds += [(ip in _LINK_LOCAL_V4, "a link-local address (169.254.0.0/16)"),
                  (ip.is_reserved, "a reserved address (240.0.0.0/4)")]
    else:
        kinds += [(ip.is_link_local, "a link-local address (fe80::/10)"),
                  (ip.ipv4_mapped is not None, "an IPv4-mapped address: write the IPv4 address")]
    for found, kind in kinds:
        if found:
            return f"{kind} cannot be a service address"
    if isinstance(ip, ipaddress.IPv4Address) and network.prefixlen < 31:
        if ip == network.network_address:
            return f"is the network address of {network}: give a host address"
        if ip == network.broadcast_address:
            return f"is the broadcast address of {network}: give a host address"
    if isinstance(ip, ipaddress.IPv6Address) and network.prefixlen < 127 \
            and ip == network.network_address:
        return (f"is the Subnet-Router anycast address of {network} (RFC 4291 2.6.1): give "
                "a host address")
    return None


@dataclass(frozen=True)
class ServiceAddress:
    """One service address: ``interface`` (the address and the prefix of its subnet) and the
    ``device`` that must carry it (None: chosen by :func:`choose_device`).

    Construction checks the value (ConfigError on the field :data:`FIELD`), so every instance
    is valid; ``str()`` gives the canonical text form, which :meth:`parse` reads back."""

    interface: Interface
    device: str | None = None

    def __post_init__(self) -> None:
        problem = _address_problem(self.interface)
        if problem is None and self.device is not None:
            problem = device_problem(self.device)
        if problem is not None:
            raise ConfigError(FIELD, str(self), problem)

    @classmethod
    def parse(cls, text: object, *, field: str = FIELD) -> ServiceAddress:
        """The service address written as ``text`` (``198.51.100.10/24``,
        ``fd00:5a::10/64``, ``198.51.100.10/24@eth1``); ConfigError naming ``field`` and
        ``text`` if it is not one (see the module docstring for what is refused)."""
        if isinstance(text, ServiceAddress):
            return text
        if not isinstance(text, str):
            raise ConfigError(field, text, f"expected a string such as '198.51.100.10/24', "
                                           f"got {type(text).__name__}")
        address, at, device = text.partition("@")
        problem = device_problem(device) if at else None
        host, slash, prefix = address.partition("/")
        if problem is not None:
            raise ConfigError(field, text, problem)
        if not slash:
            raise ConfigError(field, text, "needs a prefix length, as 198.51.100.10/24 or "
                                           "fd00:5a::10/64: the prefix gives the subnet (and "
                                           "so the device)")
        if not _PREFIX_RE.fullmatch(prefix):
            raise ConfigError(field, text, f"the prefix {prefix!r} must be a number of bits "
                                           "(a netmask is not accepted)")
        if "%" in host:
            raise ConfigError(field, text, "a zone index (%...) is not accepted")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(field, text, f"{host!r} is not an IPv4 or IPv6 address") from None
        if int(prefix) > ip.max_prefixlen:
            raise ConfigError(field, text, f"the prefix /{prefix} is longer than "
                                           f"{ip.max_prefixlen} bits")
        interface = ipaddress.ip_interface(f"{ip}/{int(prefix)}")
        problem = _address_problem(interface)
        if problem is not None:
            raise ConfigError(field, text, problem)
        return cls(interface, device or None)

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The address itself, without its prefix."""
        return self.interface.ip

    @property
    def version(self) -> int:
        """4 or 6."""
        return self.interface.version

    @property
    def cidr(self) -> str:
        """``ADDRESS/PREFIX``, as ``ip addr`` takes it (no device)."""
        return f"{self.interface.ip}/{self.interface.network.prefixlen}"

    def __str__(self) -> str:
        """The canonical text form: ``ADDRESS/PREFIX`` or ``ADDRESS/PREFIX@DEVICE``."""
        return self.cidr if self.device is None else f"{self.cidr}@{self.device}"


def service_addresses(name: str, value: object) -> tuple[ServiceAddress, ...]:
    """The check of a ``service_addresses`` config value: a list or tuple of text forms (or
    :class:`ServiceAddress` values), or one comma-separated string (as an environment variable
    gives it); empty is allowed (no service addresses). ConfigError naming ``name`` if an item
    is not a service address, or if an address is listed twice (with any prefix or device)."""
    items = value
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")] if value.strip() else []
    if not isinstance(items, list | tuple):
        raise ConfigError(name, value, f"expected a list of addresses with prefix, as "
                                       f"['198.51.100.10/24'], got {type(value).__name__}")
    parsed = tuple(ServiceAddress.parse(item, field=name) for item in items)
    seen: dict[object, ServiceAddress] = {}
    for address in parsed:
        if address.ip in seen:
            raise ConfigError(name, tuple(str(a) for a in parsed),
                              f"{address.ip} is listed twice ({seen[address.ip]} and {address})")
        seen[address.ip] = address
    return parsed


# -- the host's links --------------------------------------------------------------------------


class Link(NamedTuple):
    """One device of the host and the addresses it carries (as ``ip addr`` lists them)."""

    device: str
    addresses: tuple[Interface, ...]


def _not_a_listing(problem: str) -> ValueError:
    """The error of :func:`parse_links` for well-formed JSON that is not ``ip``'s listing
    (a ValueError, as for bad JSON: the text is what is wrong, not a type in the program)."""
    return ValueError(problem)


def parse_links(ip_json: str) -> list[Link]:
    """The links in the output of ``ip -j addr show`` (iproute2's JSON), in its order. Address
    entries without ``local`` or ``prefixlen`` are skipped; ValueError if the text is not such
    a listing at all."""
    try:
        listing = json.loads(ip_json)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(listing, list):
        raise _not_a_listing(f"expected a JSON list of links, got {type(listing).__name__}")
    links = []
    for entry in listing:
        if not isinstance(entry, dict) or not isinstance(entry.get("ifname"), str):
            raise _not_a_listing(f"a link without a name: {entry!r:.200}")
        found: list[Interface] = []
        for info in entry.get("addr_info") or ():
            if not isinstance(info, dict):
                continue
            local, prefixlen = info.get("local"), info.get("prefixlen")
            if not isinstance(local, str) or not isinstance(prefixlen, int):
                continue
            try:
                found.append(ipaddress.ip_interface(f"{local.partition('%')[0]}/{prefixlen}"))
            except ValueError:
                continue
        links.append(Link(entry["ifname"], tuple(found)))
    return links


def holds(links: Iterable[Link], address: ServiceAddress, device: str) -> bool:
    """Whether ``device`` carries ``address`` with its prefix (another prefix is another
    interface address, which is not ours to remove)."""
    return any(link.device == device and address.interface in link.addresses for link in links)


def _same_subnet(own: Interface, address: ServiceAddress) -> bool:
    """Whether a device's own address ``own`` is in the subnet of ``address`` (or, for a
    service address with a longer prefix such as a /32, ``address`` is in ``own``'s)."""
    if own.version != address.version or own.ip == address.ip:
        return False
    return own.ip in address.interface.network or address.ip in own.network


def _describe(links: Sequence[tuple[str, Sequence[Interface]]]) -> str:
    shown = [f"{device} ({' '.join(str(a) for a in addresses) or 'no address'})"
             for device, addresses in links]
    return "; ".join(shown) or "none"


def choose_device(address: ServiceAddress,
                  links: Sequence[tuple[str, Sequence[Interface]]]) -> str:
    """The device that is to carry ``address``, from ``links`` (each a device and its own
    interface addresses, as :func:`parse_links` gives them):

    - ``address.device`` if it names one; :attr:`Problem.NO_DEVICE` if no link has that name;
    - else the one device with an address of its own in the same subnet as ``address`` (the
      service address itself does not count); :attr:`Problem.NO_DEVICE` if there is none and
      :attr:`Problem.AMBIGUOUS_DEVICE` if there are several.

    Errors are :class:`ServiceAddressError` naming the address and listing the devices."""
    names = [device for device, _ in links]
    if address.device is not None:
        if address.device in names:
            return address.device
        raise ServiceAddressError(str(address), address.device, Problem.NO_DEVICE,
                                  f"no device {address.device} on this host (devices: "
                                  f"{_describe(links)})")
    matches = [device for device, own in links if any(_same_subnet(a, address) for a in own)]
    if len(matches) == 1:
        return matches[0]
    subnet = address.interface.network
    if not matches:
        raise ServiceAddressError(str(address), None, Problem.NO_DEVICE,
                                  f"no device has an address of its own in {subnet} (devices: "
                                  f"{_describe(links)}); name one, as {address.cidr}@DEVICE")
    raise ServiceAddressError(str(address), None, Problem.AMBIGUOUS_DEVICE,
                              f"devices {', '.join(matches)} all have addresses in {subnet}; "
                              f"name one, as {address.cidr}@{matches[0]}")
