"""An emulated producer account running the stack: what the integration tests and the demo share.

The producer owns an NLB-backed endpoint service (acceptance required); the stack's resources
are provisioned from template.yaml for that service; tenants and templates go in through the same
stores the CLI uses; consumer accounts reach the service through sts:AssumeRole. Events then
travel the real way and `settle()` lets the local Lambda service deliver them until quiet.

In-process under `mock_aws()`, or against moto's server: set AWS_ENDPOINT_URL first and every
boto3 client (ours, the handlers', a user's AWS CLI) talks to the server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.dal.decisions import DecisionStore
from gatekeeper.dal.templates import StoredTemplate, TemplateStore
from gatekeeper.dal.tenants import TenantStore
from gatekeeper.models.tenant import Tenant
from gatekeeper_ops.emulator.provisioning import (
    ConsumerNetwork,
    ProducerService,
    consumer_session,
    create_consumer_network,
    create_endpoint_service,
    create_interface_endpoint,
    set_targets_running,
)
from gatekeeper_ops.local_lambda import LocalLambda
from gatekeeper_ops.sandbox.traffic import TrafficSeed, seed_traffic
from gatekeeper_ops.stack import ROOT, EmulatedStack, provision, register_outputs

if TYPE_CHECKING:
    from gatekeeper_ops.control_plane import ControlPlaneClient

# The SaaS control plane's role in the sandbox: named in ControlPlanePrincipalArns, so the bus policy
# lets it (and nobody else) put tenant changes.
CONTROL_PLANE_ROLE = "saas-control-plane"

BUILTIN_TEMPLATES = ROOT / "policy-templates"


@dataclass
class Consumer:
    """A tenant's (or a stranger's) account, creating interface endpoints to our service."""

    account_id: str
    region: str
    session: boto3.Session
    network: ConsumerNetwork

    @property
    def ec2(self) -> Any:
        return self.session.client("ec2")

    def request_endpoint(self, service: ProducerService, service_region: str | None = None) -> str:
        cross_region = service_region if service_region and service_region != self.region else None
        return create_interface_endpoint(
            self.ec2, service.service_name, self.network, service_region=cross_region
        )

    def endpoint_state(self, vpc_endpoint_id: str) -> str:
        endpoint = self.ec2.describe_vpc_endpoints(VpcEndpointIds=[vpc_endpoint_id])["VpcEndpoints"][0]
        return str(endpoint["State"])

    def delete_endpoint(self, vpc_endpoint_id: str) -> None:
        self.ec2.delete_vpc_endpoints(VpcEndpointIds=[vpc_endpoint_id])


@dataclass
class ProducerAccount:
    session: boto3.Session
    service: ProducerService
    stack: EmulatedStack
    lambdas: LocalLambda
    _consumers: dict[tuple[str, str], Consumer] = field(default_factory=dict)
    services: tuple[ProducerService, ...] = ()  # every managed service, `service` first

    @classmethod
    def create(
        cls,
        session: boto3.Session,
        *,
        parameters: dict[str, Any] | None = None,
        supported_regions: Iterable[str] = ("us-west-2", "eu-west-1"),
        allowed_principals: Iterable[str] = ("*",),
        extra_environment: dict[str, str] | None = None,
        stack_name: str = "vpce-gatekeeper",
        services: int = 1,
    ) -> ProducerAccount:
        """`services` endpoint services (NLB-backed, acceptance required), all managed by the stack."""
        managed = tuple(
            create_endpoint_service(
                session.client("ec2"),
                session.client("elbv2"),
                name="gatekeeper-saas" if n == 0 else f"gatekeeper-saas-{n + 1}",
                acceptance_required=True,
                allowed_principals=allowed_principals,
                supported_regions=supported_regions,
                cidr=f"10.{n}.0.0/16",
            )
            for n in range(services)
        )
        service_ids = ",".join(s.service_id for s in managed)
        stack = provision(
            session, {"EndpointServiceIds": service_ids, **(parameters or {})}, stack_name=stack_name
        )
        register_outputs(session, stack)
        lambdas = LocalLambda(stack, session, extra_environment)
        return cls(session, managed[0], stack, lambdas, services=managed)

    # -- clients and stores ------------------------------------------------------------------
    def client(self, service: str) -> Any:
        return self.session.client(service)  # type: ignore[call-overload]

    @property
    def tenants(self) -> TenantStore:
        return TenantStore(self.client("dynamodb"), self.stack.outputs["TenantsTableName"])

    @property
    def templates(self) -> TemplateStore:
        return TemplateStore(self.client("dynamodb"), self.stack.outputs["TemplatesTableName"])

    @property
    def decisions(self) -> DecisionStore:
        return DecisionStore(self.client("dynamodb"), self.stack.outputs["DecisionsTableName"])

    # -- seeding -----------------------------------------------------------------------------
    def push_builtin_templates(self, actor: str = "sandbox") -> list[StoredTemplate]:
        return [self.push_template(path, actor) for path in sorted(BUILTIN_TEMPLATES.glob("*.json"))]

    def push_template(self, path: Path, actor: str = "sandbox") -> StoredTemplate:
        return self.templates.push(json.loads(path.read_text()), actor)

    def add_tenant(self, tenant: Tenant, actor: str = "sandbox") -> Tenant:
        return self.tenants.create(tenant, actor)

    # -- consumers ---------------------------------------------------------------------------
    def consumer(self, account_id: str, region: str | None = None) -> Consumer:
        region = region or self.stack.region
        if (account_id, region) not in self._consumers:
            session = consumer_session(self.client("sts"), account_id, region_name=region)
            network = create_consumer_network(session.client("ec2"))
            self._consumers[(account_id, region)] = Consumer(account_id, region, session, network)
        return self._consumers[(account_id, region)]

    def set_targets_healthy(self, healthy: bool) -> None:
        """Start (healthy) or stop (not healthy) every target behind the service's NLB."""
        set_targets_running(self.client("ec2"), self.service, healthy)

    def connection_state(self, vpc_endpoint_id: str) -> str:
        """What EC2 shows once its eventual consistency has caught up: the emulator's lag is one read
        per reader (the first Describe after a change may show the old state), so the second read
        is the truth."""
        ec2 = self.client("ec2")
        found: list[Any] = []
        for _ in range(2):
            found = ec2.describe_vpc_endpoint_connections(
                Filters=[{"Name": "vpc-endpoint-id", "Values": [vpc_endpoint_id]}]
            )["VpcEndpointConnections"]
        return str(found[0]["VpcEndpointState"]) if found else "unknown"

    def seed_traffic(self, idle: Iterable[str] = (), days: int = 3) -> TrafficSeed:
        """AWS/PrivateLinkServices datapoints for every available connection of the managed
        services (none for the `idle` endpoint ids), as AWS would publish them."""
        endpoints = EndpointService(self.client("ec2"))
        managed = [s for s in self.stack.outputs["ManagedEndpointServiceIds"].split(",") if s]
        # The second listing: EC2's first read after a change may still show the old states.
        connections = [c for service in managed for c in endpoints.connections(service)]
        connections = [c for service in managed for c in endpoints.connections(service)]
        return seed_traffic(
            self.client("cloudwatch"),
            connections,
            service_region=self.stack.region,
            idle=frozenset(idle),
            days=days,
        )

    # -- events ------------------------------------------------------------------------------
    def settle(self) -> int:
        """Deliver every pending trigger to its handler until nothing moves."""
        return self.lambdas.drain()

    def subscribe_decisions(self, name: str, filter_policy: dict[str, Any] | None = None) -> str:
        """An SQS queue subscribed to the decision topic (optionally filtered); returns its url."""
        sqs, sns = self.client("sqs"), self.client("sns")
        url = sqs.create_queue(QueueName=f"{self.stack.name}-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
        sns.subscribe(
            TopicArn=self.stack.outputs["DecisionTopicArn"],
            Protocol="sqs",
            Endpoint=arn,
            Attributes=attributes,
        )
        return str(url)

    def received(self, queue_url: str) -> list[dict[str, Any]]:
        """Every decision document waiting in a subscriber's queue (consumed)."""
        sqs = self.client("sqs")
        documents: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return documents
            for message in messages:
                documents.append(json.loads(json.loads(message["Body"])["Message"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def listen(self, name: str, pattern: dict[str, Any]) -> str:
        """An SQS queue a rule on the stack's bus feeds with the events `pattern` matches (as a
        control plane listening for its answers would); returns its url."""
        sqs, events = self.client("sqs"), self.client("events")
        url = sqs.create_queue(QueueName=f"{self.stack.name}-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = self.stack.outputs["EventBusName"]
        events.put_rule(Name=f"{self.stack.name}-{name}", EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(
            Rule=f"{self.stack.name}-{name}", EventBusName=bus, Targets=[{"Id": name, "Arn": arn}]
        )
        return str(url)

    def heard(self, queue_url: str) -> list[dict[str, Any]]:
        """Every event waiting in a `listen` queue (consumed), as EventBridge delivered it."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def control_plane(self) -> ControlPlaneClient:
        """The control plane's client, acting as the control plane's role (CONTROL_PLANE_ROLE: the
        sandbox names it in ControlPlanePrincipalArns, and the bus policy denies its source to anyone
        else); while it waits for an answer, the local Lambda service runs."""
        from gatekeeper_ops.control_plane import ControlPlaneClient

        session = consumer_session(
            self.client("sts"),
            self.stack.account_id,
            role_name=CONTROL_PLANE_ROLE,
            region_name=self.stack.region,
            session_name="control-plane",
        )
        return ControlPlaneClient.for_stack(
            session, self.stack.name, sleep=lambda _seconds: self.lambdas.drain()
        )

    def queue_depth(self, output: str) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.stack.outputs[output], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])
