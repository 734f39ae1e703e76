"""Tenants table stream (tenant records only) → allowed principals, revocations, held requests again.

Partial batch response: a record that fails is retried from where it failed (bisected on function
errors), then its batch metadata goes to the on-failure queue (alarmed). Every step of a sync is
safe to repeat, and the reconciler repairs what a lost record would have done.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from gatekeeper.dal.tenant_stream import change_from_stream
from gatekeeper.observability import logger, metrics
from gatekeeper.wiring.services import tenant_sync

# A batch whose every record fails is item failures too, not a function error (Powertools raises
# by default, which would make Lambda bisect and retry records that did not fail).
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
# Init phase: settings are validated and clients built once per container, before any event.
tenant_sync()


def record_handler(record: DynamoDBRecord) -> str:
    change = change_from_stream(record.raw_event)
    if change is None:  # not a tenant record (the event filter normally keeps these out)
        return "ignored"
    result = tenant_sync().apply(change)
    for name, value in (
        ("TenantChangesSynced", 1),
        ("PrincipalsAdded", result.principals_added),
        ("PrincipalsRemoved", result.principals_removed),
        ("RevocationsRequested", result.revocations_requested),
        ("HeldRequestsRequestedAgain", result.rerequested),
        ("InvalidTenantRecords", int(result.invalid)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return "synced"


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
