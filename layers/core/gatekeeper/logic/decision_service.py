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
1. read the endpoint's decision state; a final decision or an unchanged hold makes a duplicate a
   no-op (re-announcing it if its announcer died);
2. read the connection from EC2 (not yet listed: raise, the event is delivered again later);
3. assess: tenant record guards, then the tenant's policy template (pure engine). The service's
   load balancer health is read (cached) only for a template that tests it, and a template that
   tests it never accepts while it cannot be read (held, `DataPlaneUnknown`);
4. claim the endpoint (+ a quota slot for an accept) with one conditional transaction;
5. Accept/Reject in EC2. EC2 is read again after any failure: an effect it shows is kept and
   recorded; a definite refusal rolls the claim back; anything else leaves the claim in flight
   and raises, and whoever resumes it (the event's retry, or the reconciler's sweep once the claim
   is older than `stale_after`) re-reads EC2 and finishes it;
6. record the outcome, then publish it to SNS and the bus, then mark it notified. A decision whose
   announcer died stays in the `Unsettled` index until the sweep has it announced. An accepted
   decision carries what the tenant needs to connect (`service_access`) when it can be read;
   it is informational, so a failure to read it is logged and the decision goes out without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from gatekeeper.adapters.bus import DECIDED, EventPublisher
from gatekeeper.adapters.decision_topic import DecisionNotifier
from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.adapters.load_balancers import DataPlane, LoadBalancers
from gatekeeper.dal.decisions import DecisionStore, EndpointState, Slot, Status
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
from gatekeeper.models.tenant import Tenant
from gatekeeper.observability import logger

if TYPE_CHECKING:
    from gatekeeper.policy import ContextValue, Evaluation

_ACTION_OUTCOME: dict[Action, Outcome] = {"reject": "rejected", "hold": "held"}
_EFFECT_OUTCOME: dict[str, Outcome] = {"Allow": "accepted", "Deny": "rejected", "Review": "held"}
_CLAIM_STATUS: dict[Outcome, Status] = {
    "accepted": "accepting",
    "rejected": "rejecting",
    "revoked": "revoking",
    "held": "held",
}
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
    endpoints: EndpointService
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
        state = self._settle_in_flight(self.decisions.state(ref.vpc_endpoint_id))
        if state is not None and not (state.status == "held" and request.trigger == "tenant-change"):
            self._ensure_notified(state)
            return None
        connection = self._read(ref)
        if connection.vpc_endpoint_state != "pendingAcceptance":
            logger.info("Connection is not pending acceptance; nothing to decide", extra=_ids(ref))
            return None
        assessment = self.assess(connection, request.trigger)
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
        connection = self.endpoints.connection(ref.vpc_endpoint_id, ref.service_id)
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
        decision = policy.model_copy(
            update={
                "outcome": "accepted",
                "reasons": ("OperatorDecision",),
                "explanation": (why, *policy.explanation),
            }
        )
        slot = Slot(decision.tenant_id, ref.vpc_endpoint_id, None) if decision.tenant_id else None
        return self._carry_out(Assessment(decision, slot), state)

    def release(self, closed: ConnectionClosed) -> bool:
        """Free the quota slot of an endpoint EC2 reports closed (or no longer lists), exactly once."""
        ref = closed.connection
        connection = self.endpoints.connection(ref.vpc_endpoint_id, ref.service_id)
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
        self, connection: VpcEndpointConnection, trigger: Trigger = "operator", actor: str = "auto"
    ) -> Assessment:
        """What the live policy decides for this connection now. Reads only; no side effects."""
        at = self.clock()
        base = _decision(connection, trigger, actor, at)
        try:
            tenant = self.tenants.find_by_account(connection.vpc_endpoint_owner)
        except TenantInvalid as exc:
            return Assessment(_with(base, "held", ("TenantInvalid",), (str(exc),)))
        if tenant is None:
            why = f"account {connection.vpc_endpoint_owner} is not a principal of any tenant"
            outcome = _ACTION_OUTCOME[self.unknown_principal_action]
            return Assessment(_with(base, outcome, ("UnknownPrincipal",), (why,)))
        base = base.model_copy(update={"tenant_id": tenant.tenant_id})
        guard = tenant.denial(connection.service_id, at)
        if guard is not None:
            reason, why = guard
            return Assessment(_with(base, "rejected", (reason,), (why,)))
        # The policy engine loads at the first evaluation: close_connection shares this service and
        # never evaluates, so the engine stays off its cold start.
        from gatekeeper.policy import PolicyError, PolicyEvaluationError, evaluate

        try:
            stored = self.templates.get(tenant.template, tenant.template_version)
            base = base.model_copy(update={"template": stored.name, "template_version": stored.version})
            template = stored.parse()
            active = self.decisions.active_endpoints(tenant.tenant_id)
            context = connection_context(connection, tenant, active, at, self.service_region)
            data_plane = self._data_plane(connection, template.referenced_keys)
            context.update(data_plane_context(data_plane))
            evaluation = evaluate(template, context, tenant.parameters)
        except (TemplateNotFound, PolicyError) as exc:
            # Fail closed: an unusable template holds the request and operators are told why.
            reason = "PolicyEvaluationError" if isinstance(exc, PolicyEvaluationError) else "TemplateInvalid"
            return Assessment(_with(base, "held", (reason,), (str(exc),)))
        explanation = (*evaluation.explain(), *_data_plane_explanation(connection, data_plane))
        if evaluation.effect is None:
            outcome = _ACTION_OUTCOME[self.default_action]
            decision = _with(base, outcome, ("NoStatementMatched",), explanation)
            return Assessment(decision, evaluation=evaluation)
        outcome = _EFFECT_OUTCOME[evaluation.effect]
        decision = _with(base, outcome, evaluation.deciding_sids, explanation)
        if outcome != "accepted":
            return Assessment(decision, evaluation=evaluation)
        if isinstance(data_plane, DataPlaneUnreadable):
            # Fail closed: the template tests the load balancer and it cannot be read. Its own
            # Deny/Review statements for an absent key (Null, …IfExists) decided above.
            return Assessment(_with(base, "held", ("DataPlaneUnknown",), explanation), evaluation=evaluation)
        limit = _quota_limit(tenant, evaluation.parameters)
        if active >= limit:
            return Assessment(_quota_exceeded(decision, limit), evaluation=evaluation)
        return Assessment(decision, Slot(tenant.tenant_id, connection.vpc_endpoint_id, limit), evaluation)

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

    def _read(self, ref: ConnectionRef) -> VpcEndpointConnection:
        """The connection as EC2 describes it now. Describe is eventually consistent: a connection a
        source has just seen may not be listed yet, so its absence is retried, never decided on."""
        connection = self.endpoints.connection(ref.vpc_endpoint_id, ref.service_id)
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
        if state is not None and state.status in ("rejected", "revoked"):
            self._ensure_notified(state)
            return None
        tenant_id = (state.decision.tenant_id if state else None) or tenant_id
        if tenant_id is None:
            tenant_id = self.tenants.owner_of(connection.vpc_endpoint_owner)
        outcome: Outcome = "revoked" if connection.vpc_endpoint_state in ACCEPTED_STATES else "rejected"
        decision = _with(
            _decision(connection, trigger, actor, self.clock()), outcome, reasons, (why,)
        ).model_copy(update={"tenant_id": tenant_id})
        return self._carry_out(Assessment(decision), state)

    def _carry_out(self, assessment: Assessment, previous: EndpointState | None) -> Decision | None:
        decision, slot = assessment.decision, assessment.slot
        status = _CLAIM_STATUS[decision.outcome]
        try:
            claimed = self.decisions.claim(decision, status, previous, slot, self.clock())
        except QuotaExceeded:
            limit = slot.limit if slot and slot.limit is not None else 0
            return self._carry_out(Assessment(_quota_exceeded(decision, limit)), previous)
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
                self.endpoints.accept(decision.service_id, decision.vpc_endpoint_id)
            else:
                self.endpoints.reject(decision.service_id, decision.vpc_endpoint_id)
        except Exception as exc:
            # Unsuccessful, timeout, reset, 5xx, a crash of this very call: EC2 may or may not have
            # done it (an earlier attempt may have). Only EC2 can say; never assume.
            if not self._after_failure(claimed, previous, slot, exc):
                return None
        if decision.outcome == "accepted":
            decision = self._with_access(decision)
        final = self.decisions.finalise(claimed, decision, release_slot=_frees_slot(claimed), at=self.clock())
        self._notify(final)
        return decision

    def _after_failure(
        self, claimed: EndpointState, previous: EndpointState | None, slot: Slot | None, exc: Exception
    ) -> bool:
        """Whether EC2 shows the claimed action done after all (True: record it). When it shows the
        action can no longer happen, the claim is rolled back; when it cannot tell, the claim stays
        in flight for a resume, and the error is raised so the event is retried."""
        decision = claimed.decision
        try:
            current = self.endpoints.connection(decision.vpc_endpoint_id, decision.service_id)
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
        return decision.model_copy(update={"service_access": access})

    def _settle_in_flight(self, state: EndpointState | None) -> EndpointState | None:
        """Finish a claim a dead invocation left (raises while its decider may still be alive); the
        state as it is afterwards."""
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
        slot = Slot(state.slot_tenant, state.vpc_endpoint_id, None) if state.slot_tenant else None
        self._execute(state, None, slot)
        return self.decisions.state(state.vpc_endpoint_id)

    # -- announcing ------------------------------------------------------------------------
    def _notify(self, state: EndpointState) -> None:
        decision = state.decision
        self.notifier.publish(decision)
        self.bus.publish(DECIDED, [decision.model_dump(mode="json")])
        self.decisions.mark_notified(state)

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


def _decision(connection: VpcEndpointConnection, trigger: Trigger, actor: str, at: datetime) -> Decision:
    return Decision(
        vpc_endpoint_id=connection.vpc_endpoint_id,
        service_id=connection.service_id,
        vpc_endpoint_owner=connection.vpc_endpoint_owner,
        vpc_endpoint_region=connection.vpc_endpoint_region,
        outcome="held",
        actor=actor if actor.startswith("operator:") else ("reconcile" if trigger == "reconcile" else "auto"),
        trigger=trigger,
        decided_at=at,
    )


def _with(
    decision: Decision, outcome: Outcome, reasons: tuple[str, ...], explanation: tuple[str, ...]
) -> Decision:
    return decision.model_copy(update={"outcome": outcome, "reasons": reasons, "explanation": explanation})


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
    return state == "rejected"


def _frees_slot(claimed: EndpointState) -> bool:
    decision = claimed.decision.outcome
    return claimed.slot_tenant is not None and decision in ("revoked", "rejected")


def _quota_limit(tenant: Tenant, parameters: Mapping[str, Any]) -> int:
    limit = tenant.max_endpoints
    template_limit = parameters.get("MaxEndpoints")
    if isinstance(template_limit, int | float) and not isinstance(template_limit, bool):
        limit = min(limit, int(template_limit))
    return limit


def _quota_exceeded(decision: Decision, limit: int) -> Decision:
    return decision.model_copy(
        update={
            "outcome": "rejected",
            "reasons": ("QuotaExceeded",),
            "explanation": (
                *decision.explanation,
                f"tenant {decision.tenant_id} already uses {limit} of {limit} endpoints",
            ),
        }
    )


def _ids(subject: ConnectionRef | Decision | VpcEndpointConnection) -> dict[str, str]:
    return {"vpc_endpoint_id": subject.vpc_endpoint_id, "service_id": subject.service_id}
