"""What every command shares: the AWS session, the stack's resources, the operator's identity,
and the translation of failures into one line a person can act on.

The stack is found the way an AWS engineer would look it up: `describe_stacks(StackName=…)` with
the usual profile/region settings (and `AWS_ENDPOINT_URL` for the sandbox). Nothing is read until
a command needs it, so `templates validate` works with no credentials at all.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import typer

# Nothing heavy at import time: `gatekeeper --help` and `--version` load none of boto3, the core
# or yaml. Each is imported where it is first used.
if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from mypy_boto3_dynamodb import DynamoDBClient

    from gatekeeper.adapters.endpoint_service import EndpointService
    from gatekeeper.dal.decisions import DecisionStore
    from gatekeeper.dal.templates import TemplateStore
    from gatekeeper.dal.tenants import TenantStore
    from gatekeeper.logic.decision_service import DecisionService
    from gatekeeper.models.connection import VpcEndpointConnection
    from gatekeeper.models.decision import Action
    from gatekeeper.wiring.settings import Settings

DEFAULT_STACK = "vpce-gatekeeper"
STACK_ENV = "GATEKEEPER_STACK"
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
    operator_role_arn: str | None = None
    dashboard_name: str | None = None  # older stacks: none (their dashboard is <stack>-operations)

    @classmethod
    def from_description(cls, stack: dict[str, Any], region: str) -> StackResources:
        from gatekeeper.models.identifiers import SERVICE_ID

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
            operator_role_arn=outputs.get("OperatorRoleArn"),
            dashboard_name=outputs.get("DashboardName"),
        )


def _action(value: str | None) -> Action:
    return "hold" if value == "hold" else "reject"


# us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-7, us-isob-east-1 …
_REGION_NAME = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$")


def _check_region(session: boto3.Session, given: str | None) -> None:
    """A region that cannot exist is refused before any call: AWS would answer with a connection
    error, the sandbox with an unparseable error page (after the SDK's retries)."""
    region = session.region_name
    if region is None:
        return  # botocore's NoRegionError, described below, says what to do
    where = f"--region {region!r}" if given else f"the region {region!r} (from the profile or AWS_REGION)"
    if not _REGION_NAME.match(region):
        raise CliError(f"{where} is not an AWS Region name (like us-east-1 or eu-west-1)")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:  # the sandbox serves the Regions the SDK knows; AWS may have newer ones
        known = {
            r
            for partition in session.get_available_partitions()
            for r in session.get_available_regions("cloudformation", partition_name=partition)
        }
        if region not in known:
            raise CliError(f"{where} is not a Region the endpoint {endpoint} (AWS_ENDPOINT_URL) serves")


def _config() -> Config:
    from botocore.config import Config

    # Interactive tool: fail fast on a dead endpoint, retry throttling a few times.
    return Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 4})


@dataclass
class Gatekeeper:
    """One CLI invocation's view of AWS and of the stack. Everything is resolved lazily, once: one
    session, one client per service, one DescribeStacks, one GetCallerIdentity per process."""

    stack_name: str = DEFAULT_STACK
    profile: str | None = None
    region: str | None = None
    debug: bool = False

    @cached_property
    def session(self) -> boto3.Session:
        import boto3

        session = boto3.Session(profile_name=self.profile, region_name=self.region)
        _check_region(session, self.region)
        return session

    @cached_property
    def _clients(self) -> dict[str, Any]:
        return {}

    def client(self, service: str) -> Any:
        """The invocation's client of `service`, built once: building one takes tens of ms, EC2's more."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=_config())  # type: ignore[call-overload]
        return self._clients[service]

    @cached_property
    def stack(self) -> StackResources:
        from botocore.exceptions import ClientError

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
        from gatekeeper.dal.tenants import TenantStore

        return TenantStore(self.dynamodb, self.stack.tenants_table)

    @cached_property
    def templates(self) -> TemplateStore:
        from gatekeeper.dal.templates import TemplateStore

        return TemplateStore(self.dynamodb, self.stack.templates_table)

    @cached_property
    def decisions(self) -> DecisionStore:
        from gatekeeper.dal.decisions import DecisionStore

        return DecisionStore(self.dynamodb, self.stack.decisions_table)

    @cached_property
    def endpoint_service(self) -> EndpointService:
        from gatekeeper.adapters.endpoint_service import EndpointService

        return EndpointService(self.client("ec2"))

    def require_tenant(self, tenant_id: str) -> None:
        """Refuse a --tenant filter that names no tenant — no record, and no decision ever recorded
        for it — instead of printing nothing (a removed tenant's history stays listable). Called when
        a filter matched nothing, so a matching filter costs no extra read."""
        from gatekeeper.models.errors import TenantInvalid, TenantNotFound

        try:
            self.tenants.get(tenant_id)
        except TenantInvalid:
            return  # a record, if a broken one
        except TenantNotFound:
            if not self.decisions.decisions_for_tenant(tenant_id):
                raise CliError(
                    f"no tenant {tenant_id!r}: no record and no decision recorded for it; "
                    "see `gatekeeper tenants list`"
                ) from None

    def connections(self, services: Sequence[str], states: Sequence[str] = ()) -> list[VpcEndpointConnection]:
        """Every connection of these services (in these states, camelCase), in one Describe and its
        pages for all of them."""
        return list(self.endpoint_service.connections(services, states))

    @cached_property
    def settings(self) -> Settings:
        """The stack as the functions see it: the same settings model, from the stack's outputs and
        parameters instead of the Lambda environment."""
        from gatekeeper.wiring.settings import Settings

        stack = self.stack
        return Settings(
            tenants_table=stack.tenants_table,
            templates_table=stack.templates_table,
            decisions_table=stack.decisions_table,
            event_bus_name=stack.event_bus_name,
            decision_topic_arn=stack.decision_topic_arn,
            endpoint_service_ids=stack.managed_services,
            default_action=stack.default_action,
            unknown_principal_action=stack.unknown_principal_action,
            region=stack.region,
        )

    @cached_property
    def decision_service(self) -> DecisionService:
        """The Lambda's decision service, built by the same wiring (gatekeeper.wiring.services), for
        `assess` only: the CLI never decides by itself. Its reads are made once per invocation
        (cli/snapshot.py); its clients are built when first called: assessing publishes nothing
        (SNS, EventBridge), and reads EC2 and the load balancers only for a known tenant whose
        template tests the data plane."""
        from gatekeeper.wiring.services import Stores, build_decision_service
        from gatekeeper_ops.cli.snapshot import DecisionsSnapshot, TemplatesSnapshot, TenantsSnapshot

        stack = self.stack
        snapshots = Stores(
            tenants=TenantsSnapshot(self.dynamodb, stack.tenants_table),
            templates=TemplatesSnapshot(self.dynamodb, stack.templates_table),
            decisions=DecisionsSnapshot(self.dynamodb, stack.decisions_table),
        )
        return build_decision_service(self.settings, self._client_on_first_use, snapshots)

    def _client_on_first_use(self, service: str, config: object = None) -> Any:
        """A ClientFactory for the wiring: the CLI's own session and retry settings, not the
        functions' (`config` is theirs, ignored here)."""
        return _ClientOnFirstUse(self, service)


class _ClientOnFirstUse:
    """A client built when something first calls it (building one loads its service model)."""

    def __init__(self, gatekeeper: Gatekeeper, service: str) -> None:
        self._gatekeeper = gatekeeper
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gatekeeper.client(self._service), name)


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
    for describe in (_describe_refusal, _describe_input, _describe_aws):
        message = describe(exc)
        if message is not None:
            return message
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return None


# An exception's class is loaded before it can be raised: the describers below look only at the
# libraries already imported, so describing a failure never loads the core, pydantic or boto3.
def _loaded(module: str) -> bool:
    return module in sys.modules


def _describe_refusal(exc: BaseException) -> str | None:
    """The CLI's and the core's own refusals, already phrased for a person."""
    if isinstance(exc, CliError):
        return str(exc)
    if not _loaded("gatekeeper"):
        return None
    from gatekeeper.models.errors import GatekeeperError
    from gatekeeper.policy import ParameterInvalid, PolicyError, TemplateInvalid

    # A TenantInvalid's own message names `gatekeeper tenants repair <id>` (the core's wording).
    if isinstance(exc, GatekeeperError):
        return str(exc)
    if isinstance(exc, ParameterInvalid):
        where = f" of template {exc.template!r}" if exc.template else ""
        return f"parameter overrides do not fit the parameters{where}: " + "; ".join(exc.problems)
    if isinstance(exc, TemplateInvalid):
        subject = f"template {exc.template!r}" if exc.template else "template"
        return f"{subject} is invalid: " + "; ".join(exc.problems)
    if isinstance(exc, PolicyError):
        return f"policy cannot be evaluated: {exc}"
    return None


def _describe_input(exc: BaseException) -> str | None:
    """Records, files and documents that do not parse or validate."""
    if _loaded("pydantic"):
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            return f"invalid {exc.title}: " + "; ".join(_validation_problem(e) for e in exc.errors())
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if _loaded("yaml"):
        import yaml

        if isinstance(exc, yaml.YAMLError):
            return f"not valid YAML: {exc}"
    return None


def _describe_aws(exc: BaseException) -> str | None:
    """The SDK's failures: credentials, region, network, and AWS's own error responses."""
    if not _loaded("botocore"):
        return None
    from botocore import exceptions as aws
    from botocore.parsers import ResponseParserError

    if isinstance(exc, aws.NoCredentialsError | aws.PartialCredentialsError):
        return (
            "no AWS credentials found: pass --profile or set AWS_PROFILE (for the sandbox, export the "
            "variables `make demo ARGS=--keep-running` prints)"
        )
    if isinstance(exc, aws.ProfileNotFound):
        return f"{exc}; list profiles with `aws configure list-profiles`"
    if isinstance(exc, aws.NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION"
    if isinstance(exc, aws.EndpointConnectionError):
        where = exc.kwargs.get("endpoint_url", "AWS")
        return f"cannot reach {where}: check --region, AWS_ENDPOINT_URL and the network"
    if isinstance(exc, aws.ClientError):
        return _client_error(exc)
    if isinstance(exc, ResponseParserError):
        return (
            f"the endpoint's answer is not an AWS response ({type(exc).__name__}): "
            "check --region and AWS_ENDPOINT_URL"
        )
    if isinstance(exc, aws.BotoCoreError):
        return f"AWS SDK: {exc}"
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
