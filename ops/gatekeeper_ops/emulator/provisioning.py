"""Setting up PrivateLink scenes through plain boto3: a producer's endpoint service, consumer accounts
and their interface endpoints, and a notification topic.

Used by the emulator's tests and by the sandbox. Every function takes boto3 clients (or an STS
client to mint a consumer session), so it works the same against ``mock_aws()`` in-process, a
``ThreadedMotoServer`` (clients built with ``endpoint_url``) or — apart from the consumer-account
trick — a real account.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.session import Session as BotocoreSession
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import TagSpecificationTypeDef
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sts import STSClient


@dataclass(frozen=True)
class ProducerService:
    """An NLB-backed endpoint service in the producer account."""

    service_id: str
    service_name: str
    load_balancer_arn: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    target_group_arn: str | None = None
    target_instance_ids: tuple[str, ...] = ()  # one per subnet, registered in the target group
    listener_port: int = 443


@dataclass(frozen=True)
class ConsumerNetwork:
    """A consumer VPC with one subnet and a security group for interface endpoints."""

    vpc_id: str
    subnet_id: str
    security_group_id: str


def account_root(account_id: str) -> str:
    """The allowed-principal ARN that admits every IAM principal of an account."""
    return f"arn:aws:iam::{account_id}:root"


def role_arn(account_id: str, role_name: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{role_name}"


def create_endpoint_service(
    ec2: EC2Client,
    elbv2: BaseClient,
    *,
    name: str = "gatekeeper-demo",
    acceptance_required: bool = True,
    allowed_principals: Iterable[str] = (),
    supported_regions: Iterable[str] = (),
    cidr: str = "10.0.0.0/16",
    targets: bool = True,
    listener_port: int = 443,
) -> ProducerService:
    """A VPC with two subnets, an internal NLB in them and an endpoint service in front of it.

    With `targets`, the NLB also gets a TCP listener forwarding to an instance target group with one
    running instance per subnet, so DescribeTargetHealth reports a healthy target in every zone
    (moto reports a registered running instance healthy, a stopped one `unused`:
    see `set_targets_running`)."""
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    zones = [zone["ZoneName"] for zone in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    prefix = cidr.split(".")[:2]
    subnet_ids = tuple(
        ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=f"{prefix[0]}.{prefix[1]}.{index}.0/24", AvailabilityZone=zone
        )["Subnet"]["SubnetId"]
        for index, zone in enumerate(zones)
    )
    # No elbv2 type stubs in the dev lock, so the client is used untyped.
    load_balancers: Any = elbv2
    load_balancer_arn = str(
        load_balancers.create_load_balancer(
            Name=f"{name}-nlb", Type="network", Scheme="internal", Subnets=list(subnet_ids)
        )["LoadBalancers"][0]["LoadBalancerArn"]
    )
    target_group_arn: str | None = None
    instance_ids: tuple[str, ...] = ()
    if targets:
        target_group_arn, instance_ids = _add_targets(
            ec2,
            load_balancers,
            load_balancer_arn=load_balancer_arn,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            name=name,
            port=listener_port,
        )
    regions = list(supported_regions)
    request: dict[str, Any] = {
        "AcceptanceRequired": acceptance_required,
        "NetworkLoadBalancerArns": [load_balancer_arn],
        "TagSpecifications": [
            {"ResourceType": "vpc-endpoint-service", "Tags": [{"Key": "Name", "Value": name}]}
        ],
    }
    if regions:
        request["SupportedRegions"] = regions
    config = ec2.create_vpc_endpoint_service_configuration(**request)["ServiceConfiguration"]
    service = ProducerService(
        service_id=config["ServiceId"],
        service_name=config["ServiceName"],
        load_balancer_arn=load_balancer_arn,
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        target_group_arn=target_group_arn,
        target_instance_ids=instance_ids,
        listener_port=listener_port,
    )
    principals = list(allowed_principals)
    if principals:
        allow_principals(ec2, service.service_id, principals)
    return service


def _add_targets(
    ec2: EC2Client,
    elbv2: Any,
    *,
    load_balancer_arn: str,
    vpc_id: str,
    subnet_ids: tuple[str, ...],
    name: str,
    port: int,
) -> tuple[str, tuple[str, ...]]:
    group_arn = str(
        elbv2.create_target_group(
            Name=f"{name}-targets"[:32], Protocol="TCP", Port=port, VpcId=vpc_id, TargetType="instance"
        )["TargetGroups"][0]["TargetGroupArn"]
    )
    instance_ids = tuple(
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0][
            "InstanceId"
        ]
        for subnet in subnet_ids
    )
    elbv2.register_targets(TargetGroupArn=group_arn, Targets=[{"Id": i, "Port": port} for i in instance_ids])
    elbv2.create_listener(
        LoadBalancerArn=load_balancer_arn,
        Protocol="TCP",
        Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )
    return group_arn, instance_ids


def set_targets_running(ec2: EC2Client, service: ProducerService, running: bool) -> None:
    """Make the service's targets healthy (running) or not (stopped: `unused`, Target.InvalidState,
    as AWS reports a stopped instance target). Sandbox and tests only."""
    if not service.target_instance_ids:
        raise ValueError(f"{service.service_id} was created without targets")
    if running:
        ec2.start_instances(InstanceIds=list(service.target_instance_ids))
    else:
        ec2.stop_instances(InstanceIds=list(service.target_instance_ids))


def allow_principals(ec2: EC2Client, service_id: str, principals: Iterable[str]) -> None:
    ec2.modify_vpc_endpoint_service_permissions(ServiceId=service_id, AddAllowedPrincipals=list(principals))


def consumer_session(
    sts: STSClient,
    account_id: str,
    *,
    role_name: str = "tenant-endpoint-admin",
    region_name: str = "us-east-1",
    session_name: str = "vpce-consumer",
    botocore_session: BotocoreSession | None = None,
) -> boto3.Session:
    """A boto3 session acting in another (consumer) account, via ``sts:AssumeRole``.

    moto needs no such role to exist: the minted access key belongs to the account named in the
    role ARN, and every later request signed with it is served from that account's backends. Build
    clients from the session with the same ``endpoint_url`` as the producer's in server mode.
    Pass a fresh ``botocore_session`` to control what it shares (tests share a model loader,
    which makes a new client ~4x cheaper).
    """
    credentials = sts.assume_role(RoleArn=role_arn(account_id, role_name), RoleSessionName=session_name)[
        "Credentials"
    ]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region_name,
        botocore_session=botocore_session,
    )


def create_consumer_network(ec2: EC2Client, *, cidr: str = "10.1.0.0/16") -> ConsumerNetwork:
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    prefix = cidr.split(".")[:2]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{prefix[0]}.{prefix[1]}.0.0/24")["Subnet"][
        "SubnetId"
    ]
    group_id = ec2.create_security_group(
        GroupName="vpce-consumer", Description="interface endpoints", VpcId=vpc_id
    )["GroupId"]
    return ConsumerNetwork(vpc_id=vpc_id, subnet_id=subnet_id, security_group_id=group_id)


def create_interface_endpoint(
    ec2: EC2Client,
    service_name: str,
    network: ConsumerNetwork,
    *,
    service_region: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """An interface endpoint to ``service_name`` in the consumer's network; returns its id.

    ``service_region`` makes it a cross-region endpoint (the service lives in that region).
    """
    request: dict[str, Any] = {
        "VpcEndpointType": "Interface",
        "VpcId": network.vpc_id,
        "ServiceName": service_name,
        "SubnetIds": [network.subnet_id],
        "SecurityGroupIds": [network.security_group_id],
    }
    if service_region:
        request["ServiceRegion"] = service_region
    if tags:
        tag_specification: TagSpecificationTypeDef = {
            "ResourceType": "vpc-endpoint",
            "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
        }
        request["TagSpecifications"] = [tag_specification]
    return ec2.create_vpc_endpoint(**request)["VpcEndpoint"]["VpcEndpointId"]


def notification_topic_policy(topic_arn: str, producer_account: str) -> str:
    """The topic policy AWS requires: ``vpce.amazonaws.com`` may publish, for this account only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowVpceConnectionNotifications",
                    "Effect": "Allow",
                    "Principal": {"Service": "vpce.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": producer_account}},
                }
            ],
        }
    )


def create_notification_topic(sns: SNSClient, name: str, *, producer_account: str) -> str:
    """An SNS topic that endpoint connection notifications can be sent to; returns its ARN."""
    topic_arn = sns.create_topic(Name=name)["TopicArn"]
    sns.set_topic_attributes(
        TopicArn=topic_arn,
        AttributeName="Policy",
        AttributeValue=notification_topic_policy(topic_arn, producer_account),
    )
    return topic_arn
