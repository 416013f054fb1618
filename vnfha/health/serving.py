"""What a member answers on grpc.health.v1, on its replication port.

Every member serves the standard health protocol (``grpc.health.v1.Health``) on the same port as
its replication endpoint (``Config.listen``), so that ``grpc_health_probe``, a Kubernetes gRPC
probe or a load balancer can ask it three questions::

    service                              SERVING while
    ""                                   the member runs and none of its health checks is FAILING
    "vnfha.active"                       the member holds the active role (N_WAY_ACTIVE: every
                                         active member), whatever its health
    "vnfha.replication.v1.Replication"   the member is the active: only an active serves the
                                         replication stream; standbys answer FAILED_PRECONDITION

Every one of them is NOT_SERVING before the member has joined and from the moment it starts
stopping; an unknown service name is NOT_FOUND, as the standard servicer answers.

Guarantees:

- :func:`statuses` is the whole decision: pure, total over its inputs, tested on its own.
- :class:`MemberServing` applies it on every change it is told of (start, role change, health
  verdict change, stop) and a ``Watch`` stream sees each change; setting the same statuses again
  wakes nobody.
- "vnfha.active" follows the member's *own* view of its role, which is the view it acts on: a
  deposed active that has not noticed yet still answers SERVING, exactly as long as it would
  still try to act (its deadline bounds that; see docs/failover.md). Routing traffic by this
  probe is therefore as safe as the member's self-fencing, not safer.
"""

from __future__ import annotations

from typing import Final

from vnfha.grpc_health import HealthService, ServingStatus
from vnfha.model import Role
from vnfha.replication.wire import SERVICE as REPLICATION_SERVICE

__all__ = ["ACTIVE_SERVICE", "REPLICATION_SERVICE", "MemberServing", "statuses"]

ACTIVE_SERVICE: Final = "vnfha.active"
"""The health service name that is SERVING only on the active member."""


def statuses(*, running: bool, role: Role, healthy: bool) -> dict[str, ServingStatus]:
    """The status of each service name a member serves, for one state of the member.

    ``running``: joined and not stopping; ``role``: the member's own view of its role;
    ``healthy``: no health check is FAILING.
    """
    def serving(condition: bool) -> ServingStatus:
        return ServingStatus.SERVING if condition else ServingStatus.NOT_SERVING

    active = running and role is Role.ACTIVE
    return {
        "": serving(running and healthy),
        ACTIVE_SERVICE: serving(active),
        REPLICATION_SERVICE: serving(active),
    }


class MemberServing:
    """The member's :class:`~vnfha.grpc_health.HealthService` and the state it reflects.

    The member calls :meth:`update` with whatever changed; the service's statuses are then
    :func:`statuses` of the whole state.
    """

    def __init__(self) -> None:
        self.service = HealthService()
        """Register ``service.handler()`` on the member's gRPC server."""
        self._running = False
        self._role = Role.SPARE
        self._healthy = True
        self._apply()

    def update(self, *, running: bool | None = None, role: Role | None = None,
               healthy: bool | None = None) -> None:
        """Record what changed (None: unchanged) and set every status that differs."""
        if running is not None:
            self._running = running
        if role is not None:
            self._role = role
        if healthy is not None:
            self._healthy = healthy
        self._apply()

    def close(self) -> None:
        """Everything NOT_SERVING, and every open ``Watch`` stream ends (the server stops)."""
        self.update(running=False)
        self.service.close()

    def _apply(self) -> None:
        wanted = statuses(running=self._running, role=self._role, healthy=self._healthy)
        for name, status in wanted.items():
            if self.service.status(name) != status:
                self.service.set(name, status)
