"""DescribeVpcEndpointConnections: filters, MaxResults validation and NextToken pagination."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from gatekeeper_ops.emulator import EmulatorSettings, seed_connections
from gatekeeper_ops.emulator.provisioning import create_endpoint_service, create_interface_endpoint
from tests.integration.emulator.conftest import (
    CONSUMER,
    OTHER_CONSUMER,
    PRODUCER,
    REGION,
    Consumer,
    Producer,
    make_consumer,
)


def ids(connections: list[dict[str, object]]) -> set[object]:
    return {connection["VpcEndpointId"] for connection in connections}


@pytest.fixture
def scene(producer: Producer, consumer: Consumer) -> dict[str, str]:
    """Four connections: two services, two owners, three states, two regions."""
    other_service = create_endpoint_service(
        producer.ec2,
        producer.elbv2,
        name="other",
        allowed_principals=[f"arn:aws:iam::{CONSUMER}:root"],
        cidr="10.6.0.0/16",
    )
    service = producer.service
    pending = create_interface_endpoint(consumer.ec2, service.service_name, consumer.network)
    rejected = create_interface_endpoint(consumer.ec2, service.service_name, consumer.network)
    producer.ec2.reject_vpc_endpoint_connections(ServiceId=service.service_id, VpcEndpointIds=[rejected])
    other = create_interface_endpoint(consumer.ec2, other_service.service_name, consumer.network)
    [seeded] = seed_connections(
        service.service_id,
        1,
        consumer_account_id=OTHER_CONSUMER,
        state="available",
        vpc_endpoint_region="eu-west-1",
    )
    return {
        "service": service.service_id,
        "other_service": other_service.service_id,
        "pending": pending,
        "rejected": rejected,
        "other": other,
        "seeded": seeded,
    }


def test_without_filters_every_connection_of_the_callers_services_is_listed(
    producer: Producer, scene: dict[str, str]
) -> None:
    answer = producer.ec2.describe_vpc_endpoint_connections()

    assert ids(answer["VpcEndpointConnections"]) == {
        scene["pending"],
        scene["rejected"],
        scene["other"],
        scene["seeded"],
    }
    assert "NextToken" not in answer


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("service-id", ["{service}"], {"pending", "rejected", "seeded"}),
        ("service-id", ["{service}", "{other_service}"], {"pending", "rejected", "seeded", "other"}),
        ("vpc-endpoint-id", ["{pending}", "{other}"], {"pending", "other"}),
        ("vpc-endpoint-owner", [OTHER_CONSUMER], {"seeded"}),
        ("vpc-endpoint-state", ["rejected"], {"rejected"}),
        ("vpc-endpoint-state", ["pendingAcceptance", "available"], {"pending", "other", "seeded"}),
        ("vpc-endpoint-state", ["PendingAcceptance"], set()),  # the SDK enum spelling: no match
        ("vpc-endpoint-region", ["eu-west-1"], {"seeded"}),
        ("vpc-endpoint-region", [REGION], {"pending", "rejected", "other"}),
        ("ip-address-type", ["ipv4"], {"pending", "rejected", "other", "seeded"}),
        ("vpc-endpoint-id", ["vpce-0000000000000000"], set()),
    ],
)
def test_one_filter_matches_any_of_its_values(
    producer: Producer, scene: dict[str, str], name: str, values: list[str], expected: set[str]
) -> None:
    wanted = [value.format(**scene) for value in values]

    found = producer.connections(Filters=[{"Name": name, "Values": wanted}])

    assert ids(found) == {scene[key] for key in expected}


def test_several_filters_must_all_match(producer: Producer, scene: dict[str, str]) -> None:
    found = producer.connections(
        Filters=[
            {"Name": "service-id", "Values": [scene["service"]]},
            {"Name": "vpc-endpoint-owner", "Values": [CONSUMER]},
            {"Name": "vpc-endpoint-state", "Values": ["pendingAcceptance", "rejected"]},
        ]
    )

    assert ids(found) == {scene["pending"], scene["rejected"]}


def test_an_unknown_filter_is_refused(producer: Producer) -> None:
    with pytest.raises(ClientError) as refused:
        producer.connections(Filters=[{"Name": "vpc-id", "Values": ["vpc-1"]}])

    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_a_consumer_sees_no_connections_of_services_it_does_not_own(
    consumer: Consumer, scene: dict[str, str]
) -> None:
    assert consumer.ec2.describe_vpc_endpoint_connections()["VpcEndpointConnections"] == []


def test_2500_connections_page_by_1000_without_duplicates_or_gaps(
    producer: Producer, consumer: Consumer
) -> None:
    service = producer.service
    # Three through the API (so real endpoints are in the mix), the rest seeded for speed.
    created = [
        create_interface_endpoint(consumer.ec2, service.service_name, consumer.network) for _ in range(3)
    ]
    seeded = seed_connections(service.service_id, 2497, consumer_account_id=OTHER_CONSUMER)
    expected = [*created, *seeded]

    pages: list[list[str]] = []
    token: str | None = None
    while True:
        request: dict[str, object] = {"MaxResults": 1000}
        if token:
            request["NextToken"] = token
        answer = producer.ec2.describe_vpc_endpoint_connections(**request)
        pages.append([c["VpcEndpointId"] for c in answer["VpcEndpointConnections"]])
        token = answer.get("NextToken")
        if not token:
            break

    assert [len(page) for page in pages] == [1000, 1000, 500]
    listed = [endpoint_id for page in pages for endpoint_id in page]
    assert listed == expected  # arrival order: stable, no duplicates, nothing skipped


def test_the_boto3_paginator_walks_all_pages(producer: Producer) -> None:
    seed_connections(producer.service.service_id, 23)
    paginator = producer.ec2.get_paginator("describe_vpc_endpoint_connections")

    pages = list(paginator.paginate(PaginationConfig={"PageSize": 5}))

    assert [len(page["VpcEndpointConnections"]) for page in pages] == [5, 5, 5, 5, 3]


def test_pages_do_not_shift_when_states_change_between_pages(producer: Producer) -> None:
    service_id = producer.service.service_id
    seeded = seed_connections(service_id, 12)
    state_filter = [{"Name": "vpc-endpoint-state", "Values": ["pendingAcceptance"]}]
    first = producer.ec2.describe_vpc_endpoint_connections(Filters=state_filter, MaxResults=5)
    # Accepting the first page takes those connections out of the filter: the cursor must not move.
    producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=service_id, VpcEndpointIds=[c["VpcEndpointId"] for c in first["VpcEndpointConnections"]]
    )

    rest = producer.ec2.describe_vpc_endpoint_connections(
        Filters=state_filter, MaxResults=1000, NextToken=first["NextToken"]
    )

    assert [c["VpcEndpointId"] for c in rest["VpcEndpointConnections"]] == seeded[5:]


def test_a_new_connection_during_pagination_appears_on_a_later_page(
    producer: Producer, consumer: Consumer
) -> None:
    seed_connections(producer.service.service_id, 6)
    first = producer.ec2.describe_vpc_endpoint_connections(MaxResults=5)
    late = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    rest = producer.ec2.describe_vpc_endpoint_connections(MaxResults=5, NextToken=first["NextToken"])

    assert [c["VpcEndpointId"] for c in rest["VpcEndpointConnections"]][-1] == late
    assert "NextToken" not in rest


def test_max_results_below_5_is_a_validation_error(producer: Producer) -> None:
    with pytest.raises(ClientError) as refused:
        producer.ec2.describe_vpc_endpoint_connections(MaxResults=4)

    assert refused.value.response["Error"] == {
        "Code": "InvalidParameterValue",
        "Message": "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5.",
    }
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_max_results_above_1000_returns_1000(producer: Producer) -> None:
    seed_connections(producer.service.service_id, 1001)

    answer = producer.ec2.describe_vpc_endpoint_connections(MaxResults=5000)

    assert len(answer["VpcEndpointConnections"]) == 1000
    assert "NextToken" in answer


@pytest.mark.parametrize("max_results", [5, 1000])
def test_max_results_bounds_are_accepted(producer: Producer, max_results: int) -> None:
    seed_connections(producer.service.service_id, 6)

    answer = producer.ec2.describe_vpc_endpoint_connections(MaxResults=max_results)

    assert len(answer["VpcEndpointConnections"]) == min(6, max_results)


def test_a_forged_next_token_is_refused(producer: Producer) -> None:
    with pytest.raises(ClientError) as refused:
        producer.ec2.describe_vpc_endpoint_connections(MaxResults=5, NextToken="not-a-token")

    assert refused.value.response["Error"]["Code"] == "InvalidPaginationToken"


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(default_page_size=5)])
def test_a_default_page_size_can_force_callers_to_paginate(producer: Producer) -> None:
    seed_connections(producer.service.service_id, 7)

    answer = producer.ec2.describe_vpc_endpoint_connections()

    assert len(answer["VpcEndpointConnections"]) == 5
    assert answer["NextToken"]


def test_seeding_refuses_an_unknown_service(producer: Producer) -> None:
    with pytest.raises(LookupError):
        seed_connections("vpce-svc-00000000", 1, account_id=PRODUCER)


def test_seeded_connections_take_decisions_like_real_ones(producer: Producer) -> None:
    endpoint_ids = seed_connections(producer.service.service_id, 2)

    answer = producer.ec2.reject_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=endpoint_ids
    )

    assert answer["Unsuccessful"] == []
    assert {producer.connection(e)["VpcEndpointState"] for e in endpoint_ids} == {"rejected"}


def test_a_consumer_in_another_account_sees_only_its_own_endpoints(
    producer: Producer, consumer: Consumer
) -> None:
    create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    other = make_consumer(producer, OTHER_CONSUMER)

    assert other.ec2.describe_vpc_endpoints()["VpcEndpoints"] == []
