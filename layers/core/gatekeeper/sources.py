"""Sources of work for the decision path: they announce connections on the bus, never decide.

A connection notification is a trigger only; the connection is read back from EC2 and, if it
waits for acceptance, announced as `Endpoint Connection Requested`; if it is gone, as
`Endpoint Connection Closed`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from gatekeeper.adapters.bus import CLOSED, REQUESTED, EventPublisher
from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.models import (
    CLOSED_STATES,
    ConnectionClosed,
    ConnectionRequested,
    Trigger,
    VpcEndpointConnection,
)
from gatekeeper.notifications import parse_notification
from gatekeeper.observability import logger

Routed = Literal["requested", "closed", "ignored"]


def route(connection: VpcEndpointConnection) -> Routed:
    if connection.vpc_endpoint_state == "pendingAcceptance":
        return "requested"
    if connection.vpc_endpoint_state in CLOSED_STATES:
        return "closed"
    return "ignored"


@dataclass(frozen=True)
class Announcer:
    """Puts connections that need the decision path (or a quota release) on the bus."""

    endpoints: EndpointService
    bus: EventPublisher
    managed_services: frozenset[str]

    def requested(
        self, connections: Iterable[VpcEndpointConnection], trigger: Trigger, actor: str = "auto"
    ) -> int:
        details = [
            ConnectionRequested(connection=c, trigger=trigger, actor=actor).model_dump(
                mode="json", by_alias=True
            )
            for c in connections
        ]
        return self.bus.publish(REQUESTED, details) if details else 0

    def revocations(self, connections: Iterable[tuple[VpcEndpointConnection, str]], trigger: Trigger) -> int:
        """Ask the decision path to revoke connections whose tenant no longer allows them (with why).

        A request to reject, from a source rather than an operator: the decider reads the tenant
        record again and revokes only if it still forbids the connection (a stale request is a no-op).
        """
        details = [
            ConnectionRequested(
                connection=c, trigger=trigger, requested_decision="rejected", reason=reason
            ).model_dump(mode="json", by_alias=True)
            for c, reason in connections
        ]
        return self.bus.publish(REQUESTED, details) if details else 0

    def closed(self, connections: Iterable[VpcEndpointConnection], trigger: Trigger = "notification") -> int:
        details = [
            ConnectionClosed(connection=c, trigger=trigger).model_dump(mode="json", by_alias=True)
            for c in connections
        ]
        return self.bus.publish(CLOSED, details) if details else 0

    def ingest(self, body: str) -> Routed:
        """One SQS message from the notification topic → at most one event on the bus."""
        notification = parse_notification(body)
        connection = self.endpoints.connection(notification.vpc_endpoint_id, notification.service_id)
        if connection is None:
            logger.info(
                "Notified endpoint has no connection any more",
                extra={"vpc_endpoint_id": notification.vpc_endpoint_id},
            )
            return "ignored"
        if connection.service_id not in self.managed_services:
            logger.warning(
                "Notification for an unmanaged service ignored", extra={"service_id": connection.service_id}
            )
            return "ignored"
        routed = route(connection)
        if routed == "requested":
            self.requested([connection], "notification")
        elif routed == "closed":
            self.closed([connection])
        return routed
