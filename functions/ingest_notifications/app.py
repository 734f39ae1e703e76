"""SQS batch of SNS connection notifications → `Endpoint Connection Requested/Closed` on the bus.

The batch's events go on the bus in one PutEvents call. One bad message (or one whose event the bus
refuses) fails only itself (partial batch response), even when every message of the batch fails (no
function error); after the queue's maxReceiveCount it lands in the DLQ. An
unparseable one is logged with the reason on each attempt. A connection EC2 does not list yet is
retried by the queue's redelivery (the visibility timeout is the backoff).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from gatekeeper.models.errors import ConnectionNotVisible, NotificationUnparseable
from gatekeeper.observability import logger, metrics
from gatekeeper.wiring.services import announcer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Init phase: settings are validated and clients built once per container, before any event.
announcer()


def report(record: dict[str, Any], outcome: str | Exception) -> bool:
    """Metrics and logs for one message; whether it was routed (else it comes back to the queue)."""
    match outcome:
        case str():
            metrics.add_metric(name=f"Notifications{outcome.capitalize()}", unit=MetricUnit.Count, value=1)
            return True
        case ConnectionNotVisible():
            metrics.add_metric(name="NotificationsNotYetVisible", unit=MetricUnit.Count, value=1)
        case NotificationUnparseable():
            logger.error(
                "Unparseable connection notification; it goes to the DLQ after its retries",
                extra={"message_id": record["messageId"], "reason": str(outcome)},
            )
            metrics.add_metric(name="UnparseableNotifications", unit=MetricUnit.Count, value=1)
        case _:
            logger.exception(
                "Notification not routed; the queue delivers it again",
                exc_info=outcome,
                extra={"message_id": record["messageId"]},
            )
    return False


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    # Partial batch response (ReportBatchItemFailures), as Powertools' BatchProcessor answers it but
    # without its ~65 ms of imports: every message is tried, the failed ones come back to the queue,
    # and a batch whose every message fails is item failures too, never a function error. The batch's
    # events go on the bus in one call.
    records = event["Records"]
    outcomes = announcer().ingest_batch(
        [(record["body"], int(record["attributes"]["ApproximateReceiveCount"])) for record in records]
    )
    failures = []
    for record, outcome in zip(records, outcomes, strict=True):
        if not report(record, outcome):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
