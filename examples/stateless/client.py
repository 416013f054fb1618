"""Queries for the stateless responder from many source ports, to show how the kernel spreads
them over the members bound to the shared port.

    python examples/stateless/client.py --port 5500 --queries 300 --sockets 30

Each of ``--sockets`` UDP sockets (each its own source port, so the kernel may hash it to
another member) sends its share of the queries one at a time, retrying every
``--retry-after-s`` until ``--timeout-s``. Prints one JSON object: ``answered``, ``unanswered``,
``by_member`` (answers per member), ``wrong`` (answers with another address than the one every
member must give). Exit status 1 when a query went unanswered or an answer was wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import zlib
from dataclasses import dataclass
from typing import Any


def expected_address(name: str) -> str:
    """What every member answers for ``name`` (the responder's ``resolve``)."""
    return f"198.51.100.{1 + zlib.crc32(name.lower().encode()) % 254}"


@dataclass(frozen=True, slots=True)
class Options:
    port: int = 5500
    host: str = "127.0.0.1"
    queries: int = 300
    sockets: int = 30
    retry_after_s: float = 0.05
    timeout_s: float = 3.0


class _Socket(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.replies.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        pass  # nobody bound to the port right now: the retry goes on


async def _ask(options: Options, index: int, names: list[str]) -> list[bytes | None]:
    """One socket's queries, in turn; None for each one given up."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Socket, remote_addr=(options.host, options.port))
    answers: list[bytes | None] = []
    try:
        for name in names:
            reply: bytes | None = None
            give_up = loop.time() + options.timeout_s
            while reply is None and loop.time() < give_up:
                transport.sendto(name.encode())
                try:
                    async with asyncio.timeout(options.retry_after_s):
                        data = await protocol.replies.get()
                    if data.startswith(name.encode() + b" "):  # not a late answer to a retry
                        reply = data
                except TimeoutError:
                    continue
            answers.append(reply)
    finally:
        transport.close()
    return answers


async def run_client(options: Options) -> dict[str, Any]:
    """Send the queries and say who answered them (see the module docstring)."""
    names = [f"host{i}.example.test" for i in range(options.queries)]
    shares = [names[i::options.sockets] for i in range(options.sockets)]
    results = await asyncio.gather(*(_ask(options, i, share) for i, share in enumerate(shares)))
    by_member: collections.Counter[str] = collections.Counter()
    unanswered = wrong = 0
    for share, answers in zip(shares, results, strict=True):
        for name, reply in zip(share, answers, strict=True):
            if reply is None:
                unanswered += 1
                continue
            words = reply.decode().split()
            by_member[words[-1]] += 1
            wrong += words[:3] != [name, "A", expected_address(name)]
    return {"queries": options.queries, "answered": options.queries - unanswered,
            "unanswered": unanswered, "wrong": wrong, "by_member": dict(sorted(by_member.items())),
            "ok": unanswered == 0 and wrong == 0}


def main(argv: list[str] | None = None) -> None:
    d = Options()
    p = argparse.ArgumentParser(description="queries for the stateless responder")
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port)
    p.add_argument("--queries", type=int, default=d.queries)
    p.add_argument("--sockets", type=int, default=d.sockets)
    p.add_argument("--retry-after-s", type=float, default=d.retry_after_s)
    p.add_argument("--timeout-s", type=float, default=d.timeout_s)
    args = p.parse_args(argv)
    result = asyncio.run(run_client(Options(args.port, args.host, args.queries, args.sockets,
                                            args.retry_after_s, args.timeout_s)))
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
