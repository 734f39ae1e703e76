"""Endpoint connections as EC2 describes them, their states and the named groups of states, and
the reference (ids only) the decision path trusts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatekeeper.models.identifiers import (
    ACCOUNT_ID,
    ENDPOINT_ID,
    SERVICE_ID,
)

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
# The named groups of states; every layer (and the operator package) tests states through them.
# A request nobody has accepted or rejected yet: the only state a decision can be made in.
PENDING_ACCEPTANCE: ConnectionState = "pendingAcceptance"
# Accepted: the connection has, or is getting, access (`pending` is normal right after an accept).
ACCEPTED_STATES: frozenset[str] = frozenset({"pending", "available"})
# Open: pending acceptance or accepted, what a revocation can still take away.
OPEN_STATES: frozenset[str] = ACCEPTED_STATES | {PENDING_ACCEPTANCE}
# Closed: the connection is gone or going, nothing left to accept or take away.
CLOSED_STATES: frozenset[str] = frozenset({"deleting", "deleted", "rejected", "failed", "expired"})


def normalise_state(value: str) -> ConnectionState:
    """EC2 reports states as both `pendingAcceptance` and `PendingAcceptance`."""
    try:
        return _STATES[value.lower()]
    except KeyError:
        raise ValueError(f"unknown VPC endpoint connection state {value!r}") from None


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


class ConnectionRef(BaseModel):
    """The only part of a bus event the decision path trusts: which endpoint, of which service.

    Events may carry the whole connection as a source saw it (for subscribers); the decision path
    re-reads it from EC2, so an owner, state or region written into an event changes nothing.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    vpc_endpoint_id: str = Field(alias="VpcEndpointId", pattern=ENDPOINT_ID.pattern)
    service_id: str = Field(alias="ServiceId", pattern=SERVICE_ID.pattern)
