"""The load balancer reader against botocore's Stubber: every request and response is checked against
the elbv2 and EC2 service models, so the shapes used here are the APIs' own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from gatekeeper.adapters.load_balancers import LoadBalancers
from gatekeeper.models.errors import DataPlaneUnreadable

SERVICE = "vpce-svc-0123456789abcdef0"
LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/saas/50dc6c495c0c9188"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/saas/73e2d6bc24d8a067"
ZONES = [
    {"ZoneName": "us-east-1a", "SubnetId": "subnet-1a"},
    {"ZoneName": "us-east-1b", "SubnetId": "subnet-1b"},
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws() -> Iterator[Any]:
    elbv2 = boto3.client("elbv2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    clock = Clock()
    with Stubber(elbv2) as elb_stub, Stubber(ec2) as ec2_stub:
        reader = LoadBalancers(elbv2, ec2, ttl_seconds=30, failure_ttl_seconds=5, clock=clock)
        yield type("Aws", (), {"elb": elb_stub, "ec2": ec2_stub, "reader": reader, "clock": clock})
        elb_stub.assert_no_pending_responses()
        ec2_stub.assert_no_pending_responses()


def balancer(
    elb: Stubber,
    *,
    cross_zone: str = "false",
    group_setting: str | None = None,
    target_type: str = "instance",
) -> None:
    elb.add_response(
        "describe_load_balancers",
        {"LoadBalancers": [{"LoadBalancerArn": LB, "Type": "network", "AvailabilityZones": ZONES}]},
        {"LoadBalancerArns": [LB]},
    )
    elb.add_response(
        "describe_load_balancer_attributes",
        {"Attributes": [{"Key": "load_balancing.cross_zone.enabled", "Value": cross_zone}]},
        {"LoadBalancerArn": LB},
    )
    elb.add_response(
        "describe_target_groups",
        {"TargetGroups": [{"TargetGroupArn": TG, "TargetType": target_type, "Port": 443}]},
        {"LoadBalancerArn": LB},
    )
    attributes = (
        [{"Key": "load_balancing.cross_zone.enabled", "Value": group_setting}] if group_setting else []
    )
    elb.add_response("describe_target_group_attributes", {"Attributes": attributes}, {"TargetGroupArn": TG})


def health(elb: Stubber, *targets: tuple[str, str] | tuple[str, str, str]) -> None:
    descriptions = []
    for target in targets:
        description: dict[str, Any] = {"Id": target[0], "Port": 443}
        if len(target) == 3:
            description["AvailabilityZone"] = target[2]
        descriptions.append({"Target": description, "TargetHealth": {"State": target[1]}})
    elb.add_response(
        "describe_target_health", {"TargetHealthDescriptions": descriptions}, {"TargetGroupArn": TG}
    )


def placements(ec2: Stubber, ids: list[str], zone: str) -> None:
    ec2.add_response(
        "describe_instances",
        {
            "Reservations": [
                {"Instances": [{"InstanceId": i, "Placement": {"AvailabilityZone": zone}} for i in ids]}
            ]
        },
        {"InstanceIds": ids},
    )


def configuration(ec2: Stubber, **extra: Any) -> None:
    ec2.add_response(
        "describe_vpc_endpoint_service_configurations",
        {
            "ServiceConfigurations": [
                {
                    "ServiceId": SERVICE,
                    "ServiceName": f"com.amazonaws.vpce.us-east-1.{SERVICE}",
                    "NetworkLoadBalancerArns": [LB],
                    **extra,
                }
            ]
        },
        {"ServiceIds": [SERVICE]},
    )


def test_cross_zone_off_counts_a_zone_only_with_a_healthy_target_of_its_own(aws):
    balancer(aws.elb)
    health(aws.elb, ("i-0aaaaaaaaaaaaaaa1", "healthy"), ("i-0bbbbbbbbbbbbbbb2", "unhealthy"))
    placements(aws.ec2, ["i-0aaaaaaaaaaaaaaa1"], "us-east-1a")
    plane = aws.reader.data_plane(SERVICE, [LB])
    assert (plane.zones, plane.healthy_zones, plane.unserved_zones) == (
        ("us-east-1a", "us-east-1b"),
        ("us-east-1a",),
        ("us-east-1b",),
    )
    assert plane.has_healthy_targets
    assert plane.describe() == (
        f"the load balancer of {SERVICE}: healthy targets serve us-east-1a; none serve us-east-1b "
        "(1 of 2 registered targets healthy; cross-zone load balancing off)"
    )


def test_cross_zone_on_one_healthy_target_serves_every_zone_without_placement_reads(aws):
    balancer(aws.elb, cross_zone="true")
    health(aws.elb, ("i-0aaaaaaaaaaaaaaa1", "healthy"), ("i-0bbbbbbbbbbbbbbb2", "draining"))
    plane = aws.reader.data_plane(SERVICE, [LB])
    assert plane.healthy_zones == ("us-east-1a", "us-east-1b")
    assert plane.cross_zone


def test_the_target_groups_setting_overrides_the_load_balancers(aws):
    balancer(aws.elb, cross_zone="true", group_setting="false")
    health(aws.elb, ("i-0aaaaaaaaaaaaaaa1", "healthy"))
    placements(aws.ec2, ["i-0aaaaaaaaaaaaaaa1"], "us-east-1b")
    plane = aws.reader.data_plane(SERVICE, [LB])
    assert (plane.healthy_zones, plane.cross_zone) == (("us-east-1b",), False)


def test_registered_zones_are_used_and_an_unplaced_ip_target_counts_only_with_cross_zone(aws):
    balancer(aws.elb, target_type="ip")
    health(aws.elb, ("10.0.0.5", "healthy"), ("10.0.1.5", "healthy", "us-east-1b"))
    assert aws.reader.data_plane(SERVICE, [LB]).healthy_zones == ("us-east-1b",)
    aws.clock.now += 31
    balancer(aws.elb, target_type="ip")
    health(aws.elb, ("10.0.0.5", "healthy", "all"))
    assert aws.reader.data_plane(SERVICE, [LB]).healthy_zones == ("us-east-1a", "us-east-1b")


def test_no_healthy_target_names_every_zone(aws):
    balancer(aws.elb)
    health(aws.elb, ("i-0aaaaaaaaaaaaaaa1", "unused"))
    plane = aws.reader.data_plane(SERVICE, [LB])
    assert not plane.has_healthy_targets
    assert plane.describe() == (
        f"the load balancer of {SERVICE} has no healthy target serving us-east-1a, us-east-1b "
        "(0 of 1 registered targets healthy; cross-zone load balancing off)"
    )


def test_a_burst_costs_one_look_until_the_ttl_passes(aws):
    balancer(aws.elb, cross_zone="true")
    health(aws.elb, ("i-0aaaaaaaaaaaaaaa1", "healthy"))
    first = aws.reader.data_plane(SERVICE, [LB])
    aws.clock.now += 29
    assert aws.reader.data_plane(SERVICE, [LB]) is first  # no call: the Stubber would refuse it
    aws.clock.now += 2
    balancer(aws.elb, cross_zone="true")
    health(aws.elb)
    assert not aws.reader.data_plane(SERVICE, [LB]).has_healthy_targets


def test_a_failure_is_unreadable_remembered_briefly_then_read_again(aws):
    aws.elb.add_client_error("describe_load_balancers", "AccessDenied", "not authorized", 403)
    with pytest.raises(DataPlaneUnreadable, match="AccessDenied"):
        aws.reader.data_plane(SERVICE, [LB])
    with pytest.raises(DataPlaneUnreadable):
        aws.reader.data_plane(SERVICE, [LB])  # remembered: no call
    aws.clock.now += 6
    balancer(aws.elb, cross_zone="true")
    health(aws.elb, ("i-0aaaaaaaaaaaaaaa1", "healthy"))
    assert aws.reader.data_plane(SERVICE, [LB]).has_healthy_targets


def test_without_arns_the_service_configurations_load_balancers_are_read(aws):
    configuration(aws.ec2)
    balancer(aws.elb, cross_zone="true")
    health(aws.elb, ("i-0aaaaaaaaaaaaaaa1", "healthy"))
    assert aws.reader.data_plane(SERVICE).load_balancer_arns == (LB,)


def test_a_service_without_a_network_load_balancer_is_unreadable(aws):
    aws.ec2.add_response(
        "describe_vpc_endpoint_service_configurations",
        {"ServiceConfigurations": [{"ServiceId": SERVICE, "GatewayLoadBalancerArns": ["arn:gwlb"]}]},
        {"ServiceIds": [SERVICE]},
    )
    with pytest.raises(DataPlaneUnreadable, match="no network load balancer"):
        aws.reader.data_plane(SERVICE)


def test_a_load_balancer_elbv2_does_not_describe_is_unreadable(aws):
    aws.elb.add_response("describe_load_balancers", {"LoadBalancers": []}, {"LoadBalancerArns": [LB]})
    with pytest.raises(DataPlaneUnreadable, match="describes 0 of 1"):
        aws.reader.data_plane(SERVICE, [LB])


def listeners(elb: Stubber, *ports: int) -> None:
    elb.add_response(
        "describe_listeners",
        {"Listeners": [{"Port": port, "Protocol": "TCP", "LoadBalancerArn": LB} for port in ports]},
        {"LoadBalancerArn": LB},
    )


def test_service_access_reads_name_dns_ports_and_healthy_zones(aws):
    configuration(
        aws.ec2,
        PrivateDnsName="api.saas.example",
        PrivateDnsNameConfiguration={
            "State": "pendingVerification",
            "Type": "TXT",
            "Name": "_x",
            "Value": "v",
        },
    )
    listeners(aws.elb, 8443, 443)
    balancer(aws.elb, cross_zone="true")
    health(aws.elb, ("i-0aaaaaaaaaaaaaaa1", "healthy"))
    access = aws.reader.service_access(SERVICE)
    assert access.model_dump() == {
        "service_name": f"com.amazonaws.vpce.us-east-1.{SERVICE}",
        "ports": (443, 8443),
        "private_dns_name": "api.saas.example",
        "private_dns_name_state": "pendingVerification",
        "healthy_zones": ("us-east-1a", "us-east-1b"),
    }
    assert aws.reader.service_access(SERVICE) is access  # cached


def test_service_access_leaves_out_what_cannot_be_read(aws):
    configuration(aws.ec2)
    aws.elb.add_client_error("describe_listeners", "AccessDenied", "not authorized", 403)
    aws.elb.add_client_error("describe_load_balancers", "Throttling", "slow down", 400)
    access = aws.reader.service_access(SERVICE)
    assert (access.ports, access.healthy_zones, access.private_dns_name) == (None, None, None)


def test_service_access_needs_the_service_configuration(aws):
    aws.ec2.add_response(
        "describe_vpc_endpoint_service_configurations",
        {"ServiceConfigurations": []},
        {"ServiceIds": [SERVICE]},
    )
    with pytest.raises(DataPlaneUnreadable, match="does not describe"):
        aws.reader.service_access(SERVICE)


def test_a_slow_notice_leaves_out_what_it_has_no_time_left_to_read(aws):
    ticks = iter(range(1000, 2000, 4))  # every look at the clock is 4 s later: the budget is 3 s
    aws.reader._clock = lambda: float(next(ticks))
    configuration(aws.ec2)
    listeners(aws.elb, 443)
    access = aws.reader.service_access(SERVICE)  # no load balancer stubs: a read would fail the test
    assert (access.ports, access.healthy_zones) == ((443,), None)
