"""SQS batch of SNS connection notifications → `Endpoint Connection Requested/Closed` on the bus.

One bad message fails only itself (partial batch response), even when every message of the
batch fails (no function error); after the queue's maxReceiveCount it lands in the DLQ. An
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


def record_handler(record: dict[str, Any]) -> str:
    try:
        routed = announcer().ingest(
            record["body"], attempt=int(record["attributes"]["ApproximateReceiveCount"])
        )
    except ConnectionNotVisible:
        metrics.add_metric(name="NotificationsNotYetVisible", unit=MetricUnit.Count, value=1)
        raise
    except NotificationUnparseable as exc:
        logger.error(
            "Unparseable connection notification; it goes to the DLQ after its retries",
            extra={"message_id": record["messageId"], "reason": str(exc)},
        )
        metrics.add_metric(name="UnparseableNotifications", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name=f"Notifications{routed.capitalize()}", unit=MetricUnit.Count, value=1)
    return routed


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    # Partial batch response (ReportBatchItemFailures), as Powertools' BatchProcessor answers it but
    # without its ~65 ms of imports: every message is tried, the failed ones come back to the queue,
    # and a batch whose every message fails is item failures too, never a function error.
    failures = []
    for record in event["Records"]:
        try:
            record_handler(record)
        except (ConnectionNotVisible, NotificationUnparseable):
            failures.append({"itemIdentifier": record["messageId"]})
        except Exception:
            logger.exception(
                "Notification not routed; the queue delivers it again",
                extra={"message_id": record["messageId"]},
            )
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
