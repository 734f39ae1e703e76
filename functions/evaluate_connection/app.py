"""Decision requests on the bus → the decision path (accept, reject or hold; record; notify).

Three rules deliver here: `Endpoint Connection Requested` and `Endpoint Connection Revocation
Requested` from `vpce.gatekeeper` (the stack's own functions), and `Endpoint Connection Operator
Decision` from `vpce.gatekeeper.operator` (only the operator principals may put that source).
Errors propagate: EventBridge's async invoke retries (~1 and ~2 minutes later), then the function's
on-failure DLQ; the decision state makes every retry safe, and the reconciler finishes anything a
dead invocation left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from gatekeeper.models.events import decision_request
from gatekeeper.observability import logger, metrics
from gatekeeper.wiring.services import decision_service, load_policy_engine

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Init phase: settings are validated, clients built and the policy engine loaded once per
# container, before any event.
decision_service()
load_policy_engine()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = decision_request(event)
    endpoint = request.connection.vpc_endpoint_id
    logger.append_keys(vpc_endpoint_id=endpoint, request=type(request).__name__)
    decision = decision_service().handle(request)
    if decision is None:
        metrics.add_metric(name="DuplicateRequests", unit=MetricUnit.Count, value=1)
        return {"vpc_endpoint_id": endpoint, "decision": None}
    metrics.add_metric(name=f"Connections{decision.outcome.capitalize()}", unit=MetricUnit.Count, value=1)
    logger.info(
        "Connection decided",
        extra={"decision": decision.outcome, "reasons": decision.reasons, "tenant_id": decision.tenant_id},
    )
    return {
        "vpc_endpoint_id": decision.vpc_endpoint_id,
        "decision": decision.outcome,
        "reasons": list(decision.reasons),
    }
