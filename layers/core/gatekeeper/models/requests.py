"""The requests the decision path takes from the bus: evaluate, revoke, operator decision, closed."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gatekeeper.models.connection import ConnectionRef

SourceTrigger = Literal["notification", "reconcile", "tenant-change"]


class EvaluationRequest(BaseModel):
    """`Endpoint Connection Requested` (source `vpce.gatekeeper`): decide this connection by policy."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    connection: ConnectionRef
    trigger: SourceTrigger = "notification"
    # When the bus accepted the request (the envelope's `time`, set by models.events, never taken
    # from the detail): how long a connection EC2 does not list yet has been waited for.
    requested_at: datetime | None = None


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
