"""A user-space packet delayer on an nfnetlink queue, with no dependency: ``python -m
vnfha.testing.lab_delay --queue N --delay-ms D [--jitter-ms J]``.

The kernel here has no ``netem`` qdisc, so :class:`~vnfha.testing.lab.HostLab` delays packets
this way: an iptables rule (``-j NFQUEUE --queue-num N``; nftables' own ``queue`` statement is
not built into this kernel) hands each matching packet to this process over a
``NETLINK_NETFILTER`` socket; the process holds only the packet's id (metadata copy mode: no
payload crosses to user space) and gives the kernel the verdict ``NF_ACCEPT`` once it is due.
The packet itself stays in the kernel and goes on unchanged: the real packet is delayed, not a
copy of it, so TCP, UDP, ICMP and every other protocol see the same delay.

Guarantees:

- Each packet is released no earlier than ``delay_ms`` (plus a uniform draw in
  ``[-jitter_ms, +jitter_ms]``, never below zero) after this process received it, and as soon
  after that as the scheduler allows (measured here: about 0.1-0.5 ms late, docs/lab.md).
  With jitter, packets may be reordered, as on a real path with varying delay. At most
  20,000 packets are held at once (the queue's length); the kernel drops what comes past that,
  as an overloaded link would.
- It prints ``ready`` on stdout once it is bound to its queue: a rule that sends packets to the
  queue must be installed only after that (with no listener the kernel drops them).
- SIGTERM or SIGINT drains: the packets it holds are still released when due, then it exits 0.
  Remove the rule first, or the drain lasts as long as packets keep coming.
- It is bound to the queue of the network namespace it runs in (queues are per namespace).
- It runs at real-time priority (SCHED_FIFO 1) when allowed (root): its wake-ups come on time
  on a loaded machine. It costs 6 to 25 us of CPU a packet (less when packets come together),
  so it passes 45,000 to 150,000 packets a second; a flood past that holds a core (real-time
  throttling leaves 5 % of it) while the queue fills.
- It runs until signalled: the lab that started it stops it, and the lab's sweep kills it if
  that lab's owner died.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator, Sequence

__all__ = ["NfQueue", "NfQueueError", "main"]

_NETLINK_NETFILTER = 12
_NFNL_SUBSYS_QUEUE = 3
_NFQNL_MSG_PACKET = 0
_NFQNL_MSG_VERDICT = 1
_NFQNL_MSG_CONFIG = 2
_NFQNL_MSG_VERDICT_BATCH = 3
_NLMSG_ERROR = 2
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NFQA_PACKET_HDR = 1
_NFQA_VERDICT_HDR = 2
_NFQA_CFG_CMD = 1
_NFQA_CFG_PARAMS = 2
_NFQA_CFG_QUEUE_MAXLEN = 3
_NFQNL_CFG_CMD_BIND = 1
_NFQNL_COPY_META = 1
_NF_ACCEPT = 1
_NLA_TYPE_MASK = 0x3FFF
_NLMSG_HDR = struct.Struct("=IHHII")
_NLA_HDR = struct.Struct("=HH")
_NFGENMSG = struct.Struct("!BBH")  # family, version, queue number (network order)

_QUEUE_MAXLEN = 20_000
"""Packets the kernel holds for us at once; past it, it drops (a 100 ms delay at 20 k pps)."""
_RCVBUF_BYTES = 8 << 20
_VERDICTS_PER_SEND = 1000
"""Verdicts are 32 bytes each: a thousand fit a netlink socket's default send buffer."""
_RECEIVE_BATCH = 256
_REALTIME_PRIORITY = 1
"""SCHED_FIFO's lowest priority: above every normal process, so that a busy machine does not
add its run-queue wait to the delay (p99 100.3 ms instead of 104 ms for 100 ms, docs/lab.md)."""


class NfQueueError(OSError):
    """The kernel refused a queue configuration (e.g. the queue is bound by another process)."""


def _attr(kind: int, payload: bytes) -> bytes:
    length = _NLA_HDR.size + len(payload)
    return _NLA_HDR.pack(length, kind) + payload + b"\0" * (-length % 4)


def _message(msg_type: int, flags: int, seq: int, queue: int, attrs: bytes) -> bytes:
    body = _NFGENMSG.pack(socket.AF_UNSPEC, 0, queue) + attrs
    kind = (_NFNL_SUBSYS_QUEUE << 8) | msg_type
    return _NLMSG_HDR.pack(_NLMSG_HDR.size + len(body), kind, flags, seq, 0) + body


def _messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each netlink message in one datagram."""
    offset = 0
    while offset + _NLMSG_HDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSG_HDR.unpack_from(data, offset)
        if length < _NLMSG_HDR.size:
            return
        yield kind, data[offset + _NLMSG_HDR.size: offset + length]
        offset += (length + 3) & ~3


def _packet_id(payload: bytes) -> int | None:
    """The id in a queued packet's NFQA_PACKET_HDR attribute."""
    offset = _NFGENMSG.size
    while offset + _NLA_HDR.size <= len(payload):
        length, kind = _NLA_HDR.unpack_from(payload, offset)
        if length < _NLA_HDR.size:
            return None
        if kind & _NLA_TYPE_MASK == _NFQA_PACKET_HDR:
            return int(struct.unpack_from("!I", payload, offset + _NLA_HDR.size)[0])
        offset += (length + 3) & ~3
    return None


class NfQueue:
    """One nfnetlink queue of the current network namespace, bound in metadata copy mode.

    :meth:`receive` returns the ids of packets the kernel queued; :meth:`accept` lets them go.
    Construction raises :class:`NfQueueError` if the kernel refuses the binding.
    """

    def __init__(self, queue: int) -> None:
        self.queue = queue
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, _RCVBUF_BYTES)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF_BYTES)
        self.sock.bind((0, 0))
        self._seq = 0
        try:
            self._configure(_attr(_NFQA_CFG_CMD, struct.pack("!BxH", _NFQNL_CFG_CMD_BIND, 0)))
            self._configure(_attr(_NFQA_CFG_PARAMS, struct.pack("!IB", 0, _NFQNL_COPY_META)))
            self._configure(_attr(_NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", _QUEUE_MAXLEN)))
        except BaseException:
            self.sock.close()
            raise

    def _configure(self, attrs: bytes) -> None:
        self._seq += 1
        self.sock.send(_message(_NFQNL_MSG_CONFIG, _NLM_F_REQUEST | _NLM_F_ACK, self._seq,
                                self.queue, attrs))
        for kind, payload in _messages(self.sock.recv(65536)):
            if kind == _NLMSG_ERROR:
                error = -struct.unpack_from("=i", payload)[0]
                if error:
                    raise NfQueueError(error, f"nfnetlink queue {self.queue}: "
                                       f"{os.strerror(error)}")
                return

    def receive(self, most: int = _RECEIVE_BATCH) -> list[int]:
        """The ids of the packets the kernel has queued to us: blocks until there is one, then
        takes up to ``most`` datagrams that are already waiting."""
        packet = (_NFNL_SUBSYS_QUEUE << 8) | _NFQNL_MSG_PACKET
        ids: list[int] = []
        for flags in (0, *([socket.MSG_DONTWAIT] * (most - 1))):
            try:
                data = self.sock.recv(65536, flags)
            except BlockingIOError:
                break
            except OSError as e:  # ENOBUFS: we fell behind; the kernel dropped what did not fit
                if e.errno == errno.ENOBUFS:
                    continue
                raise
            found = (_packet_id(payload) for kind, payload in _messages(data) if kind == packet)
            ids += [i for i in found if i is not None]
        return ids

    def accept(self, ids: Sequence[int]) -> None:
        """Give the verdict NF_ACCEPT to each packet in ``ids`` (a datagram per
        ``_VERDICTS_PER_SEND``)."""
        for start in range(0, len(ids), _VERDICTS_PER_SEND):
            self.sock.send(b"".join(
                _message(_NFQNL_MSG_VERDICT, _NLM_F_REQUEST, 0, self.queue,
                         _attr(_NFQA_VERDICT_HDR, struct.pack("!II", _NF_ACCEPT, packet)))
                for packet in ids[start:start + _VERDICTS_PER_SEND]))

    def accept_through(self, last: int) -> None:
        """NF_ACCEPT every packet still queued whose id is at most ``last`` (one message)."""
        self.sock.send(_message(_NFQNL_MSG_VERDICT_BATCH, _NLM_F_REQUEST, 0, self.queue,
                                _attr(_NFQA_VERDICT_HDR, struct.pack("!II", _NF_ACCEPT, last))))

    def close(self) -> None:
        """Unbind (the kernel drops the packets still queued) and close the socket."""
        self.sock.close()


def run(queue: NfQueue, delay_s: float, jitter_s: float) -> None:
    """Hold every packet of ``queue`` for ``delay_s`` (+- ``jitter_s``); return after SIGTERM
    once nothing is held."""
    draining = False

    def drain(_signum: int, _frame: object) -> None:
        nonlocal draining
        draining = True

    # a signal wakes the select below through this pipe (select itself resumes after EINTR)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, drain)
    held: list[tuple[float, int]] = []  # (due, packet id), a heap
    netlink = queue.sock.fileno()
    while True:
        now = time.monotonic()
        due = []
        while held and held[0][0] <= now:
            due.append(heapq.heappop(held)[1])
        if jitter_s or len(due) < 2:
            queue.accept(due)
        else:  # a constant delay releases packets in arrival order, which is id order
            queue.accept_through(due[-1])
        if draining and not held:
            return
        wait = max(0.0, held[0][0] - time.monotonic()) if held else None
        readable, _, _ = select.select([netlink, wake_r], [], [], wait)
        if wake_r in readable:
            os.read(wake_r, 512)
        if netlink not in readable:
            continue
        packets = queue.receive()
        arrived = time.monotonic()  # after the reads: every packet was in hand by then
        for packet in packets:
            extra = random.uniform(-jitter_s, jitter_s) if jitter_s else 0.0
            heapq.heappush(held, (arrived + max(0.0, delay_s + extra), packet))


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: bind, print ``ready``, delay until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m vnfha.testing.lab_delay",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--queue", type=int, required=True, help="nfqueue number (0-65535)")
    parser.add_argument("--delay-ms", type=float, required=True, help="added to every packet")
    parser.add_argument("--jitter-ms", type=float, default=0.0,
                        help="a uniform draw in [-J, +J] added to each packet's delay")
    args = parser.parse_args(argv)
    if args.delay_ms < 0 or args.jitter_ms < 0:
        parser.error("--delay-ms and --jitter-ms must not be negative")
    try:
        queue = NfQueue(args.queue)
    except OSError as e:
        print(f"lab_delay: {e}", file=sys.stderr)
        return 1
    with contextlib.suppress(OSError):  # without the privilege: the normal scheduler
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(_REALTIME_PRIORITY))
    print("ready", flush=True)
    try:
        run(queue, args.delay_ms / 1000, args.jitter_ms / 1000)
    finally:
        queue.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
