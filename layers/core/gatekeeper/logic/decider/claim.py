"""Step 4, claim: the endpoint (and an accept's quota slot) taken in one conditional transaction —
exactly one decision per endpoint; a quota the claim finds full turns the accept into a refusal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatekeeper.dal.decisions import CLAIM_STATUS
from gatekeeper.logic.assessment import Assessment, quota_refusal
from gatekeeper.logic.decider.work import Work, ids_of
from gatekeeper.models.errors import QuotaExceeded, WriteConflict
from gatekeeper.observability import logger

if TYPE_CHECKING:
    from gatekeeper.logic.decision_service import DecisionService


def claim(service: DecisionService, work: Work) -> None:
    """Take the endpoint (and an accept's quota slot) in one conditional transaction."""
    assert work.assessment is not None
    decision, slot = work.assessment.decision, work.assessment.slot
    status = CLAIM_STATUS[decision.outcome]
    try:
        work.claimed = service.decisions.claim(decision, status, work.previous, slot, service.clock())
    except QuotaExceeded:
        work.assessment = Assessment(quota_refusal(decision, slot))
        claim(service, work)
        return
    except WriteConflict:
        logger.info("Another delivery is deciding this endpoint", extra=ids_of(decision))
        work.finish()
        return
    work.slot, work.outcome = slot, decision
    work.step = "announce" if status == "held" else "act"


def lane(work: Work) -> str | None:
    # Its lane in `at_once`: the tenant whose quota slot the claim takes, if any.
    slot = work.assessment.slot if work.assessment is not None else None
    return slot.tenant_id if slot is not None else None
