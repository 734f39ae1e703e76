"""`Endpoint Connection Closed` → release the tenant's quota slot, exactly once, once EC2 confirms
the connection is closed (a forged or stale event frees nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from gatekeeper.models.events import connection_closed
from gatekeeper.observability import logger, metrics
from gatekeeper.wiring.services import decision_service

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Init phase: settings are validated and clients built once per container, before any event.
decision_service()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    closed = connection_closed(event)
    released = decision_service().release(closed)
    if released:
        metrics.add_metric(name="QuotaSlotsReleased", unit=MetricUnit.Count, value=1)
    return {"vpc_endpoint_id": closed.connection.vpc_endpoint_id, "released": released}
