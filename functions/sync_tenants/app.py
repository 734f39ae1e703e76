"""Tenants table stream (tenant records only) → allowed principals, revocations, held requests again.

Partial batch response: a record that fails is retried from where it failed (bisected on function
errors), then its batch metadata goes to the on-failure queue (alarmed). Every step of a sync is
safe to repeat, and the reconciler repairs what a lost record would have done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from gatekeeper.dal.tenant_stream import change_from_stream
from gatekeeper.observability import logger, metrics
from gatekeeper.wiring.services import tenant_sync

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Init phase: settings are validated and clients built once per container, before any event.
tenant_sync()


def record_handler(record: dict[str, Any]) -> str:
    change = change_from_stream(record)
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
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    # Partial batch response, as Powertools' BatchProcessor answers it for a stream but without its
    # ~65 ms of imports: every record is tried and each failed one is reported by sequence number;
    # Lambda resumes the shard from the first of them, so a later record that succeeded is synced
    # again (every step is safe to repeat). A batch whose every record fails is item failures too:
    # a function error would make Lambda bisect and retry records that did not fail.
    failures = []
    for record in event["Records"]:
        try:
            record_handler(record)
        except Exception:
            sequence_number = record["dynamodb"]["SequenceNumber"]
            logger.exception("Tenant change not synced; retried", extra={"sequence_number": sequence_number})
            failures.append({"itemIdentifier": sequence_number})
    return {"batchItemFailures": failures}
