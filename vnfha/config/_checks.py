"""The checks of single config values: each takes a field's name and a value, and returns the
value normalised (a tuple of endpoints, a :class:`~vnfha.model.Redundancy`, a float) or raises
:class:`~vnfha.ConfigError` naming the field and the value. Which field gets which check, and
the relations between fields, are declared with :class:`~vnfha.config.Config` in
:mod:`vnfha.config._schema`.

Pure apart from :func:`read_password_file`: no clock, no network, nothing kept. Guarantees:

- **Types are exact.** A bool is not an integer and a string is not a number here. Strings
  from a file, the environment or :meth:`Config.from_mapping
  <vnfha.config.Config.from_mapping>` are converted before, by :func:`coerce`, according to the
  field's annotation; an empty string unsets an optional field.
- **Addresses are ``host:port``** with a DNS name or IPv4 address, or ``[IPv6]:port``; no
  scheme; ports in range. Endpoint lists are non-empty and have no duplicates.
- **Durations are finite and positive**, and become floats; milliseconds (the failover
  budgets) are finite and positive, kept as given.
- **Secrets are masked**: a bad ``etcd_password`` is reported as :data:`MASK`, never quoted.
"""

from __future__ import annotations

import ipaddress
import math
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Final

from vnfha.errors import ConfigError
from vnfha.model import Redundancy

__all__ = ["MASK", "argv", "boolean", "choice", "coerce", "dns_label", "duration", "endpoints",
           "host_port", "int_in", "key_prefix", "listen_address", "milliseconds", "nonempty_text",
           "optional", "read_password_file", "redundancy", "wrong_type"]

MASK: Final = "***"
"""What a password is shown as, everywhere."""

_NAME_RE: Final = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_HOST_RE: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?")
_PORT_RE: Final = re.compile(r"[0-9]{1,5}")
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_BOOLS: Final = {"true": True, "yes": True, "on": True, "1": True,
                 "false": False, "no": False, "off": False, "0": False}


def wrong_type(name: str, value: object, expected: str) -> ConfigError:
    """The error for a value of the wrong type (a password masked)."""
    shown = MASK if name == "etcd_password" else value
    return ConfigError(name, shown, f"expected {expected}, got {type(value).__name__}")


def dns_label(name: str, value: object) -> str:
    """A group or member name: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'."""
    if not isinstance(value, str):
        raise wrong_type(name, value, "a string")
    if not _NAME_RE.fullmatch(value):
        raise ConfigError(name, value, "must be 1-63 characters of a-z, 0-9 and '-', starting "
                                       "and ending with a letter or digit (like a DNS label)")
    return value


def host_port(name: str, value: object, *, min_port: int) -> str:
    """``host:port`` or ``[IPv6]:port``, no scheme, the port in ``min_port``..65535."""
    if not isinstance(value, str):
        raise wrong_type(name, value, "a 'host:port' string")
    if "://" in value:
        raise ConfigError(name, value, "give host:port without a scheme "
                                       "(TLS to etcd is etcd_tls=true)")
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(name, value, "expected [IPv6 address]:port, as [::1]:2379") from None
    else:
        host, sep, port = value.rpartition(":")
        if ":" in host:
            raise ConfigError(name, value, "write an IPv6 address in brackets, as [::1]:2379")
        if sep and not _HOST_RE.fullmatch(host):
            raise ConfigError(name, value, f"host {host!r} is not a host name or IPv4 address")
    if not sep:
        raise ConfigError(name, value, "expected host:port")
    if not _PORT_RE.fullmatch(port) or not min_port <= int(port) <= 65535:
        raise ConfigError(name, value, f"port must be a number in {min_port}..65535")
    return value


def endpoints(name: str, value: object) -> tuple[str, ...]:
    """A non-empty tuple of distinct ``host:port`` from a list or a comma-separated string."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",")] if value.strip() else []
    if not isinstance(value, list | tuple):
        raise wrong_type(name, value, "a list of 'host:port' or a comma-separated string")
    items = tuple(host_port(name, item, min_port=1) for item in value)
    if not items:
        raise ConfigError(name, value, "at least one endpoint is needed")
    seen: set[str] = set()
    for item in items:
        if item.lower() in seen:
            raise ConfigError(name, items, f"{item!r} is listed twice")
        seen.add(item.lower())
    return items


def argv(name: str, value: object) -> tuple[str, ...]:
    """A command to execute without a shell: a non-empty tuple of non-empty strings without NUL
    characters, from a list or tuple, or from one string split like a shell's words
    (:func:`shlex.split`, as an environment variable gives it)."""
    items = value
    if isinstance(value, str):
        try:
            items = shlex.split(value)
        except ValueError as e:
            raise ConfigError(name, value, f"cannot split into arguments: {e}") from None
    if not isinstance(items, list | tuple):
        raise wrong_type(name, value, "a list of strings (the command and its arguments)")
    if not items:
        raise ConfigError(name, value, "must not be empty: give the command and its arguments "
                                       "(leave it unset for none)")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ConfigError(name, value, f"item {i} ({item!r}) is not a string but "
                                           f"{type(item).__name__}")
        if not item or "\0" in item:
            raise ConfigError(name, value, f"item {i} ({item!r}) must be a non-empty string "
                                           "without NUL characters")
    return tuple(items)


def bind_host(name: str, value: object) -> str:
    """An address to bind: an IPv4 or IPv6 address (no brackets, no port) or a host name."""
    if not isinstance(value, str):
        raise wrong_type(name, value, "an address string")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if ":" in value or not _HOST_RE.fullmatch(value):
            raise ConfigError(name, value, "expected an IP address (0.0.0.0 or :: for every "
                              "interface) or a host name, without a port or brackets") from None
    return value


def listen_address(name: str, value: object) -> str:
    """``host:port`` to bind; port 0 (any free port) allowed."""
    return host_port(name, value, min_port=0)


def redundancy(name: str, value: object) -> Redundancy:
    """A :class:`Redundancy`, or its value or name as a string (``_`` for ``-`` accepted)."""
    if isinstance(value, Redundancy):
        return value
    if isinstance(value, str):
        text = value.strip()
        for model in Redundancy:
            if text.lower().replace("_", "-") == model.value or text.upper() == model.name:
                return model
    allowed = ", ".join(repr(m.value) for m in Redundancy)
    raise ConfigError(name, value, f"expected one of {allowed}")


def int_in(low: int, high: int | None) -> Callable[[str, object], int]:
    """The check of an integer (not a bool) in ``low``..``high`` (None: no upper bound)."""
    def check(name: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong_type(name, value, "an integer")
        if value < low or (high is not None and value > high):
            raise ConfigError(name, value, f"must be in {low}..{high}" if high is not None
                              else f"must be at least {low}")
        return value
    return check


def optional(check: Callable[[str, object], object]) -> Callable[[str, object], object]:
    """``check``, with None accepted as "not set"."""
    def check_optional(name: str, value: object) -> object:
        return None if value is None else check(name, value)
    return check_optional


def boolean(name: str, value: object) -> bool:
    """True or False, nothing else."""
    if not isinstance(value, bool):
        raise wrong_type(name, value, "true or false")
    return value


def duration(name: str, value: object) -> float:
    """A finite number of seconds greater than 0, as a float (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(name, value, "a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(name, value, "must be a finite number of seconds greater than 0")
    return float(value)


def duration_or_off(name: str, value: object) -> float:
    """A finite number of seconds, 0 (off) or greater, as a float (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(name, value, "a number of seconds (0: off)")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(name, value, "must be a finite number of seconds, 0 (off) or more")
    return float(value)


def milliseconds(name: str, value: object) -> float:
    """A finite number of milliseconds greater than 0 (not a bool), kept as given."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(name, value, "a number of milliseconds")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(name, value, "must be a finite number of milliseconds greater than 0")
    return value


def choice(*allowed: str) -> Callable[[str, object], str]:
    """The check of one of ``allowed``, case-insensitive, ``_`` for ``-``; returns it as
    spelled in ``allowed``."""
    def check(name: str, value: object) -> str:
        if not isinstance(value, str):
            raise wrong_type(name, value, "a string")
        text = value.strip().lower().replace("_", "-")
        if text not in allowed:
            raise ConfigError(name, value, f"must be one of {', '.join(map(repr, allowed))}")
        return text
    return check


def nonempty_text(name: str, value: object) -> str:
    """A non-empty string without control characters (paths, user names, passwords)."""
    if not isinstance(value, str):
        raise wrong_type(name, value, "a string")
    shown = MASK if name == "etcd_password" else value
    if not value:
        raise ConfigError(name, shown, "must not be empty (leave it unset instead)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(name, shown, "must not contain control characters")
    return value


def key_prefix(name: str, value: object) -> str:
    """An etcd key prefix: starts with '/', does not end with one, no whitespace."""
    if not isinstance(value, str):
        raise wrong_type(name, value, "a string")
    if not value.startswith("/") or value.endswith("/") or any(c.isspace() for c in value):
        raise ConfigError(name, value, "must start with '/', not end with '/', and contain no "
                                       "whitespace (e.g. '/vnfha')")
    return value


def read_password_file(path: str) -> str:
    """The password in ``path`` (UTF-8, one trailing newline dropped, not empty)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("etcd_password_file", path,
                          f"cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError:
        raise ConfigError("etcd_password_file", path, "not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise ConfigError("etcd_password_file", path, "the file is empty")
    return text


def coerce(name: str, raw: object, kind: str) -> object:
    """``raw`` as the type ``kind`` names (a field's annotation as text, ``"float | None"``)
    when it is a string (``"3"`` -> 3, ``"yes"`` -> True, ``""`` -> None for an optional
    field); anything else, and strings for other types, are left to the field's check."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if kind.endswith("| None") and text == "":
        return None
    base = kind.removesuffix(" | None")
    if base == "int":
        if not _INT_RE.fullmatch(text):
            raise ConfigError(name, raw, "expected an integer")
        return int(text)
    if base == "float":
        try:
            return float(text)
        except ValueError:
            unit = "milliseconds" if name.endswith("_ms") else "seconds"
            raise ConfigError(name, raw, f"expected a number of {unit}") from None
    if base == "bool":
        if text.lower() not in _BOOLS:
            raise ConfigError(name, raw, "expected true/false (also yes/no, on/off, 1/0)")
        return _BOOLS[text.lower()]
    return raw
