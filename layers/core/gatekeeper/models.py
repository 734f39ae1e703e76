"""Domain models: endpoint connections, tenants, decisions and the events on the bus.

Every value that crosses a boundary (EC2 answer, DynamoDB record, bus event, SNS message) is
validated into one of these models; anything that does not validate is refused, never guessed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatekeeper.errors import InvalidPrincipal

ACCOUNT_ID = re.compile(r"^\d{12}$")
SERVICE_ID = re.compile(r"^vpce-svc-[0-9a-f]{8,17}$")
ENDPOINT_ID = re.compile(r"^vpce-[0-9a-f]{8,17}$")
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):(root|role/.+|user/.+)$")

ConnectionState = Literal[
    "pendingAcceptance",
    "pending",
    "available",
    "deleting",
    "deleted",
    "rejected",
    "failed",
    "expired",
    "partial",
]
_STATES: dict[str, ConnectionState] = {state.lower(): state for state in get_args(ConnectionState)}
CLOSED_STATES: frozenset[str] = frozenset({"deleting", "deleted", "rejected", "failed", "expired"})
# Accepted: the connection has, or is getting, access (`pending` is normal right after an accept).
ACCEPTED_STATES: frozenset[str] = frozenset({"pending", "available"})

Trigger = Literal["notification", "reconcile", "tenant-change", "operator"]
Outcome = Literal["accepted", "rejected", "held", "revoked"]
Action = Literal["reject", "hold"]


def now_utc() -> datetime:
    return datetime.now(UTC)


def normalise_state(value: str) -> ConnectionState:
    """EC2 reports states as both `pendingAcceptance` and `PendingAcceptance`."""
    try:
        return _STATES[value.lower()]
    except KeyError:
        raise ValueError(f"unknown VPC endpoint connection state {value!r}") from None


def account_of(principal: str) -> str:
    """The AWS account a tenant principal (account id or IAM ARN) lives in.

    Raises InvalidPrincipal with the reason PrivateLink would refuse it.
    """
    if ACCOUNT_ID.match(principal):
        return principal
    match = PRINCIPAL_ARN.match(principal)
    if not match:
        raise InvalidPrincipal(
            f"principal {principal!r} is neither a 12-digit account id nor an IAM ARN of the form "
            "arn:aws:iam::<account>:root|role/<name>|user/<name>"
        )
    kind = match.group(2)
    if kind != "root" and kind.count("/") > 1:
        raise InvalidPrincipal(
            f"principal {principal} has a path; PrivateLink does not accept principal ARNs with paths "
            f"(use arn:aws:iam::{match.group(1)}:{kind.split('/')[0]}/{kind.rsplit('/', 1)[-1]})"
        )
    return match.group(1)


def principal_arn(principal: str) -> str:
    """The ARN form used in a service's allowed principals (`<account>` → `…:root`)."""
    return f"arn:aws:iam::{principal}:root" if ACCOUNT_ID.match(principal) else principal


class VpcEndpointConnection(BaseModel):
    """A consumer's connection to one of our endpoint services, as EC2 describes it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    service_id: str = Field(alias="ServiceId", pattern=SERVICE_ID.pattern)
    vpc_endpoint_id: str = Field(alias="VpcEndpointId", pattern=ENDPOINT_ID.pattern)
    vpc_endpoint_owner: str = Field(alias="VpcEndpointOwner", pattern=ACCOUNT_ID.pattern)
    vpc_endpoint_state: ConnectionState = Field(alias="VpcEndpointState")
    creation_timestamp: datetime | None = Field(default=None, alias="CreationTimestamp")
    vpc_endpoint_region: str | None = Field(default=None, alias="VpcEndpointRegion")
    ip_address_type: str | None = Field(default=None, alias="IpAddressType")
    vpc_endpoint_connection_id: str | None = Field(default=None, alias="VpcEndpointConnectionId")
    network_load_balancer_arns: tuple[str, ...] = Field(default=(), alias="NetworkLoadBalancerArns")

    @field_validator("vpc_endpoint_state", mode="before")
    @classmethod
    def _normalise_state(cls, value: Any) -> Any:
        return normalise_state(value) if isinstance(value, str) else value

    def region(self, service_region: str) -> str:
        """The consumer's region: cross-region connections carry it, same-region ones may not."""
        return self.vpc_endpoint_region or service_region

    def to_event(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Tenant(BaseModel):
    """A tenant allow-list record: who may connect, to what, under which policy template."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID.pattern)
    display_name: str = Field(min_length=1, max_length=256)
    status: Literal["active", "suspended"] = "active"
    principals: tuple[str, ...] = Field(min_length=1)
    services: tuple[str, ...] = Field(min_length=1)
    template: str = Field(min_length=1, max_length=64)
    template_version: int | None = Field(default=None, ge=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    max_endpoints: int = Field(ge=0, le=10_000)
    expires_at: datetime | None = None
    contact: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    version: int = Field(default=0, ge=0)
    updated_by: str | None = None
    updated_at: datetime | None = None

    @field_validator("principals")
    @classmethod
    def _principals(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for principal in value:
            account_of(principal)
        if len(set(value)) != len(value):
            raise ValueError("principals are listed more than once")
        return value

    @field_validator("services")
    @classmethod
    def _services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for service in value:
            if service != "*" and not SERVICE_ID.match(service):
                raise ValueError(f"service {service!r} is not an endpoint service id (vpce-svc-…) or '*'")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def accounts(self) -> frozenset[str]:
        return frozenset(account_of(p) for p in self.principals)

    def is_expired(self, at: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= at

    def is_entitled(self, service_id: str) -> bool:
        return "*" in self.services or service_id in self.services

    def is_eligible(self, service_id: str, at: datetime) -> bool:
        """Whether the record alone (before any template) still lets this tenant use the service."""
        return self.status == "active" and not self.is_expired(at) and self.is_entitled(service_id)


class ServiceAccess(BaseModel):
    """What a tenant needs to use an accepted connection; informational, so every field is optional
    except the service name (a part that could not be read is left out, never guessed)."""

    model_config = ConfigDict(frozen=True)

    service_name: str  # com.amazonaws.vpce.<region>.vpce-svc-…
    ports: tuple[int, ...] | None = None  # the NLB's listener ports
    private_dns_name: str | None = None
    private_dns_name_state: str | None = None  # pendingVerification | verified | failed
    healthy_zones: tuple[str, ...] | None = None  # the service's zones that reach a healthy target


class Decision(BaseModel):
    """One decision about one endpoint connection: the audit record and the notification body.

    `service_access` is set on accepted decisions when it could be read (optional: consumers that
    predate it keep parsing)."""

    model_config = ConfigDict(frozen=True)

    vpc_endpoint_id: str
    service_id: str
    vpc_endpoint_owner: str
    vpc_endpoint_region: str | None = None
    tenant_id: str | None = None
    decision: Outcome
    reasons: tuple[str, ...] = ()
    explanation: tuple[str, ...] = ()
    template: str | None = None
    template_version: int | None = None
    actor: str = "auto"
    trigger: Trigger = "notification"
    decided_at: datetime = Field(default_factory=now_utc)
    service_access: ServiceAccess | None = None

    @model_validator(mode="after")
    def _actor(self) -> Decision:
        if not (self.actor in ("auto", "reconcile") or self.actor.startswith("operator:")):
            raise ValueError(f"actor {self.actor!r} must be auto, reconcile or operator:<arn>")
        return self


class ConnectionRef(BaseModel):
    """The only part of a bus event the decision path trusts: which endpoint, of which service.

    Events may carry the whole connection as a source saw it (for subscribers); the decision path
    re-reads it from EC2, so an owner, state or region written into an event changes nothing.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    vpc_endpoint_id: str = Field(alias="VpcEndpointId", pattern=ENDPOINT_ID.pattern)
    service_id: str = Field(alias="ServiceId", pattern=SERVICE_ID.pattern)


SourceTrigger = Literal["notification", "reconcile", "tenant-change"]


class EvaluationRequest(BaseModel):
    """`Endpoint Connection Requested` (source `vpce.gatekeeper`): decide this connection by policy."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    connection: ConnectionRef
    trigger: SourceTrigger = "notification"


class RevocationRequest(BaseModel):
    """`Endpoint Connection Revocation Requested` (source `vpce.gatekeeper`): a source (tenant sync,
    the reconciler) believes the tenant record no longer allows this connection. The decider reads
    the record again and revokes only what it still forbids."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    connection: ConnectionRef
    trigger: Literal["reconcile", "tenant-change"]
    reason: str = Field(default="", max_length=1024)


class OperatorRequest(BaseModel):
    """`Endpoint Connection Operator Decision` (source `vpce.gatekeeper.operator`, which only the
    stack's operator principals may put on the bus): approve or reject/revoke a connection.

    `requested_by` is what the caller says about itself; it is recorded as such, never as the actor.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    connection: ConnectionRef
    decision: Literal["accepted", "rejected"]
    reason: str | None = Field(default=None, max_length=1024)
    requested_by: str | None = Field(default=None, max_length=2048)


DecisionRequest = EvaluationRequest | RevocationRequest | OperatorRequest


class ConnectionClosed(BaseModel):
    """Detail of `Endpoint Connection Closed`: a source saw the connection deleted or rejected.
    The slot is released only once EC2 confirms it is closed."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    connection: ConnectionRef
    trigger: SourceTrigger = "notification"
