"""The one decision path: assess a connection request, carry the decision out in EC2, record it,
and announce it — exactly once per endpoint, failing closed.

Three kinds of request reach it, each with one small entry point:
- `evaluate` (EvaluationRequest): decide a waiting connection by policy;
- `enforce` (RevocationRequest): a source believes the tenant record no longer allows a connection;
  revoke it if the record, read now, still forbids it;
- `operator` (OperatorRequest): an operator approves or rejects/revokes, overriding policy.
An event names the endpoint and nothing else is trusted from it: the connection is read from EC2,
the tenant from the table, and an operator's identity from the source only operators may use.

Order of work (each step safe to repeat, and every state has an owner that finishes it):
1. read the connection from EC2, then, in one BatchGetItem, the endpoint's decision state, the
   account's tenant claim and (when this container has seen the account) the tenant's record and
   quota counter; a final decision or an unchanged hold makes a duplicate a no-op (re-announcing it
   if its announcer died); a connection EC2 does not list yet, and nobody has decided, is read again
   a few times within the invocation (NOT_LISTED_REREADS, ~1.7 s in all), then raises, and the event
   comes again;
2. (the template: a pinned version is read once per container, the latest at most every 30 s);
3. assess: tenant record guards, then the tenant's policy template (pure engine). The service's
   load balancer health is read (cached) only for a template that tests it, and a template that
   tests it never accepts while it cannot be read (held, `DataPlaneUnknown`);
4. claim the endpoint (+ a quota slot for an accept) with one conditional transaction;
5. Accept/Reject in EC2. EC2 is read again after any failure: an effect it shows is kept and
   recorded; a definite refusal rolls the claim back; anything else leaves the claim in flight
   and raises, and whoever resumes it (the event's retry, or the reconciler's sweep once the claim
   is older than `stale_after`) re-reads EC2 and finishes it;
6. publish the outcome to SNS and the bus, then record it, marked notified, in one transaction: until
   that write the claim is in flight, so a crash in between is resumed (EC2 read again) and announced
   again — a duplicate of the same decision, never a lost one. A hold (no EC2 action) is recorded
   with its claim, then announced, then marked notified; a decision whose announcer died stays in
   the `Unsettled` index until the sweep has it announced. An accepted
   decision carries what the tenant needs to connect (`service_access`) when it can be read;
   it is informational, so a failure to read it is logged and the decision goes out without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

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
from gatekeeper.models.connection import ACCEPTED_STATES, CLOSED_STATES, ConnectionRef, VpcEndpointConnection
from gatekeeper.models.decision import Action, Decision, Outcome, Trigger
from gatekeeper.models.errors import (
    ConnectionActionFailed,
    ConnectionNotVisible,
    DataPlaneUnreadable,
    DecisionInProgress,
    OutcomeUnknown,
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
from gatekeeper.models.tenant import Tenant, quota_limit
from gatekeeper.observability import logger, metrics

if TYPE_CHECKING:
    from gatekeeper.policy import ContextValue, Evaluation

_ACTION_OUTCOME: dict[Action, Outcome] = {"reject": "rejected", "hold": "held"}
_EFFECT_OUTCOME: dict[str, Outcome] = {"Allow": "accepted", "Deny": "rejected", "Review": "held"}
# A notified connection EC2 still does not list this long after the notification reached the bus (past
# Lambda's first async retry, ~1 min) is left to the reconciler's sweep instead of the DLQ: it was
# deleted before EC2 listed it, or the sweep finds it still waiting.
NOT_VISIBLE_GIVE_UP = timedelta(seconds=150)
# A requested connection EC2 does not list yet is read again after these pauses (seconds), in the same
# invocation: a lag shorter than that is then caught in about a second instead of Lambda's first
# async retry (~1 minute later). 1.7 s of waiting in all, far below the function's 30 s timeout; a
# longer lag is left to that retry (and the sweep) as before. ConnectionsReRead and
# ConnectionsNotYetVisible show how often each happens, to tune this on evidence.
NOT_LISTED_REREADS: tuple[float, ...] = (0.2, 0.5, 1.0)
# EC2 and Describe agree the endpoint does not exist: the one absence that is not eventual consistency.
NOT_FOUND_CODES = frozenset({"InvalidVpcEndpointId.NotFound", "InvalidVpcEndpoint.NotFound"})


@dataclass(frozen=True)
class Assessment:
    """What policy says about a connection now, before anything is done about it."""

    decision: Decision
    slot: Slot | None = None
    evaluation: Evaluation | None = None


def connection_context(
    connection: VpcEndpointConnection,
    tenant: Tenant,
    active_endpoints: int,
    at: datetime,
    service_region: str,
) -> dict[str, ContextValue]:
    """The condition keys a template can test (DESIGN.md, "Keys")."""
    context: dict[str, ContextValue] = {
        "endpoint:Id": connection.vpc_endpoint_id,
        "endpoint:Owner": connection.vpc_endpoint_owner,
        "endpoint:ServiceId": connection.service_id,
        "endpoint:Region": connection.region(service_region),
        "endpoint:IpAddressType": connection.ip_address_type,
        "endpoint:State": connection.vpc_endpoint_state,
        "endpoint:CreatedAt": connection.creation_timestamp,
        "tenant:Id": tenant.tenant_id,
        "tenant:Status": tenant.status,
        "tenant:Services": list(tenant.services),
        "tenant:ActiveEndpoints": active_endpoints,
        "tenant:MaxEndpoints": tenant.max_endpoints,
        "tenant:ExpiresAt": tenant.expires_at,
        "gatekeeper:CurrentTime": at,
    }
    for label, value in tenant.labels.items():
        context[f"tenant:Labels/{label}"] = value
    return {k: v for k, v in context.items() if v is not None}


def data_plane_context(data_plane: DataPlane | DataPlaneUnreadable | None) -> dict[str, ContextValue]:
    """The load balancer keys (DATA_PLANE_KEYS): absent when not read, or unreadable."""
    if not isinstance(data_plane, DataPlane):
        return {}
    return {
        "endpoint:HealthyTargets": data_plane.has_healthy_targets,
        "endpoint:HealthyTargetZones": list(data_plane.healthy_zones),
    }


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
    # shorter than Lambda's first async retry (~1 min), so that retry finishes the job.
    stale_after: timedelta = field(default=timedelta(seconds=45))
    # The services' load balancers: health for templates that test it, and the accepted notice. None
    # (a caller that cannot read elbv2): such templates hold with DataPlaneUnknown, notices go bare.
    load_balancers: LoadBalancers | None = None
    # How the decider waits between reads of a connection EC2 does not list yet (NOT_LISTED_REREADS):
    # injected, so tests and the chaos harness's virtual clock never wait for real.
    sleep: Callable[[float], None] = time.sleep
    rereads: tuple[float, ...] = NOT_LISTED_REREADS
    # account → the tenant this container last saw claim it: read with the claim, in the same call.
    _owners: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    # -- the three kinds of request ----------------------------------------------------------
    def handle(self, request: DecisionRequest) -> Decision | None:
        """Decide one request. None when nothing visible was done (duplicate, race, not ours)."""
        if request.connection.service_id not in self.managed_services:
            logger.warning("Request for an unmanaged service ignored", extra=_ids(request.connection))
            return None
        match request:
            case EvaluationRequest():
                return self.evaluate(request)
            case RevocationRequest():
                return self.enforce(request)
            case OperatorRequest():
                return self.operator(request)
        raise TypeError(f"not a decision request: {request!r}")  # pragma: no cover - exhaustive

    def evaluate(self, request: EvaluationRequest) -> Decision | None:
        ref = request.connection
        connection = self.endpoint_service.connection(ref.vpc_endpoint_id, ref.service_id)
        inputs = self._inputs(ref.vpc_endpoint_id, connection)
        if connection is None and inputs.state is None:
            # Not listed, and nobody has decided it: EC2 has most likely not caught up with the
            # notification yet. Read it again here rather than wait a minute for the async retry.
            if self._gave_up_waiting(request):
                return None
            connection = self._read_until_listed(ref)
            inputs = self._inputs(ref.vpc_endpoint_id, connection)  # its owner's tenant, the state again
        state = self._settle_in_flight(inputs.state, connection)
        if state is not inputs.state:  # a dead invocation's claim was finished: read both again
            connection = self.endpoint_service.connection(ref.vpc_endpoint_id, ref.service_id)
            inputs = self._inputs(ref.vpc_endpoint_id, connection)
        if state is not None and not (state.status == "held" and request.trigger == "tenant-change"):
            self._ensure_notified(state)
            return None
        if connection is None and self._gave_up_waiting(request):
            return None
        connection = self._visible(ref, connection)
        if connection.vpc_endpoint_state != "pendingAcceptance":
            logger.info("Connection is not pending acceptance; nothing to decide", extra=_ids(ref))
            return None
        assessment = self.assess(connection, request.trigger, inputs=inputs)
        if (
            state is not None
            and assessment.decision.outcome == "held"
            and state.decision.reasons == assessment.decision.reasons
        ):
            return None  # re-evaluated, same hold for the same reasons: nothing new to say
        return self._carry_out(assessment, state)

    def enforce(self, request: RevocationRequest) -> Decision | None:
        """Revoke a connection unless the tenant record, read now, still lets its owner use the
        service. A request made stale by a later change (the tenant was re-enabled) revokes nothing;
        an invalid record never vouches for one."""
        ref = request.connection
        state = self._settle_in_flight(self.decisions.state(ref.vpc_endpoint_id))
        connection = self.endpoint_service.connection(ref.vpc_endpoint_id, ref.service_id)
        if connection is None or connection.vpc_endpoint_state in CLOSED_STATES:
            logger.info("Connection already closed; nothing to revoke", extra=_ids(ref))
            return None
        forbidden = self._forbidden(connection)
        if forbidden is None:
            logger.info(
                "Revocation request is stale: the tenant record allows the connection again",
                extra={**_ids(ref), "requested_because": request.reason},
            )
            return None
        reason, why, tenant_id = forbidden
        actor = "reconcile" if request.trigger == "reconcile" else "auto"
        return self._revoke(
            connection, state, why, actor, request.trigger, reasons=(reason,), tenant_id=tenant_id
        )

    def operator(self, request: OperatorRequest) -> Decision | None:
        """An operator's approval (of a waiting or held request) or rejection (of a waiting one, or
        revocation of an open one). Overrides policy, not bookkeeping: an approval takes a slot."""
        ref = request.connection
        state = self._settle_in_flight(self.decisions.state(ref.vpc_endpoint_id))
        connection = self._read(ref)
        why = request.reason or f"{request.decision} by an operator"
        if request.requested_by:
            why = f"{why} (requested by {request.requested_by}, as stated by the caller)"
        recorded = state.status if state else None
        verdict = operator_verdict(request.decision, connection.vpc_endpoint_state, recorded)
        if verdict not in CARRIED_OUT:
            logger.info("Operator request not carried out", extra={**_ids(ref), "verdict": verdict})
            return None
        if request.decision == "rejected":
            reasons = ("OperatorDecision",)
            return self._revoke(connection, state, why, self.operator_actor, "operator", reasons=reasons)
        policy = self.assess(connection, "operator", self.operator_actor).decision
        decision = _with(policy, "accepted", ("OperatorDecision",), (why, *policy.explanation))
        slot = Slot(decision.tenant_id, ref.vpc_endpoint_id, None) if decision.tenant_id else None
        return self._carry_out(Assessment(decision, slot), state)

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

    # -- reading -----------------------------------------------------------------------------
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
        fields = _fields(connection, trigger, actor, at)
        tenant, active = self._tenant(connection, inputs)
        if isinstance(tenant, TenantInvalid):
            return Assessment(_decided(fields, "held", ("TenantInvalid",), (str(tenant),)))
        if tenant is None:
            why = f"account {connection.vpc_endpoint_owner} is not a principal of any tenant"
            outcome = _ACTION_OUTCOME[self.unknown_principal_action]
            return Assessment(_decided(fields, outcome, ("UnknownPrincipal",), (why,)))
        fields["tenant_id"] = tenant.tenant_id
        guard = tenant.denial(connection.service_id, at)
        if guard is not None:
            reason, why = guard
            return Assessment(_decided(fields, "rejected", (reason,), (why,)))
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
            return Assessment(_decided(fields, "held", (reason,), (str(exc),)))
        explanation = (*evaluation.explain(), *_data_plane_explanation(connection, data_plane))
        if evaluation.effect is None:
            outcome = _ACTION_OUTCOME[self.default_action]
            decision = _decided(fields, outcome, ("NoStatementMatched",), explanation)
            return Assessment(decision, evaluation=evaluation)
        outcome = _EFFECT_OUTCOME[evaluation.effect]
        if outcome == "accepted" and isinstance(data_plane, DataPlaneUnreadable):
            # Fail closed: the template tests the load balancer and it cannot be read. Its own
            # Deny/Review statements for an absent key (Null, …IfExists) decided above.
            decision = _decided(fields, "held", ("DataPlaneUnknown",), explanation)
            return Assessment(decision, evaluation=evaluation)
        if outcome != "accepted":
            decision = _decided(fields, outcome, evaluation.deciding_sids, explanation)
            return Assessment(decision, evaluation=evaluation)
        # The quota is the claim transaction's to enforce (a condition on the counter); the counter
        # read with the tenant only spares a claim that is sure to fail.
        limit = _quota_limit(tenant, evaluation.parameters)
        if active >= limit:
            decision = _decided(
                fields, "rejected", ("QuotaExceeded",), (*explanation, _quota_line(tenant.tenant_id, limit))
            )
            return Assessment(decision, evaluation=evaluation)
        decision = _decided(fields, "accepted", evaluation.deciding_sids, explanation)
        return Assessment(decision, Slot(tenant.tenant_id, connection.vpc_endpoint_id, limit), evaluation)

    def _gave_up_waiting(self, request: EvaluationRequest) -> bool:
        """Whether a connection EC2 does not list has been waited for long enough (see
        NOT_VISIBLE_GIVE_UP); the ingester no longer reads EC2 first, so this is where it is retried."""
        waited = self.clock() - request.requested_at if request.requested_at else timedelta(0)
        if waited < NOT_VISIBLE_GIVE_UP:
            return False
        logger.warning(
            "Requested endpoint still not listed by EC2; left to the reconciler's sweep",
            extra={**_ids(request.connection), "waited_seconds": waited.total_seconds()},
        )
        return True

    def _tenant(
        self, connection: VpcEndpointConnection, inputs: DecisionInputs | None
    ) -> tuple[Tenant | TenantInvalid | None, int]:
        """The owner's tenant record and active endpoints: as read with the state, or read now (the
        operator path and the CLI's `simulate`, with plain reads)."""
        if inputs is not None:
            return inputs.tenant, inputs.active
        try:
            tenant = self.tenants.find_by_account(connection.vpc_endpoint_owner)
        except TenantInvalid as exc:
            return exc, 0
        return tenant, self.decisions.active_endpoints(tenant.tenant_id) if tenant else 0

    def _inputs(
        self, vpc_endpoint_id: str | None, connection: VpcEndpointConnection | None
    ) -> DecisionInputs:
        """The endpoint's state (for an id) and the tenant of the connection's owner, in one call when
        this container has seen the account before (two otherwise)."""
        account = connection.vpc_endpoint_owner if connection is not None else None
        guess = self._owners.get(account) if account is not None else None
        inputs = self.decisions.read_inputs(self.tenants, vpc_endpoint_id, account, guess)
        if account is not None:
            if inputs.owner is None:
                self._owners.pop(account, None)
            else:
                self._owners[account] = inputs.owner
        return inputs

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

    def _read_until_listed(self, ref: ConnectionRef) -> VpcEndpointConnection:
        """A requested connection the first Describe did not list, read again after each pause of
        `rereads`; ConnectionNotVisible (the event is retried) if EC2 still does not list it. Only
        for EC2 not listing it: any error of a read is raised at once, as from the first read."""
        metrics.add_metric(name="ConnectionsReRead", unit=MetricUnit.Count, value=1)
        waited = 0.0
        for attempt, pause in enumerate(self.rereads, start=2):  # attempt 1 was the first read
            logger.debug(
                "EC2 does not list the connection yet; reading it again",
                extra={**_ids(ref), "attempt": attempt, "pause_seconds": pause},
            )
            self.sleep(pause)
            waited += pause
            connection = self.endpoint_service.connection(ref.vpc_endpoint_id, ref.service_id)
            if connection is not None:
                logger.info(
                    "Connection listed by EC2 on a re-read",
                    extra={**_ids(ref), "attempt": attempt, "waited_seconds": round(waited, 3)},
                )
                return connection
        metrics.add_metric(name="ConnectionsNotYetVisible", unit=MetricUnit.Count, value=1)
        logger.info(
            "EC2 still does not list the connection; left to the event's retry",
            extra={**_ids(ref), "attempt": len(self.rereads) + 1, "waited_seconds": round(waited, 3)},
        )
        return self._visible(ref, None)

    def _read(self, ref: ConnectionRef) -> VpcEndpointConnection:
        """The connection as EC2 describes it now (see _visible)."""
        return self._visible(ref, self.endpoint_service.connection(ref.vpc_endpoint_id, ref.service_id))

    @staticmethod
    def _visible(ref: ConnectionRef, connection: VpcEndpointConnection | None) -> VpcEndpointConnection:
        """Describe is eventually consistent: a connection a source has just seen may not be listed
        yet, so its absence is retried, never decided on."""
        if connection is None:
            raise ConnectionNotVisible(
                f"EC2 does not list {ref.vpc_endpoint_id} of {ref.service_id} (yet); the request is "
                "retried, and the reconciler finds the connection if it is still waiting"
            )
        return connection

    def _forbidden(self, connection: VpcEndpointConnection) -> tuple[str, str, str | None] | None:
        """Why the tenant record (now) forbids this connection, or None when it allows it."""
        try:
            tenant = self.tenants.find_by_account(connection.vpc_endpoint_owner)
        except TenantInvalid as exc:
            owner = self.tenants.owner_of(connection.vpc_endpoint_owner)
            return "TenantInvalid", f"the tenant record does not validate: {exc}", owner
        if tenant is None:
            why = f"account {connection.vpc_endpoint_owner} is no longer a principal of any tenant"
            return "UnknownPrincipal", why, None
        guard = tenant.denial(connection.service_id, self.clock())
        return None if guard is None else (*guard, tenant.tenant_id)

    # -- carrying a decision out -----------------------------------------------------------
    def _revoke(
        self,
        connection: VpcEndpointConnection,
        state: EndpointState | None,
        why: str,
        actor: str,
        trigger: Trigger,
        *,
        reasons: tuple[str, ...],
        tenant_id: str | None = None,
    ) -> Decision | None:
        """Reject a waiting connection, or revoke an accepted one: how access is taken away."""
        if state is not None and state.status in REFUSALS:
            self._ensure_notified(state)
            return None
        tenant_id = (state.decision.tenant_id if state else None) or tenant_id
        if tenant_id is None:
            tenant_id = self.tenants.owner_of(connection.vpc_endpoint_owner)
        outcome: Outcome = "revoked" if connection.vpc_endpoint_state in ACCEPTED_STATES else "rejected"
        fields = {**_fields(connection, trigger, actor, self.clock()), "tenant_id": tenant_id}
        decision = _decided(fields, outcome, reasons, (why,))
        return self._carry_out(Assessment(decision), state)

    def _carry_out(self, assessment: Assessment, previous: EndpointState | None) -> Decision | None:
        decision, slot = assessment.decision, assessment.slot
        status = CLAIM_STATUS[decision.outcome]
        try:
            claimed = self.decisions.claim(decision, status, previous, slot, self.clock())
        except QuotaExceeded:
            limit = slot.limit if slot and slot.limit is not None else 0
            refused = _with(
                decision,
                "rejected",
                ("QuotaExceeded",),
                (*decision.explanation, _quota_line(decision.tenant_id, limit)),
            )
            return self._carry_out(Assessment(refused), previous)
        except WriteConflict:
            logger.info("Another delivery is deciding this endpoint", extra=_ids(decision))
            return None
        if status == "held":
            self._notify(claimed)
            return decision
        return self._execute(claimed, previous, slot)

    def _execute(
        self, claimed: EndpointState, previous: EndpointState | None, slot: Slot | None
    ) -> Decision | None:
        decision = claimed.decision
        try:
            if decision.outcome == "accepted":
                self.endpoint_service.accept(decision.service_id, decision.vpc_endpoint_id)
            else:
                self.endpoint_service.reject(decision.service_id, decision.vpc_endpoint_id)
        except Exception as exc:
            # Unsuccessful, timeout, reset, 5xx, a crash of this very call: EC2 may or may not have
            # done it (an earlier attempt may have). Only EC2 can say; never assume.
            if not self._after_failure(claimed, previous, slot, exc):
                return None
        return self._record(claimed)

    def _record(self, claimed: EndpointState) -> Decision:
        """Record and announce a claimed action EC2 shows done."""
        decision = claimed.decision
        try:
            if decision.outcome == "accepted":
                decision = self._with_access(decision)
                self._record_then_announce(claimed, decision)
            else:
                self._announce_then_record(claimed, decision)
        except WriteConflict:
            # Another invocation resumed this claim meanwhile and records (and announces) it itself.
            logger.info("Claim finished by another invocation", extra=_ids(decision))
        return decision

    def _announce_then_record(self, claimed: EndpointState, decision: Decision) -> None:
        """A reject or revoke: announced, then recorded with `notified` in the same write. Until
        that write the claim stays in flight (Unsettled), so a crash in between is resumed — EC2
        read again, the effect recorded, announced again (a duplicate of the same decision). EC2's
        word is final: every closed state counts as the refusal done, whoever closed it."""
        self._announce(decision)
        self.decisions.finalise(
            claimed, decision, release_slot=_frees_slot(claimed), at=self.clock(), notified=True
        )

    def _record_then_announce(self, claimed: EndpointState, decision: Decision) -> None:
        """An accept: recorded, then announced, then marked announced (one more write than a
        refusal). Announcing first would leave an announced accept unrecorded if its decider died
        and the consumer deleted the endpoint before the resume: EC2 then shows `deleted`, which
        cannot tell whether the accept was made, so the resume would roll the claim back. Recorded
        first, the decision stands; a crash before the mark is announced by the sweep (Unsettled)."""
        finalised = self.decisions.finalise(claimed, decision, release_slot=False, at=self.clock())
        self._notify(finalised)

    def _after_failure(
        self, claimed: EndpointState, previous: EndpointState | None, slot: Slot | None, exc: Exception
    ) -> bool:
        """Whether EC2 shows the claimed action done after all (True: record it). When it shows the
        action can no longer happen, the claim is rolled back; when it cannot tell, the claim stays
        in flight for a resume, and the error is raised so the event is retried."""
        decision = claimed.decision
        try:
            current = self.endpoint_service.connection(decision.vpc_endpoint_id, decision.service_id)
        except Exception:
            logger.warning("EC2 could not be read after a failed action; claim kept", extra=_ids(decision))
            raise exc from None
        state = current.vpc_endpoint_state if current is not None else None
        if _took_effect(decision, state):
            logger.warning(
                "EC2 shows the action done despite the error; recording it",
                extra={**_ids(decision), "error": str(exc), "state": state},
            )
            return True
        gone = state is None and isinstance(exc, ConnectionActionFailed) and exc.code in NOT_FOUND_CODES
        if state in CLOSED_STATES or gone:
            # The consumer deleted it (or it failed): nothing left to accept or take away.
            self.decisions.rollback(claimed, previous, slot)
            logger.warning("Connection closed while it was being decided", extra={"state": state})
            return False
        code = exc.code if isinstance(exc, ConnectionActionFailed) else type(exc).__name__
        logger.error(
            "EC2 action not confirmed; the claim stays for a retry to finish",
            extra={**_ids(decision), "error": str(exc), "code": code, "state": state},
        )
        if isinstance(exc, ConnectionActionFailed | OutcomeUnknown):
            raise exc
        raise OutcomeUnknown(f"{decision.vpc_endpoint_id}: {type(exc).__name__}: {exc}") from exc

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

    def _settle_in_flight(
        self, state: EndpointState | None, connection: VpcEndpointConnection | None = None
    ) -> EndpointState | None:
        """Finish a claim a dead invocation left (raises while its decider may still be alive); the
        state as it is afterwards. `connection`: as EC2 was just read, if it was."""
        if state is None or not state.in_flight:
            return state
        if self.clock() - state.claimed_at < self.stale_after:
            raise DecisionInProgress(
                f"{state.vpc_endpoint_id} is being decided ({state.status}); retry later"
            )
        logger.warning(
            "Resuming a decision left unfinished",
            extra={"vpc_endpoint_id": state.vpc_endpoint_id, "status": state.status},
        )
        if connection is None:
            connection = self.endpoint_service.connection(state.vpc_endpoint_id, state.decision.service_id)
        if connection is not None and _took_effect(state.decision, connection.vpc_endpoint_state):
            # Done in EC2 (its decider died before recording, or while announcing): record it.
            self._record(state)
        else:
            slot = Slot(state.slot_tenant, state.vpc_endpoint_id, None) if state.slot_tenant else None
            self._execute(state, None, slot)
        return self.decisions.state(state.vpc_endpoint_id)

    # -- announcing ------------------------------------------------------------------------
    def _notify(self, state: EndpointState) -> None:
        self._announce(state.decision)
        self.decisions.mark_notified(state)

    def _announce(self, decision: Decision) -> None:
        self.notifier.publish(decision)
        self.bus.publish(DECIDED, [decision.model_dump(mode="json")])

    def _ensure_notified(self, state: EndpointState) -> None:
        """A duplicate delivery re-sends only a notification whose sender died."""
        if state.notified or state.in_flight:
            return
        if self.clock() - state.claimed_at < self.stale_after:
            return
        try:
            taken = self.decisions.take_over_notification(state, self.clock())
        except WriteConflict:
            return
        logger.warning("Announcing a decision whose announcer died", extra=_ids(state.decision))
        self._notify(taken)


def _fields(connection: VpcEndpointConnection, trigger: Trigger, actor: str, at: datetime) -> dict[str, Any]:
    """The fields every decision about this connection has; the outcome and its why come later."""
    return {
        "vpc_endpoint_id": connection.vpc_endpoint_id,
        "service_id": connection.service_id,
        "vpc_endpoint_owner": connection.vpc_endpoint_owner,
        "vpc_endpoint_region": connection.vpc_endpoint_region,
        "actor": actor
        if actor.startswith("operator:")
        else ("reconcile" if trigger == "reconcile" else "auto"),
        "trigger": trigger,
        "decided_at": at,
    }


def _decided(
    fields: Mapping[str, Any], outcome: Outcome, reasons: tuple[str, ...], explanation: tuple[str, ...]
) -> Decision:
    """The decision, built once and validated."""
    return Decision.model_validate(
        {**fields, "outcome": outcome, "reasons": reasons, "explanation": explanation}
    )


def _with(
    decision: Decision, outcome: Outcome, reasons: tuple[str, ...], explanation: tuple[str, ...]
) -> Decision:
    """Another outcome for a decision already built (an operator's, a refused quota), validated."""
    return _decided(decision.model_dump(by_alias=False), outcome, reasons, explanation)


def _data_plane_explanation(
    connection: VpcEndpointConnection, data_plane: DataPlane | DataPlaneUnreadable | None
) -> tuple[str, ...]:
    if data_plane is None:
        return ()
    if isinstance(data_plane, DataPlaneUnreadable):
        return (f"the load balancer of {connection.service_id} could not be read: {data_plane}",)
    return (data_plane.describe(),)


def _took_effect(decision: Decision, state: str | None) -> bool:
    """After a failed or unanswered call: does EC2 show the action done (by this or an earlier try)?"""
    if decision.outcome == "accepted":
        return state in ACCEPTED_STATES
    # A reject or revoke holds once the connection is closed, whatever closed it (the consumer may
    # delete it after the Reject): recorded, never rolled back, since it may already be announced.
    return state in CLOSED_STATES


def _frees_slot(claimed: EndpointState) -> bool:
    decision = claimed.decision.outcome
    return claimed.slot_tenant is not None and decision in REFUSALS


def _quota_limit(tenant: Tenant, parameters: Mapping[str, Any]) -> int:
    return quota_limit(tenant, parameters)  # one rule, in the model: the CLI shows the same quota


def _quota_line(tenant_id: str | None, limit: int) -> str:
    return f"tenant {tenant_id} already uses {limit} of {limit} endpoints"


def _ids(subject: ConnectionRef | Decision | VpcEndpointConnection) -> dict[str, str]:
    return {"vpc_endpoint_id": subject.vpc_endpoint_id, "service_id": subject.service_id}
