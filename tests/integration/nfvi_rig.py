"""Helpers of the integration tests with an NFVI bridge (the ``bridge`` fixture, a sim bridge
in the test's process, is in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib

from vnfha.admin import GroupNotFound, group_status
from vnfha.store.etcd import EtcdOptions, EtcdStore
from vnfha.testing.etcd import EtcdCluster


async def wait_active(etcd: EtcdCluster, group: str, member: str,
                      timeout_s: float = 20.0) -> None:
    """Until etcd says ``member`` holds ``group``'s active key (TimeoutError after
    ``timeout_s``)."""
    store = EtcdStore(EtcdOptions(endpoints=etcd.endpoints))
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                with contextlib.suppress(GroupNotFound):
                    if (await group_status(store, "/vnfha", group)).active == member:
                        return
                await asyncio.sleep(0.05)
    finally:
        await store.close()
