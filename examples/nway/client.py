"""A client for the subscriber registry that rides through failovers: it reconnects to the
service port (whichever member is active) and resends the command it had not had an answer to.

    python examples/nway/client.py --port 5400 who
    python examples/nway/client.py --port 5400 set 001010000000001 cell-17
    python examples/nway/client.py --port 5400 get 001010000000001
    python examples/nway/client.py --port 5400 load 500 --round 1    # SET sub-0 .. sub-499
    python examples/nway/client.py --port 5400 check 500 --round 1   # all there, round 1 values

``load`` and ``check`` print one JSON line (``check`` exits 1 when a subscriber is missing or
has another value). A command is resent only when its connection broke before the reply came:
SET and DEL write the same value again, so a resend is harmless.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any


class Unreachable(Exception):
    """No answer from the service port within the client's timeout."""


class RegistryClient:
    """One connection to ``host:port``, reopened as needed; :meth:`call` sends one command.

    Every call gets its answer within ``timeout_s`` (connect retries included) or raises
    :class:`Unreachable`; connection attempts are ``retry_s`` apart.
    """

    def __init__(self, host: str, port: int, *, timeout_s: float = 5.0,
                 retry_s: float = 0.05) -> None:
        self.host, self.port = host, port
        self.timeout_s, self.retry_s = timeout_s, retry_s
        self.reconnects = 0
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self, line: str) -> str:
        """The reply line to ``line`` (without the newline)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    reader, writer = await self._connect()
                    try:
                        writer.write(line.encode() + b"\n")
                        await writer.drain()
                        reply = await reader.readline()
                    except ConnectionError:
                        reply = b""
                    if reply:
                        return reply.decode().rstrip("\n")
                    self.close()  # the member went away before answering: try the next one
                    await asyncio.sleep(self.retry_s)
        except TimeoutError:
            raise Unreachable(f"{self.host}:{self.port} did not answer {line!r} within "
                              f"{self.timeout_s} s") from None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._streams is None:
            try:
                self._streams = await asyncio.open_connection(self.host, self.port)
            except OSError:  # refused: nobody active right now
                self.reconnects += 1
                await asyncio.sleep(self.retry_s)
        return self._streams

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def load(client: RegistryClient, count: int, round_: int) -> dict[str, Any]:
    """SET sub-0 .. sub-<count-1> to ``round-<round_>``."""
    start = time.monotonic()
    for i in range(count):
        reply = await client.call(f"SET sub-{i} round-{round_}")
        while reply.endswith("; retry"):  # not acknowledged by the standbys in time
            await asyncio.sleep(client.retry_s)
            reply = await client.call(f"SET sub-{i} round-{round_}")
        if not reply.startswith("OK "):
            raise Unreachable(f"SET sub-{i} refused: {reply}")
    return {"loaded": count, "round": round_, "seconds": round(time.monotonic() - start, 3),
            "reconnects": client.reconnects}


async def check(client: RegistryClient, count: int, round_: int) -> dict[str, Any]:
    """GET every subscriber :func:`load` set; which are missing or hold another value."""
    wrong: list[str] = []
    for i in range(count):
        reply = await client.call(f"GET sub-{i}")
        words = reply.split()
        if len(words) != 3 or words[0] != f"sub-{i}" or words[2] != f"round-{round_}":
            wrong.append(reply)
    who = await client.call("WHO")
    return {"checked": count, "round": round_, "wrong": len(wrong), "examples": wrong[:5],
            "served_by": who, "ok": not wrong}


async def run(args: argparse.Namespace) -> int:
    client = RegistryClient(args.host, args.port, timeout_s=args.timeout_s)
    try:
        if args.command in ("load", "check"):
            act = load if args.command == "load" else check
            result = await act(client, args.count, args.round)
            print(json.dumps(result))
            return 0 if result.get("ok", True) else 1
        line = " ".join([args.command.upper(), *args.words])
        print(await client.call(line))
        return 0
    except Unreachable as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    finally:
        client.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="talk to the subscriber registry")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5400)
    p.add_argument("--timeout-s", type=float, default=5.0, help="per command, retries included")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("set", "get", "del", "count", "who"):
        sub.add_parser(name).add_argument("words", nargs="*")
    for name in ("load", "check"):
        cmd = sub.add_parser(name)
        cmd.add_argument("count", type=int)
        cmd.add_argument("--round", type=int, default=1)
    sys.exit(asyncio.run(run(p.parse_args(argv))))


if __name__ == "__main__":
    main()
