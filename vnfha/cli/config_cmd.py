"""``vnfha check-config FILE [--json]``: what failover time a config gives, path by path.

FILE is loaded as a member loads it (:func:`vnfha.load_config`: the TOML file, then the
``VNFHA_*`` environment variables). The command prints the worst case of every failover path
(:mod:`vnfha.budget`) with the terms it is made of and, where one is set, the budget that bounds
it and whether it is met. Exit 0: the config is valid, so every budget is met; 2: it is refused,
with the ConfigError on stderr (``vnfha check-config: error: FIELD=VALUE: ...``). A config
refused only for its budgets still gets its report: the worst cases come from the same config
without those budgets, which is what the operator needs to choose either new budgets or new
timers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import textwrap
from fractions import Fraction
from typing import Any

from vnfha import budget
from vnfha.cli._base import EXIT_OK, EXIT_USAGE, CliError
from vnfha.config import ENV_PREFIX, Config, load_config
from vnfha.errors import ConfigError

__all__ = ["add_check_config", "cmd_check_config"]


def add_check_config(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    what = "a member config's worst-case failover time per path, against its budgets"
    p = sub.add_parser("check-config", help=what, description=f"Print {what}; exit 0 when it "
                       "is valid and every budget met, 2 when it is refused.")
    p.add_argument("file", metavar="FILE", help="the TOML config file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_check_config)


def _load(path: str) -> tuple[Config | None, ConfigError | None, dict[str, tuple[object, str]]]:
    """The config in ``path``, the error it is refused with (None if valid) and the budgets it
    is refused for (field -> (value, problem)). A config refused for its budgets alone comes
    back without them: each refused budget is unset, as an empty ``VNFHA_*`` variable would."""
    environ = dict(os.environ)
    refused: dict[str, tuple[object, str]] = {}
    first: ConfigError | None = None
    while True:
        try:
            return load_config(path, environ=environ), first, refused
        except ConfigError as e:
            first = first or e
            if e.field not in budget.BUDGET_FIELDS or e.field in refused:
                return None, first, refused
            refused[e.field] = (e.value, e.problem)
            environ[ENV_PREFIX + e.field.upper()] = ""


def _positive(value: object) -> float | None:
    """``value`` if it is a budget that can be judged (a finite number above 0), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _report(cfg: Config, refused: dict[str, tuple[object, str]]) -> dict[str, Any]:
    """The worst case of every path, each with the budget that bounds it (if any), as JSON."""
    bridge = cfg.bridge_endpoint is not None
    timers = budget.FailoverTimers.of(cfg)
    budgets = {name: getattr(cfg, name) for name in budget.BUDGET_FIELDS}
    budgets.update({name: _positive(value) for name, (value, _) in refused.items()})
    verdicts = {v.worst.path: v for v in budget.judge_budgets(timers, budgets, bridge=bridge)}
    standby = timers.standby_lease_on
    invalid = {budget.budget_path(name, bridge=bridge, standby_lease=standby):
               (name, value, problem)
               for name, (value, problem) in refused.items() if _positive(value) is None}
    hang = budget.hang_path(bridge=bridge, standby_lease=standby)
    hangs = (budget.Path.HANG_BRIDGE, budget.Path.HANG_STANDBY, budget.Path.HANG_LEASE)
    paths = []
    for path, worst in budget.worst_cases(timers).items():
        paths.append({
            "path": path.value, "what": path.what, "worst_case_ms": float(worst.ms),
            "applies": path not in hangs or path is hang,
            "note": worst.note,
            "terms": [{"label": t.label, "ms": float(t.ms), "fields": list(t.fields)}
                      for t in worst.terms],
            "budget": _budget(verdicts.get(path), invalid.get(path)),
        })
    return {"group": cfg.group, "member": cfg.member, "redundancy": cfg.redundancy.value,
            "bridge": bridge, "standby_lease": standby,
            "etcd_request_timeout_s": cfg.etcd_request_timeout_s,
            "paths": paths, "not_included": list(budget.NOT_INCLUDED)}


def _budget(verdict: budget.BudgetVerdict | None,
            invalid: tuple[str, object, str] | None) -> dict[str, Any] | None:
    if verdict is not None:
        return {"field": verdict.field, "ms": verdict.budget_ms, "met": verdict.met,
                "over_ms": float(max(verdict.over_ms, Fraction(0)))}
    if invalid is not None:
        return {"field": invalid[0], "ms": invalid[1], "met": False, "problem": invalid[2]}
    return None


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg, error, refused = _load(args.file)
    out: dict[str, Any] = {"file": args.file, "valid": error is None,
                           "error": str(error) if error is not None else None}
    if cfg is not None:
        out.update(_report(cfg, refused))
    if args.json:
        print(json.dumps(out, indent=2))
    elif cfg is not None:
        print(_text(out))
    if error is not None:
        raise CliError(str(error), EXIT_USAGE)
    return EXIT_OK


# -- the table --------------------------------------------------------------------------------


def _text(out: dict[str, Any]) -> str:
    """The report as the operator reads it (``docs/operations.md`` shows one)."""
    verdict = "valid" if out["valid"] else "REFUSED for its failover budgets"
    bridge = "with an NFVI bridge" if out["bridge"] else "no NFVI bridge"
    lines = [f"{out['file']}: {verdict}",
             f"group {out['group']}, member {out['member']}, redundancy {out['redundancy']}, "
             f"{bridge}",
             f"worst-case failover time per path (each etcd request counted at "
             f"etcd_request_timeout_s={out['etcd_request_timeout_s']:g}):"]
    for p in out["paths"]:
        lines += ["", f"{p['path']:<18} {_ms(p['worst_case_ms']):>7} ms  {_status(p, out)}"]
        if p["note"]:
            lines.append(textwrap.fill(p["note"], 96, initial_indent="  ",
                                       subsequent_indent="  "))
        width = max((len(t["label"]) for t in p["terms"]), default=0)
        lines += [f"  {_ms(t['ms']):>9}  {t['label']:<{width}}  {', '.join(t['fields'])}".rstrip()
                  for t in p["terms"]]
    lines += ["", textwrap.fill("not included: " + "; ".join(out["not_included"]), 96)]
    return "\n".join(lines)


def _status(p: dict[str, Any], out: dict[str, Any]) -> str:
    """The budget column of a path: met, missed by how much, refused, or none."""
    bound = p["budget"]
    if not p["applies"]:
        return _why_not(p["path"], bridge=out["bridge"], standby=out["standby_lease"])
    if bound is None:
        return "no budget"
    given = f"{bound['field']}={bound['ms']!r}"
    if "problem" in bound:
        return f"{given}: refused: {bound['problem']}"
    if bound["met"]:
        return f"{given}: met"
    return f"{given}: MISSED by {_ms(bound['over_ms'])} ms"


def _why_not(path: str, *, bridge: bool, standby: bool) -> str:
    """Why a hang path is not the one this config takes, and when it still runs."""
    if path == budget.Path.HANG_BRIDGE:
        return "(not this config's path: no bridge_endpoint)"
    if path == budget.Path.HANG_STANDBY and not standby:
        return "(not this config's path: standby_lease_s = 0)"
    if bridge and (path == budget.Path.HANG_STANDBY or not standby):
        return "(with the bridge: the fallback if a Fence fails, plus bridge_timeout_s)"
    return "(the fallback for a standby not listed in sync)"


def _ms(value: float) -> str:
    return budget.format_ms(Fraction(repr(value)))
