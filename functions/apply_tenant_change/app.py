"""`Tenant Change Requested` (the SaaS control plane) or SBT's onboarding/offboarding → the tenant
change, validated as the CLI validates it, applied once per request id, answered on the bus.

A refusal is an answer, not a failure: the function returns. It raises only when the change could
not be tried or answered (DynamoDB, EventBridge): Lambda retries the event, then parks it in the
dead-letter queue (alarmed); the retry finds the request's record and answers without applying it
twice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from gatekeeper.models.events import BusEvent
from gatekeeper.observability import logger, metrics
from gatekeeper.wiring.services import tenant_changes

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Init phase: settings are validated and clients built once per container, before any event.
tenant_changes()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    envelope = BusEvent.model_validate(event)
    answer = tenant_changes().handle(envelope.source, envelope.detail_type, envelope.detail)
    metrics.add_metric(
        name="TenantChangesApplied" if answer.changed else "TenantChangesRefused",
        unit=MetricUnit.Count,
        value=1,
    )
    return {"answer": answer.detail_type, **answer.detail()}
