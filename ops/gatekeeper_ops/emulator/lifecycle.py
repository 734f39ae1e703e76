"""The PrivateLink connection lifecycle: who may connect, the state machine, describe and notifications.

This is the emulator's behaviour, independent of HTTP: the response handlers in ``responses`` parse
a request, call one function here and render the result. States move as on AWS::

    CreateVpcEndpoint ─► pendingAcceptance ─accept─► pending ─(time or reads)─► available
                     └─► available   (service without AcceptanceRequired)
    reject: pendingAcceptance | pending | available ─► rejected       (rejecting available = revoke)
    consumer DeleteVpcEndpoints: any open state ─► deleting ─(time or reads)─► deleted
    deleted, rejected ─(closed_retention_seconds)─► gone from DescribeVpcEndpointConnections

The transition rule for the transient states ``pending`` and ``deleting``: the state lasts
``pending_seconds`` / ``deleting_seconds`` of ``clock.now()`` time, or — when ``pending_reads`` /
``deleting_reads`` is not ``None`` — until that many describes have shown it, whichever ends first.
Every describe (the producer's ``DescribeVpcEndpointConnections`` or the consumer's
``DescribeVpcEndpoints``) first settles what is due, then counts one read for each transient
connection it returns. With the defaults (1 s, 1 read) the first describe right after an accept
shows ``pending``, and every later one, or any describe a second later, ``available``.

Eventual consistency (``EmulatorSettings.eventual_consistency``, off by default): after a
connection is created or changes state, the producer's describe may show each reader the previous
view for a bounded while (``stale_reads`` describes, at most ``stale_seconds``), never a view older
than one that reader has seen; notifications are queued and delivered later, possibly reordered
(``deliver_notifications``).

The consumer's endpoint object in moto carries the same state as the connection, so
``DescribeVpcEndpoints`` follows the producer's decisions.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ec2.utils import random_vpc_ep_id
from moto.utilities.utils import get_partition

from gatekeeper_ops.emulator import clock, errors
from gatekeeper_ops.emulator.identity import principal_allowed
from gatekeeper_ops.emulator.models import (
    ACCEPTABLE_STATES,
    CLOSED_STATES,
    CONNECTION_FILTERS,
    LIVE_STATES,
    NOTIFICATION_FILTERS,
    OPEN_STATES,
    REJECTABLE_STATES,
    ConnectionEvent,
    ConnectionNotification,
    ConnectionState,
    ConsistencyLag,
    PublishedNotification,
    VpcEndpointConnection,
)
from gatekeeper_ops.emulator.notifications import (
    NotificationSource,
    deliver,
    message_body,
    topic,
    topic_allows_vpce,
)
from gatekeeper_ops.emulator.settings import EmulatorSettings, current_settings
from gatekeeper_ops.emulator.store import (
    LOCK,
    EndpointService,
    PrivateLinkStore,
    QueuedNotification,
    ServiceRef,
    all_stores,
    consumer_endpoint,
    ec2_backend,
    existing_store,
    find_service,
    new_connection_id,
    new_notification_id,
    owned_service,
    store_for,
)

#: ``com.amazonaws.vpce.<region>.vpce-svc-<hex>``: the name of a customer endpoint service.
SERVICE_NAME = re.compile(r"com\.amazonaws\.vpce\.(?P<region>[a-z0-9-]+)\.(?P<service_id>vpce-svc-[0-9a-f]+)")

CONNECTIONS_PAGE_MIN = 5
CONNECTIONS_PAGE_MAX = 1000
#: What an endpoint's ``IpAddressType`` needs from the service's ``SupportedIpAddressTypes``.
IP_ADDRESS_TYPE_NEEDS = {
    "ipv4": frozenset({"ipv4"}),
    "ipv6": frozenset({"ipv6"}),
    "dualstack": frozenset({"ipv4", "ipv6"}),
}

Filters = Mapping[str, Sequence[str]]


# --- consumer side: CreateVpcEndpoint / DeleteVpcEndpoints / DescribeVpcEndpoints -----------------


def authorize_connection(
    *,
    consumer_account: str,
    consumer_region: str,
    caller: frozenset[str],
    service_name: str | None,
    service_region: str | None,
    ip_address_type: str | None = None,
) -> EndpointService | None:
    """The endpoint service a CreateVpcEndpoint connects to, or ``None`` for an AWS service name.

    Raises ``InvalidServiceName`` — AWS's answer for a service that does not exist — when the
    service is unknown, lives in another region than the requested ``ServiceRegion`` (default:
    the caller's region), does not serve the caller's region (its own region plus
    ``SupportedRegions``), or does not allow the caller's principal. The service owner may
    always connect to its own service.
    """
    match = SERVICE_NAME.fullmatch(service_name or "")
    if match is None or service_name is None:
        return None
    target_region = service_region or consumer_region
    with LOCK:
        service = None
        if match["region"] == target_region:
            service = find_service(match["service_id"], target_region)
        if service is None or consumer_region not in service.supported_regions:
            raise errors.service_name_not_found(service_name)
        if consumer_account != service.account_id and not principal_allowed(
            caller, service.allowed_principals
        ):
            raise errors.service_name_not_found(service_name)
        wanted = IP_ADDRESS_TYPE_NEEDS.get(ip_address_type or "ipv4")
        if wanted is None or not wanted <= service.supported_ip_address_types:
            raise errors.ip_address_type_not_supported(
                service.service_id, ip_address_type or "ipv4", service.supported_ip_address_types
            )
        return service


def register_connection(
    service: EndpointService,
    endpoint: Any,
    *,
    consumer_account: str,
    consumer_region: str,
    ip_address_type: str | None,
) -> VpcEndpointConnection:
    """Record the connection moto's new endpoint makes to ``service`` and announce ``Connect``."""
    with LOCK:
        producer = store_for(service.account_id, service.region)
        now = clock.now()
        connection = VpcEndpointConnection(
            sequence=producer.next_sequence(),
            connection_id=new_connection_id(),
            service_id=service.service_id,
            service_region=service.region,
            vpc_endpoint_id=str(endpoint.id),
            vpc_endpoint_owner=consumer_account,
            vpc_endpoint_region=consumer_region,
            state=(
                ConnectionState.PENDING_ACCEPTANCE
                if service.acceptance_required
                else ConnectionState.AVAILABLE
            ),
            created_at=_aware(endpoint.creation_timestamp),
            ip_address_type=ip_address_type or "ipv4",
            dns_entries=[_dns_entry(entry) for entry in endpoint.dns_entries or []],
            network_load_balancer_arns=list(service.config.network_load_balancer_arns),
            gateway_load_balancer_arns=list(service.config.gateway_load_balancer_arns),
            state_since=now,
        )
        _start_lag(connection, None, current_settings(), now)
        producer.connections[connection.vpc_endpoint_id] = connection
        store_for(consumer_account, consumer_region).outbound[connection.vpc_endpoint_id] = ServiceRef(
            account_id=service.account_id, region=service.region, service_id=service.service_id
        )
        # moto ignores ServiceRegion and IpAddressType; set them so DescribeVpcEndpoints shows them.
        endpoint.service_region = service.region
        endpoint.ip_address_type = connection.ip_address_type
        _sync_endpoint(connection)
        _notify(ConnectionEvent.CONNECT, connection, producer)
        return connection


def endpoints_deleted(consumer_account: str, consumer_region: str, endpoint_ids: Iterable[str]) -> None:
    """Close the connections of endpoints moto has just deleted and announce ``Delete``."""
    with LOCK:
        consumer = existing_store(consumer_account, consumer_region)
        if consumer is None:
            return
        for endpoint_id in endpoint_ids:
            ref = consumer.outbound.get(endpoint_id)
            endpoint = consumer_endpoint(consumer_account, consumer_region, endpoint_id)
            if ref is None or endpoint is None or endpoint.state != ConnectionState.DELETED.value:
                continue
            producer = store_for(ref.account_id, ref.region)
            connection = producer.connections.get(endpoint_id)
            if connection is None or connection.state not in OPEN_STATES:
                continue
            settings = current_settings()
            _enter(connection, ConnectionState.DELETING, settings, reads=settings.deleting_reads)
            _notify(ConnectionEvent.DELETE, connection, producer)


def settle_consumer_endpoints(consumer_account: str, consumer_region: str) -> None:
    """Apply the pending rule to a consumer's connected endpoints before moto describes them."""
    with LOCK:
        settings, now = current_settings(), clock.now()
        for connection in _consumer_connections(consumer_account, consumer_region, None):
            _settle(connection, settings, now)


def observe_consumer_endpoints(
    consumer_account: str, consumer_region: str, endpoint_ids: Iterable[str]
) -> None:
    """Count one describe read for each returned endpoint whose connection is ``pending``."""
    with LOCK:
        for connection in _consumer_connections(consumer_account, consumer_region, set(endpoint_ids)):
            _observe(connection)


# --- producer side: Describe / Accept / RejectVpcEndpointConnections ------------------------------


def describe_connections(
    account_id: str,
    region: str,
    *,
    filters: Filters,
    max_results: int | None,
    next_token: str | None,
    reader: str = "",
) -> tuple[list[dict[str, object]], str | None]:
    """One page of the caller's connections, in arrival order, and the token of the next page.

    ``reader`` (the caller's access key) is whose view of EC2's eventual consistency it is."""
    _check_filters(filters, CONNECTION_FILTERS)
    if max_results is not None and max_results < CONNECTIONS_PAGE_MIN:
        raise errors.max_results_invalid(max_results, f"greater than {CONNECTIONS_PAGE_MIN}")
    if max_results is not None:
        # The API reference: "if MaxResults is given a value larger than 1,000, only 1,000 results
        # are returned".
        max_results = min(max_results, CONNECTIONS_PAGE_MAX)
    settings = current_settings()
    page_size = max_results if max_results is not None else settings.default_page_size
    after = _decode_token(next_token) if next_token else 0
    with LOCK:
        producer = store_for(account_id, region)
        now = clock.now()
        _settle_store(producer, settings, now)
        visible: list[tuple[VpcEndpointConnection, VpcEndpointConnection]] = []
        for connection in producer.connections.values():
            if connection.sequence <= after:
                continue
            view = _consistent_view(connection, reader, now)
            shows_view = view is not None and _connection_matches(view, filters)
            if view is not connection and (shows_view or _connection_matches(connection, filters)):
                # A describe that would have returned the connection uses up one stale read.
                _count_stale_read(connection, reader, settings)
            if view is not None and shows_view:
                visible.append((connection, view))
        page = visible if page_size is None else visible[:page_size]
        token = _encode_token(page[-1][0].sequence) if len(page) < len(visible) else None
        for connection, view in page:
            if view is connection:
                _observe(connection)
        return [view.to_api(settings.state_casing) for _, view in page], token


def service_has_live_connections(account_id: str, region: str, service_id: str) -> bool:
    """Whether a service still has connections that keep it from being deleted."""
    with LOCK:
        producer = existing_store(account_id, region)
        if producer is None:
            return False
        _settle_store(producer, current_settings(), clock.now())
        return any(
            c.service_id == service_id and c.state in LIVE_STATES for c in producer.connections.values()
        )


def accept_connections(
    account_id: str, region: str, service_id: str | None, endpoint_ids: Sequence[str]
) -> list[dict[str, object]]:
    """Accept ``pendingAcceptance`` connections; return ``Unsuccessful`` items for the rest."""
    return _decide(account_id, region, service_id, endpoint_ids, accept=True)


def reject_connections(
    account_id: str, region: str, service_id: str | None, endpoint_ids: Sequence[str]
) -> list[dict[str, object]]:
    """Reject (or revoke) connections; return ``Unsuccessful`` items for the rest."""
    return _decide(account_id, region, service_id, endpoint_ids, accept=False)


def _decide(
    account_id: str, region: str, service_id: str | None, endpoint_ids: Sequence[str], *, accept: bool
) -> list[dict[str, object]]:
    if not service_id:
        raise errors.missing_parameter("ServiceId")
    if not endpoint_ids:
        # An empty VpcEndpointIds list reaches EC2 as no parameter at all, which it refuses.
        raise errors.missing_parameter("VpcEndpointId")
    with LOCK:
        if owned_service(account_id, region, service_id) is None:
            raise errors.service_id_not_found(service_id)
        producer = store_for(account_id, region)
        settings, now = current_settings(), clock.now()
        allowed, target, event, verb = (
            (ACCEPTABLE_STATES, ConnectionState.PENDING, ConnectionEvent.ACCEPT, "accepted")
            if accept
            else (REJECTABLE_STATES, ConnectionState.REJECTED, ConnectionEvent.REJECT, "rejected")
        )
        unsuccessful: list[dict[str, object]] = []
        action = "accept" if accept else "reject"
        for endpoint_id in dict.fromkeys(endpoint_ids):
            queued = producer.faults.get((action, endpoint_id))
            if queued:
                unsuccessful.append(errors.unsuccessful(endpoint_id, *queued.pop(0)))
                continue
            connection = producer.connections.get(endpoint_id)
            if connection is not None:
                _settle(connection, settings, now)
            if connection is None or connection.service_id != service_id:
                unsuccessful.append(errors.unsuccessful_unknown_endpoint(endpoint_id, service_id))
                continue
            if connection.state not in allowed:
                unsuccessful.append(
                    errors.unsuccessful_wrong_state(endpoint_id, connection.state.value, verb)
                )
                continue
            _enter(connection, target, settings, reads=settings.pending_reads if accept else 0)
            _notify(event, connection, producer)
        return unsuccessful


def inject_unsuccessful(
    endpoint_id: str,
    *,
    action: str = "accept",
    times: int = 1,
    code: str = "InternalError",
    message: str = "An internal error has occurred",
    account_id: str = "123456789012",
    region: str = "us-east-1",
) -> None:
    """Make the next ``times`` Accept (or Reject) calls for an endpoint answer it in ``Unsuccessful``
    with this error, whatever its state — AWS does so on internal errors. For resilience tests."""
    if action not in ("accept", "reject"):
        raise ValueError(f"action must be accept or reject, not {action!r}")
    with LOCK:
        store_for(account_id, region).faults.setdefault((action, endpoint_id), []).extend(
            [(code, message)] * times
        )


# --- connection notifications ---------------------------------------------------------------------


def create_notification(
    account_id: str,
    region: str,
    *,
    service_id: str | None,
    vpc_endpoint_id: str | None,
    topic_arn: str | None,
    events: Sequence[str],
) -> ConnectionNotification:
    """A notification for one of the caller's services (producer) or endpoints (consumer)."""
    _check_one_subject(service_id, vpc_endpoint_id)
    if not topic_arn:
        raise errors.missing_parameter("ConnectionNotificationArn")
    _check_connection_events(events)
    with LOCK:
        _check_subject_exists(account_id, region, service_id, vpc_endpoint_id)
        _check_topic_usable(account_id, region, service_id, vpc_endpoint_id, topic_arn)
        store = store_for(account_id, region)
        notification = ConnectionNotification(
            sequence=store.next_sequence(),
            notification_id=new_notification_id(),
            topic_arn=topic_arn,
            events=[ConnectionEvent(event) for event in dict.fromkeys(events)],
            region=region,
            service_id=service_id or None,
            vpc_endpoint_id=vpc_endpoint_id or None,
        )
        store.notifications[notification.notification_id] = notification
        return notification


def _check_one_subject(service_id: str | None, vpc_endpoint_id: str | None) -> None:
    """A notification is for a service or for an endpoint: exactly one of them."""
    if service_id and vpc_endpoint_id:
        raise errors.invalid_parameter_combination("Specify either ServiceId or VpcEndpointId, not both.")
    if not service_id and not vpc_endpoint_id:
        raise errors.missing_parameter("ServiceId or VpcEndpointId")


def _check_connection_events(events: Sequence[str]) -> None:
    if not events:
        raise errors.missing_parameter("ConnectionEvents")
    known = {event.value for event in ConnectionEvent}
    if unknown := {event for event in events if event not in known}:
        raise errors.invalid_connection_events(unknown)


def _check_subject_exists(
    account_id: str, region: str, service_id: str | None, vpc_endpoint_id: str | None
) -> None:
    if service_id and owned_service(account_id, region, service_id) is None:
        raise errors.service_id_not_found(service_id)
    if vpc_endpoint_id and vpc_endpoint_id not in ec2_backend(account_id, region).vpc_end_points:
        raise errors.endpoint_id_not_found(vpc_endpoint_id)


def _check_topic_usable(
    account_id: str, region: str, service_id: str | None, vpc_endpoint_id: str | None, topic_arn: str
) -> None:
    """The topic exists and, when the settings ask for it, its policy lets vpce publish for the subject."""
    target = topic(topic_arn)
    if target is None:
        raise errors.topic_unusable(topic_arn, "the topic does not exist")
    if current_settings().require_topic_permission:
        source = _notification_source(account_id, region, service_id, vpc_endpoint_id)
        verdict = topic_allows_vpce(target.policy, topic_arn=topic_arn, source=source)
        if not verdict.allowed:
            raise errors.topic_unusable(topic_arn, verdict.reason)


def describe_notifications(
    account_id: str,
    region: str,
    *,
    notification_id: str | None,
    filters: Filters,
    max_results: int | None,
    next_token: str | None,
) -> tuple[list[dict[str, object]], str | None]:
    _check_filters(filters, NOTIFICATION_FILTERS)
    if max_results is not None and max_results < 1:
        raise errors.max_results_invalid(max_results, "greater than 0")
    after = _decode_token(next_token) if next_token else 0
    with LOCK:
        store = store_for(account_id, region)
        if notification_id and notification_id not in store.notifications:
            raise errors.notification_not_found(notification_id)
        matching = [
            n
            for n in store.notifications.values()
            if n.sequence > after
            and (not notification_id or n.notification_id == notification_id)
            and _matches(n.filter_values, filters)
        ]
        page = matching if max_results is None else matching[:max_results]
        token = _encode_token(page[-1].sequence) if len(page) < len(matching) else None
        return [n.to_api() for n in page], token


def delete_notifications(account_id: str, region: str, notification_ids: Sequence[str]) -> None:
    """Delete all of them, or none: an unknown id fails the whole call (as Terraform expects of AWS)."""
    with LOCK:
        store = store_for(account_id, region)
        for notification_id in notification_ids:
            if notification_id not in store.notifications:
                raise errors.notification_not_found(notification_id)
        for notification_id in notification_ids:
            store.notifications.pop(notification_id, None)


def published_notifications(account_id: str, region: str) -> list[PublishedNotification]:
    """What the emulator sent (or failed to send) for notifications owned by this account/region."""
    with LOCK:
        store = existing_store(account_id, region)
        return list(store.published) if store else []


# --- bulk seeding for tests -----------------------------------------------------------------------


def seed_connections(
    service_id: str,
    count: int,
    *,
    account_id: str = DEFAULT_ACCOUNT_ID,
    region: str = "us-east-1",
    consumer_account_id: str = "444455556666",
    state: ConnectionState | str = ConnectionState.PENDING_ACCEPTANCE,
    vpc_endpoint_region: str | None = None,
    tags: Mapping[str, str] | None = None,
    transit_gateway_attachment_id: str | None = None,
) -> list[str]:
    """Put ``count`` connections straight into a producer's store; return their endpoint ids.

    For bulk tests (pagination over thousands of connections) where creating consumer endpoints
    through the API would be slow. Seeded connections have no consumer endpoint in moto and send no
    notifications; accept, reject and describe treat them like any other. In-process only: call it
    in the process that runs moto (the test process, or the one that started the server).
    """
    initial = state if isinstance(state, ConnectionState) else ConnectionState.parse(state)
    with LOCK:
        service = owned_service(account_id, region, service_id)
        if service is None:
            raise LookupError(f"endpoint service {service_id} does not exist in {account_id}/{region}")
        producer = store_for(account_id, region)
        created_at = datetime.now(UTC)
        endpoint_ids = []
        for _ in range(count):
            endpoint_id = random_vpc_ep_id()
            producer.connections[endpoint_id] = VpcEndpointConnection(
                sequence=producer.next_sequence(),
                connection_id=new_connection_id(),
                service_id=service_id,
                service_region=region,
                vpc_endpoint_id=endpoint_id,
                vpc_endpoint_owner=consumer_account_id,
                vpc_endpoint_region=vpc_endpoint_region or region,
                state=initial,
                created_at=created_at,
                state_since=clock.now(),
                dns_entries=[
                    {
                        "DnsName": f"{endpoint_id}.{service_id}.{region}.vpce.amazonaws.com",
                        "HostedZoneId": "Z7HUB22UULQXV",
                    }
                ],
                network_load_balancer_arns=list(service.config.network_load_balancer_arns),
                gateway_load_balancer_arns=list(service.config.gateway_load_balancer_arns),
                tags=[{"Key": key, "Value": value} for key, value in (tags or {}).items()],
                transit_gateway_attachment_id=transit_gateway_attachment_id,
            )
            endpoint_ids.append(endpoint_id)
        return endpoint_ids


# --- internals ------------------------------------------------------------------------------------


def _enter(
    connection: VpcEndpointConnection,
    state: ConnectionState,
    settings: EmulatorSettings,
    *,
    reads: int | None,
) -> None:
    """Move a connection to ``state`` (an API-driven change: eventual consistency may hide it)."""
    now = clock.now()
    _start_lag(connection, connection.state, settings, now)
    connection.state = state
    connection.state_since = now
    connection.pending_reads_left = reads
    _sync_endpoint(connection)


def _settle(connection: VpcEndpointConnection, settings: EmulatorSettings, now: float) -> None:
    """End a transient state (``pending``, ``deleting``) whose time or reads are used up."""
    if connection.state is ConnectionState.PENDING:
        duration, following = settings.pending_seconds, ConnectionState.AVAILABLE
    elif connection.state is ConnectionState.DELETING:
        duration, following = settings.deleting_seconds, ConnectionState.DELETED
    else:
        return
    reads_used_up = connection.pending_reads_left is not None and connection.pending_reads_left <= 0
    due = connection.state_since + duration
    if reads_used_up or now >= due:
        connection.state = following
        connection.state_since = min(now, due)
        connection.pending_reads_left = 0
        _sync_endpoint(connection)


def _settle_store(producer: PrivateLinkStore, settings: EmulatorSettings, now: float) -> None:
    """Settle every connection and drop closed ones older than ``closed_retention_seconds``."""
    retention = settings.closed_retention_seconds
    for connection in list(producer.connections.values()):
        _settle(connection, settings, now)
        if (
            retention is not None
            and connection.state in CLOSED_STATES
            and now - connection.state_since >= retention
        ):
            del producer.connections[connection.vpc_endpoint_id]


def _observe(connection: VpcEndpointConnection) -> None:
    if (
        connection.state in (ConnectionState.PENDING, ConnectionState.DELETING)
        and connection.pending_reads_left is not None
    ):
        connection.pending_reads_left -= 1


def _start_lag(
    connection: VpcEndpointConnection,
    replaced: ConnectionState | None,
    settings: EmulatorSettings,
    now: float,
) -> None:
    """An API-driven change replaces ``replaced`` (``None``: creation); under eventual consistency
    readers that have not caught up keep seeing it, or an older view, for ``stale_seconds``."""
    previous = connection.version
    connection.version += 1
    consistency = settings.eventual_consistency
    if consistency is None or consistency.stale_seconds == 0 or consistency.stale_reads == 0:
        connection.lag = None
        return
    lag = connection.lag
    if lag is None or now >= lag.until:
        lag = connection.lag = ConsistencyLag(base=previous, until=now)
    # A change during a lag keeps the older view for readers that have not caught up with the
    # earlier change; readers that have see the state this change replaces.
    lag.states[previous] = replaced
    lag.until = now + consistency.stale_seconds
    lag.reads = {}


def _consistent_view(
    connection: VpcEndpointConnection, reader: str, now: float
) -> VpcEndpointConnection | None:
    """What describe shows ``reader``: the connection, a stale view, or ``None`` (not visible yet).

    A stale view is the newest version the reader has caught up with, so its reads never go back.
    """
    lag = connection.lag
    if lag is None:
        return connection
    if now >= lag.until:
        connection.lag = None
        return connection
    version = lag.synced.get(reader, lag.base)
    if version >= connection.version:
        return connection
    shown = lag.states[version]
    return None if shown is None else replace(connection, state=shown, lag=None)


def _count_stale_read(connection: VpcEndpointConnection, reader: str, settings: EmulatorSettings) -> None:
    """One stale describe by ``reader``; once it has had ``stale_reads``, it has caught up."""
    lag, consistency = connection.lag, settings.eventual_consistency
    if lag is None:
        return
    lag.reads[reader] = lag.reads.get(reader, 0) + 1
    limit = None if consistency is None else consistency.stale_reads
    if consistency is None or (limit is not None and lag.reads[reader] >= limit):
        lag.synced[reader] = connection.version


def _sync_endpoint(connection: VpcEndpointConnection) -> None:
    """Give the consumer's moto endpoint the connection's state (it owns what DescribeVpcEndpoints shows)."""
    endpoint = consumer_endpoint(
        connection.vpc_endpoint_owner, connection.vpc_endpoint_region, connection.vpc_endpoint_id
    )
    if endpoint is not None:
        endpoint.state = connection.state.value


def _consumer_connections(
    consumer_account: str, consumer_region: str, endpoint_ids: set[str] | None
) -> list[VpcEndpointConnection]:
    consumer = existing_store(consumer_account, consumer_region)
    if consumer is None:
        return []
    found = []
    for endpoint_id, ref in consumer.outbound.items():
        if endpoint_ids is not None and endpoint_id not in endpoint_ids:
            continue
        producer = existing_store(ref.account_id, ref.region)
        connection = producer.connections.get(endpoint_id) if producer else None
        if connection is not None:
            found.append(connection)
    return found


def _notify(event: ConnectionEvent, connection: VpcEndpointConnection, producer: PrivateLinkStore) -> None:
    """Send ``event`` to the service's notifications (producer) and the endpoint's (consumer).

    Synchronous by default; under eventual consistency the notification is queued with a seeded
    delay and goes out from ``deliver_notifications``.
    """
    owners: list[PrivateLinkStore] = [producer]
    consumer = existing_store(connection.vpc_endpoint_owner, connection.vpc_endpoint_region)
    if consumer is not None and consumer is not producer:
        owners.append(consumer)
    settings = current_settings()
    consistency = settings.eventual_consistency
    now = clock.now()
    service_name = f"com.amazonaws.vpce.{connection.service_region}.{connection.service_id}"
    for owner in owners:
        for notification in list(owner.notifications.values()):
            if not notification.wants(event, connection):
                continue
            body = message_body(event, connection, notification, service_name=service_name)
            source = _notification_source(
                owner.account_id, owner.region, notification.service_id, notification.vpc_endpoint_id
            )
            if consistency is None:
                owner.published.append(
                    deliver(
                        notification,
                        event,
                        connection,
                        body=body,
                        source=source,
                        enforce_permissions=settings.enforce_notification_permissions,
                    )
                )
                continue
            rng = _random(owner, consistency.seed)
            _queue_state["anything_queued"] = True
            owner.queued.append(
                QueuedNotification(
                    sequence=owner.next_sequence(),
                    due=now + rng.uniform(0, consistency.max_delivery_delay_seconds),
                    order=rng.random() if consistency.reorder else 0.0,
                    notification=notification,
                    event=event,
                    connection=replace(connection, lag=None),
                    body=body,
                    source=source,
                )
            )


def deliver_notifications(now: float | None = None) -> int:
    """Deliver queued notifications that are due (eventual consistency); return how many went out.

    Every emulated EC2 call runs this first, so a caller that keeps talking to EC2 sees them
    arrive; a test or a local runtime that only drains queues calls it itself.
    """
    if not _queue_state["anything_queued"]:
        return 0  # the common case (no eventual consistency): every EC2 call passes through here
    settings = current_settings()
    moment = clock.now() if now is None else now
    sent = 0
    with LOCK:
        for owner in all_stores():
            due = sorted((q for q in owner.queued if q.due <= moment), key=lambda q: (q.order, q.sequence))
            if not due:
                continue
            owner.queued = [q for q in owner.queued if q.due > moment]
            for queued in due:
                owner.published.append(
                    deliver(
                        queued.notification,
                        queued.event,
                        queued.connection,
                        body=queued.body,
                        source=queued.source,
                        enforce_permissions=settings.enforce_notification_permissions,
                    )
                )
                sent += 1
        _queue_state["anything_queued"] = any(owner.queued for owner in all_stores())
    return sent


# Whether any store may hold queued notifications (stale True after a moto reset is harmless).
_queue_state = {"anything_queued": False}


def _random(owner: PrivateLinkStore, seed: int) -> random.Random:
    if owner.rng is None:
        # One generator per account/region, reset with moto: the same calls give the same run.
        owner.rng = random.Random(f"{seed}:{owner.account_id}:{owner.region}")  # noqa: S311 - not crypto
    return owner.rng


def _notification_source(
    account_id: str, region: str, service_id: str | None, vpc_endpoint_id: str | None
) -> NotificationSource:
    """``aws:SourceAccount``/``aws:SourceArn`` of vpce's publish: the notification's owner and its
    service (``vpc-endpoint-service/<id>``) or endpoint (``vpc-endpoint/<id>``)."""
    partition = get_partition(region)
    resource = f"vpc-endpoint-service/{service_id}" if service_id else f"vpc-endpoint/{vpc_endpoint_id}"
    return NotificationSource(account=account_id, arn=f"arn:{partition}:ec2:{region}:{account_id}:{resource}")


def _check_filters(filters: Filters, supported: frozenset[str]) -> None:
    for name in filters:
        if name not in supported:
            raise errors.invalid_filter(name)


def _connection_matches(connection: VpcEndpointConnection, filters: Filters) -> bool:
    for name, wanted in filters.items():
        if name == "vpc-endpoint-region" and "cross-region" in wanted and connection.cross_region:
            continue  # the documented value that matches every connection from another region
        if not _matches(connection.filter_values, {name: wanted}):
            return False
    return True


def _matches(values_of: Callable[[str], tuple[str, ...]], filters: Filters) -> bool:
    """Filters AND together; the values of one filter OR together.

    Values compare exactly, as EC2's do: a state filter must say ``pendingAcceptance`` (the wire
    spelling), and ``PendingAcceptance`` (the SDK enum spelling) matches nothing.
    """
    for name, wanted in filters.items():
        have = values_of(name)
        if not any(value in have for value in wanted):
            return False
    return True


def _encode_token(sequence: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": sequence}).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise errors.invalid_next_token(token) from error
    if not isinstance(after, int) or after < 0:
        raise errors.invalid_next_token(token)
    return after


def _aware(moment: datetime) -> datetime:
    # moto stores naive UTC timestamps.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dns_entry(entry: Mapping[str, str]) -> dict[str, str]:
    # moto's endpoint keeps snake_case keys; the API shape is DnsName/HostedZoneId.
    return {
        "DnsName": entry.get("dns_name") or entry.get("DnsName", ""),
        "HostedZoneId": entry.get("hosted_zone_id") or entry.get("HostedZoneId", ""),
    }
