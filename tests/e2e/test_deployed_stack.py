"""Checks against a deployed stack. They need real AWS: set GATEKEEPER_E2E_STACK to the stack name
(and the usual AWS credentials/region); otherwise they are skipped."""

from __future__ import annotations

import json
import os

import boto3
import pytest

STACK = os.environ.get("GATEKEEPER_E2E_STACK")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not STACK or bool(os.environ.get("AWS_ENDPOINT_URL")),
        reason="no deployed stack: set GATEKEEPER_E2E_STACK=<stack name> with AWS credentials to run",
    ),
]


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    stack = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_tables_are_active_with_point_in_time_recovery(outputs):
    dynamodb = boto3.client("dynamodb")
    for name in ("TenantsTableName", "TemplatesTableName", "DecisionsTableName"):
        assert dynamodb.describe_table(TableName=outputs[name])["Table"]["TableStatus"] == "ACTIVE"
        backups = dynamodb.describe_continuous_backups(TableName=outputs[name])[
            "ContinuousBackupsDescription"
        ]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_managed_services_require_acceptance_and_notify_the_stack(outputs):
    ec2 = boto3.client("ec2")
    topic = outputs["ConnectionNotificationTopicArn"]
    for service_id in outputs["ManagedEndpointServiceIds"].split(","):
        [config] = ec2.describe_vpc_endpoint_service_configurations(ServiceIds=[service_id])[
            "ServiceConfigurations"
        ]
        assert config["AcceptanceRequired"] is True
        notifications = ec2.describe_vpc_endpoint_connection_notifications(
            Filters=[{"Name": "service-id", "Values": [service_id]}]
        )["ConnectionNotificationSet"]
        assert any(n["ConnectionNotificationArn"] == topic for n in notifications)


def test_notification_topic_accepts_vpce_publishing(outputs):
    attributes = boto3.client("sns").get_topic_attributes(TopicArn=outputs["ConnectionNotificationTopicArn"])
    policy = json.loads(attributes["Attributes"]["Policy"])
    assert any(s.get("Principal") == {"Service": "vpce.amazonaws.com"} for s in policy["Statement"])
