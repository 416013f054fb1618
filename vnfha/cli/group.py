"""``vnfha status`` and ``vnfha switchover``: a group, read and moved through its etcd."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

from vnfha.cli._base import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    add_etcd_flags,
    print_table,
    run_against_etcd,
)
from vnfha.errors import LockError, SwitchoverError

if TYPE_CHECKING:
    from vnfha.store.base import Store

# -- vnfha status --------------------------------------------------------------------------------


def add_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="show a group's members, roles and epoch",
                       description="Show a group's members, their roles, the epoch of the "
                       "active grant and where each member talks to etcd.")
    p.add_argument("group")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_etcd_flags(p)
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    from vnfha.admin import GroupNotFound, group_status, lag_text  # noqa: PLC0415

    async def action(store: Store) -> int:
        try:
            status = await group_status(store, args.prefix, args.group)
        except GroupNotFound as e:
            raise CliError(str(e), EXIT_FAILED) from None
        if args.json:
            print(json.dumps(status.as_json(), indent=2))
            return EXIT_OK
        active = f"{status.active} (epoch {status.epoch})" if status.active else "none"
        print(f"group {status.group}  redundancy {status.redundancy}  active {active}  "
              f"etcd {status.etcd_endpoint} @ revision {status.revision}")
        for note in status.notes():
            print(note)
        rows = [("MEMBER", "ROLE", "ADMIN", "EPOCH", "SYNC", "LAG", "HEALTH", "PRIO", "LISTEN",
                 "ETCD", "PID", "HOST")]
        for m in status.members:
            role = m.role + ("*" if m.holds_active_key else "")
            flags = " no-failover" if m.no_failover else ""
            sync = "-" if m.holds_active_key else ("yes" if m.in_sync else "no")
            health = f"failing: {','.join(m.failing)}" if m.failing else "ok"
            rows.append((m.member, role, "locked" if m.locked else "-", str(m.epoch), sync,
                         lag_text(m), health,
                         f"{m.priority}{flags}", m.listen, m.etcd_endpoint, str(m.pid), m.host))
        print_table(rows)
        for m in status.members:
            if m.addresses:
                print(f"service addresses held by {m.member}: {', '.join(m.addresses)}")
        return EXIT_OK

    return run_against_etcd(args, action)


# -- vnfha switchover ----------------------------------------------------------------------------


def add_switchover(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("switchover", help="hand a group's active role over gracefully",
                       description="Ask the group's active member to hand over (on_quiesce, "
                       "then release the active key) to --to, or to its best standby, and wait "
                       "until the new active holds the role.")
    p.add_argument("group")
    p.add_argument("--to", metavar="MEMBER", help="the member to hand over to")
    p.add_argument("--force", action="store_true", help="hand over to --to even if its health "
                   "checks are failing")
    p.add_argument("--timeout-s", type=float, default=10.0,
                   help="how long to wait for the handover (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_etcd_flags(p)
    p.set_defaults(func=cmd_switchover)


def cmd_switchover(args: argparse.Namespace) -> int:
    from vnfha.admin import GroupNotFound, request_switchover  # noqa: PLC0415

    async def action(store: Store) -> int:
        try:
            out = await request_switchover(store, args.prefix, args.group, args.to,
                                           timeout_s=args.timeout_s, force=args.force)
        except (GroupNotFound, SwitchoverError) as e:
            raise CliError(str(e), EXIT_FAILED) from None
        fields: dict[str, Any] = {
            "group": args.group, "from": out.from_member, "to": out.to,
            "from_epoch": out.from_epoch, "to_epoch": out.to_epoch,
            "ms": round(out.seconds * 1000, 1),
        }
        if args.json:
            print(json.dumps(fields))
        else:
            print(f"switchover of {args.group}: {out.from_member} (epoch {out.from_epoch}) -> "
                  f"{out.to} (epoch {out.to_epoch}) in {fields['ms']} ms")
        return EXIT_OK

    return run_against_etcd(args, action)


# -- vnfha lock / unlock -------------------------------------------------------------------------


def add_lock(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lock", help="take a member out of service, or pause a group",
                       description="Lock MEMBER out of service (a locked active first hands "
                       "over as a switchover does; a locked member holds no role and is never "
                       "chosen), or without MEMBER pause the group (no failover, switchover or "
                       "ladder action; roles stay as they are). Survives member restarts "
                       "until `vnfha unlock`.")
    p.add_argument("group")
    p.add_argument("member", nargs="?", help="the member to lock (none: pause the group)")
    p.add_argument("--force", action="store_true", help="lock a member that is not in the "
                   "group, the last member that may be active, or a paused group's active")
    p.add_argument("--reason", default="", help="why, shown by vnfha status")
    p.add_argument("--timeout-s", type=float, default=10.0,
                   help="how long to wait for a locked active to hand over (default: "
                   "%(default)s)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_etcd_flags(p)
    p.set_defaults(func=cmd_lock)
    u = sub.add_parser("unlock", help="return a member to service, or end a group's pause",
                       description="Remove the lock `vnfha lock` set on MEMBER, or without "
                       "MEMBER end the group's pause.")
    u.add_argument("group")
    u.add_argument("member", nargs="?", help="the member to unlock (none: the group's pause)")
    add_etcd_flags(u)
    u.set_defaults(func=cmd_unlock)


def cmd_lock(args: argparse.Namespace) -> int:
    from vnfha.admin import GroupNotFound, lock  # noqa: PLC0415

    async def action(store: Store) -> int:
        try:
            out = await lock(store, args.prefix, args.group, args.member, force=args.force,
                             reason=args.reason, timeout_s=args.timeout_s)
        except (GroupNotFound, LockError) as e:
            raise CliError(str(e), EXIT_FAILED) from None
        if args.json:
            print(json.dumps({"group": out.group, "member": out.member, "active": out.active,
                              "handed_over": out.handed_over}))
        elif out.member is None:
            print(f"group {out.group} paused: no failover, switchover or ladder action until "
                  f"`vnfha unlock {out.group}` (active: {out.active or 'none'})")
        else:
            moved = f"; it handed over to {out.active}" if out.handed_over else ""
            print(f"{out.member} of {out.group} locked out of service{moved} (active: "
                  f"{out.active or 'none'})")
        return EXIT_OK

    return run_against_etcd(args, action)


def cmd_unlock(args: argparse.Namespace) -> int:
    from vnfha.admin import unlock  # noqa: PLC0415

    async def action(store: Store) -> int:
        was = await unlock(store, args.prefix, args.group, args.member)
        what = f"{args.member} of {args.group}" if args.member else f"group {args.group}"
        print(f"{what} unlocked" if was else f"{what} was not locked")
        return EXIT_OK

    return run_against_etcd(args, action)


# -- vnfha history -------------------------------------------------------------------------------


def add_history(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("history", help="show a group's past changes of active",
                       description="The group's failover history, newest first: when, from "
                       "which member and epoch to which, the cause, and the timeline in ms "
                       "from the fault noticed (proof or fence, key taken, on_active returned, "
                       "first checkpoint accepted).")
    p.add_argument("group")
    p.add_argument("--limit", type=int, default=20, help="show at most this many (default: "
                   "%(default)s)")
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    add_etcd_flags(p)
    p.set_defaults(func=cmd_history)


def cmd_history(args: argparse.Namespace) -> int:
    from vnfha.admin import group_history  # noqa: PLC0415

    async def action(store: Store) -> int:
        records = (await group_history(store, args.prefix, args.group))[:max(0, args.limit)]
        if args.json:
            print(json.dumps([r.as_json() for r in records], indent=2))
            return EXIT_OK
        if not records:
            print(f"group {args.group}: no change of active recorded")
            return EXIT_OK
        rows: list[tuple[str, ...]] = [
            ("WHEN (UTC)", "FROM", "TO", "CAUSE", "PROOF", "KEY", "ON_ACTIVE", "1ST WRITE")]
        for r in records:
            t = r.timeline_ms
            rows.append((time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.at)),
                         f"{r.from_member or '-'} ({r.from_epoch})",
                         f"{r.to_member or '- (held)'} ({r.epoch})",
                         r.cause, *(f"{t[s]:.1f}" if s in t else "-" for s in
                                    ("proof", "key_taken", "on_active", "first_write"))))
        print_table(rows)
        return EXIT_OK

    return run_against_etcd(args, action)


# -- vnfha ladder --------------------------------------------------------------------------------


def add_ladder(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ladder", help="show (or reset) the escalation ladder's counters",
                       description="Each member's escalation-ladder counters as stored in "
                       "etcd: per rung, its uses since its last reset against the member's "
                       "max_count, and the probation window after which a fault-free member's "
                       "count resets; then each member's latest incarnation and how it stands "
                       "(running, repairing, stopped). --reset MEMBER deletes that member's "
                       "counters.")
    p.add_argument("group")
    p.add_argument("--reset", metavar="MEMBER", help="delete this member's counters")
    p.add_argument("--json", action="store_true", help="print the counters as JSON")
    add_etcd_flags(p)
    p.set_defaults(func=cmd_ladder)


def cmd_ladder(args: argparse.Namespace) -> int:
    from vnfha.admin import ladder_state, reset_ladder  # noqa: PLC0415

    async def action(store: Store) -> int:
        if args.reset:
            was = await reset_ladder(store, args.prefix, args.group, args.reset)
            print(f"{args.reset} of {args.group}: ladder counters "
                  + ("deleted" if was else "were not stored"))
            return EXIT_OK
        ladders = await ladder_state(store, args.prefix, args.group)
        if args.json:
            print(json.dumps([dataclasses.asdict(m) for m in ladders], indent=2))
            return EXIT_OK
        if not ladders:
            print(f"group {args.group}: no ladder counters stored (no fault so far)")
            return EXIT_OK
        rows: list[tuple[str, ...]] = [
            ("MEMBER", "RUNG", "USED", "MAX", "PROBATION", "LAST USE", "LAST FAULT")]
        for m in ladders:
            if m.problem:
                rows.append((m.member, m.problem, "", "", "", "", ""))
            for r in m.rungs:
                rows.append((m.member, r.rung, str(len(r.ages_s)),
                             "?" if r.max_count is None else str(r.max_count),
                             "?" if r.probation_s is None else f"{r.probation_s:g} s",
                             f"{r.ages_s[-1]:.0f} s ago" if r.ages_s else "-",
                             "-" if m.last_fault_age_s is None
                             else f"{m.last_fault_age_s:.0f} s ago"))
        print_table(rows)
        for m in ladders:
            if m.incarnation is not None:
                counted = f"; crash failovers counted up to epoch {m.counted_epoch}" \
                    if m.counted_epoch else ""
                print(f"{m.member}: incarnation {m.incarnation}, {m.life}{counted}")
        return EXIT_OK

    return run_against_etcd(args, action)
