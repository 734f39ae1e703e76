"""`Endpoint Connection Requested` → the decision path (accept, reject or hold; record; notify).

Errors propagate: EventBridge's async invoke retries, then the function's on-failure DLQ; the
decision state makes every retry safe.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from gatekeeper.events import ConnectionRequestedEvent
from gatekeeper.observability import logger, metrics
from gatekeeper.runtime import decision_service

# Init phase: settings are validated and clients built once per container, before any event.
decision_service()


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=ConnectionRequestedEvent)
def lambda_handler(event: ConnectionRequestedEvent, context: LambdaContext) -> dict[str, Any]:
    request = event.detail
    logger.append_keys(vpc_endpoint_id=request.connection.vpc_endpoint_id, trigger=request.trigger)
    decision = decision_service().decide(request)
    if decision is None:
        metrics.add_metric(name="DuplicateRequests", unit=MetricUnit.Count, value=1)
        return {"vpc_endpoint_id": request.connection.vpc_endpoint_id, "decision": None}
    metrics.add_metric(name=f"Connections{decision.decision.capitalize()}", unit=MetricUnit.Count, value=1)
    logger.info(
        "Connection decided",
        extra={"decision": decision.decision, "reasons": decision.reasons, "tenant_id": decision.tenant_id},
    )
    return {
        "vpc_endpoint_id": decision.vpc_endpoint_id,
        "decision": decision.decision,
        "reasons": list(decision.reasons),
    }
