"""A test kit for VNF authors and for vnfha's own tests.

Here: :class:`FakeClock` (``advance``, ``advance_until``) and :class:`MemoryStore` (the store
contract in process, with fault hooks). In submodules: :mod:`~vnfha.testing.etcd` (real etcd
clusters on loopback that can be killed, paused and restarted), :mod:`~vnfha.testing.tls` (a
test PKI), :mod:`~vnfha.testing.member_proc` (a member in a child process, for kill and pause
tests), :mod:`~vnfha.testing.replication` (an active's replication endpoint and standbys
without a member, and ``until`` for tests on the system clock), :mod:`~vnfha.testing.history`
(invariants I1-I8 over recorded histories), :mod:`~vnfha.testing.netns` (network
namespaces and nft faults for members beside a root-namespace etcd) and
:mod:`~vnfha.testing.lab` (``HostLab``: a lab of hosts on one bridge, each with its own IPv4
and IPv6 address, etcd and the NFVI bridge spread over them, partitions, drop rates and delays
per host or pair; docs/lab.md). A member's parts are reached through public hooks
(``member.follower``, ``member.group_state``, ``member.checkpoint.primary``), never private
attributes."""

from vnfha.store.memory import MemoryStore
from vnfha.testing.clock import FakeClock
from vnfha.testing.waiting import until

__all__ = ["FakeClock", "MemoryStore", "until"]
