"""Connection notifications: create/describe/delete, and delivery to SNS (and an SQS subscriber)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from gatekeeper_ops.emulator import ConnectionEvent, EmulatorSettings, published_notifications
from gatekeeper_ops.emulator.notifications import NotificationSource, topic_allows_vpce
from gatekeeper_ops.emulator.provisioning import (
    create_endpoint_service,
    create_interface_endpoint,
    notification_topic_policy,
)
from tests.integration.emulator.conftest import (
    CONSUMER,
    PRODUCER,
    REGION,
    Consumer,
    Producer,
    Subscription,
    make_consumer,
    subscribe_queue,
)

ALL_EVENTS = ["Connect", "Accept", "Reject", "Delete"]


def notify(producer: Producer, topic_arn: str, events: list[str] | None = None, **target: str) -> str:
    target = target or {"ServiceId": producer.service.service_id}
    answer = producer.ec2.create_vpc_endpoint_connection_notification(
        ConnectionNotificationArn=topic_arn, ConnectionEvents=events or ALL_EVENTS, **target
    )
    return str(answer["ConnectionNotification"]["ConnectionNotificationId"])


def test_a_connect_notification_reaches_a_queue_subscribed_to_the_topic(
    producer: Producer, consumer: Consumer, subscription: Subscription
) -> None:
    notification_id = notify(producer, subscription.topic_arn)

    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    [body] = subscription.received(expected=1)
    assert body == {
        "EventType": "Connect",
        "ConnectionNotificationId": notification_id,
        "ServiceId": producer.service.service_id,
        "ServiceName": producer.service.service_name,
        "VpcEndpointId": endpoint_id,
        "VpcEndpointOwner": CONSUMER,
        "VpcEndpointState": "pendingAcceptance",
        "VpcEndpointRegion": REGION,
        "Region": REGION,
        "Time": body["Time"],
    }
    assert body["Time"].endswith("Z")


def test_accept_reject_and_delete_are_announced_in_order(
    producer: Producer, consumer: Consumer, subscription: Subscription
) -> None:
    notify(producer, subscription.topic_arn)
    service = producer.service
    accepted = create_interface_endpoint(consumer.ec2, service.service_name, consumer.network)
    rejected = create_interface_endpoint(consumer.ec2, service.service_name, consumer.network)

    producer.ec2.accept_vpc_endpoint_connections(ServiceId=service.service_id, VpcEndpointIds=[accepted])
    producer.ec2.reject_vpc_endpoint_connections(ServiceId=service.service_id, VpcEndpointIds=[rejected])
    consumer.ec2.delete_vpc_endpoints(VpcEndpointIds=[accepted])

    events = [
        (b["EventType"], b["VpcEndpointId"], b["VpcEndpointState"]) for b in subscription.received(expected=5)
    ]
    assert events == [
        ("Connect", accepted, "pendingAcceptance"),
        ("Connect", rejected, "pendingAcceptance"),
        ("Accept", accepted, "pending"),
        ("Reject", rejected, "rejected"),
        ("Delete", accepted, "deleting"),
    ]


def test_only_the_subscribed_events_are_sent(
    producer: Producer, consumer: Consumer, subscription: Subscription
) -> None:
    notify(producer, subscription.topic_arn, events=["Accept"])
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )

    assert [b["EventType"] for b in subscription.received(expected=2)] == ["Accept"]


def test_notifications_of_other_services_stay_silent(
    producer: Producer, consumer: Consumer, subscription: Subscription
) -> None:
    other = create_endpoint_service(
        producer.ec2, producer.elbv2, name="other", allowed_principals=["*"], cidr="10.6.0.0/16"
    )
    notify(producer, subscription.topic_arn, ServiceId=other.service_id)

    create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert subscription.received(expected=1) == []


def test_sns_filter_policies_apply_to_notifications(
    producer: Producer, consumer: Consumer, subscription: Subscription
) -> None:
    filtered = subscribe_queue(producer, "accepts-only")
    [sub] = producer.sns.list_subscriptions_by_topic(TopicArn=filtered.topic_arn)["Subscriptions"]
    # Scope first: moto builds the matcher when the policy is set, with the scope in force then.
    producer.sns.set_subscription_attributes(
        SubscriptionArn=sub["SubscriptionArn"],
        AttributeName="FilterPolicyScope",
        AttributeValue="MessageBody",
    )
    producer.sns.set_subscription_attributes(
        SubscriptionArn=sub["SubscriptionArn"],
        AttributeName="FilterPolicy",
        AttributeValue=json.dumps({"EventType": ["Accept"]}),
    )
    notify(producer, filtered.topic_arn)
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )

    assert [b["EventType"] for b in filtered.received(expected=2)] == ["Accept"]


def test_a_consumer_can_be_notified_about_its_own_endpoint(producer: Producer, consumer: Consumer) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    sns, sqs = consumer.session.client("sns"), consumer.session.client("sqs")
    topic_arn = sns.create_topic(Name="my-endpoint")["TopicArn"]
    sns.set_topic_attributes(
        TopicArn=topic_arn,
        AttributeName="Policy",
        AttributeValue=notification_topic_policy(topic_arn, consumer.account_id),
    )
    queue_url = sqs.create_queue(QueueName="my-endpoint")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    consumer.ec2.create_vpc_endpoint_connection_notification(
        VpcEndpointId=endpoint_id, ConnectionNotificationArn=topic_arn, ConnectionEvents=["Accept", "Reject"]
    )

    producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(json.loads(m["Body"])["Message"])["EventType"] for m in messages] == ["Accept"]


def test_create_describe_and_delete_a_notification(producer: Producer, subscription: Subscription) -> None:
    created = producer.ec2.create_vpc_endpoint_connection_notification(
        ServiceId=producer.service.service_id,
        ConnectionNotificationArn=subscription.topic_arn,
        ConnectionEvents=["Connect", "Accept"],
        ClientToken="token-1",
    )
    notification = created["ConnectionNotification"]
    notification_id = notification["ConnectionNotificationId"]

    assert created["ClientToken"] == "token-1"
    assert notification_id.startswith("vpce-nfn-")
    assert notification == {
        "ConnectionNotificationId": notification_id,
        "ServiceId": producer.service.service_id,
        "ConnectionNotificationType": "Topic",
        "ConnectionNotificationArn": subscription.topic_arn,
        "ConnectionEvents": ["Connect", "Accept"],
        "ConnectionNotificationState": "Enabled",
        "ServiceRegion": REGION,
    }
    described = producer.ec2.describe_vpc_endpoint_connection_notifications(
        ConnectionNotificationId=notification_id
    )
    assert described["ConnectionNotificationSet"] == [notification]

    deleted = producer.ec2.delete_vpc_endpoint_connection_notifications(
        ConnectionNotificationIds=[notification_id]
    )

    assert deleted["Unsuccessful"] == []
    assert producer.ec2.describe_vpc_endpoint_connection_notifications()["ConnectionNotificationSet"] == []


def test_describe_notifications_filters(producer: Producer, subscription: Subscription) -> None:
    other = create_endpoint_service(producer.ec2, producer.elbv2, name="other", cidr="10.6.0.0/16")
    first = notify(producer, subscription.topic_arn)
    second = notify(producer, subscription.topic_arn, ServiceId=other.service_id)

    def described(name: str, values: list[str]) -> list[str]:
        answer = producer.ec2.describe_vpc_endpoint_connection_notifications(
            Filters=[{"Name": name, "Values": values}]
        )
        return [n["ConnectionNotificationId"] for n in answer["ConnectionNotificationSet"]]

    assert described("service-id", [other.service_id]) == [second]
    assert described("connection-notification-id", [first]) == [first]
    assert described("connection-notification-arn", [subscription.topic_arn]) == [first, second]
    assert described("connection-notification-state", ["Enabled"]) == [first, second]
    assert described("connection-notification-type", ["Topic"]) == [first, second]


def test_describe_notifications_pages(producer: Producer, subscription: Subscription) -> None:
    created = [notify(producer, subscription.topic_arn) for _ in range(3)]
    paginator = producer.ec2.get_paginator("describe_vpc_endpoint_connection_notifications")

    pages = list(paginator.paginate(PaginationConfig={"PageSize": 2}))

    assert [[n["ConnectionNotificationId"] for n in p["ConnectionNotificationSet"]] for p in pages] == [
        created[:2],
        created[2:],
    ]


def test_notifications_are_private_to_their_account(
    producer: Producer, consumer: Consumer, subscription: Subscription
) -> None:
    notification_id = notify(producer, subscription.topic_arn)

    assert consumer.ec2.describe_vpc_endpoint_connection_notifications()["ConnectionNotificationSet"] == []
    with pytest.raises(ClientError) as refused:
        consumer.ec2.create_vpc_endpoint_connection_notification(
            ServiceId=producer.service.service_id,
            ConnectionNotificationArn=subscription.topic_arn,
            ConnectionEvents=ALL_EVENTS,
        )
    assert refused.value.response["Error"]["Code"] == "InvalidVpcEndpointServiceId.NotFound"
    with pytest.raises(ClientError) as not_found:
        consumer.ec2.delete_vpc_endpoint_connection_notifications(ConnectionNotificationIds=[notification_id])
    assert not_found.value.response["Error"]["Code"] == "InvalidConnectionNotification"


@pytest.mark.parametrize(
    ("request_overrides", "code"),
    [
        ({"ConnectionEvents": ["Connect", "Explode"]}, "InvalidParameterValue"),
        (
            {"ConnectionNotificationArn": f"arn:aws:sns:{REGION}:{PRODUCER}:no-such-topic"},
            "InvalidConnectionNotification",
        ),
        ({"ConnectionNotificationArn": "not-an-arn"}, "InvalidConnectionNotification"),
        ({"ServiceId": "vpce-svc-00000000"}, "InvalidVpcEndpointServiceId.NotFound"),
        ({"VpcEndpointId": "vpce-00000000000000000"}, "InvalidParameterCombination"),
    ],
)
def test_create_notification_validates_its_request(
    producer: Producer, subscription: Subscription, request_overrides: dict[str, object], code: str
) -> None:
    request: dict[str, object] = {
        "ServiceId": producer.service.service_id,
        "ConnectionNotificationArn": subscription.topic_arn,
        "ConnectionEvents": ALL_EVENTS,
        **request_overrides,
    }

    with pytest.raises(ClientError) as refused:
        producer.ec2.create_vpc_endpoint_connection_notification(**request)

    assert refused.value.response["Error"]["Code"] == code


def test_describing_an_unknown_notification_is_an_error(producer: Producer) -> None:
    with pytest.raises(ClientError) as refused:
        producer.ec2.describe_vpc_endpoint_connection_notifications(ConnectionNotificationId="vpce-nfn-0")

    assert refused.value.response["Error"]["Code"] == "InvalidConnectionNotification"


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(require_topic_permission=True)])
def test_a_topic_whose_policy_does_not_admit_vpce_is_refused_when_permissions_are_enforced(
    producer: Producer, subscription: Subscription
) -> None:
    bare_topic = producer.sns.create_topic(Name="no-policy")["TopicArn"]

    with pytest.raises(ClientError) as refused:
        notify(producer, bare_topic)

    assert refused.value.response["Error"]["Code"] == "InvalidConnectionNotification"
    assert notify(producer, subscription.topic_arn).startswith("vpce-nfn-")


def test_a_deleted_topic_is_recorded_as_undelivered_without_failing_the_ec2_call(
    producer: Producer, consumer: Consumer, subscription: Subscription
) -> None:
    notification_id = notify(producer, subscription.topic_arn)
    producer.sns.delete_topic(TopicArn=subscription.topic_arn)

    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    [record] = published_notifications(PRODUCER, REGION)
    assert record.notification_id == notification_id
    assert record.event is ConnectionEvent.CONNECT
    assert record.vpc_endpoint_id == endpoint_id
    assert not record.delivered
    assert record.reason == "topic does not exist"


TOPIC = "arn:aws:sns:us-east-1:123456789012:t"
SERVICE_ARN = "arn:aws:ec2:us-east-1:123456789012:vpc-endpoint-service/vpce-svc-0123abcd"
VPCE = {"Service": "vpce.amazonaws.com"}


def statement(**fields: object) -> dict[str, object]:
    return {"Effect": "Allow", "Principal": VPCE, "Action": "sns:Publish", "Resource": TOPIC, **fields}


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        pytest.param(notification_topic_policy(TOPIC, PRODUCER), True, id="the-helper-policy"),
        pytest.param(notification_topic_policy(TOPIC, "999999999999"), False, id="another-account"),
        pytest.param(
            {"Statement": {"Effect": "Allow", "Principal": "*", "Action": "SNS:*"}}, True, id="star"
        ),
        pytest.param(
            {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sns:Publish"}]},
            False,
            id="aws-star-is-not-a-service-principal",
        ),
        pytest.param(
            {"Statement": [statement(), {"Effect": "Deny", "Principal": "*", "Action": "sns:Publish"}]},
            False,
            id="explicit-deny-wins",
        ),
        pytest.param({"Statement": [statement(Action="*")]}, True, id="any-action"),
        pytest.param(
            {"Statement": [statement(Resource="arn:aws:sns:us-east-1:123456789012:other")]},
            False,
            id="other-topic",
        ),
        pytest.param(
            {
                "Statement": [
                    statement(Condition={"ArnLike": {"aws:SourceArn": SERVICE_ARN.replace("0123abcd", "*")}})
                ]
            },
            True,
            id="arnlike-source-arn",
        ),
        pytest.param(
            {"Statement": [statement(Condition={"ArnEquals": {"aws:SourceArn": [SERVICE_ARN, "arn:x"]}})]},
            True,
            id="arnequals-list",
        ),
        pytest.param(
            {
                "Statement": [
                    statement(
                        Condition={
                            "ArnLike": {
                                "aws:SourceArn": "arn:aws:ec2:*:*:vpc-endpoint-service/vpce-svc-other"
                            }
                        }
                    )
                ]
            },
            False,
            id="another-service",
        ),
        pytest.param(
            {"Statement": [statement(Condition={"StringEquals": {"AWS:SOURCEACCOUNT": [PRODUCER, "1"]}})]},
            True,
            id="keys-ignore-case-and-values-or",
        ),
        pytest.param(
            {"Statement": [statement(Condition={"StringEqualsFancy": {"aws:SourceAccount": PRODUCER}})]},
            False,
            id="unknown-operator-fails-closed-in-an-allow",
        ),
        pytest.param(
            {
                "Statement": [
                    statement(),
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sns:Publish",
                        "Condition": {"NumericWeird": {"aws:SourceAccount": "1"}},
                    },
                ]
            },
            False,
            id="unknown-operator-fails-closed-in-a-deny",
        ),
        pytest.param(
            {"Statement": [statement(Condition={"StringNotEquals": {"aws:SourceAccount": PRODUCER}})]},
            False,
            id="string-not-equals",
        ),
        pytest.param(
            {"Statement": [statement(Condition={"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-1"}})]},
            True,
            id="if-exists-on-a-missing-key",
        ),
        pytest.param(
            {"Statement": [statement(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-1"}})]},
            False,
            id="missing-key",
        ),
        pytest.param("not json", False, id="not-json"),
    ],
)
def test_topic_policy_evaluation(policy: str | dict[str, object], allowed: bool) -> None:
    document = policy if isinstance(policy, str) else json.dumps(policy)
    source = NotificationSource(account=PRODUCER, arn=SERVICE_ARN)

    verdict = topic_allows_vpce(document, topic_arn=TOPIC, source=source)

    assert verdict.allowed is allowed, verdict.reason


def test_connections_made_by_other_consumers_are_announced_too(
    producer: Producer, subscription: Subscription
) -> None:
    producer.ec2.modify_vpc_endpoint_service_permissions(
        ServiceId=producer.service.service_id, AddAllowedPrincipals=["*"]
    )
    notify(producer, subscription.topic_arn, events=["Connect"])
    owners = ["210987654321", "310987654321"]

    for owner in owners:
        tenant = make_consumer(producer, owner)
        create_interface_endpoint(tenant.ec2, producer.service.service_name, tenant.network)

    assert [b["VpcEndpointOwner"] for b in subscription.received(expected=2)] == owners
