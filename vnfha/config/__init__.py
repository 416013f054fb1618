"""Validated configuration: :class:`Config`, and :func:`load_config` (a TOML file + ``VNFHA_*``).

One public namespace over private modules; import from here. :mod:`vnfha.config._schema`
declares :class:`Config` (every field, its unit, default and check, and the relations between
fields), with the checks of single values in :mod:`vnfha.config._checks` and the built-in
health checks a member runs (:class:`CheckSpec`) in :mod:`vnfha.config._check_specs`;
:mod:`vnfha.config._load` reads a TOML file and the environment into a Config.

Guarantees:

- **A Config that exists is valid.** Every field is checked for type and range when the object
  is built (directly, by :meth:`Config.from_mapping`, :meth:`Config.replace` or
  :func:`load_config`), the timer relations of :mod:`vnfha.timing` are checked against each
  other, and each failover budget set must be met (:mod:`vnfha.budget`). Anything wrong
  raises :class:`vnfha.ConfigError` (also a ``ValueError``) naming the field and the value;
  the relations are reported all at once. vnfha refuses to start rather than run with timers
  that cannot keep the lease, or that cannot meet its failover budgets.
- **Immutable and hashable.** Changes go through :meth:`Config.replace`, which validates again.
- **Secrets stay out of logs.** ``etcd_password`` (and the content of ``etcd_password_file``)
  shows as ``"***"`` in ``repr()``, in :meth:`Config.describe` and in error messages.
- **Unknown names are refused**, in a file, a mapping or the environment, with the nearest valid
  name suggested: a typo must not silently leave a default in force.

Precedence in :func:`load_config`: defaults < the TOML file < ``VNFHA_<FIELD>`` environment
variables. ``docs/configuration.md`` lists every field with its unit and default.
"""

from vnfha.config._check_specs import CheckSpec
from vnfha.config._load import ENV_PREFIX, OTHER_ENV_VARS, load_config
from vnfha.config._schema import Config

__all__ = ["ENV_PREFIX", "OTHER_ENV_VARS", "CheckSpec", "Config", "load_config"]
