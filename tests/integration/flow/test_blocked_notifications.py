"""When the notification topic's policy or its KMS key policy keeps vpce.amazonaws.com out, AWS
delivers nothing and says nothing. The stack must still decide every request: the reconciler's
sweep finds it (at sweep latency instead of seconds)."""

from __future__ import annotations

import json

import pytest

from gatekeeper_ops.emulator import published_notifications
from gatekeeper_ops.sandbox.account import ProducerAccount

from .conftest import ACME


def block_topic_policy(producer: ProducerAccount) -> None:
    topic = producer.stack.outputs["ConnectionNotificationTopicArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyTheAccount",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{producer.stack.account_id}:root"},
                "Action": "sns:Publish",
                "Resource": topic,
            }
        ],
    }
    producer.client("sns").set_topic_attributes(
        TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(policy)
    )


def block_key_policy(producer: ProducerAccount) -> None:
    kms = producer.client("kms")
    key = producer.stack.physical["TopicKey"]["Ref"]
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "VpceNotificationsPublish"]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))


@pytest.mark.parametrize("block", [block_topic_policy, block_key_policy], ids=["topic-policy", "key-policy"])
def test_no_notification_arrives_and_the_reconciler_still_decides(tenants, block):
    block(tenants)
    endpoint = tenants.consumer(ACME).request_endpoint(tenants.service)
    tenants.settle()
    region, account = tenants.stack.region, tenants.stack.account_id
    sent = [n for n in published_notifications(account, region) if n.vpc_endpoint_id == endpoint]
    assert sent, "the endpoint's Connect notification was never attempted"
    assert not any(n.delivered for n in sent), [n.reason for n in sent]
    assert tenants.decisions.decisions_for_endpoint(endpoint) == []  # nothing arrived, nothing decided
    sweep = tenants.lambdas.run_schedule("ReconcileConnectionsFunction")
    assert sweep.result["announced"] == 1
    tenants.settle()
    assert [d.outcome for d in tenants.decisions.decisions_for_endpoint(endpoint)] == ["accepted"]
    assert tenants.consumer(ACME).endpoint_state(endpoint) in ("pending", "available")
