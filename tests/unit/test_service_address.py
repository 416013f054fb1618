"""Service addresses as values (``vnfha.net``): parsing and its refusals, the config check, the
choice of a device, ``ip -j addr show`` as data, and the frames of the announcements and probes
checked field by field (read back with ``struct``). No sockets: the frames on real links are
``tests/integration/test_service_address_netns.py``."""

from __future__ import annotations

import ipaddress
import json
import string
import struct

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import vnfha.net
from vnfha import ConfigError, VnfhaError
from vnfha.net import (
    FIELD,
    Link,
    Problem,
    ServiceAddress,
    ServiceAddressError,
    arp_probe_frame,
    choose_device,
    claimant,
    dad_probe_frame,
    format_mac,
    garp_frame,
    holds,
    icmpv6_checksum,
    parse_links,
    parse_mac,
    service_addresses,
    solicited_node,
    unsolicited_na,
)

MAC = bytes.fromhex("02005e00010a")
OTHER = bytes.fromhex("02005e0001ff")
V4 = ipaddress.IPv4Address("198.51.100.10")
V6 = ipaddress.IPv6Address("fd00:5a::10")
ETH = struct.Struct("!6s6sH")
ARP = struct.Struct("!HHBBH6s4s6s4s")
IPV6 = struct.Struct("!IHBB16s16s")


def test_the_public_names_are_sorted_and_resolve() -> None:
    assert list(vnfha.net.__all__) == sorted(vnfha.net.__all__)
    for name in vnfha.net.__all__:
        assert hasattr(vnfha.net, name), name


# -- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "canonical", "device"), [
    ("198.51.100.10/24", "198.51.100.10/24", None),
    ("fd00:5a::10/64", "fd00:5a::10/64", None),
    ("198.51.100.10/24@eth1", "198.51.100.10/24@eth1", "eth1"),
    ("FD00:5A:0:0::10/64@bond0.100", "fd00:5a::10/64@bond0.100", "bond0.100"),
    ("198.51.100.10/32", "198.51.100.10/32", None),
    ("198.51.100.0/31", "198.51.100.0/31", None),
    ("198.51.100.1/31", "198.51.100.1/31", None),
    ("fd00:5a::/127", "fd00:5a::/127", None),
    ("2001:db8::1/128", "2001:db8::1/128", None),
    ("198.51.100.10/24@abcdefghijklmno", "198.51.100.10/24@abcdefghijklmno", "abcdefghijklmno"),
])
def test_good_addresses_parse_to_their_canonical_text(text: str, canonical: str,
                                                      device: str | None) -> None:
    address = ServiceAddress.parse(text)
    assert str(address) == canonical
    assert address.device == device
    assert address.cidr == canonical.partition("@")[0]
    assert address.version == (6 if ":" in text else 4)
    assert ServiceAddress.parse(address) is address


@pytest.mark.parametrize(("text", "problem"), [
    ("198.51.100.10", "needs a prefix length"),
    ("fd00:5a::10", "needs a prefix length"),
    ("198.51.100.300/24", "is not an IPv4 or IPv6 address"),
    ("host.example/24", "is not an IPv4 or IPv6 address"),
    ("198.51.100.10/33", "longer than 32 bits"),
    ("fd00:5a::10/129", "longer than 128 bits"),
    ("198.51.100.10/255.255.255.0", "must be a number of bits"),
    ("198.51.100.10/", "must be a number of bits"),
    ("198.51.100.10/0", "a /0 prefix"),
    ("198.51.100.0/24", "network address of 198.51.100.0/24"),
    ("198.51.100.255/24", "broadcast address of 198.51.100.0/24"),
    ("fd00:5a::/64", "Subnet-Router anycast"),
    ("127.0.0.2/8", "loopback"),
    ("::1/128", "loopback"),
    ("224.0.0.18/24", "multicast"),
    ("ff02::12/64", "multicast"),
    ("0.0.0.0/8", "unspecified"),
    ("::/64", "unspecified"),
    ("169.254.7.7/16", "link-local"),
    ("fe80::10/64", "link-local"),
    ("fe80::10%eth0/64", "zone index"),
    ("240.0.0.7/8", "reserved"),
    ("255.255.255.255/32", "reserved"),
    ("::ffff:198.51.100.10/120", "IPv4-mapped"),
    ("198.51.100.10/24@", "device name is empty"),
    ("198.51.100.10/24@abcdefghijklmnop", "longer than 15 bytes"),
    ("198.51.100.10/24@eth 1", "contains ' '"),
    ("198.51.100.10/24@eth/1", "contains '/'"),
    ("198.51.100.10/24@eth0:1", "contains ':'"),
    ("198.51.100.10/24@eth0@x", "contains '@'"),
    ("198.51.100.10/24@..", "not a device name"),
    ("198.51.100.10/24@eth\u00e9", "contains"),
])
def test_bad_addresses_are_refused_naming_the_field_and_the_value(text: str,
                                                                  problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ServiceAddress.parse(text, field="service_addresses[0]")
    assert caught.value.field == "service_addresses[0]"
    assert caught.value.value == text
    assert problem in caught.value.problem
    assert repr(text) in str(caught.value)


def test_a_value_that_is_not_text_is_refused() -> None:
    with pytest.raises(ConfigError, match="expected a string") as caught:
        ServiceAddress.parse(42)
    assert caught.value.field == FIELD


def test_construction_checks_like_parsing() -> None:
    with pytest.raises(ConfigError, match="broadcast"):
        ServiceAddress(ipaddress.ip_interface("198.51.100.255/24"))
    with pytest.raises(ConfigError, match="device name"):
        ServiceAddress(ipaddress.ip_interface("198.51.100.10/24"), "a/b")


def test_the_config_check_takes_lists_and_comma_separated_text() -> None:
    expected = (ServiceAddress.parse("198.51.100.10/24"), ServiceAddress.parse("fd00:5a::10/64"))
    assert service_addresses("s", ["198.51.100.10/24", "fd00:5a::10/64"]) == expected
    assert service_addresses("s", "198.51.100.10/24, fd00:5a::10/64") == expected
    assert service_addresses("s", expected) == expected
    assert service_addresses("s", "") == ()
    assert service_addresses("s", []) == ()


@pytest.mark.parametrize(("value", "problem"), [
    (42, "expected a list"),
    (["198.51.100.10/24", "198.51.100.10/25@eth1"], "198.51.100.10 is listed twice"),
    (["198.51.100.10/24", "198.51.100.11"], "needs a prefix length"),
])
def test_the_config_check_refuses_naming_the_field(value: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        service_addresses("service_addresses", value)
    assert caught.value.field == "service_addresses"


DEVICES = st.one_of(st.none(), st.text(string.ascii_letters + string.digits + "._-",
                                       min_size=1, max_size=15))


@st.composite
def addresses(draw: st.DrawFn) -> ServiceAddress:
    ip = draw(st.ip_addresses())
    prefix = draw(st.integers(1, ip.max_prefixlen))
    try:
        return ServiceAddress(ipaddress.ip_interface(f"{ip}/{prefix}"), draw(DEVICES))
    except ConfigError:
        assume(False)
        raise


@given(addresses())
def test_the_text_form_reads_back_as_the_same_address(address: ServiceAddress) -> None:
    again = ServiceAddress.parse(str(address))
    assert again == address
    assert str(again) == str(address)


@given(st.text(max_size=60))
def test_parsing_any_text_gives_an_address_or_a_config_error(text: str) -> None:
    try:
        address = ServiceAddress.parse(text)
    except ConfigError as e:
        assert e.value == text
    else:
        assert ServiceAddress.parse(str(address)) == address


# -- the host's links and the choice of a device -------------------------------------------------


def iface(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(text)


LINKS = [
    Link("lo", (iface("127.0.0.1/8"), iface("::1/128"))),
    Link("eth0", (iface("192.0.2.2/24"), iface("fd00::2/64"), iface("fe80::1/64"))),
    Link("eth1", (iface("198.51.100.2/24"), iface("fd00:5a::2/64"))),
    Link("eth2", ()),
]


@pytest.mark.parametrize(("text", "device"), [
    ("198.51.100.10/24", "eth1"),
    ("fd00:5a::10/64", "eth1"),
    ("192.0.2.50/24", "eth0"),
    ("fd00::50/64", "eth0"),
    ("198.51.100.10/32", "eth1"),
    ("198.51.100.10/16", "eth1"),
    ("198.51.100.10/24@eth2", "eth2"),
    ("203.0.113.10/24@eth0", "eth0"),
])
def test_the_device_is_the_named_one_or_the_one_in_the_subnet(text: str, device: str) -> None:
    assert choose_device(ServiceAddress.parse(text), LINKS) == device


def test_no_device_in_the_subnet_is_an_error_listing_the_devices() -> None:
    with pytest.raises(ServiceAddressError) as caught:
        choose_device(ServiceAddress.parse("203.0.113.10/24"), LINKS)
    error = caught.value
    assert (error.problem, error.address, error.device) == (Problem.NO_DEVICE,
                                                            "203.0.113.10/24", None)
    assert "203.0.113.0/24" in str(error)
    assert "eth0 (192.0.2.2/24 fd00::2/64 fe80::1/64)" in str(error)
    assert "eth2 (no address)" in str(error)
    assert "203.0.113.10/24@DEVICE" in str(error)
    assert isinstance(error, VnfhaError)


def test_a_named_device_that_is_not_there_is_an_error() -> None:
    with pytest.raises(ServiceAddressError, match="no device eth9 on this host") as caught:
        choose_device(ServiceAddress.parse("198.51.100.10/24@eth9"), LINKS)
    assert (caught.value.problem, caught.value.device) == (Problem.NO_DEVICE, "eth9")


def test_several_devices_in_the_subnet_are_an_error_naming_them() -> None:
    links = [*LINKS, Link("eth3", (iface("198.51.100.3/25"),))]
    with pytest.raises(ServiceAddressError, match="eth1, eth3") as caught:
        choose_device(ServiceAddress.parse("198.51.100.10/24"), links)
    assert caught.value.problem is Problem.AMBIGUOUS_DEVICE
    assert "198.51.100.10/24@eth1" in str(caught.value)


def test_the_service_address_itself_does_not_choose_its_device() -> None:
    links = [Link("eth0", (iface("192.0.2.2/24"),)), Link("eth5", (iface("203.0.113.10/24"),))]
    with pytest.raises(ServiceAddressError, match="no device has an address"):
        choose_device(ServiceAddress.parse("203.0.113.10/24"), links)


IP_JSON = json.dumps([
    {"ifindex": 1, "ifname": "lo", "addr_info": [
        {"family": "inet", "local": "127.0.0.1", "prefixlen": 8},
        {"family": "inet6", "local": "::1", "prefixlen": 128}]},
    {"ifindex": 4, "ifname": "eth0", "address": "02:fc:00:00:00:01", "addr_info": [
        {"family": "inet", "local": "198.51.100.2", "prefixlen": 24, "broadcast": "x"},
        {"family": "inet", "local": "198.51.100.10", "prefixlen": 24, "secondary": True},
        {"family": "inet6", "local": "fd00:5a::2", "prefixlen": 64, "nodad": True},
        {"family": "inet6", "local": "fe80::fc:ff:fe00:1", "prefixlen": 64},
        {"family": "inet6", "prefixlen": 64},
        {"family": "inet", "local": "not-an-address", "prefixlen": 24}]},
    {"ifindex": 5, "ifname": "tun0"},
])


def test_ip_json_is_read_as_links() -> None:
    assert parse_links(IP_JSON) == [
        Link("lo", (iface("127.0.0.1/8"), iface("::1/128"))),
        Link("eth0", (iface("198.51.100.2/24"), iface("198.51.100.10/24"),
                      iface("fd00:5a::2/64"), iface("fe80::fc:ff:fe00:1/64"))),
        Link("tun0", ()),
    ]


@pytest.mark.parametrize("text", ["", "{}", "[1]", '[{"addr_info": []}]', "not json"])
def test_what_is_not_an_ip_listing_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_links(text)


def test_holding_means_the_device_has_the_address_with_its_prefix() -> None:
    links = parse_links(IP_JSON)
    assert holds(links, ServiceAddress.parse("198.51.100.10/24"), "eth0")
    assert not holds(links, ServiceAddress.parse("198.51.100.10/25"), "eth0")
    assert not holds(links, ServiceAddress.parse("198.51.100.10/24"), "lo")
    assert not holds(links, ServiceAddress.parse("198.51.100.11/24"), "eth0")


def test_the_error_carries_its_fields() -> None:
    error = ServiceAddressError("198.51.100.10/24", "eth0", Problem.IN_USE, "in use by x",
                                holder="02:00:5e:00:01:ff")
    assert str(error) == "service address 198.51.100.10/24 on eth0: in use by x"
    assert (error.problem.value, error.holder, error.reason) == ("in-use", "02:00:5e:00:01:ff",
                                                                 "in use by x")


# -- frames --------------------------------------------------------------------------------------


def test_macs_read_and_print() -> None:
    assert parse_mac("02:00:5E:00:01:0a") == MAC
    assert format_mac(MAC) == "02:00:5e:00:01:0a"
    for bad in ("02:00:5e:00:01", "0200.5e00.010a", "02:00:5e:00:01:0g"):
        with pytest.raises(ValueError):
            parse_mac(bad)


def test_the_gratuitous_arp_is_a_broadcast_request_for_the_address_itself() -> None:
    frame = garp_frame(MAC, V4)
    assert len(frame) == 42
    dst, src, ethertype = ETH.unpack_from(frame)
    assert (dst, src, ethertype) == (b"\xff" * 6, MAC, 0x0806)
    hrd, pro, hln, pln, op, sha, spa, tha, tpa = ARP.unpack_from(frame, ETH.size)
    assert (hrd, pro, hln, pln) == (1, 0x0800, 6, 4)
    assert op == 1, "a request, as keepalived sends"
    assert (sha, spa, tpa) == (MAC, V4.packed, V4.packed)
    assert tha == b"\xff" * 6


def test_the_arp_probe_has_no_sender_address() -> None:
    frame = arp_probe_frame(MAC, V4)
    assert ETH.unpack_from(frame) == (b"\xff" * 6, MAC, 0x0806)
    assert ARP.unpack_from(frame, ETH.size) == (1, 0x0800, 6, 4, 1, MAC, bytes(4), bytes(6),
                                                V4.packed)


def test_the_unsolicited_advertisement_overrides_and_carries_the_mac() -> None:
    message = unsolicited_na(V6, MAC)
    assert len(message) == 32
    kind, code, checksum, flags, target = struct.unpack_from("!BBHI16s", message)
    assert (kind, code, checksum) == (136, 0, 0), "the kernel fills the checksum"
    assert flags == 0x2000_0000, "Override set; Router, Solicited and the reserved bits clear"
    assert target == V6.packed
    assert struct.unpack_from("!BB6s", message, 24) == (2, 1, MAC)


def test_the_dad_probe_is_a_solicitation_from_nowhere_to_the_solicited_node_group() -> None:
    address = ipaddress.IPv6Address("fd00:5a::12:3456")
    group = solicited_node(address)
    assert group == ipaddress.IPv6Address("ff02::1:ff12:3456")
    frame = dad_probe_frame(MAC, address)
    dst, src, ethertype = ETH.unpack_from(frame)
    assert (dst, src, ethertype) == (bytes.fromhex("3333ff123456"), MAC, 0x86DD)
    first, length, next_header, hops, source, destination = IPV6.unpack_from(frame, ETH.size)
    assert (first >> 28, first & 0x0FFF_FFFF) == (6, 0)
    assert (length, next_header, hops) == (24, 58, 255)
    assert (source, destination) == (bytes(16), group.packed)
    message = frame[ETH.size + IPV6.size:]
    assert len(message) == length
    kind, code, _, reserved, target = struct.unpack("!BBHI16s", message)
    assert (kind, code, reserved, target) == (135, 0, 0, address.packed)
    unspecified = ipaddress.IPv6Address("::")
    assert icmpv6_checksum(unspecified, group, message) == 0, "the checksum verifies"


def test_the_checksum_is_the_ones_complement_of_the_sum() -> None:
    src, dst = ipaddress.IPv6Address("::1"), ipaddress.IPv6Address("::2")
    # pseudo-header words: 1 + 2 + length 1 + next header 58; the message is one byte 0x01,
    # padded to the word 0x0100
    assert icmpv6_checksum(src, dst, b"\x01") == 0xFFFF - (1 + 2 + 1 + 58 + 0x0100)


def _na_frame(sender: bytes, target: ipaddress.IPv6Address) -> bytes:
    message = unsolicited_na(target, sender)
    header = IPV6.pack(6 << 28, len(message), 58, 255, target.packed,
                       ipaddress.IPv6Address("ff02::1").packed)
    return ETH.pack(bytes.fromhex("333300000001"), sender, 0x86DD) + header + message


def _arp(op: int, sender: bytes, spa: bytes, tpa: bytes) -> bytes:
    return ETH.pack(b"\xff" * 6, sender, 0x0806) + ARP.pack(1, 0x0800, 6, 4, op, sender, spa,
                                                             bytes(6), tpa)


@pytest.mark.parametrize(("frame", "ip", "holder"), [
    (_arp(2, OTHER, V4.packed, bytes(4)), V4, OTHER),
    (garp_frame(OTHER, V4), V4, OTHER),
    (arp_probe_frame(OTHER, V4), V4, OTHER),
    (_arp(1, OTHER, bytes.fromhex("c6336402"), V4.packed), V4, None),
    (_arp(2, OTHER, bytes.fromhex("c6336402"), V4.packed), V4, None),
    (garp_frame(MAC, V4), V4, None),
    (arp_probe_frame(MAC, V4), V4, None),
    (garp_frame(OTHER, V4)[:30], V4, None),
    (garp_frame(OTHER, V4), V6, None),
    (_na_frame(OTHER, V6), V6, OTHER),
    (_na_frame(OTHER, ipaddress.IPv6Address("fd00:5a::11")), V6, None),
    (_na_frame(MAC, V6), V6, None),
    (dad_probe_frame(OTHER, V6), V6, OTHER),
    (dad_probe_frame(MAC, V6), V6, None),
    (_na_frame(OTHER, V6)[:70], V6, None),
    (_na_frame(OTHER, V6), V4, None),
    (b"", V4, None),
])
def test_a_claim_is_another_host_answering_announcing_or_probing_for_the_address(
        frame: bytes, ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
        holder: bytes | None) -> None:
    assert claimant(frame, ip, MAC) == holder


def test_a_solicitation_from_an_address_is_not_a_claim() -> None:
    frame = bytearray(dad_probe_frame(OTHER, V6))
    frame[ETH.size + 8:ETH.size + 24] = ipaddress.IPv6Address("fd00:5a::11").packed
    assert claimant(bytes(frame), V6, MAC) is None


def test_frames_need_a_six_byte_mac() -> None:
    for build in (lambda: garp_frame(b"\x01" * 5, V4), lambda: unsolicited_na(V6, b"\x01" * 7)):
        with pytest.raises(ValueError, match="6 bytes"):
            build()


@pytest.mark.parametrize("lifetime_s", [0, -1, 2**31])
async def test_a_lifetime_out_of_range_is_refused_before_any_command(lifetime_s: int) -> None:
    address = ServiceAddress.parse("198.51.100.100/24")
    with pytest.raises(ValueError, match=f"not {lifetime_s}"):
        await vnfha.net.add(address, "eth0", probe_s=0, lifetime_s=lifetime_s)
    with pytest.raises(ValueError, match=f"not {lifetime_s}"):
        await vnfha.net.renew(address, "eth0", lifetime_s)
