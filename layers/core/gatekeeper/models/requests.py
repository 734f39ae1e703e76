"""The requests the decision path takes from the bus: evaluate, revoke, operator decision, closed."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gatekeeper.models.connection import ACCEPTED_STATES, CLOSED_STATES, PENDING_ACCEPTANCE, ConnectionRef

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

OperatorVerdict = Literal[
    "approve",  # pending acceptance, nothing or a hold recorded: accept it
    "reject",  # pending acceptance, nothing or a hold recorded: reject it
    "revoke",  # accepted by the gatekeeper: reject it, which takes the tenant's access away
    "already",  # already what was asked (accepted, or closed): nothing to do
    "not-pending",  # an approval of a connection that is not pending acceptance
    "never-accepted",  # accepted, but not by the gatekeeper: not the decision path's to take away
    "drift",  # pending acceptance while a final decision is recorded: the reconciler repairs it
    "not-open",  # a rejection of a connection neither pending, accepted nor closed
]
CARRIED_OUT: frozenset[OperatorVerdict] = frozenset({"approve", "reject", "revoke"})


def operator_verdict(
    requested: Literal["accepted", "rejected"], state: str, recorded: str | None
) -> OperatorVerdict:
    """When an operator may approve (`accepted`) or reject (`rejected`) a connection in this EC2
    state, given the decision status the gatekeeper recorded for it (None: none). The decider
    carries out only the CARRIED_OUT verdicts; the CLI explains the others before publishing."""
    if requested == "accepted":
        if state in ACCEPTED_STATES and recorded in (None, "accepted"):
            return "already"
        if state != PENDING_ACCEPTANCE:
            return "not-pending"
    elif state in ACCEPTED_STATES:
        return "revoke" if recorded == "accepted" else "never-accepted"
    elif state in CLOSED_STATES:
        return "already"
    elif state != PENDING_ACCEPTANCE:
        return "not-open"
    if recorded not in (None, "held"):
        return "drift"
    return "approve" if requested == "accepted" else "reject"


class ConnectionClosed(BaseModel):
    """Detail of `Endpoint Connection Closed`: a source saw the connection deleted or rejected.
    The slot is released only once EC2 confirms it is closed."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    connection: ConnectionRef
    trigger: SourceTrigger = "notification"
