"""Cross-region PrivateLink: consumers in a service's SupportedRegions connect with ServiceRegion."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from gatekeeper_ops.emulator.provisioning import (
    account_root,
    create_endpoint_service,
    create_interface_endpoint,
)
from tests.integration.emulator.conftest import CONSUMER, REGION, Producer, make_consumer

REMOTE = "us-west-2"


@pytest.fixture
def regional_service(producer: Producer) -> str:
    """A service in us-east-1 that also serves consumers in us-west-2; returns its name."""
    service = create_endpoint_service(
        producer.ec2,
        producer.elbv2,
        name="regional",
        allowed_principals=[account_root(CONSUMER)],
        supported_regions=[REGION, REMOTE],
        cidr="10.7.0.0/16",
    )
    return service.service_name


def test_a_consumer_in_a_supported_region_connects_and_the_connection_carries_its_region(
    producer: Producer, regional_service: str
) -> None:
    remote = make_consumer(producer, CONSUMER, region=REMOTE)

    endpoint_id = create_interface_endpoint(
        remote.ec2, regional_service, remote.network, service_region=REGION
    )

    connection = producer.connection(endpoint_id)
    assert connection["VpcEndpointRegion"] == REMOTE
    assert connection["VpcEndpointState"] == "pendingAcceptance"
    endpoint = remote.endpoint(endpoint_id)
    assert endpoint["ServiceRegion"] == REGION
    assert endpoint["State"] == "pendingAcceptance"
    region_filter = [{"Name": "vpc-endpoint-region", "Values": [REMOTE]}]
    assert [c["VpcEndpointId"] for c in producer.connections(Filters=region_filter)] == [endpoint_id]


def test_accepting_a_cross_region_connection_reaches_the_remote_endpoint(
    producer: Producer, regional_service: str
) -> None:
    remote = make_consumer(producer, CONSUMER, region=REMOTE)
    endpoint_id = create_interface_endpoint(
        remote.ec2, regional_service, remote.network, service_region=REGION
    )
    service_id = regional_service.rsplit(".", 1)[1]

    producer.ec2.accept_vpc_endpoint_connections(ServiceId=service_id, VpcEndpointIds=[endpoint_id])

    assert [remote.endpoint(endpoint_id)["State"] for _ in range(2)] == ["pending", "available"]
    remote.ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint_id])
    assert producer.connection(endpoint_id)["VpcEndpointState"] == "deleting"


def test_a_consumer_in_a_region_the_service_does_not_support_is_refused(producer: Producer) -> None:
    far = make_consumer(producer, CONSUMER, region="eu-west-1")

    with pytest.raises(ClientError) as refused:
        create_interface_endpoint(far.ec2, producer.service.service_name, far.network, service_region=REGION)

    assert refused.value.response["Error"]["Code"] == "InvalidServiceName"


def test_adding_a_supported_region_admits_its_consumers(producer: Producer) -> None:
    far = make_consumer(producer, CONSUMER, region="eu-west-1")
    producer.ec2.modify_vpc_endpoint_service_configuration(
        ServiceId=producer.service.service_id, AddSupportedRegions=["eu-west-1"]
    )

    endpoint_id = create_interface_endpoint(
        far.ec2, producer.service.service_name, far.network, service_region=REGION
    )

    assert producer.connection(endpoint_id)["VpcEndpointRegion"] == "eu-west-1"


def test_without_service_region_a_remote_service_name_does_not_exist(
    producer: Producer, regional_service: str
) -> None:
    remote = make_consumer(producer, CONSUMER, region=REMOTE)

    with pytest.raises(ClientError) as refused:
        create_interface_endpoint(remote.ec2, regional_service, remote.network)

    assert refused.value.response["Error"]["Code"] == "InvalidServiceName"


def test_a_same_region_connection_carries_the_service_region(
    producer: Producer, regional_service: str
) -> None:
    local = make_consumer(producer, CONSUMER)

    endpoint_id = create_interface_endpoint(local.ec2, regional_service, local.network)

    assert producer.connection(endpoint_id)["VpcEndpointRegion"] == REGION
    assert local.endpoint(endpoint_id)["ServiceRegion"] == REGION


def test_cross_region_still_requires_an_allowed_principal(producer: Producer, regional_service: str) -> None:
    stranger = make_consumer(producer, "999988887777", region=REMOTE)

    with pytest.raises(ClientError) as refused:
        create_interface_endpoint(stranger.ec2, regional_service, stranger.network, service_region=REGION)

    assert refused.value.response["Error"]["Code"] == "InvalidServiceName"
