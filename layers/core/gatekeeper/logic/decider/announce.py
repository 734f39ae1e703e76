"""Step 7, announce: SNS and the bus, batched, then each request's announcement mark (a refusal's
record, its slot freed). At-least-once: a request failing after SNS took it is retried whole and
subscribers drop the copy by `decision_id`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gatekeeper.adapters.bus import DECIDED
from gatekeeper.dal.decisions import REFUSALS, EndpointState
from gatekeeper.logic.decider.work import Work, at_once, ids_of
from gatekeeper.models.decision import Decision
from gatekeeper.models.errors import PublishFailed, WriteConflict
from gatekeeper.observability import logger

if TYPE_CHECKING:
    from gatekeeper.logic.decision_service import DecisionService


def announce(service: DecisionService, works: list[Work]) -> None:
    """SNS and the bus, batched; then each request's own write: a refusal (still in flight) is
    recorded, marked announced, its slot freed; an accept or hold is marked announced. A request that
    fails after SNS took its decision is retried whole, so SNS and the bus may carry it again:
    at-least-once."""
    published = publish(service, [w.claimed.decision for w in works if w.claimed is not None])
    for work, failure in zip(works, published, strict=True):
        if failure is not None:
            work.fail(failure)
    at_once(
        service.fan_out,
        [w for w in works if w.step == "announce"],
        lambda w: _mark_announced(service, w),
        _freed_slot_lane,
    )


def _mark_announced(service: DecisionService, work: Work) -> None:
    claimed = work.claimed
    assert claimed is not None
    if claimed.in_flight:
        try:
            service.decisions.finalise(
                claimed,
                claimed.decision,
                release_slot=_frees_slot(claimed),
                at=service.clock(),
                notified=True,
            )
        except WriteConflict:
            logger.info("Claim finished by another invocation", extra=ids_of(claimed.decision))
    else:
        service.decisions.mark_notified(claimed)
    work.step = "done"


def publish(service: DecisionService, decisions: list[Decision]) -> list[Exception | None]:
    """Each decision on SNS, then on the bus (what SNS refused is not put on the bus); what failed
    for each, in order. An entry refused is tried once more, alone. What SNS took is published
    again if the bus or the final write then fails; subscribers drop the copy by decision_id."""
    if not decisions:
        return []
    failures: list[Exception | None] = [None] * len(decisions)
    _tried_twice(failures, decisions, service.notifier.publish_batch, "SNS")
    on_sns = [i for i, failure in enumerate(failures) if failure is None]
    events = [(DECIDED, decisions[i].model_dump(mode="json")) for i in on_sns]
    bus_failures: list[Exception | None] = [None] * len(events)
    _tried_twice(bus_failures, events, service.bus.put, "the bus")
    for position, index in enumerate(on_sns):
        failures[index] = bus_failures[position]
    return failures


def _tried_twice(
    failures: list[Exception | None],
    entries: Sequence[object],
    send: Callable[[list[Any]], list[str | None]],
    where: str,
) -> None:
    """Send entries in one batch (the adapter chunks by ten), then the ones refused once more, without
    the rest. `failures` (one per entry) gets what failed in the end; a call that raises fails all
    the entries it carried."""
    pending = list(range(len(entries)))
    for _ in range(2):
        try:
            refused = send([entries[i] for i in pending])
        except Exception as exc:
            for i in pending:
                failures[i] = exc
            return
        still: list[int] = []
        for i, why in zip(pending, refused, strict=True):
            failures[i] = None if why is None else PublishFailed(f"{where} refused the announcement: {why}")
            if why is not None:
                still.append(i)
        pending = still
        if not pending:
            return


def _frees_slot(claimed: EndpointState) -> bool:
    return claimed.slot_tenant is not None and claimed.decision.outcome in REFUSALS


def _freed_slot_lane(work: Work) -> str | None:
    # Its lane in `at_once`: the tenant whose quota slot a refusal's final write frees, if any.
    claimed = work.claimed
    if claimed is None or not (claimed.in_flight and _frees_slot(claimed)):
        return None
    return claimed.slot_tenant
