"""Decision requests from the decision queue → the decision path, a batch at a time, answered as a
partial batch response (a request that fails comes back alone; one that needs no action succeeds).
A full delivery (a burst waits behind it) is topped up from the queue into the same batch, and what
of that is done is deleted (gatekeeper/adapters/decision_queue.py).
The rules that feed the queue and why: docs/how-it-decides.md, "The shape".
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from gatekeeper.models.events import decision_request
from gatekeeper.observability import logger, metrics
from gatekeeper.wiring.services import decision_queue, decision_service, load_policy_engine

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from gatekeeper.models.decision import Decision
    from gatekeeper.models.requests import DecisionRequest

# Init phase: settings are validated, clients built and the policy engine loaded once per
# container, before any event.
decision_service()
load_policy_engine()


def request_of(record: dict[str, Any]) -> DecisionRequest | Exception:
    """One SQS record → the request its bus event makes, or why it is none (fail closed)."""
    try:
        return decision_request(json.loads(record["body"]))
    except Exception as exc:
        return exc


def report(record: dict[str, Any], outcome: Decision | Exception | None) -> bool:
    """Metrics and logs for one request; whether it is done (else its message comes back)."""
    ids = {"message_id": record["messageId"]}
    if isinstance(outcome, Exception):
        logger.warning(
            "Request not decided; the queue delivers it again",
            extra={**ids, "error": f"{type(outcome).__name__}: {outcome}"},
        )
        metrics.add_metric(name="RequestsFailed", unit=MetricUnit.Count, value=1)
        return False
    if outcome is None:
        # Already decided (a duplicate or a race), closed, unmanaged or stale: done, not a failure.
        metrics.add_metric(name="DuplicateRequests", unit=MetricUnit.Count, value=1)
        return True
    metrics.add_metric(name=f"Connections{outcome.outcome.capitalize()}", unit=MetricUnit.Count, value=1)
    logger.info(
        "Connection decided",
        extra={
            **ids,
            "vpc_endpoint_id": outcome.vpc_endpoint_id,
            "decision": outcome.outcome,
            "reasons": outcome.reasons,
            "tenant_id": outcome.tenant_id,
        },
    )
    return True


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    delivered = event["Records"]
    taken = decision_queue().top_up(len(delivered))
    records = delivered + taken
    requests = [request_of(record) for record in records]
    decided = iter(decision_service().decide([r for r in requests if not isinstance(r, Exception)]))
    done = [
        report(record, request if isinstance(request, Exception) else next(decided))
        for record, request in zip(records, requests, strict=True)
    ]
    mapped, own = done[: len(delivered)], done[len(delivered) :]
    # The mapping deletes its own records that are done; those taken here are the handler's to delete.
    decision_queue().delete([record for record, ok in zip(taken, own, strict=True) if ok])
    return {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r, ok in zip(delivered, mapped, strict=True) if not ok
        ]
    }
