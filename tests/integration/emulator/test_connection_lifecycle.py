"""The connection lifecycle through plain boto3: permissions gate, acceptance, rejection, deletion."""

from __future__ import annotations

from datetime import datetime

import boto3
import pytest
from botocore.exceptions import ClientError

from gatekeeper_ops.emulator import EmulatorSettings
from gatekeeper_ops.emulator.provisioning import (
    allow_principals,
    create_consumer_network,
    create_endpoint_service,
    create_interface_endpoint,
    role_arn,
)
from tests.integration.emulator.conftest import (
    CONSUMER,
    OTHER_CONSUMER,
    PRODUCER,
    REGION,
    Consumer,
    Producer,
    make_consumer,
)


def test_consumer_endpoint_is_pending_acceptance_until_the_producer_accepts_then_pending_then_available(
    producer: Producer, consumer: Consumer
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert consumer.endpoint(endpoint_id)["State"] == "pendingAcceptance"
    assert producer.connection(endpoint_id)["VpcEndpointState"] == "pendingAcceptance"

    answer = producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )

    assert answer["Unsuccessful"] == []
    assert consumer.endpoint(endpoint_id)["State"] == "pending"
    assert consumer.endpoint(endpoint_id)["State"] == "available"
    assert producer.connection(endpoint_id)["VpcEndpointState"] == "available"


def test_the_first_describe_after_accept_from_either_side_sees_pending(
    producer: Producer, consumer: Consumer
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )

    assert producer.connection(endpoint_id)["VpcEndpointState"] == "pending"
    assert consumer.endpoint(endpoint_id)["State"] == "available"


def test_a_describe_that_filters_a_pending_connection_out_does_not_use_up_its_read(
    producer: Producer, consumer: Consumer
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )

    producer.connections(Filters=[{"Name": "vpc-endpoint-owner", "Values": [PRODUCER]}])

    assert producer.connection(endpoint_id)["VpcEndpointState"] == "pending"


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(pending_reads=0)])
def test_pending_reads_zero_makes_an_accepted_connection_available_at_the_next_describe(
    producer: Producer, consumer: Consumer
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )

    assert producer.connection(endpoint_id)["VpcEndpointState"] == "available"


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(pending_reads=3)])
def test_pending_lasts_for_the_configured_number_of_describes(producer: Producer, consumer: Consumer) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )

    states = [producer.connection(endpoint_id)["VpcEndpointState"] for _ in range(4)]

    assert states == ["pending", "pending", "pending", "available"]


def test_a_principal_not_allowed_is_refused_as_if_the_service_did_not_exist(producer: Producer) -> None:
    stranger = make_consumer(producer, OTHER_CONSUMER)

    with pytest.raises(ClientError) as refused:
        create_interface_endpoint(stranger.ec2, producer.service.service_name, stranger.network)

    assert refused.value.response["Error"]["Code"] == "InvalidServiceName"
    assert refused.value.response["Error"]["Message"] == (
        f"The Vpc Endpoint Service '{producer.service.service_name}' does not exist"
    )
    assert stranger.ec2.describe_vpc_endpoints()["VpcEndpoints"] == []
    assert producer.connections() == []


def test_an_unknown_service_name_is_refused(consumer: Consumer) -> None:
    with pytest.raises(ClientError) as refused:
        create_interface_endpoint(
            consumer.ec2, "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0", consumer.network
        )

    assert refused.value.response["Error"]["Code"] == "InvalidServiceName"


def test_the_calling_role_arn_as_allowed_principal_admits_only_that_role(producer: Producer) -> None:
    allow_principals(
        producer.ec2, producer.service.service_id, [role_arn(OTHER_CONSUMER, "tenant-endpoint-admin")]
    )
    admitted = make_consumer(producer, OTHER_CONSUMER)  # assumes role/tenant-endpoint-admin
    endpoint_id = create_interface_endpoint(admitted.ec2, producer.service.service_name, admitted.network)

    other_role = make_consumer(producer, OTHER_CONSUMER, role_name="someone-else")
    with pytest.raises(ClientError) as refused:
        create_interface_endpoint(other_role.ec2, producer.service.service_name, other_role.network)

    assert producer.connection(endpoint_id)["VpcEndpointOwner"] == OTHER_CONSUMER
    assert refused.value.response["Error"]["Code"] == "InvalidServiceName"


def test_an_iam_user_arn_as_allowed_principal_admits_that_user(producer: Producer) -> None:
    admin = make_consumer(producer, OTHER_CONSUMER)
    iam = admin.session.client("iam")
    iam.create_user(UserName="endpoint-bot")
    key = iam.create_access_key(UserName="endpoint-bot")["AccessKey"]
    user_ec2 = boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    ).client("ec2")
    allow_principals(
        producer.ec2, producer.service.service_id, [f"arn:aws:iam::{OTHER_CONSUMER}:user/endpoint-bot"]
    )

    endpoint_id = create_interface_endpoint(user_ec2, producer.service.service_name, admin.network)

    assert producer.connection(endpoint_id)["VpcEndpointOwner"] == OTHER_CONSUMER
    with pytest.raises(ClientError):  # the role that created the user is not allowed
        create_interface_endpoint(admin.ec2, producer.service.service_name, admin.network)


def test_a_star_principal_admits_any_account(producer: Producer) -> None:
    allow_principals(producer.ec2, producer.service.service_id, ["*"])
    anyone = make_consumer(producer, OTHER_CONSUMER)

    endpoint_id = create_interface_endpoint(anyone.ec2, producer.service.service_name, anyone.network)

    assert anyone.endpoint(endpoint_id)["State"] == "pendingAcceptance"


def test_the_owner_may_connect_to_its_own_service_without_being_listed(producer: Producer) -> None:
    network = create_consumer_network(producer.ec2, cidr="10.9.0.0/16")

    endpoint_id = create_interface_endpoint(producer.ec2, producer.service.service_name, network)

    assert producer.connection(endpoint_id)["VpcEndpointOwner"] == PRODUCER
    assert producer.connection(endpoint_id)["VpcEndpointState"] == "pendingAcceptance"


def test_removing_a_principal_does_not_close_existing_connections(
    producer: Producer, consumer: Consumer
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    producer.ec2.modify_vpc_endpoint_service_permissions(
        ServiceId=producer.service.service_id, RemoveAllowedPrincipals=[f"arn:aws:iam::{CONSUMER}:root"]
    )

    assert producer.connection(endpoint_id)["VpcEndpointState"] == "pendingAcceptance"
    with pytest.raises(ClientError):
        create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)


def test_a_service_without_acceptance_required_connects_available_at_once(producer: Producer) -> None:
    open_service = create_endpoint_service(
        producer.ec2,
        producer.elbv2,
        name="open",
        acceptance_required=False,
        allowed_principals=[f"arn:aws:iam::{CONSUMER}:root"],
        cidr="10.5.0.0/16",
    )
    consumer = make_consumer(producer, CONSUMER)

    endpoint_id = create_interface_endpoint(consumer.ec2, open_service.service_name, consumer.network)

    assert consumer.endpoint(endpoint_id)["State"] == "available"
    assert producer.connection(endpoint_id)["VpcEndpointState"] == "available"


def test_a_connection_carries_every_field_the_design_relies_on(
    producer: Producer, consumer: Consumer
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    endpoint = consumer.endpoint(endpoint_id)

    connection = producer.connection(endpoint_id)

    assert connection["ServiceId"] == producer.service.service_id
    assert connection["VpcEndpointId"] == endpoint_id
    assert connection["VpcEndpointOwner"] == CONSUMER
    assert connection["VpcEndpointState"] == "pendingAcceptance"
    assert isinstance(connection["CreationTimestamp"], datetime)
    assert connection["CreationTimestamp"] == endpoint["CreationTimestamp"]
    assert connection["DnsEntries"] == endpoint["DnsEntries"]
    assert connection["DnsEntries"][0]["DnsName"]
    assert connection["NetworkLoadBalancerArns"] == [producer.service.load_balancer_arn]
    assert connection["GatewayLoadBalancerArns"] == []
    assert connection["IpAddressType"] == "ipv4"
    assert connection["VpcEndpointConnectionId"].startswith("vpce-con-")
    assert connection["Tags"] == []
    assert connection["VpcEndpointRegion"] == REGION
    assert endpoint["ServiceRegion"] == REGION


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(state_casing="PascalCase")])
def test_pascal_case_states_can_be_switched_on_to_test_normalisation(
    producer: Producer, consumer: Consumer
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert producer.connection(endpoint_id)["VpcEndpointState"] == "PendingAcceptance"
    assert consumer.endpoint(endpoint_id)["State"] == "pendingAcceptance"


def test_reject_a_pending_request_and_the_consumer_sees_rejected(
    producer: Producer, consumer: Consumer
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    answer = producer.ec2.reject_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )

    assert answer["Unsuccessful"] == []
    assert producer.connection(endpoint_id)["VpcEndpointState"] == "rejected"
    assert consumer.endpoint(endpoint_id)["State"] == "rejected"


@pytest.mark.parametrize("describes_before_revoking", [0, 2])
def test_rejecting_an_accepted_connection_revokes_it(
    producer: Producer, consumer: Consumer, describes_before_revoking: int
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )
    for _ in range(describes_before_revoking):  # 0: still pending; 2: available
        producer.connection(endpoint_id)

    answer = producer.ec2.reject_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )

    assert answer["Unsuccessful"] == []
    assert consumer.endpoint(endpoint_id)["State"] == "rejected"
    assert producer.connection(endpoint_id)["VpcEndpointState"] == "rejected"


def test_a_mixed_accept_batch_reports_only_the_bad_ids(producer: Producer, consumer: Consumer) -> None:
    service = producer.service
    good = [create_interface_endpoint(consumer.ec2, service.service_name, consumer.network) for _ in range(2)]
    rejected = create_interface_endpoint(consumer.ec2, service.service_name, consumer.network)
    producer.ec2.reject_vpc_endpoint_connections(ServiceId=service.service_id, VpcEndpointIds=[rejected])
    other_service = create_endpoint_service(
        producer.ec2,
        producer.elbv2,
        name="other",
        allowed_principals=[f"arn:aws:iam::{CONSUMER}:root"],
        cidr="10.6.0.0/16",
    )
    elsewhere = create_interface_endpoint(consumer.ec2, other_service.service_name, consumer.network)
    unknown = "vpce-0123456789abcdef0"

    answer = producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=service.service_id, VpcEndpointIds=[good[0], unknown, elsewhere, rejected, good[1]]
    )

    failures = {item["ResourceId"]: item["Error"] for item in answer["Unsuccessful"]}
    assert set(failures) == {unknown, elsewhere, rejected}
    assert failures[unknown]["Code"] == "InvalidVpcEndpointId.NotFound"
    assert failures[elsewhere]["Code"] == "InvalidVpcEndpointId.NotFound"
    assert failures[rejected]["Code"] == "InvalidState"
    assert all(error["Message"] for error in failures.values())
    assert {producer.connection(e)["VpcEndpointState"] for e in good} == {"pending"}
    assert producer.connection(elsewhere)["VpcEndpointState"] == "pendingAcceptance"
    assert producer.connection(rejected)["VpcEndpointState"] == "rejected"


def test_accepting_twice_reports_the_second_as_invalid_state(producer: Producer, consumer: Consumer) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    accept = {"ServiceId": producer.service.service_id, "VpcEndpointIds": [endpoint_id]}
    producer.ec2.accept_vpc_endpoint_connections(**accept)

    answer = producer.ec2.accept_vpc_endpoint_connections(**accept)

    assert [item["Error"]["Code"] for item in answer["Unsuccessful"]] == ["InvalidState"]


def test_only_the_service_owner_may_accept_or_reject(producer: Producer, consumer: Consumer) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    request = {"ServiceId": producer.service.service_id, "VpcEndpointIds": [endpoint_id]}

    with pytest.raises(ClientError) as accept:
        consumer.ec2.accept_vpc_endpoint_connections(**request)
    with pytest.raises(ClientError) as reject:
        consumer.ec2.reject_vpc_endpoint_connections(**request)

    assert accept.value.response["Error"]["Code"] == "InvalidVpcEndpointServiceId.NotFound"
    assert reject.value.response["Error"]["Code"] == "InvalidVpcEndpointServiceId.NotFound"
    assert producer.connection(endpoint_id)["VpcEndpointState"] == "pendingAcceptance"
    assert consumer.ec2.describe_vpc_endpoint_connections()["VpcEndpointConnections"] == []


def test_accepting_for_an_unknown_service_fails_the_request(producer: Producer) -> None:
    with pytest.raises(ClientError) as failed:
        producer.ec2.accept_vpc_endpoint_connections(
            ServiceId="vpce-svc-0000000000", VpcEndpointIds=["vpce-1"]
        )

    assert failed.value.response["Error"]["Code"] == "InvalidVpcEndpointServiceId.NotFound"


@pytest.mark.parametrize("accept_first", [False, True])
def test_consumer_delete_makes_the_connection_deleting_then_deleted(
    producer: Producer, consumer: Consumer, accept_first: bool
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    if accept_first:
        producer.ec2.accept_vpc_endpoint_connections(
            ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
        )

    answer = consumer.ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint_id])

    assert answer["Unsuccessful"] == []
    assert producer.connection(endpoint_id)["VpcEndpointState"] == "deleting"  # AWS: deleting first
    assert consumer.endpoint(endpoint_id)["State"] == "deleted"
    assert producer.connection(endpoint_id)["VpcEndpointState"] == "deleted"
    late = producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )
    assert [item["Error"]["Code"] for item in late["Unsuccessful"]] == ["InvalidState"]


def test_endpoints_to_aws_services_are_left_to_moto(consumer: Consumer) -> None:
    endpoint = consumer.ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=consumer.network.vpc_id,
        ServiceName=f"com.amazonaws.{REGION}.sns",
        SubnetIds=[consumer.network.subnet_id],
    )["VpcEndpoint"]

    assert endpoint["State"] == "available"


def test_injected_unsuccessful_answers_are_served_then_the_real_behaviour_resumes(
    producer: Producer, consumer: Consumer
) -> None:
    from gatekeeper_ops.emulator import inject_unsuccessful

    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    inject_unsuccessful(endpoint_id, times=2, code="InternalError", message="try again")
    for _ in range(2):
        answer = producer.ec2.accept_vpc_endpoint_connections(
            ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
        )
        assert answer["Unsuccessful"] == [
            {"ResourceId": endpoint_id, "Error": {"Code": "InternalError", "Message": "try again"}}
        ]
        assert producer.connection(endpoint_id)["VpcEndpointState"] == "pendingAcceptance"
    answer = producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )
    assert answer["Unsuccessful"] == []
