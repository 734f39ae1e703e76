"""Connection notifications: the message body the emulator sends and its delivery through moto's SNS.

AWS does not document the body of a VPC endpoint connection notification. The emulator sends the
JSON below (see docs/emulator.md); code under test must treat it as a trigger only and re-read the
connection with ``DescribeVpcEndpointConnections``. Delivery goes through
``sns_backends[account][region].publish`` — the same path as ``sns:Publish`` — so subscriptions,
SQS fan-out and filter policies behave as they do for any other message.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from moto.sns.models import sns_backends
from moto.utilities.arns import parse_arn

from gatekeeper_ops.emulator.models import (
    ConnectionEvent,
    ConnectionNotification,
    PublishedNotification,
    VpcEndpointConnection,
)

VPCE_SERVICE_PRINCIPAL = "vpce.amazonaws.com"


def message_body(
    event: ConnectionEvent,
    connection: VpcEndpointConnection,
    notification: ConnectionNotification,
    *,
    service_name: str,
    now: datetime | None = None,
) -> str:
    """The emulator's notification body (AWS's real one is undocumented; do not depend on it)."""
    sent_at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return json.dumps(
        {
            "EventType": event.value,
            "ConnectionNotificationId": notification.notification_id,
            "ServiceId": connection.service_id,
            "ServiceName": service_name,
            "VpcEndpointId": connection.vpc_endpoint_id,
            "VpcEndpointOwner": connection.vpc_endpoint_owner,
            "VpcEndpointState": connection.state.value,
            "VpcEndpointRegion": connection.vpc_endpoint_region,
            "Region": connection.service_region,
            "Time": sent_at,
        },
        separators=(",", ":"),
    )


def topic(topic_arn: str) -> Any | None:
    """moto's SNS topic for an ARN, or ``None`` when the ARN is malformed or the topic is gone."""
    try:
        arn = parse_arn(topic_arn)
    except ValueError:
        return None
    if arn.service != "sns" or not arn.region or not arn.account:
        return None
    account_backends = sns_backends.get(arn.account)
    if account_backends is None:
        return None
    backend = dict(account_backends.items()).get(arn.region)
    if backend is None:
        return None
    return backend.topics.get(topic_arn)


def topic_allows_vpce(topic_policy: str, producer_account: str) -> bool:
    """Whether a topic policy lets ``vpce.amazonaws.com`` publish on behalf of ``producer_account``.

    An approximation of IAM, enough to catch a missing or mis-scoped statement: some ``Allow``
    statement must name the vpce service principal (or ``*``) for ``sns:Publish``, and an
    ``aws:SourceAccount`` condition on it, if present, must name the producer. Deny statements and
    other conditions are not evaluated.
    """
    try:
        policy = json.loads(topic_policy)
    except ValueError:
        return False
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return any(_statement_allows(statement, producer_account) for statement in statements)


def _statement_allows(statement: dict[str, Any], producer_account: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    actions = {action.lower() for action in _as_list(statement.get("Action"))}
    if not actions & {"sns:publish", "sns:*", "*"}:
        return False
    principal = statement.get("Principal")
    if principal != "*":
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if VPCE_SERVICE_PRINCIPAL not in services:
            return False
    for operator, conditions in (statement.get("Condition") or {}).items():
        for key, values in conditions.items():
            scoped = key.lower() == "aws:sourceaccount" and operator.lower() == "stringequals"
            if scoped and producer_account not in _as_list(values):
                return False
    return True


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)]


def deliver(
    notification: ConnectionNotification,
    event: ConnectionEvent,
    connection: VpcEndpointConnection,
    *,
    service_name: str,
    producer_account: str,
    require_topic_permission: bool,
) -> PublishedNotification:
    """Publish one notification; a topic that is gone or refuses vpce is recorded, not raised.

    AWS delivers notifications asynchronously, so a delivery problem never fails the EC2 call that
    caused the event; the record lets a test see what happened.
    """
    body = message_body(event, connection, notification, service_name=service_name)
    target = topic(notification.topic_arn)
    reason = ""
    if target is None:
        reason = "topic does not exist"
    elif require_topic_permission and not topic_allows_vpce(target.policy, producer_account):
        reason = f"topic policy does not allow {VPCE_SERVICE_PRINCIPAL} to publish"
    if not reason:
        arn = parse_arn(notification.topic_arn)
        sns_backends[arn.account][arn.region].publish(body, arn=notification.topic_arn)
    return PublishedNotification(
        notification_id=notification.notification_id,
        topic_arn=notification.topic_arn,
        event=event,
        vpc_endpoint_id=connection.vpc_endpoint_id,
        message=body,
        delivered=not reason,
        reason=reason,
    )
