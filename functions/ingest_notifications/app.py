"""SQS batch of SNS connection notifications → `Endpoint Connection Requested/Closed` on the bus.

One bad message fails only itself (partial batch response), even when every message of the
batch fails (no function error); after the queue's maxReceiveCount it lands in the DLQ. An
unparseable one is logged with the reason on each attempt. A connection EC2 does not list yet is
retried by the queue's redelivery (the visibility timeout is the backoff).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from gatekeeper.models.errors import ConnectionNotVisible, NotificationUnparseable
from gatekeeper.observability import logger, metrics
from gatekeeper.wiring.services import announcer

# A batch of junk is item failures too, not a function error (Powertools raises by default).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# Init phase: settings are validated and clients built once per container, before any event.
announcer()


def record_handler(record: SQSRecord) -> str:
    try:
        routed = announcer().ingest(record.body, attempt=int(record.attributes.approximate_receive_count))
    except ConnectionNotVisible:
        metrics.add_metric(name="NotificationsNotYetVisible", unit=MetricUnit.Count, value=1)
        raise
    except NotificationUnparseable as exc:
        logger.error(
            "Unparseable connection notification; it goes to the DLQ after its retries",
            extra={"message_id": record.message_id, "reason": str(exc)},
        )
        metrics.add_metric(name="UnparseableNotifications", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name=f"Notifications{routed.capitalize()}", unit=MetricUnit.Count, value=1)
    return routed


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
