"""Step 2, resume: a claim left in flight by an invocation that died (older than `stale_after`) is
carried on from `act` (or `record`, when EC2 shows it done); a live decider's claim fails the
request for now (DecisionInProgress), so an endpoint is never decided twice at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatekeeper.dal.decisions import Slot
from gatekeeper.logic.decider.work import Work, took_effect
from gatekeeper.models.errors import DecisionInProgress
from gatekeeper.observability import logger

if TYPE_CHECKING:
    from gatekeeper.logic.decision_service import DecisionService


def resume(service: DecisionService, works: list[Work]) -> None:
    """Claims left in flight: a dead invocation's (older than stale_after) is carried on from
    `act` (or `record`, when EC2 shows it done); a live decider's fails the request for now."""
    for work in works:
        state = work.inputs.state
        if state is None or not state.in_flight:
            continue
        if service.clock() - state.claimed_at < service.stale_after:
            work.fail(
                DecisionInProgress(f"{state.vpc_endpoint_id} is being decided ({state.status}); retry later")
            )
            continue
        logger.warning(
            "Resuming a decision left unfinished",
            extra={"vpc_endpoint_id": state.vpc_endpoint_id, "status": state.status},
        )
        work.resumed, work.claimed, work.previous = True, state, None
        work.slot = Slot(state.slot_tenant, state.vpc_endpoint_id, None) if state.slot_tenant else None
        current = work.connection.vpc_endpoint_state if work.connection is not None else None
        # Done in EC2 (its decider died before recording, or while announcing): record it.
        work.step = "record" if took_effect(state.decision, current) else "act"
