"""Connection notifications: the message body the emulator sends and its delivery through moto's SNS.

AWS does not document the body of a VPC endpoint connection notification. The emulator sends the
JSON below (see docs/emulator.md); code under test must treat it as a trigger only and re-read the
connection with ``DescribeVpcEndpointConnections``. Delivery goes through
``sns_backends[account][region].publish`` — the same path as ``sns:Publish`` — so subscriptions,
SQS fan-out and filter policies behave as they do for any other message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.kms.models import kms_backends
from moto.sns.models import sns_backends
from moto.utilities.arns import parse_arn

from gatekeeper_ops.emulator.models import (
    ConnectionEvent,
    ConnectionNotification,
    PublishedNotification,
    VpcEndpointConnection,
)
from gatekeeper_ops.emulator.policy import Request, Verdict, evaluate

LOGGER = logging.getLogger("gatekeeper_ops.emulator")
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


@dataclass(frozen=True)
class NotificationSource:
    """On whose behalf vpce publishes: the notification owner's account and the service (or
    endpoint) ARN, the values AWS puts in ``aws:SourceAccount`` and ``aws:SourceArn``."""

    account: str
    arn: str

    def context(self) -> dict[str, str]:
        return {"aws:SourceAccount": self.account, "aws:SourceArn": self.arn}


def topic_allows_vpce(topic_policy: str | None, *, topic_arn: str, source: NotificationSource) -> Verdict:
    """Whether a topic policy lets ``vpce.amazonaws.com`` publish to ``topic_arn`` for ``source``."""
    verdict = evaluate(
        topic_policy,
        Request(VPCE_SERVICE_PRINCIPAL, "sns:Publish", topic_arn, source.context()),
    )
    return Verdict(verdict.allowed, f"topic policy: {verdict.reason}")


def key_allows_vpce(target: Any, *, topic_arn: str, source: NotificationSource) -> Verdict:
    """For a KMS-encrypted topic, whether the key policy lets vpce generate data keys and decrypt.

    An unencrypted topic needs nothing. The AWS managed key ``alias/aws/sns`` never admits a
    service principal (its policy is AWS's and cannot be changed), so a topic encrypted with it
    receives nothing from vpce.
    """
    key_id = str(getattr(target, "kms_master_key_id", "") or "")
    if not key_id:
        return Verdict(True, "the topic is not encrypted")
    if key_id.startswith("alias/aws/") or ":alias/aws/" in key_id:
        return Verdict(
            False, f"KMS key {key_id} is AWS managed; its policy does not admit {VPCE_SERVICE_PRINCIPAL}"
        )
    key = _kms_key(key_id, topic_arn)
    if key is None:
        return Verdict(False, f"KMS key {key_id} does not exist")
    if getattr(key, "key_state", "Enabled") != "Enabled":
        return Verdict(False, f"KMS key {key_id} is {key.key_state}")
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        verdict = evaluate(
            getattr(key, "policy", None),
            Request(
                VPCE_SERVICE_PRINCIPAL,
                action,
                str(key.arn),
                {**source.context(), "kms:EncryptionContext:aws:sns:topicArn": topic_arn},
            ),
        )
        if not verdict.allowed:
            return Verdict(False, f"key policy of {key_id}: {verdict.reason}")
    return Verdict(True, f"key policy of {key_id} allows {VPCE_SERVICE_PRINCIPAL}")


def _kms_key(key_id: str, topic_arn: str) -> Any | None:
    """moto's KMS key for a topic's ``KmsMasterKeyId`` (id, key ARN, alias or alias ARN)."""
    topic = parse_arn(topic_arn)
    account, region = topic.account, topic.region
    if key_id.startswith("arn:"):
        try:
            key_arn = parse_arn(key_id)
        except ValueError:
            return None
        account, region = key_arn.account or account, key_arn.region or region
    account_backends = kms_backends.get(account)
    backend = dict(account_backends.items()).get(region) if account_backends is not None else None
    if backend is None:
        return None
    name = backend.get_alias_name(key_id)
    raw_id = backend.get_key_id(name)
    if raw_id.startswith("alias/"):
        raw_id = next((k.id for k in backend.keys.values() if raw_id in k.aliases), "")
    return backend.keys.get(raw_id)


def delivery_verdict(target: Any, *, topic_arn: str, source: NotificationSource) -> Verdict:
    """Both gates AWS applies before a notification reaches the topic: topic policy, then key policy."""
    verdict = topic_allows_vpce(getattr(target, "policy", None), topic_arn=topic_arn, source=source)
    if not verdict.allowed:
        return verdict
    return key_allows_vpce(target, topic_arn=topic_arn, source=source)


def deliver(
    notification: ConnectionNotification,
    event: ConnectionEvent,
    connection: VpcEndpointConnection,
    *,
    body: str,
    source: NotificationSource,
    enforce_permissions: bool,
) -> PublishedNotification:
    """Publish one notification; a topic that is gone or refuses vpce is recorded, not raised.

    AWS delivers notifications asynchronously, so a delivery problem never fails the EC2 call that
    caused the event, and a refused one simply never arrives. The record (and a warning in the
    ``gatekeeper_ops.emulator`` log) says what happened.
    """
    target = topic(notification.topic_arn)
    reason = ""
    if target is None:
        reason = "topic does not exist"
    elif enforce_permissions:
        verdict = delivery_verdict(target, topic_arn=notification.topic_arn, source=source)
        reason = "" if verdict.allowed else verdict.reason
    if not reason:
        arn = parse_arn(notification.topic_arn)
        sns_backends[arn.account][arn.region].publish(body, arn=notification.topic_arn)
    else:
        LOGGER.warning(
            "connection notification %s (%s of %s) to %s dropped: %s",
            notification.notification_id,
            event.value,
            connection.vpc_endpoint_id,
            notification.topic_arn,
            reason,
        )
    return PublishedNotification(
        notification_id=notification.notification_id,
        topic_arn=notification.topic_arn,
        event=event,
        vpc_endpoint_id=connection.vpc_endpoint_id,
        message=body,
        delivered=not reason,
        reason=reason,
    )
