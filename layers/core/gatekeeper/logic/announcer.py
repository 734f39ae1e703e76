"""Sources of work for the decision path: they announce connections on the bus, never decide.

A connection notification is a trigger only. One that says `Connect` is announced as
`Endpoint Connection Requested` by its ids alone: the decider reads the connection from EC2 anyway
(and retries one EC2 does not list yet), so a Describe here would only be a second read of the same
thing. One that says `Accept` or `Reject` reports the gatekeeper's own work (or an operator's out of
band) and is dropped without a call: the decider freed any quota slot in the same transaction that
recorded a reject or revoke, and the reconciler's sweep frees the slot of a connection rejected out
of band. Any other notification (`Delete`, or one whose event the body does not say) is read back
from EC2 and, if it waits for acceptance, announced as `Endpoint Connection Requested`; if it is
gone, as `Endpoint Connection Closed`. The events of one SQS batch go on the bus together, in one
PutEvents call (ten entries), and a message whose event the bus refuses fails alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gatekeeper.adapters.bus import CLOSED, REQUESTED, REVOCATION_REQUESTED, EventPublisher
from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.models.connection import CLOSED_STATES, VpcEndpointConnection
from gatekeeper.models.connection_notification import parse_notification
from gatekeeper.models.errors import ConnectionNotVisible, PublishFailed
from gatekeeper.models.requests import SourceTrigger
from gatekeeper.observability import logger

Routed = Literal["requested", "closed", "ignored"]
BusEvent = tuple[str, dict[str, Any]]  # (detail type, detail)
# Describe is eventually consistent: a notified connection that EC2 does not list yet is retried
# through the queue's redelivery (its visibility timeout is the backoff) this many times; after that
# it is left to the reconciler's sweep, rather than filling the DLQ with connections that are gone.
NOT_VISIBLE_ATTEMPTS = 4


def route(connection: VpcEndpointConnection) -> Routed:
    if connection.vpc_endpoint_state == "pendingAcceptance":
        return "requested"
    if connection.vpc_endpoint_state in CLOSED_STATES:
        return "closed"
    return "ignored"


def _ref(vpc_endpoint_id: str, service_id: str) -> dict[str, str]:
    return {"VpcEndpointId": vpc_endpoint_id, "ServiceId": service_id}


@dataclass(frozen=True)
class Announcer:
    """Puts connections that need the decision path (or a quota release) on the bus.

    Events carry the connection as the source saw it, for subscribers; the decision path trusts
    only its ids and reads the rest from EC2 again.
    """

    endpoint_service: EndpointService
    bus: EventPublisher
    managed_services: frozenset[str]

    def requested(self, connections: Iterable[VpcEndpointConnection], trigger: SourceTrigger) -> int:
        details = [{"connection": c.to_event(), "trigger": trigger} for c in connections]
        return self.bus.publish(REQUESTED, details) if details else 0

    def requested_again(self, endpoints: Iterable[tuple[str, str]], trigger: SourceTrigger) -> int:
        """Put endpoints known only by id (endpoint, service) back on the decision path — claims and
        announcements a dead invocation left unfinished."""
        details: list[dict[str, Any]] = [
            {"connection": _ref(endpoint, service), "trigger": trigger} for endpoint, service in endpoints
        ]
        return self.bus.publish(REQUESTED, details) if details else 0

    def revocations(
        self, connections: Iterable[tuple[VpcEndpointConnection, str]], trigger: SourceTrigger
    ) -> int:
        """Ask the decision path to revoke connections whose tenant no longer allows them (with why).

        The decider reads the tenant record again and revokes only if it still forbids the
        connection (a stale request is a no-op).
        """
        details = [
            {"connection": c.to_event(), "trigger": trigger, "reason": reason} for c, reason in connections
        ]
        return self.bus.publish(REVOCATION_REQUESTED, details) if details else 0

    def closed(
        self, connections: Iterable[VpcEndpointConnection], trigger: SourceTrigger = "notification"
    ) -> int:
        details = [{"connection": c.to_event(), "trigger": trigger} for c in connections]
        return self.bus.publish(CLOSED, details) if details else 0

    def ingest(self, body: str, attempt: int = 1) -> Routed:
        """One SQS message from the notification topic → at most one event on the bus."""
        [outcome] = self.ingest_batch([(body, attempt)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def ingest_batch(self, messages: Sequence[tuple[str, int]]) -> list[Routed | Exception]:
        """SQS messages from the notification topic, (body, receive count) each → what became of
        each: where it was routed, or why it failed (it comes back to the queue); one message's
        failure is its own. Their events go on the bus together, ten a PutEvents call: a batch of
        Connect notifications costs one call, not one each."""
        outcomes: list[Routed | Exception] = []
        events: list[tuple[int, BusEvent]] = []  # (index of the message, its event)
        for index, (body, attempt) in enumerate(messages):
            try:
                routed, event = self._route(body, attempt)
            except Exception as exc:  # this message's failure alone, reported with it
                outcomes.append(exc)
                continue
            outcomes.append(routed)
            if event is not None:
                events.append((index, event))
        if not events:
            return outcomes
        failure: Exception | None = None
        refused: list[str | None] = []
        try:
            refused = self.bus.put([event for _, event in events])
        except Exception as exc:  # none of these events is known to be on the bus: all come back
            failure = exc
        for position, (index, (detail_type, _)) in enumerate(events):
            if failure is not None:
                outcomes[index] = failure
            elif (why := refused[position]) is not None:
                outcomes[index] = PublishFailed(f"the bus refused '{detail_type}': {why}")
        return outcomes

    def _route(self, body: str, attempt: int) -> tuple[Routed, BusEvent | None]:
        """Where one notification goes, and the event that takes it there (put by the caller)."""
        notification = parse_notification(body)
        if notification.event in ("Accept", "Reject"):
            return "ignored", None  # see the module docstring: the decider did it, and did the bookkeeping
        if notification.event == "Connect" and notification.service_id is not None:
            if notification.service_id not in self.managed_services:
                logger.warning(
                    "Notification for an unmanaged service ignored",
                    extra={"service_id": notification.service_id},
                )
                return "ignored", None
            ref = _ref(notification.vpc_endpoint_id, notification.service_id)
            return "requested", (REQUESTED, {"connection": ref, "trigger": "notification"})
        connection = self.endpoint_service.connection(notification.vpc_endpoint_id, notification.service_id)
        closing = notification.event in ("Reject", "Delete")
        stale = connection is not None and closing and connection.vpc_endpoint_state not in CLOSED_STATES
        if (connection is None or stale) and attempt < NOT_VISIBLE_ATTEMPTS:
            # Describe is eventually consistent: it may not list a new connection yet, or still show
            # the state from before the change that was notified (a Delete while it reads `available`).
            seen = "does not list" if connection is None else "still shows the old state of"
            raise ConnectionNotVisible(
                f"EC2 {seen} {notification.vpc_endpoint_id} (attempt {attempt}); the notification is "
                "delivered again after the queue's visibility timeout"
            )
        if connection is None:
            logger.warning(
                "Notified endpoint still not listed by EC2; left to the reconciler's sweep",
                extra={"vpc_endpoint_id": notification.vpc_endpoint_id, "attempt": attempt},
            )
            return "ignored", None
        if connection.service_id not in self.managed_services:
            logger.warning(
                "Notification for an unmanaged service ignored", extra={"service_id": connection.service_id}
            )
            return "ignored", None
        routed = route(connection)
        if routed == "requested":
            return routed, (REQUESTED, {"connection": connection.to_event(), "trigger": "notification"})
        if routed == "closed":
            return routed, (CLOSED, {"connection": connection.to_event(), "trigger": "notification"})
        return routed, None
