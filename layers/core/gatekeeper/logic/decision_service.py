"""The one decision path: a batch of connection requests (evaluation, revocation, operator) read,
resumed, assessed, claimed, carried out per service, recorded and announced — exactly one decision
per endpoint, announced at least once (every copy with its `decision_id`), failing closed, each
request failing alone. `DecisionService` holds the stores, adapters and settings; `_run` is the list
of steps, each in its own module of `gatekeeper.logic.decider` (docs/how-it-decides.md has a heading
per step and the guarantees behind them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gatekeeper.adapters.bus import EventPublisher
from gatekeeper.adapters.decision_topic import DecisionNotifier
from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.adapters.load_balancers import LoadBalancers
from gatekeeper.dal.decisions import DecisionInputs, DecisionStore
from gatekeeper.dal.templates import TemplateStore
from gatekeeper.dal.tenants import TenantStore
from gatekeeper.logic.assessment import Assessment
from gatekeeper.logic.decider import act, announce, assess, claim, read, record, resume
from gatekeeper.logic.decider.read import NOT_LISTED_REREADS
from gatekeeper.logic.decider.work import (
    DECISION_WRITERS,
    FanOut,
    Work,
    all_at_once,
    at,
    at_once,
    each,
    ids_of,
    one_per_endpoint,
)
from gatekeeper.models.connection import CLOSED_STATES, VpcEndpointConnection
from gatekeeper.models.decision import Action, Decision, Trigger
from gatekeeper.models.errors import ConnectionNotVisible
from gatekeeper.models.identifiers import now_utc
from gatekeeper.models.requests import ConnectionClosed, DecisionRequest
from gatekeeper.observability import logger

# The CLI assesses with the decider's own Assessment (logic.assessment holds the rules themselves).
__all__ = [
    "DECISION_WRITERS",
    "NOT_LISTED_REREADS",
    "Assessment",
    "DecisionService",
    "FanOut",
    "Work",
    "all_at_once",
]


@dataclass
class DecisionService:
    tenants: TenantStore
    templates: TemplateStore
    decisions: DecisionStore
    endpoint_service: EndpointService
    notifier: DecisionNotifier
    bus: EventPublisher
    managed_services: frozenset[str]
    service_region: str
    default_action: Action = "reject"
    unknown_principal_action: Action = "reject"
    # Who an operator request is recorded as: the principal the bus policy lets put operator events.
    operator_actor: str = "operator:unknown"
    clock: Callable[[], datetime] = now_utc
    # A claim older than this belongs to an invocation that died: longer than the function's timeout,
    # shorter than the queue's visibility timeout, so the message's redelivery finishes the job.
    stale_after: timedelta = field(default=timedelta(seconds=45))
    # The services' load balancers: health for templates that test it, and the accepted notice. None
    # (a caller that cannot read elbv2): such templates hold with DataPlaneUnknown, notices go bare.
    load_balancers: LoadBalancers | None = None
    # How the decider waits between reads of connections EC2 does not list yet (NOT_LISTED_REREADS):
    # injected, so tests and the chaos harness's virtual clock never wait for real.
    sleep: Callable[[float], None] = time.sleep
    rereads: tuple[float, ...] = NOT_LISTED_REREADS
    # How a batch's per-connection writes (claim, record, announcement mark) run at once: injected
    # like `sleep`, so the burst's conductor runs them as child tasks on its virtual clock and the
    # chaos run one after another (deterministic by seed).
    fan_out: FanOut = all_at_once
    # account → the tenant this container last saw claim it: read with the claim, in the same call.
    _owners: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    # -- the batch ---------------------------------------------------------------------------
    def handle(self, request: DecisionRequest) -> Decision | None:
        """Decide one request (a batch of one). None when nothing new was decided; raises its error."""
        [outcome] = self.decide([request])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision | Exception | None]:
        """Decide a batch; what each request came to, in order (see Work.outcome)."""
        works = [Work(request) for request in requests]
        waiting = list(works)
        while waiting:
            this_pass, waiting = one_per_endpoint(waiting)
            self._run(this_pass)
            # A request that found a dead invocation's claim is decided again on what the resume
            # left (its own request may still need doing: an operator's reject of a stuck accept).
            for work in this_pass:
                if work.resumed and not work.decided_again and not isinstance(work.outcome, Exception):
                    work.resumed, work.decided_again, work.step, work.claimed = False, True, "read", None
                    waiting.append(work)
        return [w.outcome for w in works]

    def _run(self, works: list[Work]) -> None:
        """One pass of the pipeline over requests for distinct endpoints: the steps in order."""
        for work in works:
            if work.ref.service_id not in self.managed_services:
                logger.warning("Request for an unmanaged service ignored", extra=ids_of(work.ref))
                work.finish()
        read.read(self, at(works, "read"))
        resume.resume(self, at(works, "assess"))
        for work in at(works, "assess"):
            each(work, lambda w: assess.assess(self, w))
        at_once(self.fan_out, at(works, "claim"), lambda w: claim.claim(self, w), claim.lane)
        act.act(self, at(works, "act"))
        record.record(self, at(works, "record"))
        announce.announce(self, at(works, "announce"))

    def assess(
        self,
        connection: VpcEndpointConnection,
        trigger: Trigger = "operator",
        actor: str = "auto",
        inputs: DecisionInputs | None = None,
    ) -> Assessment:
        """What the live policy decides for this connection now, for the CLI (reads only)."""
        return assess.assessment_of(self, connection, trigger, actor, inputs)

    # -- the close path (close_connection) -----------------------------------------------
    def release(self, closed: ConnectionClosed) -> bool:
        """Free the quota slot of an endpoint EC2 reports closed (or no longer lists), exactly once."""
        ref = closed.connection
        connection = self.endpoint_service.connection(ref.vpc_endpoint_id, ref.service_id)
        if connection is not None and connection.vpc_endpoint_state not in CLOSED_STATES:
            # A source only announces a closed connection after reading it closed: EC2's read is behind
            # (or the event is forged). Retried later; a forged one ends in the DLQ, slot untouched.
            logger.warning(
                "Closed event for a connection EC2 reports open; no slot released",
                extra={**ids_of(ref), "state": connection.vpc_endpoint_state},
            )
            raise ConnectionNotVisible(
                f"EC2 still shows {ref.vpc_endpoint_id} {connection.vpc_endpoint_state}; its slot is "
                "released once EC2 reports it closed"
            )
        state = self.decisions.state(ref.vpc_endpoint_id)
        if state is not None and state.status == "rejected" and state.slot_tenant is None:
            # Rejected while it waited for acceptance: it never held a slot, nor could the reconciler
            # have recorded one (it does for open connections only). Nothing to free, no write.
            logger.info("No quota slot held", extra=ids_of(ref))
            return False
        tenant_id = state.slot_tenant if state else None
        if tenant_id is None and connection is not None:
            tenant_id = self.tenants.owner_of(connection.vpc_endpoint_owner)
        if tenant_id is None:
            return False
        released = self.decisions.release_slot(tenant_id, ref.vpc_endpoint_id)
        logger.info(
            "Quota slot released" if released else "No quota slot held",
            extra={**ids_of(ref), "tenant_id": tenant_id},
        )
        return released
