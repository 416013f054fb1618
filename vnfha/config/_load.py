"""Loading vnfha's configuration: :func:`load_config` reads a flat TOML file and ``VNFHA_*``
environment variables into a :class:`~vnfha.config.Config`. Re-exported by :mod:`vnfha.config`;
what a valid Config is is declared in :mod:`vnfha.config._schema`, and strings become values
as :func:`vnfha.config._checks.coerce` says (as for :meth:`Config.from_mapping
<vnfha.config.Config.from_mapping>`).

Guarantees:

- **Precedence**: defaults < the TOML file < ``VNFHA_<FIELD>`` environment variables.
- **Strings become the field's type** (``"3"`` -> 3, ``"true"``/``"yes"``/``"1"`` -> True,
  ``"a:1,b:2"`` -> a tuple of endpoints); an empty string unsets an optional field. Anything
  else is left to the Config's own checks.
- **Every error names where the value came from**: the file or the environment variable (a
  missing or unreadable file, invalid TOML with tomllib's line and column, an unknown name, a
  bad value, a missing ``group`` or ``member``).
- **Unknown ``VNFHA_*`` variables are refused** with the nearest field suggested, except the
  few in :data:`OTHER_ENV_VARS`, which are read elsewhere.
- **Relative paths** in a file's ``*_file`` fields are relative to the file's directory.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from vnfha.config._checks import coerce
from vnfha.config._schema import (
    FIELD_NAMES,
    FILE_FIELDS,
    KINDS,
    Config,
    build,
    masked,
    unknown_field,
)
from vnfha.errors import ConfigError

__all__ = ["ENV_PREFIX", "OTHER_ENV_VARS", "load_config"]

ENV_PREFIX: Final = "VNFHA_"
"""Environment variables ``VNFHA_<FIELD IN UPPER CASE>`` override fields in load_config."""

OTHER_ENV_VARS: Final = frozenset({"VNFHA_ETCD_BIN", "VNFHA_ETCDCTL_BIN", "VNFHA_REQUIRE_LIBVIRT",
                                   "VNFHA_REQUIRE_PROMTOOL", "VNFHA_REQUIRE_NETNS",
                                   "VNFHA_QEMU", "VNFHA_REQUIRE_QEMU", "VNFHA_GUEST_CACHE",
                                   "VNFHA_GRPC_EVENT_ENGINE"})
"""``VNFHA_*`` variables that are not config fields (read by ``vnfha.testing.etcd``; by
``vnfha._grpc_env``: ``VNFHA_GRPC_EVENT_ENGINE``; by ``vnfha.testing.lab``,
``vnfha.testing.qemu_guest`` and the test suite: ``VNFHA_REQUIRE_LIBVIRT``,
``VNFHA_REQUIRE_PROMTOOL`` and ``VNFHA_REQUIRE_NETNS``, which CI sets, and ``VNFHA_QEMU``,
``VNFHA_REQUIRE_QEMU`` and ``VNFHA_GUEST_CACHE``); ignored by
load_config. Any other unknown ``VNFHA_*`` variable is refused as a probable typo."""


def load_config(
    path: str | os.PathLike[str] | None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """A Config from a flat TOML file, then ``VNFHA_<FIELD>`` environment overrides.

    The file holds top-level ``field = value`` lines only (no tables but ``[[checks]]``, an
    array of tables); relative paths in its ``*_file`` fields are relative to the file's
    directory. ``path=None`` reads only the
    environment. ``environ`` defaults to ``os.environ``; a variable ``VNFHA_LEASE_TTL_S=3``
    overrides ``lease_ttl_s``, and an empty value unsets an optional field. ``VNFHA_*`` variables
    that are neither fields nor in :data:`OTHER_ENV_VARS` are refused, with a suggestion.

    A missing or unreadable file, invalid TOML (the message has tomllib's line and column), an
    unknown name and a bad value all raise :class:`vnfha.ConfigError` naming where it came from.
    """
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    where: list[str] = []
    if path is not None:
        file = Path(path)
        where.append(str(file))
        for key, raw in _read_toml(file).items():
            if key not in FIELD_NAMES:
                raise unknown_field(key, raw, str(file))
            value = coerce(key, raw, KINDS[key])
            if key in FILE_FIELDS and isinstance(value, str) and value:
                value = str(file.absolute().parent / value)
            values[key], sources[key] = value, str(file)
    env = os.environ if environ is None else environ
    for var in sorted(env):
        field_name = _env_field(var, env[var])
        if field_name is not None:
            values[field_name] = coerce(field_name, env[var], KINDS[field_name])
            sources[field_name] = f"environment variable {var}"
    where.append("the environment")
    return build(values, sources, " or ".join(where))


# -- the file and the environment -------------------------------------------------------------


def _read_toml(file: Path) -> dict[str, Any]:
    """The file's top-level table; ConfigError("config_file") when it cannot be read or parsed."""
    try:
        with file.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError("config_file", str(file), f"cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError("config_file", str(file), f"not UTF-8 text: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("config_file", str(file), f"invalid TOML: {e}") from e


def _env_field(name: str, raw: str) -> str | None:
    """The field a ``VNFHA_*`` variable sets; None for other variables (ignored)."""
    if not name.startswith(ENV_PREFIX) or name in OTHER_ENV_VARS:
        return None
    key = name[len(ENV_PREFIX):].lower()
    if key in FIELD_NAMES and name == ENV_PREFIX + key.upper():
        return key
    near = difflib.get_close_matches(key, FIELD_NAMES, n=1)
    hint = (f"did you mean {ENV_PREFIX}{near[0].upper()}?" if near
            else f"the fields are {', '.join(FIELD_NAMES)}")
    others = " and ".join(sorted(OTHER_ENV_VARS))
    raise ConfigError(name, masked(name, raw, near),
                      f"unknown environment variable {name}; {hint} ({ENV_PREFIX}* variables "
                      f"set config fields; {others} are the only others allowed)")
