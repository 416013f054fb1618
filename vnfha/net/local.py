"""The I/O that changes this host's addresses: list its links, add a service address to a
device after checking that no other host answers for it, remove it, and tell whether a device
holds it.

Through iproute2's ``ip`` command (``ip -j addr show``, ``ip addr add``, ``ip addr del``),
not netlink from Python: ``ip`` is on every Linux, its JSON is stable, its messages are the
ones operators know, and a netlink codec would be a few hundred lines of vnfha to keep right.
A command costs a few milliseconds; :func:`add` runs two (a read, the add).

Guarantees:

- **Bounded in time.** Every command is killed at ``timeout_s``
  (:attr:`~vnfha.net.address.Problem.TIMEOUT`); the probe lasts ``probe_s``.
- **Idempotent.** :func:`add` of an address the device already holds, with that prefix, does
  nothing (and does not probe); :func:`remove` of an absent address, or on a device that is
  gone, does nothing. Both say whether they changed anything.
- **Refusals are clear.** Failures raise
  :class:`~vnfha.net.address.ServiceAddressError` naming the address, the device and the reason:
  no CAP_NET_ADMIN (``ip`` refused with EPERM), no CAP_NET_RAW (the probe's raw socket), no
  such device, in use by another host (with its MAC), a command that failed (with its words).
- **IPv6 addresses are added with ``nodad``**, so they are usable at once (no second or so of
  DAD, during which the address is tentative and cannot be announced from); :func:`add`
  replaces DAD with its own probe (:func:`vnfha.net.announce.probe`), in a window of
  ``probe_s`` instead of the kernel's second.

Not here: the announcement (:func:`vnfha.net.announce.announce`), which a caller sends after
:func:`add`, and the choice of the device (:func:`vnfha.net.address.choose_device`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection
from typing import Final

from vnfha.clock import Clock, SystemClock
from vnfha.net.address import (
    Link,
    Problem,
    ServiceAddress,
    ServiceAddressError,
    device_problem,
    holds,
    parse_links,
)
from vnfha.net.announce import format_mac, probe

__all__ = ["COMMAND_TIMEOUT_S", "PROBE_S", "add", "held", "list_links", "remove", "renew"]

COMMAND_TIMEOUT_S: Final = 2.0
"""The default bound of one ``ip`` command (they take milliseconds)."""

PROBE_S: Final = 0.15
"""The default window in which another host's answer to the probe is awaited: a neighbour on
the same link answers within a millisecond or two; the rest is for a loaded host."""

_NO_PERMISSION: Final = ("Operation not permitted", "Permission denied")
_NO_DEVICE: Final = ("Cannot find device", "does not exist")
_ABSENT: Final = ("cannot assign requested address", "address not found")
"""``ip addr del`` of an absent address: EADDRNOTAVAIL, or the kernel's extack message
("Error: ipv4: Address not found.", "Error: ipv6: address not found.")."""


async def _ip(args: list[str], what: ServiceAddress | None, device: str | None,
              timeout_s: float, clock: Clock) -> tuple[int, str, str]:
    """Run ``ip ARGS``; its exit status, stdout and stderr. ServiceAddressError if it cannot be
    started (no iproute2) or does not finish within ``timeout_s`` (it is then killed)."""
    address = str(what) if what is not None else "(any)"
    command = "ip " + " ".join(args)
    try:  # LC_ALL=C: the refusals are recognised by ip's (English) words
        proc = await asyncio.create_subprocess_exec(
            "ip", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "LC_ALL": "C"})
    except OSError as e:
        raise ServiceAddressError(address, device, Problem.FAILED,
                                  f"cannot run `{command}` (is iproute2 installed?): {e}") from e
    try:
        out, err = await clock.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        raise ServiceAddressError(address, device, Problem.TIMEOUT,
                                  f"`{command}` did not finish within {timeout_s} s") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace").strip()


def _refusal(address: ServiceAddress, device: str, command: str,
             stderr: str) -> ServiceAddressError:
    """The error for ``ip`` refusing ``command``, by its words."""
    if any(words in stderr for words in _NO_PERMISSION):
        return ServiceAddressError(str(address), device, Problem.NO_PERMISSION,
                                   f"`{command}` was refused: changing addresses needs "
                                   f"CAP_NET_ADMIN ({stderr})")
    if any(words in stderr for words in _NO_DEVICE):
        return ServiceAddressError(str(address), device, Problem.NO_DEVICE,
                                   f"no device {device} on this host ({stderr})")
    return ServiceAddressError(str(address), device, Problem.FAILED,
                               f"`{command}` failed: {stderr or 'no message'}")


def _checked_device(address: ServiceAddress, device: str) -> None:
    """ServiceAddressError if ``device`` is not a valid device name (it goes into a command)."""
    problem = device_problem(device)
    if problem is not None:
        raise ServiceAddressError(str(address), device, Problem.NO_DEVICE, problem)


async def list_links(*, timeout_s: float = COMMAND_TIMEOUT_S,
                     clock: Clock | None = None) -> list[Link]:
    """Every device of this host (this network namespace) with its addresses, from
    ``ip -j addr show``. ServiceAddressError (address "(any)") if the command fails, times out
    or prints something that is not its JSON listing."""
    clock = clock or SystemClock()
    status, out, err = await _ip(["-j", "addr", "show"], None, None, timeout_s, clock)
    if status != 0:
        raise ServiceAddressError("(any)", None, Problem.FAILED, f"`ip -j addr show`: {err}")
    try:
        return parse_links(out)
    except ValueError as e:
        raise ServiceAddressError("(any)", None, Problem.FAILED,
                                  f"`ip -j addr show` printed no link listing: {e}") from e


async def held(address: ServiceAddress, device: str, *, timeout_s: float = COMMAND_TIMEOUT_S,
               clock: Clock | None = None) -> bool:
    """Whether ``device`` holds ``address`` with its prefix. ServiceAddressError if there is no
    such device (:attr:`~Problem.NO_DEVICE`) or ``ip`` fails."""
    _checked_device(address, device)
    clock = clock or SystemClock()
    args = ["-j", "addr", "show", "dev", device]
    status, out, err = await _ip(args, address, device, timeout_s, clock)
    if status != 0:
        raise _refusal(address, device, "ip " + " ".join(args), err)
    try:
        return holds(parse_links(out), address, device)
    except ValueError as e:
        raise ServiceAddressError(str(address), device, Problem.FAILED,
                                  f"`ip {' '.join(args)}` printed no link listing: {e}") from e


def _lifetime(lifetime_s: int | None) -> list[str]:
    """``ip``'s lifetime arguments: none (forever) for None, else valid = preferred."""
    if lifetime_s is None:
        return []
    if not 1 <= lifetime_s < 2**31:
        raise ValueError(f"an address lifetime must be 1 to {2**31 - 1} seconds, not "
                         f"{lifetime_s!r}")
    return ["valid_lft", str(lifetime_s), "preferred_lft", str(lifetime_s)]


async def add(address: ServiceAddress, device: str, *, tolerate: Collection[bytes] = (),
              probe_s: float = PROBE_S, timeout_s: float = COMMAND_TIMEOUT_S,
              clock: Clock | None = None, lifetime_s: int | None = None) -> bool:
    """Put ``address`` on ``device``; True if it was added, False if the device already held
    it (nothing is done then).

    Before adding, unless ``probe_s`` is 0, probe the link for ``probe_s`` seconds
    (:func:`vnfha.net.announce.probe`): a claim from a host whose MAC is not in ``tolerate``
    raises ServiceAddressError :attr:`~Problem.IN_USE` with that MAC in ``holder``, and the
    address is not added. Pass the MACs of the group's members as ``tolerate``: a member that
    still answers (a frozen or partitioned old active) is fenced by the group, not a reason to
    refuse.

    IPv4 is added as ``ip addr add A/P brd + dev DEV``, IPv6 as ``ip -6 addr add A/P dev DEV
    nodad``. With ``lifetime_s`` the kernel removes the address that many seconds later unless
    :func:`renew` pushes it on (``valid_lft`` = ``preferred_lft``; the kernel checks about
    every second). ServiceAddressError :attr:`~Problem.NO_PERMISSION` without CAP_NET_ADMIN (or
    CAP_NET_RAW for the probe), :attr:`~Problem.NO_DEVICE`, :attr:`~Problem.TIMEOUT`,
    :attr:`~Problem.FAILED`. Does not announce: call :func:`~vnfha.net.announce.announce`
    next."""
    lifetime = _lifetime(lifetime_s)
    clock = clock or SystemClock()
    if await held(address, device, timeout_s=timeout_s, clock=clock):
        return False
    if probe_s > 0:
        holder = await probe(device, address, wait_s=probe_s, tolerate=tolerate, clock=clock)
        if holder is not None:
            mac = format_mac(holder)
            raise ServiceAddressError(str(address), device, Problem.IN_USE,
                                      f"in use by {mac}: another host answered for it, so "
                                      "this member does not take it", holder=mac)
    if address.version == 4:
        args = ["-4", "addr", "add", address.cidr, "brd", "+", "dev", device, *lifetime]
    else:
        args = ["-6", "addr", "add", address.cidr, "dev", device, "nodad", *lifetime]
    status, _, err = await _ip(args, address, device, timeout_s, clock)
    if status == 0:
        return True
    if "File exists" in err and await held(address, device, timeout_s=timeout_s, clock=clock):
        return False  # added meanwhile by someone else on this host: it is held all the same
    raise _refusal(address, device, "ip " + " ".join(args), err)


async def remove(address: ServiceAddress, device: str, *, timeout_s: float = COMMAND_TIMEOUT_S,
                 clock: Clock | None = None) -> bool:
    """Take ``address`` off ``device``; True if it was removed, False if it was not there (or
    the device is gone). ServiceAddressError :attr:`~Problem.NO_PERMISSION` without
    CAP_NET_ADMIN, :attr:`~Problem.TIMEOUT`, :attr:`~Problem.FAILED`.

    Removing a device's *primary* IPv4 address also removes the secondaries of its subnet
    unless the sysctl ``net.ipv4.conf.DEV.promote_secondaries`` is 1: a service address added
    to a device that already has an address in its subnet (the case :func:`choose_device
    <vnfha.net.address.choose_device>` picks) is a secondary, and removing it touches nothing
    else."""
    _checked_device(address, device)
    clock = clock or SystemClock()
    family = "-4" if address.version == 4 else "-6"
    args = [family, "addr", "del", address.cidr, "dev", device]
    status, _, err = await _ip(args, address, device, timeout_s, clock)
    if status == 0:
        return True
    if any(words in err.lower() for words in _ABSENT) or any(words in err for words in _NO_DEVICE):
        return False
    raise _refusal(address, device, "ip " + " ".join(args), err)


async def renew(address: ServiceAddress, device: str, lifetime_s: int, *,
                timeout_s: float = COMMAND_TIMEOUT_S, clock: Clock | None = None) -> None:
    """Set ``address``'s lifetime on ``device`` to ``lifetime_s`` from now (``ip addr change``).
    The kernel adds the address if it is not there (it expired: a renewal came too late), so
    call it only while this host may hold the address. ServiceAddressError as :func:`add`."""
    lifetime = _lifetime(lifetime_s)
    _checked_device(address, device)
    clock = clock or SystemClock()
    if address.version == 4:
        args = ["-4", "addr", "change", address.cidr, "brd", "+", "dev", device, *lifetime]
    else:
        args = ["-6", "addr", "change", address.cidr, "dev", device, "nodad", *lifetime]
    status, _, err = await _ip(args, address, device, timeout_s, clock)
    if status != 0:
        raise _refusal(address, device, "ip " + " ".join(args), err)
