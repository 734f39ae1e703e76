"""What every command shares: the AWS session, the stack's resources, the operator's identity,
and the translation of failures into one line a person can act on.

The stack is found the way an AWS engineer would look it up: `describe_stacks(StackName=…)` with
the usual profile/region settings (and `AWS_ENDPOINT_URL` for the sandbox). Nothing is read until
a command needs it, so `templates validate` works with no credentials at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
import typer
import yaml
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from pydantic import ValidationError

from gatekeeper.adapters.bus import EventPublisher
from gatekeeper.adapters.decision_topic import DecisionNotifier
from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.adapters.load_balancers import LoadBalancers
from gatekeeper.dal.decisions import DecisionStore
from gatekeeper.dal.templates import TemplateStore
from gatekeeper.dal.tenants import TenantStore
from gatekeeper.logic.decision_service import DecisionService
from gatekeeper.models.decision import Action
from gatekeeper.models.errors import GatekeeperError, TenantInvalid
from gatekeeper.models.identifiers import SERVICE_ID
from gatekeeper.policy import ParameterInvalid, PolicyError, TemplateInvalid

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_STACK = "vpce-gatekeeper"
STACK_ENV = "GATEKEEPER_STACK"
# Interactive tool: fail fast on a dead endpoint, retry throttling a few times.
_CONFIG = Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 4})
_REQUIRED_OUTPUTS = (
    "TenantsTableName",
    "TemplatesTableName",
    "DecisionsTableName",
    "EventBusName",
    "DecisionTopicArn",
    "ConnectionNotificationTopicArn",
    "ManagedEndpointServiceIds",
)


class CliError(Exception):
    """A refusal of the CLI itself (bad input, nothing to do), already phrased for the operator."""


@dataclass(frozen=True)
class StackResources:
    """The deployed stack as the CLI needs it: resource names from Outputs, behaviour from Parameters."""

    name: str
    region: str
    tenants_table: str
    templates_table: str
    decisions_table: str
    event_bus_name: str
    decision_topic_arn: str
    connection_notification_topic_arn: str
    managed_services: tuple[str, ...]
    default_action: Action = "reject"
    unknown_principal_action: Action = "reject"
    reconcile_function: str | None = None  # older stacks have no ReconcileFunctionName output

    @classmethod
    def from_description(cls, stack: dict[str, Any], region: str) -> StackResources:
        name = str(stack.get("StackName", "?"))
        outputs = {o["OutputKey"]: str(o.get("OutputValue", "")) for o in stack.get("Outputs", [])}
        missing = [key for key in _REQUIRED_OUTPUTS if key not in outputs]
        if missing:
            raise CliError(
                f"stack {name!r} has no output {', '.join(missing)}; is it a vpce-gatekeeper stack "
                f"(deployed with `sam deploy`)? Pass the right one with --stack-name or {STACK_ENV}"
            )
        parameters = {
            p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in stack.get("Parameters", [])
        }
        services = tuple(s.strip() for s in outputs["ManagedEndpointServiceIds"].split(",") if s.strip())
        return cls(
            name=name,
            region=region,
            tenants_table=outputs["TenantsTableName"],
            templates_table=outputs["TemplatesTableName"],
            decisions_table=outputs["DecisionsTableName"],
            event_bus_name=outputs["EventBusName"],
            decision_topic_arn=outputs["DecisionTopicArn"],
            connection_notification_topic_arn=outputs["ConnectionNotificationTopicArn"],
            managed_services=tuple(s for s in services if SERVICE_ID.match(s)),
            default_action=_action(parameters.get("DefaultAction")),
            unknown_principal_action=_action(parameters.get("UnknownPrincipalAction")),
            reconcile_function=outputs.get("ReconcileFunctionName"),
        )


def _action(value: str | None) -> Action:
    return "hold" if value == "hold" else "reject"


@dataclass
class Gatekeeper:
    """One CLI invocation's view of AWS and of the stack. Everything is resolved lazily, once."""

    stack_name: str = DEFAULT_STACK
    profile: str | None = None
    region: str | None = None
    debug: bool = False

    @cached_property
    def session(self) -> boto3.Session:
        return boto3.Session(profile_name=self.profile, region_name=self.region)

    def client(self, service: str) -> Any:
        return self.session.client(service, config=_CONFIG)  # type: ignore[call-overload]

    @cached_property
    def stack(self) -> StackResources:
        cloudformation = self.client("cloudformation")
        try:
            [description] = cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"]
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if "does not exist" in message:
                raise CliError(
                    f"stack {self.stack_name!r} not found in {self.session.region_name}; pass --stack-name "
                    f"or set {STACK_ENV} (and check --region/--profile)"
                ) from None
            raise
        return StackResources.from_description(description, self.session.region_name or "")

    @cached_property
    def caller_arn(self) -> str:
        """Who is running this: recorded on every write."""
        return str(self.client("sts").get_caller_identity()["Arn"])

    @property
    def actor(self) -> str:
        return f"operator:{self.caller_arn}"

    # -- stores and services -------------------------------------------------------------------
    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self.client("dynamodb")
        return client

    @cached_property
    def tenants(self) -> TenantStore:
        return TenantStore(self.dynamodb, self.stack.tenants_table)

    @cached_property
    def templates(self) -> TemplateStore:
        return TemplateStore(self.dynamodb, self.stack.templates_table)

    @cached_property
    def decisions(self) -> DecisionStore:
        return DecisionStore(self.dynamodb, self.stack.decisions_table)

    @cached_property
    def endpoints(self) -> EndpointService:
        return EndpointService(self.client("ec2"))

    @cached_property
    def bus(self) -> EventPublisher:
        return EventPublisher(self.client("events"), self.stack.event_bus_name)

    @cached_property
    def decision_service(self) -> DecisionService:
        """The Lambda's decision service, for `assess` only: the CLI never decides by itself."""
        stack = self.stack
        return DecisionService(
            tenants=self.tenants,
            templates=self.templates,
            decisions=self.decisions,
            endpoint_service=self.endpoints,
            notifier=DecisionNotifier(self.client("sns"), stack.decision_topic_arn),
            bus=self.bus,
            managed_services=frozenset(stack.managed_services),
            service_region=stack.region,
            default_action=stack.default_action,
            unknown_principal_action=stack.unknown_principal_action,
            # The same data-plane check as the decider: `simulate` and `pending` show what it decides.
            load_balancers=LoadBalancers(self.client("elbv2"), self.client("ec2")),
        )


def gatekeeper(ctx: typer.Context) -> Gatekeeper:
    """The invocation's Gatekeeper (the root callback creates it; a bare sub-app gets defaults)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Gatekeeper):
        root.obj = Gatekeeper()
    return root.obj


# -- failures ------------------------------------------------------------------------------------
def describe_error(exc: BaseException) -> str | None:
    """One line an operator can act on, or None for an error we did not foresee."""
    message = _describe(exc)
    return None if message is None else " ".join(message.split())


def _describe(exc: BaseException) -> str | None:
    if isinstance(exc, TenantInvalid):
        return (
            f"{exc} — fix that attribute in the DynamoDB console, or remove the record with "
            "`gatekeeper tenants remove <id> --expected-version <its version>` and add it again"
        )
    if isinstance(exc, CliError | GatekeeperError):
        return str(exc)
    if isinstance(exc, ParameterInvalid):
        where = f" of template {exc.template!r}" if exc.template else ""
        return f"parameter overrides do not fit the parameters{where}: " + "; ".join(exc.problems)
    if isinstance(exc, TemplateInvalid):
        subject = f"template {exc.template!r}" if exc.template else "template"
        return f"{subject} is invalid: " + "; ".join(exc.problems)
    if isinstance(exc, PolicyError):
        return f"policy cannot be evaluated: {exc}"
    if isinstance(exc, ValidationError):
        return f"invalid {exc.title}: " + "; ".join(_validation_problem(e) for e in exc.errors())
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found: pass --profile or set AWS_PROFILE (for the sandbox, export the "
            "variables `make demo ARGS=--keep-running` prints)"
        )
    if isinstance(exc, ProfileNotFound):
        return f"{exc}; list profiles with `aws configure list-profiles`"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION"
    if isinstance(exc, EndpointConnectionError):
        where = exc.kwargs.get("endpoint_url", "AWS")
        return f"cannot reach {where}: check --region, AWS_ENDPOINT_URL and the network"
    if isinstance(exc, ClientError):
        return _client_error(exc)
    if isinstance(exc, BotoCoreError):
        return f"AWS SDK: {exc}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, yaml.YAMLError):
        return f"not valid YAML: {exc}"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return None


def _validation_problem(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ())) or "record"
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    return f"{where}: {message}"


_CLIENT_HINTS = {
    "AccessDenied": "the caller lacks this permission; check --profile or the role's policy",
    "AccessDeniedException": "the caller lacks this permission; check --profile or the role's policy",
    "UnauthorizedOperation": "the caller lacks this permission; check --profile or the role's policy",
    "ExpiredToken": "the credentials expired; refresh them (e.g. `aws sso login`)",
    "ExpiredTokenException": "the credentials expired; refresh them (e.g. `aws sso login`)",
    "InvalidClientTokenId": "the access key is not valid in this partition/region",
    "UnrecognizedClientException": "the access key is not valid in this partition/region",
    "ResourceNotFoundException": "is the stack deployed in this region (--region)?",
}


def _client_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", "")).strip()
    line = (
        f"{exc.operation_name} failed: {code}: {message}"
        if message
        else f"{exc.operation_name} failed: {code}"
    )
    hint = _CLIENT_HINTS.get(code)
    return f"{line} ({hint})" if hint else line
