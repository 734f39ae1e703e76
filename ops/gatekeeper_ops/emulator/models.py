"""The emulator's records: a producer-side VPC endpoint connection and a connection notification.

These are plain dataclasses. They know how to render themselves in the shapes botocore's EC2 model
expects (``VpcEndpointConnection``, ``ConnectionNotification``), so moto's response serializer can
emit them unchanged; they do not talk to moto or boto3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

StateCasing = Literal["camelCase", "PascalCase"]


class ConnectionState(StrEnum):
    """Endpoint/connection states, spelled the way the EC2 API emits them (camelCase)."""

    PENDING_ACCEPTANCE = "pendingAcceptance"
    PENDING = "pending"
    AVAILABLE = "available"
    DELETING = "deleting"
    DELETED = "deleted"
    REJECTED = "rejected"
    FAILED = "failed"
    EXPIRED = "expired"
    PARTIAL = "partial"

    def rendered(self, casing: StateCasing) -> str:
        """The state as a describe call shows it.

        The EC2 API emits camelCase (``pendingAcceptance``); only the SDK enums (botocore's model,
        the SDK docs) spell it ``PendingAcceptance``. ``PascalCase`` lets tests prove a caller
        normalises case anyway; filter values must be sent camelCase.
        """
        if casing == "PascalCase":
            return self.value[0].upper() + self.value[1:]
        return self.value

    @classmethod
    def parse(cls, value: str) -> ConnectionState:
        """Accept any casing (``pendingAcceptance``, ``PendingAcceptance``, ``PENDINGACCEPTANCE``)."""
        folded = value.replace("_", "").casefold()
        for state in cls:
            if state.value.casefold() == folded:
                return state
        raise ValueError(f"{value!r} is not a VPC endpoint state; expected one of {[s.value for s in cls]}")


class ConnectionEvent(StrEnum):
    """The events a connection notification can subscribe to (``ConnectionEvents``)."""

    CONNECT = "Connect"
    ACCEPT = "Accept"
    REJECT = "Reject"
    DELETE = "Delete"


#: States from which the producer may still accept or reject, and from which a reject revokes access.
ACCEPTABLE_STATES = frozenset({ConnectionState.PENDING_ACCEPTANCE})
REJECTABLE_STATES = frozenset(
    {ConnectionState.PENDING_ACCEPTANCE, ConnectionState.PENDING, ConnectionState.AVAILABLE}
)
#: States that age out of DescribeVpcEndpointConnections after ``closed_retention_seconds``.
CLOSED_STATES = frozenset({ConnectionState.DELETED, ConnectionState.REJECTED})
#: States in which the service still has a live connection (it cannot be deleted meanwhile).
LIVE_STATES = frozenset(
    {ConnectionState.PENDING_ACCEPTANCE, ConnectionState.PENDING, ConnectionState.AVAILABLE}
)
#: States in which a consumer's delete closes the connection (a deleted one stays deleted).
OPEN_STATES = frozenset(
    {
        ConnectionState.PENDING_ACCEPTANCE,
        ConnectionState.PENDING,
        ConnectionState.AVAILABLE,
        ConnectionState.REJECTED,
        ConnectionState.FAILED,
        ConnectionState.EXPIRED,
        ConnectionState.PARTIAL,
    }
)


@dataclass
class VpcEndpointConnection:
    """One consumer endpoint's connection to a producer's endpoint service, as the producer sees it.

    ``sequence`` is the position in the producer's store; it orders describe results and is the
    pagination cursor, so a page boundary never moves when states change between pages.
    """

    sequence: int
    connection_id: str
    service_id: str
    service_region: str
    vpc_endpoint_id: str
    vpc_endpoint_owner: str
    vpc_endpoint_region: str
    state: ConnectionState
    created_at: datetime
    ip_address_type: str = "ipv4"
    dns_entries: list[dict[str, str]] = field(default_factory=list)
    network_load_balancer_arns: list[str] = field(default_factory=list)
    gateway_load_balancer_arns: list[str] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    #: Describe calls left that still show a transient state (``pending``, ``deleting``); ``None``:
    #: no read limit, time alone ends it (see lifecycle's transition rule).
    pending_reads_left: int | None = 0
    #: When the connection entered its current state (``clock.now()``), for timed transitions and
    #: the age-out of closed connections.
    state_since: float = 0.0
    transit_gateway_attachment_id: str | None = None
    #: Eventual consistency: how many API-driven changes the connection has had (creation is 1),
    #: and what lagging describes still show instead of the truth.
    version: int = 0
    lag: ConsistencyLag | None = None

    def to_api(self, casing: StateCasing = "camelCase") -> dict[str, object]:
        """The ``VpcEndpointConnection`` shape of DescribeVpcEndpointConnections."""
        return {
            "ServiceId": self.service_id,
            "VpcEndpointId": self.vpc_endpoint_id,
            "VpcEndpointOwner": self.vpc_endpoint_owner,
            "VpcEndpointState": self.state.rendered(casing),
            "CreationTimestamp": self.created_at,
            "DnsEntries": [dict(entry) for entry in self.dns_entries],
            "NetworkLoadBalancerArns": list(self.network_load_balancer_arns),
            "GatewayLoadBalancerArns": list(self.gateway_load_balancer_arns),
            "IpAddressType": self.ip_address_type,
            "VpcEndpointConnectionId": self.connection_id,
            "Tags": [dict(tag) for tag in self.tags],
            "VpcEndpointRegion": self.vpc_endpoint_region,
        }

    def filter_values(self, name: str) -> tuple[str, ...]:
        """The values a DescribeVpcEndpointConnections filter compares against."""
        values: dict[str, tuple[str, ...]] = {
            "service-id": (self.service_id,),
            "vpc-endpoint-id": (self.vpc_endpoint_id,),
            "vpc-endpoint-owner": (self.vpc_endpoint_owner,),
            "vpc-endpoint-state": (self.state.value,),
            "vpc-endpoint-region": (self.vpc_endpoint_region,),
            "ip-address-type": (self.ip_address_type,),
            "transit-gateway-attachment-id": (
                (self.transit_gateway_attachment_id,) if self.transit_gateway_attachment_id else ()
            ),
        }
        return values[name]

    @property
    def cross_region(self) -> bool:
        return self.vpc_endpoint_region != self.service_region


@dataclass
class ConsistencyLag:
    """A connection's recent changes as eventually consistent describes still see them.

    Every reader (an access key) has caught up with version ``base`` of the connection, and the
    ones in ``synced`` with a later one; ``states`` holds the state each version since ``base`` had
    when it was replaced (``None``: the connection did not exist yet). ``reads`` counts each
    reader's stale describes of the latest change. At ``until`` (``clock.now()`` seconds) the lag
    ends for everyone.
    """

    base: int
    until: float
    states: dict[int, ConnectionState | None] = field(default_factory=dict)
    synced: dict[str, int] = field(default_factory=dict)
    reads: dict[str, int] = field(default_factory=dict)


CONNECTION_FILTERS = frozenset(
    {
        "transit-gateway-attachment-id",
        "service-id",
        "vpc-endpoint-id",
        "vpc-endpoint-owner",
        "vpc-endpoint-state",
        "vpc-endpoint-region",
        "ip-address-type",
    }
)


@dataclass
class ConnectionNotification:
    """A connection notification: which events of a service (or one endpoint) go to which SNS topic."""

    sequence: int
    notification_id: str
    topic_arn: str
    events: list[ConnectionEvent]
    region: str
    service_id: str | None = None
    vpc_endpoint_id: str | None = None
    state: str = "Enabled"

    def wants(self, event: ConnectionEvent, connection: VpcEndpointConnection) -> bool:
        if event not in self.events or self.state != "Enabled":
            return False
        if self.service_id is not None:
            return self.service_id == connection.service_id
        return self.vpc_endpoint_id == connection.vpc_endpoint_id

    def to_api(self) -> dict[str, object]:
        """The ``ConnectionNotification`` shape."""
        shape: dict[str, object] = {
            "ConnectionNotificationId": self.notification_id,
            "ConnectionNotificationType": "Topic",
            "ConnectionNotificationArn": self.topic_arn,
            "ConnectionEvents": [event.value for event in self.events],
            "ConnectionNotificationState": self.state,
            "ServiceRegion": self.region,
        }
        if self.service_id is not None:
            shape["ServiceId"] = self.service_id
        if self.vpc_endpoint_id is not None:
            shape["VpcEndpointId"] = self.vpc_endpoint_id
        return shape

    def filter_values(self, name: str) -> tuple[str, ...]:
        values: dict[str, tuple[str, ...]] = {
            "connection-notification-arn": (self.topic_arn,),
            "connection-notification-id": (self.notification_id,),
            "connection-notification-state": (self.state,),
            "connection-notification-type": ("Topic",),
            "service-id": (self.service_id,) if self.service_id else (),
            "vpc-endpoint-id": (self.vpc_endpoint_id,) if self.vpc_endpoint_id else (),
        }
        return values[name]


NOTIFICATION_FILTERS = frozenset(
    {
        "connection-notification-arn",
        "connection-notification-id",
        "connection-notification-state",
        "connection-notification-type",
        "service-id",
        "vpc-endpoint-id",
    }
)


@dataclass(frozen=True)
class PublishedNotification:
    """A record of one notification the emulator sent (or could not send), kept for tests and debugging."""

    notification_id: str
    topic_arn: str
    event: ConnectionEvent
    vpc_endpoint_id: str
    message: str
    delivered: bool
    reason: str = ""
