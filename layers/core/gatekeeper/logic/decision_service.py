"""The one decision path: a batch of connection requests (evaluation, revocation, operator) read,
resumed, assessed, claimed, carried out per service, recorded and announced — exactly one decision
per endpoint, announced at least once (every copy with its `decision_id`), failing closed, each
request failing alone. `decide` runs the steps in order, one
method each; docs/how-it-decides.md has a heading per step and the guarantees behind them.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, partial
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.metrics import MetricUnit

from gatekeeper.adapters.bus import DECIDED, EventPublisher
from gatekeeper.adapters.decision_topic import DecisionNotifier
from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.adapters.load_balancers import DataPlane, LoadBalancers
from gatekeeper.dal.decisions import (
    CLAIM_STATUS,
    REFUSALS,
    DecisionInputs,
    DecisionStore,
    EndpointState,
    Slot,
)
from gatekeeper.dal.templates import TemplateStore
from gatekeeper.dal.tenants import TenantStore
from gatekeeper.logic.assessment import (
    ACTION_OUTCOME,
    EFFECT_OUTCOME,
    Assessment,
    connection_context,
    data_plane_context,
    data_plane_explanation,
    decided,
    decision_fields,
    quota_limit,
    quota_line,
    quota_refusal,
    with_outcome,
)
from gatekeeper.models.connection import (
    ACCEPTED_STATES,
    CLOSED_STATES,
    PENDING_ACCEPTANCE,
    ConnectionRef,
    VpcEndpointConnection,
)
from gatekeeper.models.decision import Action, Decision, Outcome, Trigger
from gatekeeper.models.errors import (
    ConnectionActionFailed,
    ConnectionNotVisible,
    DataPlaneUnreadable,
    DecisionInProgress,
    OutcomeUnknown,
    PublishFailed,
    QuotaExceeded,
    TemplateNotFound,
    TenantInvalid,
    WriteConflict,
)
from gatekeeper.models.identifiers import now_utc
from gatekeeper.models.requests import (
    CARRIED_OUT,
    ConnectionClosed,
    DecisionRequest,
    EvaluationRequest,
    OperatorRequest,
    RevocationRequest,
    operator_verdict,
)
from gatekeeper.models.tenant import Tenant
from gatekeeper.observability import logger, metrics

if TYPE_CHECKING:
    from gatekeeper.dal.decisions import BatchInputs

# The CLI assesses with the decider's own Assessment (logic.assessment holds the rules themselves).
__all__ = ["NOT_LISTED_REREADS", "Assessment", "DecisionService", "FanOut", "Work", "all_at_once"]

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
# EC2 and Describe agree the endpoint does not exist: the one absence that is not eventual consistency.
NOT_FOUND_CODES = frozenset({"InvalidVpcEndpointId.NotFound", "InvalidVpcEndpoint.NotFound"})

# The threads a decider writes a batch's claims, records and announcement marks with: as many as the
# DynamoDB client keeps connections (botocore's max_pool_connections, 10 by default; a thread more
# would open a connection the client then throws away). A batch topped up to 100 takes ten rounds.
DECISION_WRITERS = 10

Step = Literal["read", "assess", "claim", "act", "record", "announce", "done"]
_NO_INPUTS = DecisionInputs(None, None, None, 0)

# Runs callables at once and returns when the last has; none of them raises (each catches its own).
FanOut = Callable[[Sequence[Callable[[], None]]], None]


@cache
def _writers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=DECISION_WRITERS, thread_name_prefix="decision-writes")


def all_at_once(tasks: Sequence[Callable[[], None]]) -> None:
    """The decider's default fan-out: the tasks on a pool of DECISION_WRITERS threads (I/O-bound
    DynamoDB calls; boto3 clients are thread-safe). Each runs in a copy of the caller's context, so
    what the caller's context carries (the execution role a local Lambda signs with) carries over."""
    running = [_writers().submit(contextvars.copy_context().run, task) for task in tasks]
    wait(running)  # every one ended before anything is raised: none writes behind the caller's back
    for future in running:
        future.result()


@dataclass
class Work:
    """One request on its way through a batch, and what the steps learnt about it so far."""

    request: DecisionRequest
    step: Step = "read"
    connection: VpcEndpointConnection | None = None  # as EC2 lists it (None: not listed)
    inputs: DecisionInputs = _NO_INPUTS
    assessment: Assessment | None = None
    previous: EndpointState | None = None  # the state before the claim: what a rollback restores
    claimed: EndpointState | None = None  # the state steps 5-7 carry out (a claim, then its record)
    slot: Slot | None = None
    resumed: bool = False  # carries out a dead invocation's claim, not a decision of its own
    decided_again: bool = False  # after a resume, once (see DecisionService.decide)
    # What the request came to: the decision it made; None when nothing new was decided (a
    # duplicate, a race, nothing to do); an exception when it failed (its message comes back).
    outcome: Decision | Exception | None = None

    @property
    def vpc_endpoint_id(self) -> str:
        return self.request.connection.vpc_endpoint_id

    @property
    def ref(self) -> ConnectionRef:
        return self.request.connection

    def finish(self, outcome: Decision | None = None) -> None:
        self.step, self.outcome = "done", outcome

    def fail(self, error: Exception) -> None:
        self.step, self.outcome = "done", error


def _at(works: Iterable[Work], step: Step) -> list[Work]:
    return [w for w in works if w.step == step]


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
            this_pass, waiting = _one_per_endpoint(waiting)
            self._run(this_pass)
            # A request that found a dead invocation's claim is decided again on what the resume
            # left (its own request may still need doing: an operator's reject of a stuck accept).
            for work in this_pass:
                if work.resumed and not work.decided_again and not isinstance(work.outcome, Exception):
                    work.resumed, work.decided_again, work.step, work.claimed = False, True, "read", None
                    waiting.append(work)
        return [w.outcome for w in works]

    def _run(self, works: list[Work]) -> None:
        """One pass of the pipeline over requests for distinct endpoints."""
        for work in works:
            if work.ref.service_id not in self.managed_services:
                logger.warning("Request for an unmanaged service ignored", extra=_ids(work.ref))
                work.finish()
        self._read(_at(works, "read"))
        self._resume(_at(works, "assess"))
        for work in _at(works, "assess"):
            self._each(work, self._assess)
        self._at_once(_at(works, "claim"), self._claim, _claim_lane)
        self._act(_at(works, "act"))
        self._record_all(_at(works, "record"))
        self._announce(_at(works, "announce"))

    @staticmethod
    def _each(work: Work, step: Callable[[Work], None]) -> None:
        try:
            step(work)
        except Exception as exc:  # this request's failure alone
            work.fail(exc)

    def _at_once(
        self, works: list[Work], step: Callable[[Work], None], lane: Callable[[Work], str | None]
    ) -> None:
        """`step` for each request (each failing alone), the requests at once through `fan_out`, but
        one after another within a lane: writes to one tenant's quota item. DynamoDB cancels a
        transaction that meets another one in progress on the same item (TransactionConflict, which
        botocore does not retry), so a batch never races itself for a tenant's counter."""
        lanes: dict[str, list[Work]] = {}
        for work in works:
            key = lane(work)
            lanes.setdefault(work.vpc_endpoint_id if key is None else f"quota:{key}", []).append(work)
        tasks = [partial(self._each_of, in_lane, step) for in_lane in lanes.values()]
        if len(tasks) == 1:  # one request alone (or one tenant's): no thread to hand it to
            tasks[0]()
        elif tasks:
            self.fan_out(tasks)

    def _each_of(self, works: list[Work], step: Callable[[Work], None]) -> None:
        for work in works:
            self._each(work, step)

    # -- 1. read ---------------------------------------------------------------------------
    def _read(self, works: list[Work]) -> None:
        """The connections from EC2 (one Describe), then what the tables hold about them (one
        BatchGetItem); connections EC2 does not list yet and nobody decided are read again."""
        if not works:
            return
        try:
            self._describe(works)
            self._read_tables(works)
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
            if self._gave_up_waiting(work.request):  # type: ignore[arg-type]
                work.finish()
        self._read_until_listed([w for w in unlisted if w.step == "read"])
        for work in _at(works, "read"):
            work.step = "assess"

    def _describe(self, works: list[Work]) -> None:
        listed = self.endpoint_service.connections_by_id([w.vpc_endpoint_id for w in works])
        for work in works:
            connection = listed.get(work.vpc_endpoint_id)
            # The request names the service too: a connection of another service is not this one.
            work.connection = (
                connection if connection and connection.service_id == work.ref.service_id else None
            )

    def _read_tables(self, works: list[Work]) -> None:
        accounts = {
            w.connection.vpc_endpoint_owner: self._owners.get(w.connection.vpc_endpoint_owner)
            for w in works
            if w.connection is not None
        }
        batch: BatchInputs = self.decisions.read_batch(
            self.tenants, [w.vpc_endpoint_id for w in works], accounts
        )
        for account in accounts:
            owner = batch.tenants[account][0]
            if owner is None:
                self._owners.pop(account, None)
            else:
                self._owners[account] = owner
        for work in works:
            owner_account = work.connection.vpc_endpoint_owner if work.connection is not None else None
            work.inputs = batch.inputs(work.vpc_endpoint_id, owner_account)

    def _read_until_listed(self, works: list[Work]) -> None:
        """Requested connections the first Describe did not list, read again (together) after each
        pause of `rereads`; ConnectionNotVisible (the message comes back) for those EC2 still does not
        list. Only for EC2 not listing them: an error of a read fails them at once."""
        if not works:
            return
        metrics.add_metric(name="ConnectionsReRead", unit=MetricUnit.Count, value=len(works))
        missing, listed, waited = list(works), [], 0.0
        for attempt, pause in enumerate(self.rereads, start=2):  # attempt 1 was the first read
            logger.debug(
                "EC2 does not list connections yet; reading them again",
                extra={"vpc_endpoint_ids": [w.vpc_endpoint_id for w in missing], "attempt": attempt},
            )
            self.sleep(pause)
            waited += pause
            try:
                self._describe(missing)
            except Exception as exc:
                for work in missing:
                    work.fail(exc)
                missing = []
                break
            found = [w for w in missing if w.connection is not None]
            for work in found:
                logger.info(
                    "Connection listed by EC2 on a re-read",
                    extra={**_ids(work.ref), "attempt": attempt, "waited_seconds": round(waited, 3)},
                )
            listed += found
            missing = [w for w in missing if w.connection is None]
            if not missing:
                break
        if listed:  # their owners' tenants were not read with the first look; the states again too
            try:
                self._read_tables(listed)
            except Exception as exc:
                for work in listed:
                    work.fail(exc)
        for work in missing:
            metrics.add_metric(name="ConnectionsNotYetVisible", unit=MetricUnit.Count, value=1)
            logger.info(
                "EC2 still does not list the connection; left to the message's redelivery",
                extra={
                    **_ids(work.ref),
                    "attempt": len(self.rereads) + 1,
                    "waited_seconds": round(waited, 3),
                },
            )
            work.fail(_not_visible(work.ref))

    def _gave_up_waiting(self, request: EvaluationRequest) -> bool:
        """Whether a connection EC2 does not list has been waited for long enough (see
        NOT_VISIBLE_GIVE_UP); the ingester does not read EC2 for a Connect, so this is where it waits."""
        waited = self.clock() - request.requested_at if request.requested_at else timedelta(0)
        if waited < NOT_VISIBLE_GIVE_UP:
            return False
        logger.warning(
            "Requested endpoint still not listed by EC2; left to the reconciler's sweep",
            extra={**_ids(request.connection), "waited_seconds": waited.total_seconds()},
        )
        return True

    # -- 2. resume -------------------------------------------------------------------------
    def _resume(self, works: list[Work]) -> None:
        """Claims left in flight: a dead invocation's (older than stale_after) is carried on from
        `act` (or `record`, when EC2 shows it done); a live decider's fails the request for now."""
        for work in works:
            state = work.inputs.state
            if state is None or not state.in_flight:
                continue
            if self.clock() - state.claimed_at < self.stale_after:
                work.fail(
                    DecisionInProgress(
                        f"{state.vpc_endpoint_id} is being decided ({state.status}); retry later"
                    )
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
            work.step = "record" if _took_effect(state.decision, current) else "act"

    # -- 3. assess -------------------------------------------------------------------------
    def _assess(self, work: Work) -> None:
        match work.request:
            case EvaluationRequest():
                self._evaluate(work, work.request)
            case RevocationRequest():
                self._enforce(work, work.request)
            case OperatorRequest():
                self._operator(work, work.request)
            case _:  # pragma: no cover - exhaustive
                raise TypeError(f"not a decision request: {work.request!r}")

    def _evaluate(self, work: Work, request: EvaluationRequest) -> None:
        state, connection = work.inputs.state, work.connection
        if state is not None and not (state.status == "held" and request.trigger == "tenant-change"):
            self._already_decided(work, state)
            return
        if connection is None:
            if self._gave_up_waiting(request):
                work.finish()
                return
            raise _not_visible(work.ref)
        if connection.vpc_endpoint_state != "pendingAcceptance":
            logger.info("Connection is not pending acceptance; nothing to decide", extra=_ids(work.ref))
            work.finish()
            return
        assessment = self.assess(connection, request.trigger, inputs=work.inputs)
        if (
            state is not None
            and assessment.decision.outcome == "held"
            and state.decision.reasons == assessment.decision.reasons
        ):
            work.finish()  # re-evaluated, same hold for the same reasons: nothing new to say
            return
        self._to_claim(work, assessment, state)

    def _enforce(self, work: Work, request: RevocationRequest) -> None:
        """Revoke a connection unless the tenant record, read now, still lets its owner use the
        service. A request made stale by a later change (the tenant was re-enabled) revokes nothing;
        an invalid record never vouches for one."""
        connection = work.connection
        if connection is None or connection.vpc_endpoint_state in CLOSED_STATES:
            logger.info("Connection already closed; nothing to revoke", extra=_ids(work.ref))
            work.finish()
            return
        forbidden = self._forbidden(connection, work.inputs)
        if forbidden is None:
            logger.info(
                "Revocation request is stale: the tenant record allows the connection again",
                extra={**_ids(work.ref), "requested_because": request.reason},
            )
            work.finish()
            return
        reason, why, tenant_id = forbidden
        actor = "reconcile" if request.trigger == "reconcile" else "auto"
        self._revoke(work, why, actor, request.trigger, reasons=(reason,), tenant_id=tenant_id)

    def _operator(self, work: Work, request: OperatorRequest) -> None:
        """An operator's approval (of a waiting or held request) or rejection (of a waiting one, or
        revocation of an open one). Overrides policy, not bookkeeping: an approval takes a slot."""
        state, connection = work.inputs.state, work.connection
        if connection is None:
            raise _not_visible(work.ref)
        why = request.reason or f"{request.decision} by an operator"
        if request.requested_by:
            why = f"{why} (requested by {request.requested_by}, as stated by the caller)"
        recorded = state.status if state else None
        verdict = operator_verdict(request.decision, connection.vpc_endpoint_state, recorded)
        if recorded == "accepted" and connection.vpc_endpoint_state == PENDING_ACCEPTANCE:
            # EC2 never goes back from an accept: this read is stale (its lag). Come back, not drop.
            raise _not_visible(work.ref)
        if verdict not in CARRIED_OUT:
            logger.info("Operator request not carried out", extra={**_ids(work.ref), "verdict": verdict})
            work.finish()
            return
        if request.decision == "rejected":
            self._revoke(work, why, self.operator_actor, "operator", reasons=("OperatorDecision",))
            return
        policy = self.assess(connection, "operator", self.operator_actor, work.inputs).decision
        decision = with_outcome(policy, "accepted", ("OperatorDecision",), (why, *policy.explanation))
        slot = Slot(decision.tenant_id, work.vpc_endpoint_id, None) if decision.tenant_id else None
        self._to_claim(work, Assessment(decision, slot), state)

    def _revoke(
        self,
        work: Work,
        why: str,
        actor: str,
        trigger: Trigger,
        *,
        reasons: tuple[str, ...],
        tenant_id: str | None = None,
    ) -> None:
        """Reject a waiting connection, or revoke an accepted one: how access is taken away."""
        state, connection = work.inputs.state, work.connection
        assert connection is not None
        if state is not None and state.status in REFUSALS:
            self._already_decided(work, state)
            return
        tenant_id = (state.decision.tenant_id if state else None) or tenant_id or work.inputs.owner
        outcome: Outcome = "revoked" if connection.vpc_endpoint_state in ACCEPTED_STATES else "rejected"
        fields = {**decision_fields(connection, trigger, actor, self.clock()), "tenant_id": tenant_id}
        self._to_claim(work, Assessment(decided(fields, outcome, reasons, (why,))), state)

    def _already_decided(self, work: Work, state: EndpointState) -> None:
        """A duplicate delivery, or a race lost: nothing new to decide. Only a notification whose
        announcer died (unannounced for longer than stale_after) is announced again, by this request."""
        work.finish()
        if state.notified or state.in_flight or self.clock() - state.claimed_at < self.stale_after:
            return
        try:
            taken = self.decisions.take_over_notification(state, self.clock())
        except WriteConflict:
            return
        logger.warning("Announcing a decision whose announcer died", extra=_ids(state.decision))
        work.claimed, work.step = taken, "announce"

    def _to_claim(self, work: Work, assessment: Assessment, previous: EndpointState | None) -> None:
        if previous is not None and not previous.notified and not previous.in_flight:
            # A decision about to be superseded (a revocation of an accept, an operator's call on a
            # hold) that was never announced — its announcer died, or is still at it: announced now,
            # first, so that no decision is replaced unheard (a duplicate at worst). Rare: one call more.
            [failure] = self._publish([previous.decision])
            if failure is not None:
                raise failure
        work.assessment, work.previous, work.step = assessment, previous, "claim"

    def assess(
        self,
        connection: VpcEndpointConnection,
        trigger: Trigger = "operator",
        actor: str = "auto",
        inputs: DecisionInputs | None = None,
    ) -> Assessment:
        """What the live policy decides for this connection now. Reads only; no side effects.
        `inputs`: the tables as the caller already read them for this connection (else read here)."""
        at = self.clock()
        fields = decision_fields(connection, trigger, actor, at)
        owner, tenant, active = self._tenant(connection, inputs)
        if isinstance(tenant, TenantInvalid):
            # Held, and said so to the tenant the account is claimed by (its subscribers filter on it).
            fields["tenant_id"] = owner
            return Assessment(decided(fields, "held", ("TenantInvalid",), (str(tenant),)))
        if tenant is None:
            why = f"account {connection.vpc_endpoint_owner} is not a principal of any tenant"
            outcome = ACTION_OUTCOME[self.unknown_principal_action]
            return Assessment(decided(fields, outcome, ("UnknownPrincipal",), (why,)))
        fields["tenant_id"] = tenant.tenant_id
        guard = tenant.denial(connection.service_id, at)
        if guard is not None:
            reason, why = guard
            return Assessment(decided(fields, "rejected", (reason,), (why,)))
        # The policy engine loads at the first evaluation: close_connection shares this service and
        # never evaluates, so the engine stays off its cold start.
        from gatekeeper.policy import PolicyError, PolicyEvaluationError, evaluate

        try:
            stored = self.templates.cached(tenant.template, tenant.template_version)
            fields.update(template=stored.name, template_version=stored.version)
            template = stored.parse()
            context = connection_context(connection, tenant, active, at, self.service_region)
            data_plane = self._data_plane(connection, template.referenced_keys)
            context.update(data_plane_context(data_plane))
            evaluation = evaluate(template, context, tenant.parameters)
        except (TemplateNotFound, PolicyError) as exc:
            # Fail closed: an unusable template holds the request and operators are told why.
            reason = "PolicyEvaluationError" if isinstance(exc, PolicyEvaluationError) else "TemplateInvalid"
            return Assessment(decided(fields, "held", (reason,), (str(exc),)))
        explanation = (*evaluation.explain(), *data_plane_explanation(connection, data_plane))
        if evaluation.effect is None:
            outcome = ACTION_OUTCOME[self.default_action]
            return Assessment(
                decided(fields, outcome, ("NoStatementMatched",), explanation), evaluation=evaluation
            )
        outcome = EFFECT_OUTCOME[evaluation.effect]
        if outcome == "accepted" and isinstance(data_plane, DataPlaneUnreadable):
            # Fail closed: the template tests the load balancer and it cannot be read. Its own
            # Deny/Review statements for an absent key (Null, …IfExists) decided above.
            return Assessment(
                decided(fields, "held", ("DataPlaneUnknown",), explanation), evaluation=evaluation
            )
        if outcome != "accepted":
            return Assessment(
                decided(fields, outcome, evaluation.deciding_sids, explanation), evaluation=evaluation
            )
        # The quota is the claim transaction's to enforce (a condition on the counter); the counter
        # read with the tenant only spares a claim that is sure to fail.
        limit = quota_limit(tenant, evaluation.parameters)
        if active >= limit:
            explanation = (*explanation, quota_line(tenant.tenant_id, limit))
            return Assessment(
                decided(fields, "rejected", ("QuotaExceeded",), explanation), evaluation=evaluation
            )
        decision = decided(fields, "accepted", evaluation.deciding_sids, explanation)
        return Assessment(decision, Slot(tenant.tenant_id, connection.vpc_endpoint_id, limit), evaluation)

    def _tenant(
        self, connection: VpcEndpointConnection, inputs: DecisionInputs | None
    ) -> tuple[str | None, Tenant | TenantInvalid | None, int]:
        """(claiming tenant id, its record, its active endpoints): as read with the batch, or read now
        (the CLI's `simulate` and `pending`, with plain reads)."""
        if inputs is not None:
            return inputs.owner, inputs.tenant, inputs.active
        try:
            tenant = self.tenants.find_by_account(connection.vpc_endpoint_owner)
        except TenantInvalid as exc:
            return self.tenants.owner_of(connection.vpc_endpoint_owner), exc, 0
        if tenant is None:
            return None, None, 0
        return tenant.tenant_id, tenant, self.decisions.active_endpoints(tenant.tenant_id)

    def _forbidden(
        self, connection: VpcEndpointConnection, inputs: DecisionInputs
    ) -> tuple[str, str, str | None] | None:
        """Why the tenant record (now) forbids this connection, or None when it allows it."""
        owner, tenant, _ = self._tenant(connection, inputs)
        if isinstance(tenant, TenantInvalid):
            return "TenantInvalid", f"the tenant record does not validate: {tenant}", owner
        if tenant is None:
            why = f"account {connection.vpc_endpoint_owner} is no longer a principal of any tenant"
            return "UnknownPrincipal", why, None
        guard = tenant.denial(connection.service_id, self.clock())
        return None if guard is None else (*guard, tenant.tenant_id)

    def _data_plane(
        self, connection: VpcEndpointConnection, keys: frozenset[str]
    ) -> DataPlane | DataPlaneUnreadable | None:
        """The service's load balancer health, read only for a template that tests it (None)."""
        from gatekeeper.policy import DATA_PLANE_KEYS

        if not keys & DATA_PLANE_KEYS:
            return None
        if self.load_balancers is None:
            return DataPlaneUnreadable("no load balancer reader was given to this decision service")
        try:
            arns = connection.network_load_balancer_arns
            return self.load_balancers.data_plane(connection.service_id, arns)
        except DataPlaneUnreadable as exc:
            logger.warning("Load balancer health unreadable", extra={**_ids(connection), "error": str(exc)})
            return exc

    # -- 4. claim --------------------------------------------------------------------------
    def _claim(self, work: Work) -> None:
        """Take the endpoint (and an accept's quota slot) in one conditional transaction."""
        assert work.assessment is not None
        decision, slot = work.assessment.decision, work.assessment.slot
        status = CLAIM_STATUS[decision.outcome]
        try:
            work.claimed = self.decisions.claim(decision, status, work.previous, slot, self.clock())
        except QuotaExceeded:
            work.assessment = Assessment(quota_refusal(decision, slot))
            self._claim(work)
            return
        except WriteConflict:
            logger.info("Another delivery is deciding this endpoint", extra=_ids(decision))
            work.finish()
            return
        work.slot, work.outcome = slot, decision
        work.step = "announce" if status == "held" else "act"

    # -- 5. act ----------------------------------------------------------------------------
    def _act(self, works: list[Work]) -> None:
        """One Accept and one Reject call per service, each carrying all its ids."""
        calls: dict[tuple[str, bool], list[Work]] = {}
        for work in works:
            assert work.claimed is not None
            decision = work.claimed.decision
            calls.setdefault((decision.service_id, decision.outcome == "accepted"), []).append(work)
        unconfirmed: list[tuple[Work, Exception]] = []
        for (service_id, accept), group in calls.items():
            ids = [w.vpc_endpoint_id for w in group]
            action = self.endpoint_service.accept_all if accept else self.endpoint_service.reject_all
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
            self._confirm(unconfirmed)

    def _confirm(self, unconfirmed: list[tuple[Work, Exception]]) -> None:
        """After failed actions, EC2 read again (one Describe for them all): an effect it shows is
        recorded; a connection it shows closed (or gone) rolls its claim back; anything else keeps the
        claim in flight and fails the request, so its redelivery (or the sweep) finishes it."""
        try:
            listed = self.endpoint_service.connections_by_id([w.vpc_endpoint_id for w, _ in unconfirmed])
        except Exception:
            for work, exc in unconfirmed:
                logger.warning(
                    "EC2 could not be read after a failed action; claim kept", extra=_ids(work.ref)
                )
                work.fail(exc)
            return
        for work, exc in unconfirmed:
            self._each(work, lambda w, e=exc: self._after_failure(w, listed.get(w.vpc_endpoint_id), e))  # type: ignore[misc]

    def _after_failure(self, work: Work, current: VpcEndpointConnection | None, exc: Exception) -> None:
        assert work.claimed is not None
        decision = work.claimed.decision
        state = current.vpc_endpoint_state if current is not None else None
        if _took_effect(decision, state):
            logger.warning(
                "EC2 shows the action done despite the error; recording it",
                extra={**_ids(decision), "error": str(exc), "state": state},
            )
            work.step = "record"
            return
        gone = state is None and isinstance(exc, ConnectionActionFailed) and exc.code in NOT_FOUND_CODES
        if state in CLOSED_STATES or gone:
            # The consumer deleted it (or it failed): nothing left to accept or take away.
            self.decisions.rollback(work.claimed, work.previous, work.slot)
            logger.warning("Connection closed while it was being decided", extra={"state": state})
            work.finish()
            return
        code = exc.code if isinstance(exc, ConnectionActionFailed) else type(exc).__name__
        logger.error(
            "EC2 action not confirmed; the claim stays for a retry to finish",
            extra={**_ids(decision), "error": str(exc), "code": code, "state": state},
        )
        if isinstance(exc, ConnectionActionFailed | OutcomeUnknown):
            raise exc
        raise OutcomeUnknown(f"{decision.vpc_endpoint_id}: {type(exc).__name__}: {exc}") from exc

    # -- 6. record -------------------------------------------------------------------------
    def _record_all(self, works: list[Work]) -> None:
        """Each accept with what the tenant needs to connect, read here one after another (cached per
        service: one read each, where threads asking together would all miss the cache), then the
        records written at once."""
        accepts: dict[str, Decision] = {}
        for work in works:
            assert work.claimed is not None
            if work.claimed.decision.outcome == "accepted":
                accepts[work.vpc_endpoint_id] = self._with_access(work.claimed.decision)
            else:  # nothing to write yet
                self._each(work, lambda w: self._record(w, None))
        writes = [w for w in works if w.vpc_endpoint_id in accepts]
        self._at_once(writes, lambda w: self._record(w, accepts[w.vpc_endpoint_id]), _own_lane)

    def _record(self, work: Work, accepted: Decision | None) -> None:
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
                work.claimed = self.decisions.finalise(
                    work.claimed, decision, release_slot=False, at=self.clock()
                )
            except WriteConflict:
                # Another invocation resumed this claim meanwhile and records (and announces) it itself.
                logger.info("Claim finished by another invocation", extra=_ids(decision))
                work.finish(None if work.resumed else decision)
                return
        if not work.resumed:
            work.outcome = decision
        work.step = "announce"

    def _with_access(self, decision: Decision) -> Decision:
        """An accepted decision with what the tenant needs to connect. Informational: the connection
        is already accepted, so nothing about this read may fail or hold the decision."""
        if self.load_balancers is None:
            return decision
        try:
            access = self.load_balancers.service_access(decision.service_id)
        except Exception as exc:  # a notice without access details beats no notice
            logger.warning(
                "Service access details unreadable; notifying without them",
                extra={**_ids(decision), "error": f"{type(exc).__name__}: {exc}"},
            )
            return decision
        return Decision.model_validate({**decision.model_dump(by_alias=False), "service_access": access})

    # -- 7. announce -----------------------------------------------------------------------
    def _announce(self, works: list[Work]) -> None:
        """SNS and the bus, batched; then each request's own write: a refusal (still in flight) is
        recorded, marked announced, its slot freed; an accept or hold is marked announced. A request that
        fails after SNS took its decision is retried whole, so SNS and the bus may carry it again:
        at-least-once."""
        published = self._publish([w.claimed.decision for w in works if w.claimed is not None])
        for work, failure in zip(works, published, strict=True):
            if failure is not None:
                work.fail(failure)
        self._at_once([w for w in works if w.step == "announce"], self._mark_announced, _freed_slot_lane)

    def _mark_announced(self, work: Work) -> None:
        claimed = work.claimed
        assert claimed is not None
        if claimed.in_flight:
            try:
                self.decisions.finalise(
                    claimed,
                    claimed.decision,
                    release_slot=_frees_slot(claimed),
                    at=self.clock(),
                    notified=True,
                )
            except WriteConflict:
                logger.info("Claim finished by another invocation", extra=_ids(claimed.decision))
        else:
            self.decisions.mark_notified(claimed)
        work.step = "done"

    def _publish(self, decisions: list[Decision]) -> list[Exception | None]:
        """Each decision on SNS, then on the bus (what SNS refused is not put on the bus); what failed
        for each, in order. An entry refused is tried once more, alone. What SNS took is published
        again if the bus or the final write then fails; subscribers drop the copy by decision_id."""
        if not decisions:
            return []
        failures: list[Exception | None] = [None] * len(decisions)
        _tried_twice(failures, decisions, self.notifier.publish_batch, "SNS")
        on_sns = [i for i, failure in enumerate(failures) if failure is None]
        events = [(DECIDED, decisions[i].model_dump(mode="json")) for i in on_sns]
        bus_failures: list[Exception | None] = [None] * len(events)
        _tried_twice(bus_failures, events, self.bus.put, "the bus")
        for position, index in enumerate(on_sns):
            failures[index] = bus_failures[position]
        return failures

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
                extra={**_ids(ref), "state": connection.vpc_endpoint_state},
            )
            raise ConnectionNotVisible(
                f"EC2 still shows {ref.vpc_endpoint_id} {connection.vpc_endpoint_state}; its slot is "
                "released once EC2 reports it closed"
            )
        state = self.decisions.state(ref.vpc_endpoint_id)
        if state is not None and state.status == "rejected" and state.slot_tenant is None:
            # Rejected while it waited for acceptance: it never held a slot, nor could the reconciler
            # have recorded one (it does for open connections only). Nothing to free, no write.
            logger.info("No quota slot held", extra=_ids(ref))
            return False
        tenant_id = state.slot_tenant if state else None
        if tenant_id is None and connection is not None:
            tenant_id = self.tenants.owner_of(connection.vpc_endpoint_owner)
        if tenant_id is None:
            return False
        released = self.decisions.release_slot(tenant_id, ref.vpc_endpoint_id)
        logger.info(
            "Quota slot released" if released else "No quota slot held",
            extra={**_ids(ref), "tenant_id": tenant_id},
        )
        return released


def _one_per_endpoint(works: list[Work]) -> tuple[list[Work], list[Work]]:
    """(the first request of each endpoint, the rest): a pass decides an endpoint once."""
    first: dict[str, Work] = {}
    rest: list[Work] = []
    for work in works:
        if work.vpc_endpoint_id in first:
            rest.append(work)
        else:
            first[work.vpc_endpoint_id] = work
    return list(first.values()), rest


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


def _not_visible(ref: ConnectionRef) -> ConnectionNotVisible:
    """Describe is eventually consistent: a connection a source has just seen may not be listed yet,
    so its absence is retried, never decided on."""
    return ConnectionNotVisible(
        f"EC2 does not list {ref.vpc_endpoint_id} of {ref.service_id} (yet); the request is "
        "retried, and the reconciler finds the connection if it is still waiting"
    )


def _took_effect(decision: Decision, state: str | None) -> bool:
    """After a failed or unanswered call: does EC2 show the action done (by this or an earlier try)?"""
    if decision.outcome == "accepted":
        return state in ACCEPTED_STATES
    # A reject or revoke holds once the connection is closed, whatever closed it (the consumer may
    # delete it after the Reject): recorded, never rolled back, since it may already be announced.
    return state in CLOSED_STATES


def _frees_slot(claimed: EndpointState) -> bool:
    return claimed.slot_tenant is not None and claimed.decision.outcome in REFUSALS


# Lanes of DecisionService._at_once: the tenant whose quota item a request's write changes, if any.
def _own_lane(work: Work) -> str | None:
    return None


def _claim_lane(work: Work) -> str | None:
    slot = work.assessment.slot if work.assessment is not None else None
    return slot.tenant_id if slot is not None else None


def _freed_slot_lane(work: Work) -> str | None:
    claimed = work.claimed
    if claimed is None or not (claimed.in_flight and _frees_slot(claimed)):
        return None
    return claimed.slot_tenant


def _ids(subject: ConnectionRef | Decision | VpcEndpointConnection) -> dict[str, str]:
    return {"vpc_endpoint_id": subject.vpc_endpoint_id, "service_id": subject.service_id}
