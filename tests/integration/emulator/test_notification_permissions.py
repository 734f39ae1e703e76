"""Notification permissions, enforced by default: vpce must be allowed by the topic policy and, for a
KMS-encrypted topic, by the key policy, or nothing arrives (as on AWS). The stack's own policies
come from template.yaml, provisioned by gatekeeper_ops.stack, so the real ones are evaluated."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest

from gatekeeper_ops.emulator import EmulatorSettings, published_notifications
from gatekeeper_ops.emulator.provisioning import create_interface_endpoint
from gatekeeper_ops.stack import EmulatedStack, load_template, provision
from tests.integration.emulator.conftest import (
    PRODUCER,
    REGION,
    Consumer,
    Producer,
    producer_session,
)

#: The template's resources a connection notification travels through, and nothing else.
NOTIFICATION_RESOURCES = (
    "TopicKey",
    "ConnectionNotificationTopic",
    "ConnectionNotificationTopicPolicy",
    "Fn::ForEach::ConnectionNotifications",  # one per managed service
)


def notification_template(change: Any = None) -> dict[str, Any]:
    """template.yaml with only the notification path; ``change(resources)`` may edit a copy."""
    template = copy.deepcopy(load_template())
    resources = {name: template["Resources"][name] for name in NOTIFICATION_RESOURCES}
    if change is not None:
        change(resources)
    return {**template, "Resources": resources, "Outputs": {}}


def provision_notifications(producer: Producer, template: dict[str, Any]) -> tuple[EmulatedStack, str]:
    """The template's topic, key, policy and notification for the producer's service; returns the
    stack and an SQS queue subscribed to the topic."""
    stack = provision(
        producer_session(), {"EndpointServiceIds": producer.service.service_id}, template=template
    )
    queue_url = producer.sqs.create_queue(QueueName="notifications")["QueueUrl"]
    queue_arn = producer.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    producer.sns.subscribe(
        TopicArn=stack.ref("ConnectionNotificationTopic"), Protocol="sqs", Endpoint=queue_arn
    )
    return stack, queue_url


def arrived(producer: Producer, queue_url: str) -> list[str]:
    messages = producer.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(json.loads(m["Body"])["Message"])["EventType"] for m in messages]


def statement(resources: dict[str, Any], logical_id: str, sid: str) -> dict[str, Any]:
    properties = resources[logical_id]["Properties"]
    document = properties.get("KeyPolicy") or properties["PolicyDocument"]
    return next(s for s in document["Statement"] if s["Sid"] == sid)


def test_the_stacks_own_topic_and_key_policies_let_vpce_deliver(
    producer: Producer, consumer: Consumer
) -> None:
    stack, queue_url = provision_notifications(producer, notification_template())
    topic = producer.sns.get_topic_attributes(TopicArn=stack.ref("ConnectionNotificationTopic"))

    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert topic["Attributes"]["KmsMasterKeyId"] == stack.ref("TopicKey")  # encrypted, as deployed
    assert arrived(producer, queue_url) == ["Connect"]
    [record] = published_notifications(PRODUCER, REGION)
    assert (record.vpc_endpoint_id, record.delivered, record.reason) == (endpoint_id, True, "")


def test_a_topic_policy_that_omits_vpce_delivers_nothing_and_says_why(
    producer: Producer, consumer: Consumer, caplog: pytest.LogCaptureFixture
) -> None:
    def for_another_service(resources: dict[str, Any]) -> None:
        statement(resources, "ConnectionNotificationTopicPolicy", "VpceConnectionNotifications")[
            "Principal"
        ] = {"Service": "events.amazonaws.com"}

    _, queue_url = provision_notifications(producer, notification_template(for_another_service))

    with caplog.at_level(logging.WARNING, logger="gatekeeper_ops.emulator"):
        endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert arrived(producer, queue_url) == []
    [record] = published_notifications(PRODUCER, REGION)
    assert not record.delivered
    assert record.reason.startswith("topic policy: no statement allows vpce.amazonaws.com to sns:Publish")
    assert f"Connect of {endpoint_id}" in caplog.text
    assert "dropped: topic policy" in caplog.text


def test_a_key_policy_that_blocks_vpce_delivers_nothing(producer: Producer, consumer: Consumer) -> None:
    def without_vpce(resources: dict[str, Any]) -> None:
        policy = resources["TopicKey"]["Properties"]["KeyPolicy"]
        policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "VpceNotificationsPublish"]

    _, queue_url = provision_notifications(producer, notification_template(without_vpce))

    create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert arrived(producer, queue_url) == []
    [record] = published_notifications(PRODUCER, REGION)
    assert not record.delivered
    assert "key policy of" in record.reason
    assert "kms:GenerateDataKey" in record.reason


def test_a_key_policy_that_allows_decrypt_only_is_not_enough(producer: Producer, consumer: Consumer) -> None:
    def decrypt_only(resources: dict[str, Any]) -> None:
        statement(resources, "TopicKey", "VpceNotificationsPublish")["Action"] = ["kms:Decrypt"]

    _, queue_url = provision_notifications(producer, notification_template(decrypt_only))

    create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert arrived(producer, queue_url) == []


def test_an_explicit_deny_in_the_topic_policy_wins(producer: Producer, consumer: Consumer) -> None:
    def deny_vpce(resources: dict[str, Any]) -> None:
        document = resources["ConnectionNotificationTopicPolicy"]["Properties"]["PolicyDocument"]
        document["Statement"].append(
            {
                "Sid": "NoVpce",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": PRODUCER}},
            }
        )

    _, queue_url = provision_notifications(producer, notification_template(deny_vpce))

    create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert arrived(producer, queue_url) == []
    [record] = published_notifications(PRODUCER, REGION)
    assert record.reason == "topic policy: statement NoVpce explicitly denies sns:Publish"


@pytest.mark.parametrize(
    ("pattern", "delivered"),
    [
        ("arn:aws:ec2:us-east-1:123456789012:vpc-endpoint-service/{service_id}", True),
        ("arn:aws:ec2:us-east-1:123456789012:vpc-endpoint-service/*", True),
        ("arn:aws:ec2:us-east-1:123456789012:vpc-endpoint-service/vpce-svc-0other", False),
        ("arn:aws:ec2:us-east-1:123456789012:vpc-endpoint/*", False),
    ],
)
def test_aws_source_arn_is_the_endpoint_service_arn(
    producer: Producer, consumer: Consumer, pattern: str, delivered: bool
) -> None:
    service_id = producer.service.service_id

    def scoped_to_source_arn(resources: dict[str, Any]) -> None:
        statement(resources, "ConnectionNotificationTopicPolicy", "VpceConnectionNotifications")["Condition"][
            "ArnLike"
        ] = {"aws:SourceArn": [pattern.format(service_id=service_id)]}

    _, queue_url = provision_notifications(producer, notification_template(scoped_to_source_arn))

    create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert arrived(producer, queue_url) == (["Connect"] if delivered else [])


def test_a_topic_encrypted_with_the_aws_managed_key_receives_nothing(
    producer: Producer, consumer: Consumer
) -> None:
    def aws_managed_key(resources: dict[str, Any]) -> None:
        resources["ConnectionNotificationTopic"]["Properties"]["KmsMasterKeyId"] = "alias/aws/sns"

    _, queue_url = provision_notifications(producer, notification_template(aws_managed_key))

    create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert arrived(producer, queue_url) == []
    [record] = published_notifications(PRODUCER, REGION)
    assert "AWS managed" in record.reason


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(enforce_notification_permissions=False)])
def test_enforcement_can_be_switched_off(producer: Producer, consumer: Consumer) -> None:
    def for_another_service(resources: dict[str, Any]) -> None:
        statement(resources, "ConnectionNotificationTopicPolicy", "VpceConnectionNotifications")[
            "Principal"
        ] = {"Service": "events.amazonaws.com"}

    _, queue_url = provision_notifications(producer, notification_template(for_another_service))

    create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert arrived(producer, queue_url) == ["Connect"]
