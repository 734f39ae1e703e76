"""Fixtures for the PrivateLink emulator tests: fake AWS, a producer with one endpoint service,
consumer accounts reached through sts:AssumeRole, and an SQS queue subscribed to a topic.

Every client is made inside ``mock_aws()`` (or against a local moto server), with fake
credentials, so nothing can reach real AWS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
import pytest
from moto import mock_aws

from gatekeeper_ops.emulator import EmulatorSettings, privatelink_emulator
from gatekeeper_ops.emulator import clock as emulator_clock
from gatekeeper_ops.emulator.provisioning import (
    ConsumerNetwork,
    ProducerService,
    account_root,
    consumer_session,
    create_consumer_network,
    create_endpoint_service,
    create_notification_topic,
)

PRODUCER = "123456789012"  # moto's default account: the one plain clients act in
CONSUMER = "111122223333"
OTHER_CONSUMER = "444455556666"
REGION = "us-east-1"


# Parsing botocore's EC2 model costs ~0.15 s per session; every session here shares one loader.
_MODEL_LOADER = botocore.session.get_session().get_component("data_loader")


def botocore_session() -> botocore.session.Session:
    session = botocore.session.Session()
    session.register_component("data_loader", _MODEL_LOADER)
    return session


def producer_session() -> boto3.Session:
    """A session in moto's default account (the fake credentials from the environment)."""
    return boto3.Session(botocore_session=botocore_session(), region_name=REGION)


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        # moto builds ~1,300 default AMIs per EC2 backend; these tests never use them.
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    # A session token or profile from the developer's shell must not leak into fake requests;
    # MOTO_ACCOUNT_ID would pin every request to one account and defeat the consumer accounts.
    for name in (
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "MOTO_ACCOUNT_ID",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emulator_settings() -> EmulatorSettings:
    """Override in a test module (or parametrize indirectly) to run with other settings."""
    return EmulatorSettings()


@pytest.fixture
def aws(fake_aws_environment: None, emulator_settings: EmulatorSettings) -> Iterator[None]:
    with mock_aws(), privatelink_emulator(emulator_settings):
        yield


@dataclass
class Producer:
    """The producer account's clients (moto's default account) and its endpoint service."""

    ec2: Any
    elbv2: Any
    sns: Any
    sqs: Any
    sts: Any
    service: ProducerService

    def connections(self, **kwargs: Any) -> list[dict[str, Any]]:
        return list(self.ec2.describe_vpc_endpoint_connections(**kwargs)["VpcEndpointConnections"])

    def connection(self, endpoint_id: str) -> dict[str, Any]:
        found = self.connections(Filters=[{"Name": "vpc-endpoint-id", "Values": [endpoint_id]}])
        assert len(found) == 1, found
        return found[0]


@dataclass
class Consumer:
    """A consumer account's session (assumed role), EC2 client and network."""

    account_id: str
    session: boto3.Session
    ec2: Any
    network: ConsumerNetwork

    def endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return dict(self.ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0])


def make_producer(endpoint_url: str | None = None, *, allowed: tuple[str, ...] = (CONSUMER,)) -> Producer:
    session = producer_session()
    clients = {
        name: session.client(name, endpoint_url=endpoint_url)
        for name in ("ec2", "elbv2", "sns", "sqs", "sts")
    }
    service = create_endpoint_service(
        clients["ec2"], clients["elbv2"], allowed_principals=[account_root(a) for a in allowed]
    )
    return Producer(service=service, **clients)


def make_consumer(
    producer: Producer,
    account_id: str,
    *,
    region: str = REGION,
    endpoint_url: str | None = None,
    role_name: str = "tenant-endpoint-admin",
) -> Consumer:
    """A consumer account reached via sts:AssumeRole into ``role/<role_name>`` (moto needs no such role)."""
    session = consumer_session(
        producer.sts, account_id, role_name=role_name, region_name=region, botocore_session=botocore_session()
    )
    ec2 = session.client("ec2", endpoint_url=endpoint_url)
    return Consumer(account_id=account_id, session=session, ec2=ec2, network=create_consumer_network(ec2))


@pytest.fixture
def producer(aws: None) -> Producer:
    """An NLB-backed service with AcceptanceRequired, allowing the CONSUMER account's root."""
    return make_producer()


@pytest.fixture
def consumer(producer: Producer) -> Consumer:
    return make_consumer(producer, CONSUMER)


@dataclass
class Subscription:
    topic_arn: str
    queue_url: str
    sqs: Any

    def received(self, *, expected: int) -> list[dict[str, Any]]:
        """The notification bodies that reached the queue (SNS envelope removed)."""
        bodies: list[dict[str, Any]] = []
        while len(bodies) < expected:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                bodies.append(json.loads(json.loads(message["Body"])["Message"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bodies


def subscribe_queue(producer: Producer, name: str = "connection-notifications") -> Subscription:
    topic_arn = create_notification_topic(producer.sns, name, producer_account=PRODUCER)
    queue_url = producer.sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = producer.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    producer.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return Subscription(topic_arn=topic_arn, queue_url=queue_url, sqs=producer.sqs)


@pytest.fixture
def subscription(producer: Producer) -> Subscription:
    """A topic with the vpce publish policy and an SQS queue subscribed to it."""
    return subscribe_queue(producer)


@dataclass
class FakeClock:
    """The emulator's clock, moved by hand (moto and botocore keep the real one)."""

    at: float

    def now(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(time.time())
    monkeypatch.setattr(emulator_clock, "now", fake.now)
    return fake
