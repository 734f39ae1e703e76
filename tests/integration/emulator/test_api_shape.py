"""API shape as AWS has it: filters, empty id lists, IP address types, deleting a service that still
has connections, allowed-principal validation and types, and SNS's refusal of an empty message."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from gatekeeper_ops.emulator import seed_connections
from gatekeeper_ops.emulator.provisioning import (
    account_root,
    create_consumer_network,
    create_endpoint_service,
    create_interface_endpoint,
)
from tests.integration.emulator.conftest import (
    CONSUMER,
    OTHER_CONSUMER,
    Consumer,
    Producer,
    make_consumer,
)


def ids(connections: list[dict[str, Any]]) -> set[str]:
    return {c["VpcEndpointId"] for c in connections}


# -- filters ---------------------------------------------------------------------------------------


def test_the_cross_region_value_selects_connections_from_other_regions(producer: Producer) -> None:
    service_id = producer.service.service_id
    local = seed_connections(service_id, 2)
    remote = seed_connections(service_id, 1, vpc_endpoint_region="eu-west-1")

    cross = producer.connections(Filters=[{"Name": "vpc-endpoint-region", "Values": ["cross-region"]}])
    both = producer.connections(
        Filters=[{"Name": "vpc-endpoint-region", "Values": ["cross-region", "us-east-1"]}]
    )

    assert ids(cross) == set(remote)
    assert ids(both) == set(local) | set(remote)


def test_transit_gateway_attachment_id_is_a_filter(producer: Producer) -> None:
    service_id = producer.service.service_id
    seed_connections(service_id, 2)
    attached = seed_connections(service_id, 1, transit_gateway_attachment_id="tgw-attach-0123456789abcdef0")

    found = producer.connections(
        Filters=[{"Name": "transit-gateway-attachment-id", "Values": ["tgw-attach-0123456789abcdef0"]}]
    )

    assert ids(found) == set(attached)


# -- accept / reject -------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["accept_vpc_endpoint_connections", "reject_vpc_endpoint_connections"])
def test_an_empty_endpoint_id_list_is_refused(producer: Producer, action: str) -> None:
    with pytest.raises(ClientError) as refused:
        getattr(producer.ec2, action)(ServiceId=producer.service.service_id, VpcEndpointIds=[])

    assert refused.value.response["Error"]["Code"] == "MissingParameter"


# -- IP address types ------------------------------------------------------------------------------


def service_with_ip_types(producer: Producer, supported: list[str]) -> str:
    answer = producer.ec2.create_vpc_endpoint_service_configuration(
        NetworkLoadBalancerArns=[producer.service.load_balancer_arn],
        AcceptanceRequired=True,
        SupportedIpAddressTypes=supported,
    )["ServiceConfiguration"]
    producer.ec2.modify_vpc_endpoint_service_permissions(
        ServiceId=answer["ServiceId"], AddAllowedPrincipals=[account_root(CONSUMER)]
    )
    return str(answer["ServiceName"])


def endpoint_with_ip_type(consumer: Consumer, service_name: str, ip_address_type: str) -> str:
    answer = consumer.ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=consumer.network.vpc_id,
        ServiceName=service_name,
        SubnetIds=[consumer.network.subnet_id],
        IpAddressType=ip_address_type,
    )
    return str(answer["VpcEndpoint"]["VpcEndpointId"])


@pytest.mark.parametrize("ip_address_type", ["ipv6", "dualstack"])
def test_an_ip_address_type_the_service_does_not_support_is_refused(
    producer: Producer, consumer: Consumer, ip_address_type: str
) -> None:
    with pytest.raises(ClientError) as refused:
        endpoint_with_ip_type(consumer, producer.service.service_name, ip_address_type)  # ipv4 only

    assert refused.value.response["Error"]["Code"] == "InvalidParameter"
    assert producer.connections() == []


def test_a_dual_stack_service_takes_every_ip_address_type(producer: Producer, consumer: Consumer) -> None:
    service_name = service_with_ip_types(producer, ["ipv4", "ipv6"])

    made = {
        kind: endpoint_with_ip_type(consumer, service_name, kind) for kind in ("ipv4", "ipv6", "dualstack")
    }

    shown = {c["VpcEndpointId"]: c["IpAddressType"] for c in producer.connections()}
    assert shown == {endpoint_id: kind for kind, endpoint_id in made.items()}


def test_supported_ip_address_types_can_be_changed(producer: Producer, consumer: Consumer) -> None:
    service_name = service_with_ip_types(producer, ["ipv4"])
    service_id = service_name.rsplit(".", 1)[1]

    producer.ec2.modify_vpc_endpoint_service_configuration(
        ServiceId=service_id, AddSupportedIpAddressTypes=["ipv6"], RemoveSupportedIpAddressTypes=["ipv4"]
    )
    ipv6 = endpoint_with_ip_type(consumer, service_name, "ipv6")
    with pytest.raises(ClientError) as refused:
        endpoint_with_ip_type(consumer, service_name, "ipv4")

    assert ipv6.startswith("vpce-")
    assert refused.value.response["Error"]["Code"] == "InvalidParameter"


# -- deleting a service ----------------------------------------------------------------------------


def test_a_service_with_live_connections_is_not_deleted(producer: Producer, consumer: Consumer) -> None:
    service_id = producer.service.service_id
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    refused = producer.ec2.delete_vpc_endpoint_service_configurations(
        ServiceIds=[service_id, "vpce-svc-00000000000000000"]
    )
    producer.ec2.reject_vpc_endpoint_connections(ServiceId=service_id, VpcEndpointIds=[endpoint_id])
    deleted = producer.ec2.delete_vpc_endpoint_service_configurations(ServiceIds=[service_id])

    assert [(i["ResourceId"], i["Error"]["Code"]) for i in refused["Unsuccessful"]] == [
        (service_id, "ExistingVpcEndpointConnections"),
        ("vpce-svc-00000000000000000", "InvalidVpcEndpointService.NotFound"),
    ]
    assert deleted["Unsuccessful"] == []
    assert producer.ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"] == []


# -- allowed principals ----------------------------------------------------------------------------

VALID_PRINCIPALS = {
    "*": "All",
    "arn:aws:iam::111122223333:root": "Account",
    "arn:aws:iam::111122223333:role/tenant-endpoint-admin": "Role",
    "arn:aws:iam::111122223333:user/alice": "User",
    "elasticloadbalancing.amazonaws.com": "Service",
    "arn:aws:organizations::111122223333:organization/o-abcdef1234": "OrganizationUnit",
    "arn:aws:organizations::111122223333:ou/o-abcdef1234/ou-ab12-cdef3456": "OrganizationUnit",
}


def test_allowed_principals_are_described_with_their_type(producer: Producer) -> None:
    service = create_endpoint_service(producer.ec2, producer.elbv2, name="typed", cidr="10.9.0.0/16")

    producer.ec2.modify_vpc_endpoint_service_permissions(
        ServiceId=service.service_id, AddAllowedPrincipals=list(VALID_PRINCIPALS)
    )
    described = producer.ec2.describe_vpc_endpoint_service_permissions(ServiceId=service.service_id)

    assert {p["Principal"]: p["PrincipalType"] for p in described["AllowedPrincipals"]} == VALID_PRINCIPALS
    assert {p["ServiceId"] for p in described["AllowedPrincipals"]} == {service.service_id}
    assert all(p["ServicePermissionId"].startswith("vpce-svc-perm-") for p in described["AllowedPrincipals"])


@pytest.mark.parametrize(
    "principal",
    [
        "arn:aws:iam::111122223333:role/team/tenant-endpoint-admin",  # a path
        "arn:aws:iam::111122223333:user/division/alice",  # a path
        "arn:aws:sts::111122223333:assumed-role/admin/session",  # a session, not a principal
        "arn:aws:iam::11112222333:root",  # 11 digits
        "111122223333",  # a bare account id
        "arn:aws:iam::111122223333:group/admins",
        "",
    ],
)
def test_principals_ec2_refuses_are_refused_and_nothing_is_added(producer: Producer, principal: str) -> None:
    service_id = producer.service.service_id
    before = producer.ec2.describe_vpc_endpoint_service_permissions(ServiceId=service_id)["AllowedPrincipals"]

    with pytest.raises(ClientError) as refused:
        producer.ec2.modify_vpc_endpoint_service_permissions(
            ServiceId=service_id, AddAllowedPrincipals=[account_root(OTHER_CONSUMER), principal]
        )

    assert refused.value.response["Error"] == {
        "Code": "InvalidPrincipal",
        "Message": f"Invalid Principal: '{principal}'",
    }
    after = producer.ec2.describe_vpc_endpoint_service_permissions(ServiceId=service_id)["AllowedPrincipals"]
    assert after == before


def test_a_service_without_principals_admits_only_its_owner(producer: Producer) -> None:
    service = create_endpoint_service(producer.ec2, producer.elbv2, name="closed", cidr="10.8.0.0/16")
    stranger = make_consumer(producer, CONSUMER)
    own_network = create_consumer_network(producer.ec2, cidr="10.7.0.0/16")

    with pytest.raises(ClientError) as refused:
        create_interface_endpoint(stranger.ec2, service.service_name, stranger.network)
    own = create_interface_endpoint(producer.ec2, service.service_name, own_network)

    assert refused.value.response["Error"]["Code"] == "InvalidServiceName"
    assert (
        producer.ec2.describe_vpc_endpoint_service_permissions(ServiceId=service.service_id)[
            "AllowedPrincipals"
        ]
        == []
    )
    assert own.startswith("vpce-")


# -- SNS -------------------------------------------------------------------------------------------


def test_sns_refuses_to_publish_an_empty_message(producer: Producer) -> None:
    topic_arn = producer.sns.create_topic(Name="empty")["TopicArn"]

    with pytest.raises(ClientError) as refused:
        producer.sns.publish(TopicArn=topic_arn, Message="")

    assert refused.value.response["Error"]["Code"] == "InvalidParameter"
    assert "Empty message" in refused.value.response["Error"]["Message"]
    assert producer.sns.publish(TopicArn=topic_arn, Message="x")["MessageId"]
