"""Telling the link who holds a service address, and asking it whether someone else does: the
frames (pure builders and one pure parser) and the raw-socket senders, with no external tool.

**Announcements** move the neighbours' caches to this host's MAC after a move of the address:

- IPv4: a gratuitous ARP *request* (opcode 1), broadcast, with sender IP = target IP = the
  address and sender MAC = the device's MAC (:func:`garp_frame`). A request rather than a reply
  because that is what keepalived sends (``vrrp_arp.c``, target MAC ff:ff:ff:ff:ff:ff, as here)
  and what every stack acts on: Linux's ``arp_process`` updates an existing entry from either
  (a gratuitous one overrides the entry's lock time), and some older stacks ignore unrequested
  replies. Sent on an ``AF_PACKET``/``SOCK_RAW`` socket bound to the device.
- IPv6: an unsolicited neighbour advertisement (:func:`unsolicited_na`, RFC 4861 4.4 and 7.2.6):
  ICMPv6 type 136 with Override set and Router and Solicited clear, the address as target and
  a target link-layer address option; to ff02::1 with hop limit 255, from the address itself,
  on an ``AF_INET6``/``SOCK_RAW``/``IPPROTO_ICMPV6`` socket bound to the device. The message
  is built with a zero checksum: Linux computes the checksum of every raw ICMPv6 socket's
  packets itself (``rawv6_init_sk`` sets ``IPV6_CHECKSUM`` at offset 2 for ``IPPROTO_ICMPV6``,
  as RFC 3542 3.1 requires), which the namespace test proves (a receiver drops a bad one).
  Binding to the address needs it usable, not tentative: :mod:`vnfha.net.local` adds IPv6
  addresses with ``nodad``.

Neighbours update an entry they *have* (Linux: to the new MAC, state STALE); by default Linux
creates no new entry from either announcement (``arp_accept=0``, ``accept_untracked_na=0``),
which is harmless: a neighbour without an entry asks, and the holder answers.

**Probes** (:func:`probe`) find another host that answers for the address before this one
takes it, in a short window instead of the RFCs' seconds:

- IPv4: an RFC 5227 ARP probe (sender IP 0.0.0.0, so no cache learns anything from it); a
  holder answers with a reply.
- IPv6: a duplicate-address-detection neighbour solicitation (RFC 4862 5.4: from ::, to the
  address's solicited-node group), built whole with its checksum and sent on ``AF_PACKET``; a
  holder answers with an advertisement to ff02::1.

Any other host's ARP packet with the address as sender, ARP probe or DAD solicitation for it,
or advertisement of it counts as a claim (:func:`claimant`).

Guarantees: frames are built and parsed without I/O (tested field by field); every socket
wait is bounded by the caller's window; sockets are closed on every path; failures raise
:class:`~vnfha.net.address.ServiceAddressError` naming the address, the device and the reason
(``CAP_NET_RAW`` for a refused raw socket).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import struct
from collections.abc import Collection
from pathlib import Path
from typing import Final

from vnfha.clock import Clock, SystemClock
from vnfha.net.address import Problem, ServiceAddress, ServiceAddressError, device_problem

__all__ = [
    "ANNOUNCE_COUNT",
    "ANNOUNCE_INTERVAL_S",
    "announce",
    "arp_probe_frame",
    "claimant",
    "dad_probe_frame",
    "format_mac",
    "garp_frame",
    "icmpv6_checksum",
    "parse_mac",
    "probe",
    "read_mac",
    "solicited_node",
    "unsolicited_na",
]

ETH_P_IP: Final = 0x0800
ETH_P_ARP: Final = 0x0806
ETH_P_IPV6: Final = 0x86DD
BROADCAST_MAC: Final = b"\xff" * 6
ZERO_MAC: Final = b"\x00" * 6
ALL_NODES: Final = ipaddress.IPv6Address("ff02::1")
ARP_REQUEST: Final = 1
ARP_REPLY: Final = 2
ICMPV6_NS: Final = 135
ICMPV6_NA: Final = 136
NA_OVERRIDE: Final = 0x2000_0000
"""The O flag of a neighbour advertisement (R is 0x8000_0000, S is 0x4000_0000)."""
OPTION_TARGET_LLADDR: Final = 2
ICMP6_FILTER: Final = 1
"""Linux's ``ICMPV6_FILTER`` socket option (absent from :mod:`socket`)."""

ANNOUNCE_COUNT: Final = 3
"""Announcements per move: a few, as keepalived repeats its burst (``vrrp_garp_master_repeat``),
so that one lost frame does not leave a neighbour on the old MAC."""
ANNOUNCE_INTERVAL_S: Final = 0.2
"""Between two announcements: a lost frame is repeated within a fifth of a second."""

_ETH: Final = struct.Struct("!6s6sH")
_ARP: Final = struct.Struct("!HHBBH6s4s6s4s")
_IPV6: Final = struct.Struct("!IHBB16s16s")


# -- pure: frames --------------------------------------------------------------------------------


def parse_mac(text: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (any case) as 6 bytes; ValueError otherwise."""
    parts = text.strip().split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"{text!r} is not a MAC address such as 02:00:5e:00:01:0a")
    return bytes.fromhex("".join(parts))


def format_mac(mac: bytes) -> str:
    """6 bytes as ``aa:bb:cc:dd:ee:ff``."""
    return mac.hex(":")


def _check_mac(mac: bytes) -> None:
    if len(mac) != 6:
        raise ValueError(f"a MAC address is 6 bytes, got {len(mac)}")


def garp_frame(mac: bytes, ip: ipaddress.IPv4Address) -> bytes:
    """The gratuitous ARP announcing that ``mac`` holds ``ip``: an Ethernet broadcast from
    ``mac`` carrying an ARP request (opcode 1) whose sender and target IP are both ``ip``, with
    sender MAC ``mac`` and target MAC ff:ff:ff:ff:ff:ff (as keepalived; receivers ignore it)."""
    _check_mac(mac)
    return (_ETH.pack(BROADCAST_MAC, mac, ETH_P_ARP)
            + _ARP.pack(1, ETH_P_IP, 6, 4, ARP_REQUEST, mac, ip.packed, BROADCAST_MAC,
                        ip.packed))


def arp_probe_frame(mac: bytes, ip: ipaddress.IPv4Address) -> bytes:
    """The RFC 5227 ARP probe asking whether anyone holds ``ip``: a broadcast ARP request from
    ``mac`` with sender IP 0.0.0.0 (so no cache learns it), target MAC zero, target IP ``ip``."""
    _check_mac(mac)
    return (_ETH.pack(BROADCAST_MAC, mac, ETH_P_ARP)
            + _ARP.pack(1, ETH_P_IP, 6, 4, ARP_REQUEST, mac, bytes(4), ZERO_MAC, ip.packed))


def unsolicited_na(ip: ipaddress.IPv6Address, mac: bytes) -> bytes:
    """The ICMPv6 message (no IPv6 header) of an unsolicited neighbour advertisement that
    ``mac`` holds ``ip``: type 136, code 0, checksum 0 (the kernel fills it on a raw ICMPv6
    socket), flags Override only, target ``ip``, option 2 (target link-layer address) ``mac``.
    32 bytes; to be sent to ff02::1 with hop limit 255."""
    _check_mac(mac)
    return (struct.pack("!BBHI16s", ICMPV6_NA, 0, 0, NA_OVERRIDE, ip.packed)
            + struct.pack("!BB6s", OPTION_TARGET_LLADDR, 1, mac))


def solicited_node(ip: ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    """The solicited-node multicast group of ``ip`` (ff02::1:ffXX:XXXX, RFC 4291 2.7.1)."""
    return ipaddress.IPv6Address(b"\xff\x02" + bytes(9) + b"\x01\xff" + ip.packed[13:])


def _multicast_mac(group: ipaddress.IPv6Address) -> bytes:
    """The Ethernet address of an IPv6 multicast group: 33:33 and its last 32 bits (RFC 2464)."""
    return b"\x33\x33" + group.packed[12:]


def icmpv6_checksum(src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address,
                    message: bytes) -> int:
    """The ICMPv6 checksum of ``message`` (its checksum field zero) from ``src`` to ``dst``:
    the ones' complement sum over the IPv6 pseudo-header and the message (RFC 4443 2.3)."""
    data = src.packed + dst.packed + struct.pack("!I3xB", len(message), socket.IPPROTO_ICMPV6)
    data += message + (b"\x00" if len(message) % 2 else b"")
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def dad_probe_frame(mac: bytes, ip: ipaddress.IPv6Address) -> bytes:
    """A whole Ethernet frame carrying the duplicate-address-detection neighbour solicitation
    for ``ip`` (RFC 4862 5.4.2): from ``mac`` to the multicast MAC of ``ip``'s solicited-node
    group; IPv6 from :: to that group, hop limit 255; ICMPv6 type 135 with target ``ip``, no
    option (a solicitation from :: carries none), its checksum computed here."""
    _check_mac(mac)
    group, unspecified = solicited_node(ip), ipaddress.IPv6Address("::")
    message = struct.pack("!BBHI16s", ICMPV6_NS, 0, 0, 0, ip.packed)
    checksum = icmpv6_checksum(unspecified, group, message)
    message = message[:2] + struct.pack("!H", checksum) + message[4:]
    header = _IPV6.pack(6 << 28, len(message), socket.IPPROTO_ICMPV6, 255,
                        unspecified.packed, group.packed)
    return _ETH.pack(_multicast_mac(group), mac, ETH_P_IPV6) + header + message


def claimant(frame: bytes, ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
             own_mac: bytes) -> bytes | None:
    """The MAC of another host that ``frame`` (a whole Ethernet frame) shows claiming ``ip``,
    or None. Claims: an ARP packet with ``ip`` as sender IP, an ARP probe for ``ip``, a
    neighbour advertisement of ``ip``, a DAD solicitation for ``ip``. Frames from ``own_mac``
    (this host's own, seen on the way out), truncated ones and anything else give None."""
    if len(frame) < _ETH.size:
        return None
    _, source, ethertype = _ETH.unpack_from(frame)
    if source == own_mac:
        return None
    if ethertype == ETH_P_ARP and isinstance(ip, ipaddress.IPv4Address):
        if len(frame) < _ETH.size + _ARP.size:
            return None
        hrd, pro, hln, pln, op, sha, spa, _, tpa = _ARP.unpack_from(frame, _ETH.size)
        if (hrd, pro, hln, pln) != (1, ETH_P_IP, 6, 4) or sha == own_mac:
            return None
        probing = op == ARP_REQUEST and spa == bytes(4) and tpa == ip.packed
        return sha if spa == ip.packed or probing else None
    if ethertype == ETH_P_IPV6 and isinstance(ip, ipaddress.IPv6Address):
        start = _ETH.size + _IPV6.size
        if len(frame) < start + 24:
            return None
        _, _, next_header, _, src, _ = _IPV6.unpack_from(frame, _ETH.size)
        kind, target = frame[start], frame[start + 8:start + 24]
        if next_header != socket.IPPROTO_ICMPV6 or target != ip.packed:
            return None
        if kind == ICMPV6_NA or (kind == ICMPV6_NS and src == bytes(16)):
            return bytes(source)
    return None


# -- I/O: the senders ---------------------------------------------------------------------------


def read_mac(device: str) -> bytes:
    """``device``'s Ethernet address, from ``/sys/class/net/DEVICE/address``.
    FileNotFoundError if there is no such device, ValueError if its name is invalid or it has
    no Ethernet address (a tunnel, loopback)."""
    problem = device_problem(device)
    if problem is not None:
        raise ValueError(f"{device!r}: {problem}")
    text = (Path("/sys/class/net") / device / "address").read_text()
    try:
        mac = parse_mac(text)
    except ValueError:
        raise ValueError(f"device {device} has no Ethernet address ({text.strip()!r})") from None
    if mac == ZERO_MAC:
        raise ValueError(f"device {device} has no Ethernet address (00:00:00:00:00:00)")
    return mac


def _failure(address: ServiceAddress, device: str, action: str,
             error: OSError | ValueError) -> ServiceAddressError:
    """``error`` from ``action`` on ``device`` as a ServiceAddressError with its problem."""
    code = getattr(error, "errno", None)
    if code in (errno.EPERM, errno.EACCES):
        return ServiceAddressError(str(address), device, Problem.NO_PERMISSION,
                                   f"{action} needs CAP_NET_RAW (taking a service address "
                                   "needs CAP_NET_ADMIN and CAP_NET_RAW)")
    if code in (errno.ENODEV, errno.ENXIO, errno.ENOENT):
        return ServiceAddressError(str(address), device, Problem.NO_DEVICE,
                                   f"{action}: no device {device} on this host")
    if code == errno.ENETDOWN:
        return ServiceAddressError(str(address), device, Problem.FAILED,
                                   f"{action}: device {device} is down")
    if code == errno.EADDRNOTAVAIL:
        return ServiceAddressError(str(address), device, Problem.FAILED,
                                   f"{action}: the address is not usable on this host (not "
                                   "added, or still tentative: IPv6 needs it added with nodad)")
    words = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return ServiceAddressError(str(address), device, Problem.FAILED, f"{action}: {words}")


def _mac(address: ServiceAddress, device: str, action: str) -> bytes:
    try:
        return read_mac(device)
    except (OSError, ValueError) as e:
        raise _failure(address, device, action, e) from e


def _na_socket(address: ServiceAddress, device: str) -> tuple[socket.socket, int]:
    """A raw ICMPv6 socket bound to ``device`` and to the address, sending multicast with hop
    limit 255 out of ``device``, receiving nothing; and the device's index."""
    index = socket.if_nametoindex(device)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, b"\xff" * 32)  # block every type
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.bind((str(address.ip), 0, 0, index))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock, index


def _packet_socket(device: str, protocol: int) -> socket.socket:
    """A non-blocking AF_PACKET raw socket on ``device`` that receives ``protocol`` frames
    (0: none). Created with protocol 0 so that nothing from another device is queued before
    the bind."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((device, protocol))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def announce(device: str, address: ServiceAddress, *, count: int = ANNOUNCE_COUNT,
                   interval_s: float = ANNOUNCE_INTERVAL_S, clock: Clock | None = None) -> int:
    """Announce that this host holds ``address`` on ``device``: ``count`` gratuitous ARPs
    (IPv4) or unsolicited neighbour advertisements (IPv6), the first at once, then one every
    ``interval_s`` on ``clock``. Returns how many were sent; a frame the device's queue refused
    (EAGAIN) is skipped, and ServiceAddressError (:attr:`~Problem.FAILED`) is raised if none
    could be sent. For IPv6 the address must already be on the device and not tentative.

    Needs CAP_NET_RAW (:attr:`~Problem.NO_PERMISSION` otherwise). Takes about
    ``(count - 1) * interval_s``: a caller that must not wait runs it as a task once the first
    frame is out (or calls it with ``count=1`` and then again)."""
    if count < 1 or interval_s < 0:
        raise ValueError(f"count={count}, interval_s={interval_s}: need count >= 1 and "
                         "interval_s >= 0")
    clock = clock or SystemClock()
    action = "sending gratuitous ARP" if address.version == 4 else "sending neighbour adverts"
    mac = _mac(address, device, action)
    target: tuple[str, int, int, int] | None = None
    try:
        if isinstance(address.ip, ipaddress.IPv4Address):
            sock, frame = _packet_socket(device, 0), garp_frame(mac, address.ip)
        else:
            sock, index = _na_socket(address, device)
            frame, target = unsolicited_na(address.ip, mac), (str(ALL_NODES), 0, 0, index)
    except OSError as e:
        raise _failure(address, device, action, e) from e
    sent = 0
    with sock:
        for i in range(count):
            if i:
                await clock.sleep(interval_s)
            try:
                if target is None:
                    sock.send(frame)
                else:
                    sock.sendto(frame, target)
                sent += 1
            except BlockingIOError:
                continue
            except OSError as e:
                raise _failure(address, device, action, e) from e
    if not sent:
        raise ServiceAddressError(str(address), device, Problem.FAILED,
                                  f"{action}: the device's queue refused all {count} frames")
    return sent


async def probe(device: str, address: ServiceAddress, *, wait_s: float, probes: int = 2,
                tolerate: Collection[bytes] = (), clock: Clock | None = None) -> bytes | None:
    """Ask the link whether another host holds ``address``: send ``probes`` ARP probes (IPv4)
    or DAD solicitations (IPv6) on ``device``, spread over ``wait_s`` seconds of ``clock``,
    and listen until ``wait_s`` has passed. Returns the MAC of the first other host that claims
    the address (:func:`claimant`) and is not in ``tolerate`` (e.g. the group's members, whose
    kernels still answer for an address a frozen active could not remove), else None.

    Bounded: returns within ``wait_s`` (plus scheduling). Needs CAP_NET_RAW
    (:class:`ServiceAddressError`, :attr:`~Problem.NO_PERMISSION` otherwise). A host that does
    not answer within the window is not seen: the window trades failover time for coverage."""
    if wait_s <= 0 or probes < 1:
        raise ValueError(f"wait_s={wait_s}, probes={probes}: need wait_s > 0 and probes >= 1")
    clock = clock or SystemClock()
    v4 = isinstance(address.ip, ipaddress.IPv4Address)
    action = "sending an ARP probe" if v4 else "sending a DAD solicitation"
    mac = _mac(address, device, action)
    frame = (arp_probe_frame(mac, address.ip) if isinstance(address.ip, ipaddress.IPv4Address)
             else dad_probe_frame(mac, address.ip))
    try:
        sock = _packet_socket(device, ETH_P_ARP if v4 else ETH_P_IPV6)
    except OSError as e:
        raise _failure(address, device, action, e) from e
    loop = asyncio.get_running_loop()
    start = clock.monotonic()
    deadline = start + wait_s
    send_times = [start + i * wait_s / probes for i in range(probes)]
    with sock:
        while True:
            now = clock.monotonic()
            while send_times and send_times[0] <= now:
                send_times.pop(0)
                try:
                    sock.send(frame)
                except BlockingIOError:
                    pass
                except OSError as e:
                    raise _failure(address, device, action, e) from e
            if now >= deadline:
                return None
            wake = min([deadline, *send_times[:1]])
            try:
                received = await clock.wait_for(loop.sock_recv(sock, 128), wake - now)
            except TimeoutError:
                continue
            holder = claimant(received, address.ip, mac)
            if holder is not None and holder not in tolerate:
                return holder
