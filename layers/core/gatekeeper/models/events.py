"""The bus events the functions receive: an EventBridge envelope and the typed request it carries.

Which request an event is comes from its `source` and `detail-type`, never from a field of the
detail. Operator requests are only honoured from `vpce.gatekeeper.operator`, a source the bus
policy lets only the stack's operator principals put (template.yaml, `EventBusPolicy`).
Plain pydantic: the Powertools parser package costs ~80 ms of cold start for the same result.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gatekeeper.models.errors import EventRefused
from gatekeeper.models.requests import (
    ConnectionClosed,
    DecisionRequest,
    EvaluationRequest,
    OperatorRequest,
    RevocationRequest,
)

SOURCE = "vpce.gatekeeper"
OPERATOR_SOURCE = "vpce.gatekeeper.operator"
REQUESTED = "Endpoint Connection Requested"
REVOCATION_REQUESTED = "Endpoint Connection Revocation Requested"
OPERATOR_DECISION = "Endpoint Connection Operator Decision"
DECIDED = "Endpoint Connection Decided"
CLOSED = "Endpoint Connection Closed"

_REQUESTS: dict[tuple[str, str], type[DecisionRequest]] = {
    (SOURCE, REQUESTED): EvaluationRequest,
    (SOURCE, REVOCATION_REQUESTED): RevocationRequest,
    (OPERATOR_SOURCE, OPERATOR_DECISION): OperatorRequest,
}


class BusEvent(BaseModel):
    """The EventBridge envelope, as Lambda receives it from a rule."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str = ""
    source: str
    detail_type: str = Field(alias="detail-type")
    account: str = ""
    time: datetime | None = None
    detail: dict[str, Any]


def decision_request(event: dict[str, Any]) -> DecisionRequest:
    """An event delivered to evaluate_connection → the request it makes.

    Raises EventRefused (and pydantic's ValidationError) for anything else: fail closed.
    """
    envelope = BusEvent.model_validate(event)
    kind = _REQUESTS.get((envelope.source, envelope.detail_type))
    if kind is None:
        raise EventRefused(
            f"'{envelope.detail_type}' from source '{envelope.source}' is not a request the decider takes; "
            f"it takes {', '.join(f'{t!r} from {s!r}' for s, t in _REQUESTS)}"
        )
    if kind is EvaluationRequest:
        return EvaluationRequest.model_validate({**envelope.detail, "requested_at": envelope.time})
    return kind.model_validate(envelope.detail)


def connection_closed(event: dict[str, Any]) -> ConnectionClosed:
    envelope = BusEvent.model_validate(event)
    if (envelope.source, envelope.detail_type) != (SOURCE, CLOSED):
        raise EventRefused(f"'{envelope.detail_type}' from '{envelope.source}' is not '{CLOSED}'")
    return ConnectionClosed.model_validate(envelope.detail)
