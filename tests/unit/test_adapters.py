import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from gatekeeper.adapters.bus import EventPublisher
from gatekeeper.adapters.decision_topic import DecisionNotifier
from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.models.decision import Decision
from gatekeeper.models.errors import ConnectionActionFailed, PublishFailed

SERVICE = "vpce-svc-0123456789abcdef0"
ENDPOINT = "vpce-0a1b2c3d4e5f60718"
CONNECTION = {
    "ServiceId": SERVICE,
    "VpcEndpointId": ENDPOINT,
    "VpcEndpointOwner": "111111111111",
    "VpcEndpointState": "PendingAcceptance",
    "CreationTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
}


@pytest.fixture
def ec2():
    client = boto3.client("ec2", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def test_accept_reads_unsuccessful_items(ec2):
    client, stubber = ec2
    stubber.add_response(
        "accept_vpc_endpoint_connections",
        {
            "Unsuccessful": [
                {"ResourceId": ENDPOINT, "Error": {"Code": "InvalidState", "Message": "not pending"}}
            ]
        },
        {"ServiceId": SERVICE, "VpcEndpointIds": [ENDPOINT]},
    )
    with pytest.raises(ConnectionActionFailed, match="InvalidState: not pending") as raised:
        EndpointService(client).accept(SERVICE, ENDPOINT)
    assert raised.value.code == "InvalidState"


def test_reject_succeeds_when_nothing_unsuccessful(ec2):
    client, stubber = ec2
    stubber.add_response("reject_vpc_endpoint_connections", {"Unsuccessful": []})
    EndpointService(client).reject(SERVICE, ENDPOINT)
    stubber.assert_no_pending_responses()


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object):
        yield self._body


def _ec2_answers(codes: list[str]):
    """A before-send hook: each call answers with the next throttling code, then a real empty page."""
    sent: list[str] = []

    def answer(request, **_):
        sent.append(request.url)
        if len(sent) <= len(codes):
            body = (
                f"<Response><Errors><Error><Code>{codes[len(sent) - 1]}</Code><Message>slow down</Message>"
                "</Error></Errors><RequestID>r</RequestID></Response>"
            ).encode()
            return AWSResponse(request.url, 503, {}, _Raw(body))
        body = (
            b'<DescribeVpcEndpointConnectionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            b"<requestId>r</requestId><vpcEndpointConnectionSet/></DescribeVpcEndpointConnectionsResponse>"
        )
        return AWSResponse(request.url, 200, {}, _Raw(body))

    return sent, answer


@pytest.mark.parametrize("code", ["RequestLimitExceeded", "EC2ThrottledException"])
def test_ec2_throttling_is_retried_once_by_botocore_standard_mode(monkeypatch, code):
    from gatekeeper.wiring.services import _EC2_CONFIG

    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)
    client = boto3.client(
        "ec2", region_name="us-east-1", config=_EC2_CONFIG, aws_access_key_id="a", aws_secret_access_key="b"
    )
    sent, answer = _ec2_answers([code] * 3)
    client.meta.events.register("before-send.ec2.*", answer)
    assert EndpointService(client).connection(ENDPOINT) is None
    assert len(sent) == 4  # three throttled tries and the answer: no second layer multiplies them


def test_ec2_throttling_gives_up_after_the_configured_attempts(monkeypatch):
    from gatekeeper.wiring.services import _EC2_CONFIG

    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)
    client = boto3.client(
        "ec2", region_name="us-east-1", config=_EC2_CONFIG, aws_access_key_id="a", aws_secret_access_key="b"
    )
    sent, answer = _ec2_answers(["RequestLimitExceeded"] * 10)
    client.meta.events.register("before-send.ec2.*", answer)
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        EndpointService(client).connection(ENDPOINT)
    assert len(sent) == 4  # _EC2_CONFIG: standard mode, total_max_attempts 4 (tests/unit/test_ec2_retries.py)


def test_other_errors_are_not_retried(ec2):
    client, stubber = ec2
    stubber.add_client_error("reject_vpc_endpoint_connections", service_error_code="UnauthorizedOperation")
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        EndpointService(client).reject(SERVICE, ENDPOINT)


def test_connection_is_read_and_normalised(ec2):
    client, stubber = ec2
    stubber.add_response(
        "describe_vpc_endpoint_connections",
        {"VpcEndpointConnections": [CONNECTION]},
        {
            "Filters": [
                {"Name": "vpc-endpoint-id", "Values": [ENDPOINT]},
                {"Name": "service-id", "Values": [SERVICE]},
            ]
        },
    )
    stubber.add_response("describe_vpc_endpoint_connections", {"VpcEndpointConnections": []})
    service = EndpointService(client)
    assert service.connection(ENDPOINT, SERVICE).vpc_endpoint_state == "pendingAcceptance"
    assert service.connection(ENDPOINT) is None


def test_connections_follow_next_token(ec2):
    client, stubber = ec2
    second = {**CONNECTION, "VpcEndpointId": "vpce-0ffffffffffffffff"}
    stubber.add_response(
        "describe_vpc_endpoint_connections", {"VpcEndpointConnections": [CONNECTION], "NextToken": "t1"}
    )
    stubber.add_response(
        "describe_vpc_endpoint_connections",
        {"VpcEndpointConnections": [second]},
        {
            "Filters": [
                {"Name": "service-id", "Values": [SERVICE]},
                {"Name": "vpc-endpoint-state", "Values": ["pendingAcceptance"]},
            ],
            "MaxResults": 1000,
            "NextToken": "t1",
        },
    )
    found = list(EndpointService(client).connections(SERVICE, ["pendingAcceptance"]))
    assert [c.vpc_endpoint_id for c in found] == [ENDPOINT, "vpce-0ffffffffffffffff"]


@mock_aws
def test_bus_publishes_ten_at_a_time():
    events = boto3.client("events", region_name="us-east-1")
    events.create_event_bus(Name="bus")
    calls: list[int] = []
    events.meta.events.register(
        "provide-client-params.events.PutEvents", lambda params, **_: calls.append(len(params["Entries"]))
    )
    published = EventPublisher(events, "bus").publish(
        "Endpoint Connection Requested", [{"n": i} for i in range(23)]
    )
    assert published == 23
    assert calls == [10, 10, 3]


def test_bus_raises_on_failed_entries():
    events = boto3.client("events", region_name="us-east-1")
    with Stubber(events) as stubber:
        stubber.add_response(
            "put_events",
            {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}],
            },
        )
        with pytest.raises(PublishFailed, match=r"1 of 1 .* InternalFailure: try again"):
            EventPublisher(events, "bus").publish("Endpoint Connection Decided", [{"x": 1}])


@mock_aws
def test_bus_puts_events_of_several_types_in_one_call_each_answered_in_order():
    events = boto3.client("events", region_name="us-east-1")
    events.create_event_bus(Name="bus")
    calls: list[list[str]] = []
    events.meta.events.register(
        "provide-client-params.events.PutEvents",
        lambda params, **_: calls.append([e["DetailType"] for e in params["Entries"]]),
    )
    put = [("Endpoint Connection Requested", {"n": 1}), ("Endpoint Connection Closed", {"n": 2})] * 6
    assert EventPublisher(events, "bus").put(put) == [None] * 12
    assert calls == [[t for t, _ in put[:10]], [t for t, _ in put[10:]]]


def test_bus_put_says_which_entries_were_refused():
    events = boto3.client("events", region_name="us-east-1")
    refused = {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
    with Stubber(events) as stubber:
        stubber.add_response("put_events", {"FailedEntryCount": 1, "Entries": [{"EventId": "a"}, refused]})
        # An answer that does not say which entry failed: none counts as put.
        stubber.add_response("put_events", {"FailedEntryCount": 1, "Entries": [refused]})
        bus = EventPublisher(events, "bus")
        assert bus.put([("Endpoint Connection Requested", {"n": i}) for i in range(2)]) == [
            None,
            "InternalFailure: try again",
        ]
        assert (
            bus.put([("Endpoint Connection Requested", {"n": i}) for i in range(2)]) == ["1 of 2 refused"] * 2
        )


@mock_aws
def test_decision_notification_attributes_drive_subscription_filters():
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="decisions")["TopicArn"]
    queue = sqs.create_queue(QueueName="acme")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"FilterPolicy": json.dumps({"tenant_id": ["acme"]})},
    )
    notifier = DecisionNotifier(sns, topic)
    common = {"service_id": SERVICE, "vpc_endpoint_owner": "111111111111"}
    notifier.publish(Decision(vpc_endpoint_id=ENDPOINT, tenant_id="acme", outcome="accepted", **common))
    notifier.publish(
        Decision(vpc_endpoint_id="vpce-0ffffffffffffffff", tenant_id="other", outcome="held", **common)
    )
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    envelope = json.loads(messages[0]["Body"])
    assert json.loads(envelope["Message"])["decision"] == "accepted"
    assert envelope["MessageAttributes"]["decision"]["Value"] == "accepted"
    assert envelope["MessageAttributes"]["service_id"]["Value"] == SERVICE


@mock_aws
def test_decisions_go_ten_a_publish_batch_each_with_its_stable_decision_id():
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="decisions")["TopicArn"]
    queue = sqs.create_queue(QueueName="all")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    calls: list[int] = []
    sns.meta.events.register(
        "provide-client-params.sns.PublishBatch",
        lambda params, **_: calls.append(len(params["PublishBatchRequestEntries"])),
    )
    common = {"service_id": SERVICE, "vpc_endpoint_owner": "111111111111", "outcome": "rejected"}
    decisions = [Decision(vpc_endpoint_id=f"vpce-{i:017x}", **common) for i in range(12)]
    assert DecisionNotifier(sns, topic).publish_batch(decisions) == [None] * 12
    assert calls == [10, 2]
    received = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    by_id = {
        json.loads(m["Message"])["decision_id"]: m["MessageAttributes"]["decision_id"]["Value"]
        for m in received
    }
    assert sorted(by_id) == sorted(d.decision_id for d in decisions)
    assert all(body == attribute for body, attribute in by_id.items())
    # Stable: the same stored decision, announced again, has the same id.
    again = Decision.model_validate_json(decisions[0].model_dump_json())
    assert again.decision_id == decisions[0].decision_id
