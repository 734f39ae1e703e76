"""Step 1, read: the batch's connections from EC2 (one Describe) and what the tables hold about
them (one BatchGetItem). A connection EC2 does not list yet is read again within the invocation,
then failed with ConnectionNotVisible (its message comes back) — never decided on its absence.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from gatekeeper.logic.decider.work import Work, at, ids_of, not_visible
from gatekeeper.models.requests import EvaluationRequest
from gatekeeper.observability import logger, metrics

if TYPE_CHECKING:
    from gatekeeper.dal.decisions import BatchInputs
    from gatekeeper.logic.decision_service import DecisionService


# A requested connection EC2 still does not list this long after the request reached the bus is left
# to the reconciler's sweep instead of the DLQ: chosen between the first and the second redelivery of
# its message (the decision queue's visibility timeout). It was deleted before EC2 listed it, or the
# sweep finds it still waiting.
NOT_VISIBLE_GIVE_UP = timedelta(seconds=360)
# Requested connections EC2 does not list yet are read again, together, after these pauses (seconds)
# in the same invocation: a short lag then costs about a second instead of a redelivery of the
# message (the queue's visibility timeout, minutes); their sum stays far below the function's
# timeout. ConnectionsReRead and ConnectionsNotYetVisible show how often each happens, to tune this.
NOT_LISTED_REREADS: tuple[float, ...] = (0.2, 0.5, 1.0)


def read(service: DecisionService, works: list[Work]) -> None:
    """The connections from EC2 (one Describe), then what the tables hold about them (one
    BatchGetItem); connections EC2 does not list yet and nobody decided are read again."""
    if not works:
        return
    try:
        _describe(service, works)
        _read_tables(service, works)
    except Exception as exc:  # nothing is known about any of them
        for work in works:
            work.fail(exc)
        return
    unlisted = [
        w
        for w in works
        if w.connection is None and w.inputs.state is None and isinstance(w.request, EvaluationRequest)
    ]
    for work in unlisted:
        if gave_up_waiting(service, work.request):  # type: ignore[arg-type]
            work.finish()
    _read_until_listed(service, [w for w in unlisted if w.step == "read"])
    for work in at(works, "read"):
        work.step = "assess"


def _describe(service: DecisionService, works: list[Work]) -> None:
    listed = service.endpoint_service.connections_by_id([w.vpc_endpoint_id for w in works])
    for work in works:
        connection = listed.get(work.vpc_endpoint_id)
        # The request names the service too: a connection of another service is not this one.
        work.connection = connection if connection and connection.service_id == work.ref.service_id else None


def _read_tables(service: DecisionService, works: list[Work]) -> None:
    accounts = {
        w.connection.vpc_endpoint_owner: service._owners.get(w.connection.vpc_endpoint_owner)
        for w in works
        if w.connection is not None
    }
    batch: BatchInputs = service.decisions.read_batch(
        service.tenants, [w.vpc_endpoint_id for w in works], accounts
    )
    for account in accounts:
        owner = batch.tenants[account][0]
        if owner is None:
            service._owners.pop(account, None)
        else:
            service._owners[account] = owner
    for work in works:
        owner_account = work.connection.vpc_endpoint_owner if work.connection is not None else None
        work.inputs = batch.inputs(work.vpc_endpoint_id, owner_account)


def _read_until_listed(service: DecisionService, works: list[Work]) -> None:
    """Requested connections the first Describe did not list, read again (together) after each
    pause of `rereads`; ConnectionNotVisible (the message comes back) for those EC2 still does not
    list. Only for EC2 not listing them: an error of a read fails them at once."""
    if not works:
        return
    metrics.add_metric(name="ConnectionsReRead", unit=MetricUnit.Count, value=len(works))
    missing, listed, waited = list(works), [], 0.0
    for attempt, pause in enumerate(service.rereads, start=2):  # attempt 1 was the first read
        logger.debug(
            "EC2 does not list connections yet; reading them again",
            extra={"vpc_endpoint_ids": [w.vpc_endpoint_id for w in missing], "attempt": attempt},
        )
        service.sleep(pause)
        waited += pause
        try:
            _describe(service, missing)
        except Exception as exc:
            for work in missing:
                work.fail(exc)
            missing = []
            break
        found = [w for w in missing if w.connection is not None]
        for work in found:
            logger.info(
                "Connection listed by EC2 on a re-read",
                extra={**ids_of(work.ref), "attempt": attempt, "waited_seconds": round(waited, 3)},
            )
        listed += found
        missing = [w for w in missing if w.connection is None]
        if not missing:
            break
    if listed:  # their owners' tenants were not read with the first look; the states again too
        try:
            _read_tables(service, listed)
        except Exception as exc:
            for work in listed:
                work.fail(exc)
    for work in missing:
        metrics.add_metric(name="ConnectionsNotYetVisible", unit=MetricUnit.Count, value=1)
        logger.info(
            "EC2 still does not list the connection; left to the message's redelivery",
            extra={
                **ids_of(work.ref),
                "attempt": len(service.rereads) + 1,
                "waited_seconds": round(waited, 3),
            },
        )
        work.fail(not_visible(work.ref))


def gave_up_waiting(service: DecisionService, request: EvaluationRequest) -> bool:
    """Whether a connection EC2 does not list has been waited for long enough (see
    NOT_VISIBLE_GIVE_UP); the ingester does not read EC2 for a Connect, so this is where it waits."""
    waited = service.clock() - request.requested_at if request.requested_at else timedelta(0)
    if waited < NOT_VISIBLE_GIVE_UP:
        return False
    logger.warning(
        "Requested endpoint still not listed by EC2; left to the reconciler's sweep",
        extra={**ids_of(request.connection), "waited_seconds": waited.total_seconds()},
    )
    return True
