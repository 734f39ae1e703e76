"""Step 6, record: an accept EC2 shows done is recorded (with what the tenant needs to connect)
before it is announced; a reject or revoke is recorded with its announcement (step 7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatekeeper.logic.decider.work import Work, at_once, each, ids_of
from gatekeeper.models.decision import Decision
from gatekeeper.models.errors import WriteConflict
from gatekeeper.observability import logger

if TYPE_CHECKING:
    from gatekeeper.logic.decision_service import DecisionService


def record(service: DecisionService, works: list[Work]) -> None:
    """Each accept with what the tenant needs to connect, read here one after another (cached per
    service: one read each, where threads asking together would all miss the cache), then the
    records written at once."""
    accepts: dict[str, Decision] = {}
    for work in works:
        assert work.claimed is not None
        if work.claimed.decision.outcome == "accepted":
            accepts[work.vpc_endpoint_id] = _with_access(service, work.claimed.decision)
        else:  # nothing to write yet
            each(work, lambda w: _record_one(service, w, None))
    writes = [w for w in works if w.vpc_endpoint_id in accepts]
    at_once(service.fan_out, writes, lambda w: _record_one(service, w, accepts[w.vpc_endpoint_id]), _own_lane)


def _record_one(service: DecisionService, work: Work, accepted: Decision | None) -> None:
    """An accept EC2 shows done (`accepted`: its decision with access details) is recorded now,
    before it is announced: announcing first would leave an announced accept unrecorded if its
    decider died and the consumer deleted the endpoint before the resume (EC2 then shows
    `deleted`, which cannot tell whether the accept was made, so the resume would roll the claim
    back). A reject or revoke is recorded with its announcement."""
    assert work.claimed is not None
    decision = work.claimed.decision
    if accepted is not None:
        decision = accepted
        try:
            work.claimed = service.decisions.finalise(
                work.claimed, decision, release_slot=False, at=service.clock()
            )
        except WriteConflict:
            # Another invocation resumed this claim meanwhile and records (and announces) it itservice.
            logger.info("Claim finished by another invocation", extra=ids_of(decision))
            work.finish(None if work.resumed else decision)
            return
    if not work.resumed:
        work.outcome = decision
    work.step = "announce"


def _with_access(service: DecisionService, decision: Decision) -> Decision:
    """An accepted decision with what the tenant needs to connect. Informational: the connection
    is already accepted, so nothing about this read may fail or hold the decision."""
    if service.load_balancers is None:
        return decision
    try:
        access = service.load_balancers.service_access(decision.service_id)
    except Exception as exc:  # a notice without access details beats no notice
        logger.warning(
            "Service access details unreadable; notifying without them",
            extra={**ids_of(decision), "error": f"{type(exc).__name__}: {exc}"},
        )
        return decision
    return Decision.model_validate({**decision.model_dump(by_alias=False), "service_access": access})


def _own_lane(work: Work) -> str | None:
    # Its lane in `at_once`: a record changes no tenant's quota item.
    return None
