"""Schedule (`ReconcileIntervalMinutes`) → one sweep of every managed service's connections.

Announces requests whose notification was lost, asks for the revocation of connections their
tenant record no longer allows (expiry included), repairs quota slots and missing allowed
principals. A failed sweep is not retried: the next one, a period later, does the same work.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from gatekeeper.observability import logger, metrics
from gatekeeper.wiring.services import reconciler

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Init phase: settings are validated and clients built once per container, before any event.
reconciler()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The event is only a tick: what it says (a schedule's, `sam local generate-event`'s, an
    # operator's `gatekeeper reconcile`) changes nothing about the sweep.
    sweep = replace(reconciler(), time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    report = sweep.sweep()
    for name, value in (
        ("PendingConnections", report.pending),
        ("HeldConnections", report.held),
        ("ConnectionsAnnounced", report.announced),
        ("RevocationsRequested", report.revocations_requested),
        ("RepairsMade", report.repairs),
        ("InvalidTenantRecords", report.invalid_tenants),
        ("SweepsStoppedEarly", int(report.stopped_early)),
        ("StaleClaims", report.stale_claims),
        ("UnannouncedDecisions", report.unannounced),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(
        name="OldestPendingAgeSeconds", unit=MetricUnit.Seconds, value=report.oldest_pending_age
    )
    metrics.add_metric(name="OldestHeldAgeSeconds", unit=MetricUnit.Seconds, value=report.oldest_held_age)
    logger.info("Sweep done", extra=asdict(report))
    return {**asdict(report), "repairs": report.repairs}
