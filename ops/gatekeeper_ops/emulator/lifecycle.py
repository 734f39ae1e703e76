"""The PrivateLink connection lifecycle: who may connect, the state machine, describe and notifications.

This is the emulator's behaviour, independent of HTTP: the response handlers in ``responses`` parse
a request, call one function here and render the result. States move as on AWS::

    CreateVpcEndpoint ─► pendingAcceptance ─accept─► pending ─(next describe)─► available
                     └─► available   (service without AcceptanceRequired)
    reject: pendingAcceptance | pending | available ─► rejected       (rejecting available = revoke)
    consumer DeleteVpcEndpoints: any open state ─► deleted

The ``pending`` rule (deterministic, so tests can rely on it): an accept puts the connection in
``pending`` with ``EmulatorSettings.pending_reads`` describe reads left (default 1). Every describe
— the producer's ``DescribeVpcEndpointConnections`` or the consumer's ``DescribeVpcEndpoints`` —
first turns ``pending`` connections whose reads are used up into ``available``, then counts one
read for each ``pending`` connection it returns. So with the default the first describe after an
accept, from either side, shows ``pending`` and every later one ``available``.

The consumer's endpoint object in moto carries the same state as the connection, so
``DescribeVpcEndpoints`` follows the producer's decisions.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ec2.utils import random_vpc_ep_id

from gatekeeper_ops.emulator import errors
from gatekeeper_ops.emulator.identity import principal_allowed
from gatekeeper_ops.emulator.models import (
    ACCEPTABLE_STATES,
    CONNECTION_FILTERS,
    NOTIFICATION_FILTERS,
    OPEN_STATES,
    REJECTABLE_STATES,
    ConnectionEvent,
    ConnectionNotification,
    ConnectionState,
    PublishedNotification,
    VpcEndpointConnection,
)
from gatekeeper_ops.emulator.notifications import deliver, topic, topic_allows_vpce
from gatekeeper_ops.emulator.settings import current_settings
from gatekeeper_ops.emulator.store import (
    LOCK,
    EndpointService,
    PrivateLinkStore,
    ServiceRef,
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

Filters = Mapping[str, Sequence[str]]


# --- consumer side: CreateVpcEndpoint / DeleteVpcEndpoints / DescribeVpcEndpoints -----------------


def authorize_connection(
    *,
    consumer_account: str,
    consumer_region: str,
    caller: frozenset[str],
    service_name: str | None,
    service_region: str | None,
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
        )
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
            connection.state = ConnectionState.DELETED
            connection.pending_reads_left = 0
            _notify(ConnectionEvent.DELETE, connection, producer)


def settle_consumer_endpoints(consumer_account: str, consumer_region: str) -> None:
    """Apply the pending rule to a consumer's connected endpoints before moto describes them."""
    with LOCK:
        for connection in _consumer_connections(consumer_account, consumer_region, None):
            _settle(connection)


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
) -> tuple[list[dict[str, object]], str | None]:
    """One page of the caller's connections, in arrival order, and the token of the next page."""
    _check_filters(filters, CONNECTION_FILTERS)
    if max_results is not None and max_results < CONNECTIONS_PAGE_MIN:
        raise errors.max_results_invalid(max_results, f"greater than {CONNECTIONS_PAGE_MIN}")
    if max_results is not None and max_results > CONNECTIONS_PAGE_MAX:
        raise errors.max_results_invalid(max_results, f"less than or equal to {CONNECTIONS_PAGE_MAX}")
    settings = current_settings()
    page_size = max_results if max_results is not None else settings.default_page_size
    after = _decode_token(next_token) if next_token else 0
    with LOCK:
        producer = store_for(account_id, region)
        ordered = list(producer.connections.values())
        for connection in ordered:
            _settle(connection)
        matching = [c for c in ordered if c.sequence > after and _connection_matches(c, filters)]
        page = matching if page_size is None else matching[:page_size]
        token = _encode_token(page[-1].sequence) if len(page) < len(matching) else None
        for connection in page:
            _observe(connection)
        return [connection.to_api(settings.state_casing) for connection in page], token


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
    with LOCK:
        if owned_service(account_id, region, service_id) is None:
            raise errors.service_id_not_found(service_id)
        producer = store_for(account_id, region)
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
            if connection is None or connection.service_id != service_id:
                unsuccessful.append(errors.unsuccessful_unknown_endpoint(endpoint_id, service_id))
                continue
            if connection.state not in allowed:
                unsuccessful.append(
                    errors.unsuccessful_wrong_state(endpoint_id, connection.state.value, verb)
                )
                continue
            connection.state = target
            connection.pending_reads_left = current_settings().pending_reads if accept else 0
            _sync_endpoint(connection)
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
    if service_id and vpc_endpoint_id:
        raise errors.invalid_parameter_combination("Specify either ServiceId or VpcEndpointId, not both.")
    if not service_id and not vpc_endpoint_id:
        raise errors.missing_parameter("ServiceId or VpcEndpointId")
    if not topic_arn:
        raise errors.missing_parameter("ConnectionNotificationArn")
    if not events:
        raise errors.missing_parameter("ConnectionEvents")
    known = {event.value for event in ConnectionEvent}
    if unknown := {event for event in events if event not in known}:
        raise errors.invalid_connection_events(unknown)
    with LOCK:
        if service_id and owned_service(account_id, region, service_id) is None:
            raise errors.service_id_not_found(service_id)
        if vpc_endpoint_id and vpc_endpoint_id not in ec2_backend(account_id, region).vpc_end_points:
            raise errors.endpoint_id_not_found(vpc_endpoint_id)
        target = topic(topic_arn)
        if target is None:
            raise errors.topic_unusable(topic_arn, "the topic does not exist")
        if current_settings().require_topic_permission and not topic_allows_vpce(target.policy, account_id):
            raise errors.topic_unusable(
                topic_arn, "the topic policy does not allow vpce.amazonaws.com to publish"
            )
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
                dns_entries=[
                    {
                        "DnsName": f"{endpoint_id}.{service_id}.{region}.vpce.amazonaws.com",
                        "HostedZoneId": "Z7HUB22UULQXV",
                    }
                ],
                network_load_balancer_arns=list(service.config.network_load_balancer_arns),
                gateway_load_balancer_arns=list(service.config.gateway_load_balancer_arns),
                tags=[{"Key": key, "Value": value} for key, value in (tags or {}).items()],
            )
            endpoint_ids.append(endpoint_id)
        return endpoint_ids


# --- internals ------------------------------------------------------------------------------------


def _settle(connection: VpcEndpointConnection) -> None:
    if connection.state is ConnectionState.PENDING and connection.pending_reads_left <= 0:
        connection.state = ConnectionState.AVAILABLE
        _sync_endpoint(connection)


def _observe(connection: VpcEndpointConnection) -> None:
    if connection.state is ConnectionState.PENDING:
        connection.pending_reads_left -= 1


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
    """Send ``event`` to the service's notifications (producer) and the endpoint's (consumer)."""
    owners: list[PrivateLinkStore] = [producer]
    consumer = existing_store(connection.vpc_endpoint_owner, connection.vpc_endpoint_region)
    if consumer is not None and consumer is not producer:
        owners.append(consumer)
    settings = current_settings()
    for owner in owners:
        for notification in list(owner.notifications.values()):
            if not notification.wants(event, connection):
                continue
            owner.published.append(
                deliver(
                    notification,
                    event,
                    connection,
                    service_name=f"com.amazonaws.vpce.{connection.service_region}.{connection.service_id}",
                    producer_account=producer.account_id,
                    require_topic_permission=settings.require_topic_permission,
                )
            )


def _check_filters(filters: Filters, supported: frozenset[str]) -> None:
    for name in filters:
        if name not in supported:
            raise errors.invalid_filter(name)


def _connection_matches(connection: VpcEndpointConnection, filters: Filters) -> bool:
    return _matches(connection.filter_values, filters)


def _matches(values_of: Callable[[str], tuple[str, ...]], filters: Filters) -> bool:
    """Filters AND together; the values of one filter OR together.

    States compare case-insensitively, since AWS documents them in camelCase and boto3 in PascalCase.
    """
    for name, wanted in filters.items():
        have = values_of(name)
        if name == "vpc-endpoint-state":
            if not {value.casefold() for value in have} & {value.casefold() for value in wanted}:
                return False
        elif not any(value in have for value in wanted):
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
