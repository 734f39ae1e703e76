"""Step 5, act: one Accept and one Reject call per service. A failed call is confirmed against EC2:
an effect it shows is recorded, a closed connection rolls the claim back, anything else keeps the
claim in flight and fails the request (its redelivery or the sweep finishes it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatekeeper.logic.decider.work import Work, each, ids_of, took_effect
from gatekeeper.models.connection import CLOSED_STATES, VpcEndpointConnection
from gatekeeper.models.errors import ConnectionActionFailed, OutcomeUnknown
from gatekeeper.observability import logger

if TYPE_CHECKING:
    from gatekeeper.logic.decision_service import DecisionService


# EC2 and Describe agree the endpoint does not exist: the one absence that is not eventual consistency.
NOT_FOUND_CODES = frozenset({"InvalidVpcEndpointId.NotFound", "InvalidVpcEndpoint.NotFound"})


def act(service: DecisionService, works: list[Work]) -> None:
    """One Accept and one Reject call per service, each carrying all its ids."""
    calls: dict[tuple[str, bool], list[Work]] = {}
    for work in works:
        assert work.claimed is not None
        decision = work.claimed.decision
        calls.setdefault((decision.service_id, decision.outcome == "accepted"), []).append(work)
    unconfirmed: list[tuple[Work, Exception]] = []
    for (service_id, accept), group in calls.items():
        ids = [w.vpc_endpoint_id for w in group]
        action = service.endpoint_service.accept_all if accept else service.endpoint_service.reject_all
        try:
            failed: dict[str, Exception] = dict(action(service_id, ids))
        except Exception as exc:
            # A timeout, a reset, a 5xx, a crash of this very call: EC2 may or may not have done
            # it (an earlier attempt may have). Only EC2 can say; never assume.
            failed = dict.fromkeys(ids, exc)
        for work in group:
            if work.vpc_endpoint_id in failed:
                unconfirmed.append((work, failed[work.vpc_endpoint_id]))
            else:
                work.step = "record"
    if unconfirmed:
        _confirm(service, unconfirmed)


def _confirm(service: DecisionService, unconfirmed: list[tuple[Work, Exception]]) -> None:
    """After failed actions, EC2 read again (one Describe for them all): an effect it shows is
    recorded; a connection it shows closed (or gone) rolls its claim back; anything else keeps the
    claim in flight and fails the request, so its redelivery (or the sweep) finishes it."""
    try:
        listed = service.endpoint_service.connections_by_id([w.vpc_endpoint_id for w, _ in unconfirmed])
    except Exception:
        for work, exc in unconfirmed:
            logger.warning("EC2 could not be read after a failed action; claim kept", extra=ids_of(work.ref))
            work.fail(exc)
        return
    for work, exc in unconfirmed:
        each(work, lambda w, e=exc: _after_failure(service, w, listed.get(w.vpc_endpoint_id), e))  # type: ignore[misc]


def _after_failure(
    service: DecisionService, work: Work, current: VpcEndpointConnection | None, exc: Exception
) -> None:
    assert work.claimed is not None
    decision = work.claimed.decision
    state = current.vpc_endpoint_state if current is not None else None
    if took_effect(decision, state):
        logger.warning(
            "EC2 shows the action done despite the error; recording it",
            extra={**ids_of(decision), "error": str(exc), "state": state},
        )
        work.step = "record"
        return
    gone = state is None and isinstance(exc, ConnectionActionFailed) and exc.code in NOT_FOUND_CODES
    if state in CLOSED_STATES or gone:
        # The consumer deleted it (or it failed): nothing left to accept or take away.
        service.decisions.rollback(work.claimed, work.previous, work.slot)
        logger.warning("Connection closed while it was being decided", extra={"state": state})
        work.finish()
        return
    code = exc.code if isinstance(exc, ConnectionActionFailed) else type(exc).__name__
    logger.error(
        "EC2 action not confirmed; the claim stays for a retry to finish",
        extra={**ids_of(decision), "error": str(exc), "code": code, "state": state},
    )
    if isinstance(exc, ConnectionActionFailed | OutcomeUnknown):
        raise exc
    raise OutcomeUnknown(f"{decision.vpc_endpoint_id}: {type(exc).__name__}: {exc}") from exc
