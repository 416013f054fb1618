"""A test kit for VNF authors and for vnfha's own tests: a fake clock, an in-memory store with
fault hooks, and a launcher for real etcd clusters on loopback."""

from vnfha.store.memory import MemoryStore
from vnfha.testing.clock import FakeClock

__all__ = ["FakeClock", "MemoryStore"]
