"""`Endpoint Connection Closed` → release the tenant's quota slot, exactly once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from gatekeeper.events import ConnectionClosedEvent
from gatekeeper.observability import logger, metrics
from gatekeeper.runtime import decision_service

# Init phase: settings are validated and clients built once per container, before any event.
decision_service()


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=ConnectionClosedEvent)
def lambda_handler(event: ConnectionClosedEvent, context: LambdaContext) -> dict[str, Any]:
    released = decision_service().release(event.detail)
    if released:
        metrics.add_metric(name="QuotaSlotsReleased", unit=MetricUnit.Count, value=1)
    return {"vpc_endpoint_id": event.detail.connection.vpc_endpoint_id, "released": released}
