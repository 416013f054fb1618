"""What an ALARM does outside the log: the alarm as JSON, the operator's notify command, and
the steps every alarm takes, whoever raises it (the supervisor's ladder, or the poison guard's
hold).

:func:`alarm_json` is the alarm as one JSON object (the fields of
:class:`~vnfha.events.AlarmRaised` and ``"kind": "vnfha-alarm"``); :func:`run_alarm_command`
runs ``Config.alarm_command`` with it on stdin. :func:`announce_alarm` takes an alarm's first
two steps: the member's listeners, then the notify command in a task of its own;
:func:`record_alarm` its last: a RECORDED ticket at the bridge. Neither raises (but a
cancellation): an alarm is never a new fault. Guarantees of :func:`run_alarm_command`:

- **No shell.** The argv is executed as given (``argv[0]`` looked up on ``PATH``); the JSON
  object, UTF-8, one line with a trailing newline, is written to its stdin, which is then
  closed. Its stdout is discarded; the first :data:`MAX_STDERR_BYTES` of its stderr are kept
  for the log (the rest is read and dropped, so a chatty command cannot stall on a full pipe).
- **Bounded in time.** A command still running after ``timeout_s`` (on the given clock) is
  killed (SIGKILL) and reaped; so is one whose task is cancelled (the member stopping).
- **Never fatal.** A command that cannot start, exits non-zero, is killed by a signal or times
  out is logged at WARNING on ``vnfha.health`` with the reason; nothing is raised but a
  cancellation. It returns True only for an exit status of 0.
- **Never blocks the event loop**: the command is an asyncio subprocess; the caller runs this
  in a task of its own, so the supervisor does not wait for it either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from vnfha.clock import Clock
from vnfha.events import AlarmRaised
from vnfha.nfvi.model import RepairAction

if TYPE_CHECKING:
    from vnfha.nfvi.client import NfviPort
    from vnfha.nfvi.model import RepairTicket

__all__ = ["ALARM_KIND", "MAX_FAULT_CHARS", "MAX_STDERR_BYTES", "alarm_json", "announce_alarm",
           "record_alarm", "run_alarm_command"]

log = logging.getLogger("vnfha.health")

ALARM_KIND: Final = "vnfha-alarm"
"""The ``kind`` of the alarm's JSON object (what a notify command may dispatch on)."""

MAX_STDERR_BYTES: Final = 2048
"""How much of a failed command's stderr is quoted in the WARNING line."""

MAX_FAULT_CHARS: Final = 1000
"""An alarm's fault text sent to the bridge is cut here (the bridge takes 4 KiB of UTF-8)."""


def announce_alarm(alarm: AlarmRaised, *, tell: Callable[[AlarmRaised], None] | None,
                   command: Sequence[str] | None, timeout_s: float, clock: Clock,
                   start: Callable[[Coroutine[Any, Any, Any], str], object] | None) -> None:
    """An alarm's first two steps: ``tell(alarm)`` (the member's listeners; one that raises is
    logged and skipped), then ``command`` (None: none) run by :func:`run_alarm_command` in a
    task that ``start(coroutine, name)`` owns. ``start`` None means the caller is stopping: the
    command is not run, and that is logged."""
    if tell is not None:
        try:
            tell(alarm)
        except Exception:
            log.exception("%s: telling the listeners of the alarm failed", alarm.member)
    if command is None:
        return
    if start is None:
        log.warning("%s: alarm_command not run: the member is stopping", alarm.member)
        return
    start(run_alarm_command(command, alarm, clock=clock, timeout_s=timeout_s),
          f"{alarm.member}-alarm-command")


async def record_alarm(nfvi: NfviPort, key: str, alarm: AlarmRaised, epoch: int, *,
                       tried: Iterable[RepairAction] = (),
                       call_timeout_s: float | None = None) -> RepairTicket | Exception:
    """An alarm's last step: the bridge records it as a ticket the member owns (Escalate with
    NONE, idempotency ``key``: a retry gets the same ticket); its fault is ``ALARM: <reason>``
    (at most :data:`MAX_FAULT_CHARS`). Returns the ticket, or the error that kept the bridge
    from hearing of it (logged at WARNING); never raises but a cancellation."""
    try:
        ticket = await nfvi.escalate(key, f"ALARM: {alarm.reason}"[:MAX_FAULT_CHARS],
                                     RepairAction.NONE, epoch, tried=tried,
                                     call_timeout_s=call_timeout_s)
    except Exception as e:  # never a new fault: that would raise the next alarm at once
        log.warning("%s: the bridge was not told of the alarm: %s: %s", alarm.member,
                    type(e).__name__, e)
        return e
    log.warning("%s: alarm recorded by the bridge: ticket %s (%s)", alarm.member,
                ticket.ticket_id, ticket.state)
    return ticket


def alarm_json(alarm: AlarmRaised) -> bytes:
    """``alarm`` as one JSON object with keys ``kind`` (:data:`ALARM_KIND`), ``member``,
    ``group``, ``epoch`` (an integer or null), ``reason``, ``fault`` (a string or null) and
    ``at`` (wall-clock seconds since the Unix epoch), UTF-8, ending with a newline."""
    body = {"kind": ALARM_KIND, "member": alarm.member, "group": alarm.group,
            "epoch": alarm.epoch, "reason": alarm.reason, "fault": alarm.fault, "at": alarm.at}
    return (json.dumps(body, ensure_ascii=False) + "\n").encode()


async def run_alarm_command(argv: Sequence[str], alarm: AlarmRaised, *, timeout_s: float,
                            clock: Clock) -> bool:
    """Run ``argv`` with :func:`alarm_json` of ``alarm`` on stdin, for at most ``timeout_s``
    (see the module's guarantees). True if it exited with status 0."""
    name = alarm.member
    shown = " ".join(argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
    except (OSError, ValueError) as e:
        log.warning("%s: alarm_command %r could not start: %s: %s", name, shown,
                    type(e).__name__, e)
        return False
    code, stderr, failure = 0, b"", ""
    try:
        code, stderr = await clock.wait_for(_talk(proc, alarm_json(alarm)), timeout_s)
    except TimeoutError:
        failure = f"did not end within alarm_command_timeout_s={timeout_s:g}: killed"
    except Exception as e:  # an I/O error on the pipes: reported, never raised
        failure = f"failed: {type(e).__name__}: {e}"
    finally:  # on a cancellation too: no command outlives its task
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
    if failure:
        log.warning("%s: alarm_command %r %s", name, shown, failure)
        return False
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        said = stderr.decode(errors="replace").strip()
        log.warning("%s: alarm_command %r %s%s", name, shown, how,
                    f": {said}" if said else " (nothing on stderr)")
        return False
    log.info("%s: alarm_command %r told of the alarm", name, shown)
    return True


async def _talk(proc: asyncio.subprocess.Process, data: bytes) -> tuple[int, bytes]:
    """Write ``data`` to the command's stdin and close it, read its stderr (keeping the first
    :data:`MAX_STDERR_BYTES`) until EOF, and wait for its exit status."""
    assert proc.stdin is not None and proc.stderr is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it need not read
        proc.stdin.write(data)
        await proc.stdin.drain()
    proc.stdin.close()
    kept = b""
    while chunk := await proc.stderr.read(65536):
        kept += chunk[:MAX_STDERR_BYTES - len(kept)]
    return await proc.wait(), kept
