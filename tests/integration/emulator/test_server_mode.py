"""The emulator behind moto's threaded server, reached by boto3 over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from gatekeeper_ops.emulator import emulated_moto_server, is_installed, reset_moto_server
from gatekeeper_ops.emulator.provisioning import create_interface_endpoint
from tests.integration.emulator.conftest import (
    CONSUMER,
    OTHER_CONSUMER,
    Producer,
    make_consumer,
    make_producer,
    subscribe_queue,
)

pytestmark = [pytest.mark.server, pytest.mark.xdist_group("server_mode")]  # one moto server a run


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with emulated_moto_server() as url:
        yield url


@pytest.fixture
def remote_producer(server_url: str, fake_aws_environment: None) -> Iterator[Producer]:
    reset_moto_server(server_url)
    yield make_producer(server_url)
    reset_moto_server(server_url)


def test_the_whole_lifecycle_over_http(server_url: str, remote_producer: Producer) -> None:
    producer = remote_producer
    subscription = subscribe_queue(producer)
    producer.ec2.create_vpc_endpoint_connection_notification(
        ServiceId=producer.service.service_id,
        ConnectionNotificationArn=subscription.topic_arn,
        ConnectionEvents=["Connect", "Accept", "Reject", "Delete"],
    )
    consumer = make_consumer(producer, CONSUMER, endpoint_url=server_url)
    stranger = make_consumer(producer, OTHER_CONSUMER, endpoint_url=server_url)

    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    with pytest.raises(ClientError) as refused:
        create_interface_endpoint(stranger.ec2, producer.service.service_name, stranger.network)
    pending = producer.connections(Filters=[{"Name": "vpc-endpoint-state", "Values": ["pendingAcceptance"]}])
    answer = producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id, "vpce-0123456789abcdef0"]
    )
    states = [consumer.endpoint(endpoint_id)["State"] for _ in range(2)]
    consumer.ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint_id])

    assert refused.value.response["Error"]["Code"] == "InvalidServiceName"
    assert [c["VpcEndpointId"] for c in pending] == [endpoint_id]
    assert [item["ResourceId"] for item in answer["Unsuccessful"]] == ["vpce-0123456789abcdef0"]
    assert states == ["pending", "available"]
    assert producer.connection(endpoint_id)["VpcEndpointState"] == "deleting"
    events = [body["EventType"] for body in subscription.received(expected=3)]
    assert events == ["Connect", "Accept", "Delete"]


def test_pagination_validation_over_http(remote_producer: Producer) -> None:
    with pytest.raises(ClientError) as refused:
        remote_producer.ec2.describe_vpc_endpoint_connections(MaxResults=4)

    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_moto_api_reset_clears_the_emulator_state(server_url: str, remote_producer: Producer) -> None:
    consumer = make_consumer(remote_producer, CONSUMER, endpoint_url=server_url)
    create_interface_endpoint(consumer.ec2, remote_producer.service.service_name, consumer.network)
    assert len(remote_producer.connections()) == 1

    reset_moto_server(server_url)

    assert remote_producer.connections() == []


def test_the_server_helper_keeps_the_emulator_installed_while_running(server_url: str) -> None:
    assert is_installed()
    assert server_url.startswith("http://127.0.0.1:")


def test_reset_refuses_non_local_endpoints() -> None:
    with pytest.raises(ValueError, match="refusing"):
        reset_moto_server("https://ec2.us-east-1.amazonaws.com")
