"""The one decision path: assess a connection request, carry the decision out in EC2, record it,
and announce it — exactly once per endpoint, failing closed.

Order of work for a request (each step safe to repeat):
1. read the endpoint's decision state; a final decision or a hold makes a duplicate a no-op;
2. assess: tenant record guards, then the tenant's policy template (pure engine);
3. claim the endpoint (+ a quota slot for an accept) with one conditional transaction;
4. Accept/Reject in EC2 — an `Unsuccessful` answer rolls the claim back and raises, so the
   event is retried and nothing is recorded as accepted that EC2 did not accept;
5. record the outcome, then publish it to SNS and the bus, then mark it notified.
A crash between steps leaves a claim that a later delivery resumes once it is stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gatekeeper.adapters.bus import DECIDED, EventPublisher
from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.adapters.notifier import DecisionNotifier
from gatekeeper.dal.decisions import IN_FLIGHT, DecisionStore, EndpointState, Slot, Status
from gatekeeper.dal.templates import TemplateStore
from gatekeeper.dal.tenants import TenantStore
from gatekeeper.errors import (
    ConnectionActionFailed,
    DecisionInProgress,
    QuotaExceeded,
    TemplateNotFound,
    TenantInvalid,
    WriteConflict,
)
from gatekeeper.models import (
    CLOSED_STATES,
    Action,
    ConnectionClosed,
    ConnectionRequested,
    Decision,
    Outcome,
    Tenant,
    Trigger,
    VpcEndpointConnection,
    now_utc,
)
from gatekeeper.observability import logger
from gatekeeper.policy import (
    ContextValue,
    Evaluation,
    PolicyError,
    PolicyEvaluationError,
    evaluate,
)

# Sources that may ask for a revocation; the decider re-checks the tenant record before it acts.
SOURCE_TRIGGERS: frozenset[Trigger] = frozenset({"reconcile", "tenant-change"})
_ACTION_OUTCOME: dict[Action, Outcome] = {"reject": "rejected", "hold": "held"}
_EFFECT_OUTCOME: dict[str, Outcome] = {"Allow": "accepted", "Deny": "rejected", "Review": "held"}


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
    clock: Callable[[], datetime] = now_utc
    # A claim older than this belongs to an invocation that died (> the function timeout).
    stale_after: timedelta = field(default=timedelta(seconds=90))

    # -- the decision path -------------------------------------------------------------------
    def decide(self, request: ConnectionRequested) -> Decision | None:
        """Decide one requested connection. None when nothing visible was done (duplicate, race,
        not ours, not pending)."""
        connection = request.connection
        if connection.service_id not in self.managed_services:
            logger.warning("Connection to an unmanaged service ignored", extra=_ids(connection))
            return None
        if request.requested_decision == "rejected" and request.trigger in SOURCE_TRIGGERS:
            return self.enforce(request)
        state = self.decisions.state(connection.vpc_endpoint_id)
        if state is not None:
            if state.status in ("accepting", "rejecting", "revoking"):
                return self._resume(state)
            operator_revoke = request.requested_decision == "rejected" and state.status == "accepted"
            reopen = state.status == "held" and (
                request.trigger in ("tenant-change", "operator") or request.requested_decision is not None
            )
            if not (operator_revoke or reopen):
                self._ensure_notified(state)
                return None
            if operator_revoke:
                return self.revoke(
                    connection, request.reason or "revoked by operator", request.actor, "operator"
                )
        if connection.vpc_endpoint_state != "pendingAcceptance":
            logger.info("Connection is not pending acceptance; nothing to decide", extra=_ids(connection))
            return None
        if request.requested_decision is not None:
            assessment = self._operator_decision(request)
        else:
            assessment = self.assess(connection, request.trigger, request.actor)
            if (
                state is not None
                and assessment.decision.decision == "held"
                and state.decision.reasons == assessment.decision.reasons
            ):
                return None  # re-evaluated, same hold for the same reasons: nothing new to say
        return self._carry_out(assessment, state)

    def assess(
        self, connection: VpcEndpointConnection, trigger: Trigger = "operator", actor: str = "auto"
    ) -> Assessment:
        """What the live policy decides for this connection now. Reads only; no side effects."""
        at = self.clock()
        base = _decision(connection, trigger, actor, at)
        try:
            tenant = self.tenants.find_by_account(connection.vpc_endpoint_owner)
        except TenantInvalid as exc:
            return Assessment(
                base.model_copy(
                    update={"decision": "held", "reasons": ("TenantInvalid",), "explanation": (str(exc),)}
                )
            )
        if tenant is None:
            outcome = _ACTION_OUTCOME[self.unknown_principal_action]
            why = f"account {connection.vpc_endpoint_owner} is not a principal of any tenant"
            return Assessment(
                base.model_copy(
                    update={"decision": outcome, "reasons": ("UnknownPrincipal",), "explanation": (why,)}
                )
            )
        base = base.model_copy(update={"tenant_id": tenant.tenant_id})
        guard = _record_guard(tenant, connection.service_id, at)
        if guard is not None:
            reason, why = guard
            return Assessment(
                base.model_copy(update={"decision": "rejected", "reasons": (reason,), "explanation": (why,)})
            )
        try:
            stored = self.templates.get(tenant.template, tenant.template_version)
            base = base.model_copy(update={"template": stored.name, "template_version": stored.version})
            template = stored.parse()
            active = self.decisions.active_endpoints(tenant.tenant_id)
            context = connection_context(connection, tenant, active, at, self.service_region)
            evaluation = evaluate(template, context, tenant.parameters)
        except (TemplateNotFound, PolicyError) as exc:
            # Fail closed: an unusable template holds the request and operators are told why.
            reason = "PolicyEvaluationError" if isinstance(exc, PolicyEvaluationError) else "TemplateInvalid"
            held = {"decision": "held", "reasons": (reason,), "explanation": (str(exc),)}
            return Assessment(base.model_copy(update=held))
        explanation = tuple(evaluation.explain())
        if evaluation.effect is None:
            outcome = _ACTION_OUTCOME[self.default_action]
            decision = base.model_copy(
                update={"decision": outcome, "reasons": ("NoStatementMatched",), "explanation": explanation}
            )
            return Assessment(decision, evaluation=evaluation)
        outcome = _EFFECT_OUTCOME[evaluation.effect]
        decision = base.model_copy(
            update={"decision": outcome, "reasons": evaluation.deciding_sids, "explanation": explanation}
        )
        if outcome != "accepted":
            return Assessment(decision, evaluation=evaluation)
        limit = _quota_limit(tenant, evaluation.parameters)
        if active >= limit:
            return Assessment(_quota_exceeded(decision, limit), evaluation=evaluation)
        return Assessment(decision, Slot(tenant.tenant_id, connection.vpc_endpoint_id, limit), evaluation)

    def enforce(self, request: ConnectionRequested) -> Decision | None:
        """A source's request to revoke (tenant sync, reconciler): revoke the connection unless the
        tenant record, read now, still lets its owner use the service. A request made stale by a later
        change (the tenant was re-enabled) revokes nothing; an invalid record never vouches for one."""
        connection = request.connection
        state = self.decisions.state(connection.vpc_endpoint_id)
        if state is not None and state.status in IN_FLIGHT:
            self._resume(state)  # raises while its decider may still be alive: retried later
        current = self.endpoints.connection(connection.vpc_endpoint_id, connection.service_id)
        if current is None or current.vpc_endpoint_state in CLOSED_STATES:
            logger.info("Connection already closed; nothing to revoke", extra=_ids(connection))
            return None
        forbidden = self._forbidden(current)
        if forbidden is None:
            logger.info(
                "Revocation request is stale: the tenant record allows the connection again",
                extra={**_ids(connection), "requested_because": request.reason},
            )
            return None
        reason, why, tenant_id = forbidden
        return self.revoke(
            current, why, request.actor, request.trigger, reasons=(reason,), tenant_id=tenant_id
        )

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
        guard = _record_guard(tenant, connection.service_id, self.clock())
        return None if guard is None else (*guard, tenant.tenant_id)

    def revoke(
        self,
        connection: VpcEndpointConnection,
        reason: str,
        actor: str,
        trigger: Trigger,
        *,
        reasons: tuple[str, ...] = ("Revoked",),
        tenant_id: str | None = None,
    ) -> Decision | None:
        """Reject an accepted (or pending) connection: how access is taken away."""
        state = self.decisions.state(connection.vpc_endpoint_id)
        if state is not None and state.status in ("rejected", "revoked"):
            return None
        tenant_id = (state.decision.tenant_id if state else None) or tenant_id
        outcome: Outcome = (
            "revoked" if connection.vpc_endpoint_state in ("available", "pending") else "rejected"
        )
        decision = _decision(connection, trigger, actor, self.clock()).model_copy(
            update={
                "decision": outcome,
                "tenant_id": tenant_id,
                "reasons": reasons,
                "explanation": (reason,),
            }
        )
        return self._carry_out(Assessment(decision), state)

    def release(self, closed: ConnectionClosed) -> bool:
        """Free the quota slot of a deleted/rejected endpoint, exactly once."""
        state = self.decisions.state(closed.connection.vpc_endpoint_id)
        tenant_id = state.slot_tenant if state else None
        if tenant_id is None:
            owner = self.tenants.owner_of(closed.connection.vpc_endpoint_owner)
            tenant_id = owner
        if tenant_id is None:
            return False
        released = self.decisions.release_slot(tenant_id, closed.connection.vpc_endpoint_id)
        logger.info(
            "Quota slot released" if released else "No quota slot held",
            extra={**_ids(closed.connection), "tenant_id": tenant_id},
        )
        return released

    # -- carrying a decision out -----------------------------------------------------------
    def _carry_out(self, assessment: Assessment, previous: EndpointState | None) -> Decision | None:
        decision, slot = assessment.decision, assessment.slot
        status: Status = {
            "accepted": "accepting",
            "rejected": "rejecting",
            "revoked": "revoking",
            "held": "held",
        }[decision.decision]  # type: ignore[assignment]
        try:
            claimed = self.decisions.claim(decision, status, previous, slot, self.clock())
        except QuotaExceeded:
            limit = slot.limit if slot else 0
            return self._carry_out(Assessment(_quota_exceeded(decision, limit)), previous)
        except WriteConflict:
            logger.info(
                "Another delivery is deciding this endpoint",
                extra={"vpc_endpoint_id": decision.vpc_endpoint_id},
            )
            return None
        if status == "held":
            self._notify(claimed)
            return decision
        return self._execute(claimed, previous, slot)

    def _execute(
        self, claimed: EndpointState, previous: EndpointState | None, slot: Slot | None
    ) -> Decision | None:
        decision = claimed.decision
        action = "Accept" if decision.decision == "accepted" else "Reject"
        try:
            if action == "Accept":
                self.endpoints.accept(decision.service_id, decision.vpc_endpoint_id)
            else:
                self.endpoints.reject(decision.service_id, decision.vpc_endpoint_id)
        except ConnectionActionFailed as exc:
            current = self.endpoints.connection(decision.vpc_endpoint_id, decision.service_id)
            state = current.vpc_endpoint_state if current else "deleted"
            if not _took_effect(decision, state):
                self.decisions.rollback(claimed, previous, slot)
                if state in CLOSED_STATES and action == "Accept":
                    # The consumer deleted it meanwhile: nothing left to decide, nothing to retry.
                    logger.warning("Connection closed before it could be accepted", extra={"state": state})
                    return None
                logger.error(
                    "EC2 refused the decision; rolled back for retry",
                    extra={"error": str(exc), "code": exc.code, "state": state},
                )
                raise
        except Exception:
            self.decisions.rollback(claimed, previous, slot)
            raise
        release = decision.decision == "revoked" or (
            decision.decision == "rejected" and claimed.slot_tenant is not None
        )
        final = self.decisions.finalise(claimed, decision, release_slot=release, at=self.clock())
        self._notify(final)
        return decision

    def _resume(self, state: EndpointState) -> Decision | None:
        if self.clock() - state.claimed_at < self.stale_after:
            raise DecisionInProgress(
                f"{state.vpc_endpoint_id} is being decided ({state.status}); retry later"
            )
        logger.warning(
            "Resuming a decision left unfinished",
            extra={"vpc_endpoint_id": state.vpc_endpoint_id, "status": state.status},
        )
        slot = Slot(state.slot_tenant, state.vpc_endpoint_id, -1) if state.slot_tenant else None
        return self._execute(state, None, slot)

    def _operator_decision(self, request: ConnectionRequested) -> Assessment:
        connection = request.connection
        assessment = self.assess(connection, "operator", request.actor)
        outcome: Outcome = "accepted" if request.requested_decision == "accepted" else "rejected"
        decision = assessment.decision.model_copy(
            update={
                "decision": outcome,
                "actor": request.actor,
                "trigger": "operator",
                "reasons": ("OperatorDecision",),
                "explanation": (
                    request.reason or f"{outcome} by {request.actor}",
                    *assessment.decision.explanation,
                ),
            }
        )
        slot = None
        if outcome == "accepted" and decision.tenant_id:
            # An operator's approval overrides policy, not bookkeeping: the slot is counted.
            slot = Slot(decision.tenant_id, connection.vpc_endpoint_id, -1)
        return Assessment(decision, slot)

    # -- announcing ------------------------------------------------------------------------
    def _notify(self, state: EndpointState) -> None:
        decision = state.decision
        self.notifier.publish(decision)
        self.bus.publish(DECIDED, [decision.model_dump(mode="json")])
        self.decisions.mark_notified(state)

    def _ensure_notified(self, state: EndpointState) -> None:
        """A duplicate delivery re-sends only a notification whose sender died."""
        if state.notified or state.status in ("accepting", "rejecting", "revoking"):
            return
        if self.clock() - state.claimed_at < self.stale_after:
            return
        try:
            taken = self.decisions.take_over_notification(state, self.clock())
        except WriteConflict:
            return
        self._notify(taken)


def _decision(connection: VpcEndpointConnection, trigger: Trigger, actor: str, at: datetime) -> Decision:
    return Decision(
        vpc_endpoint_id=connection.vpc_endpoint_id,
        service_id=connection.service_id,
        vpc_endpoint_owner=connection.vpc_endpoint_owner,
        vpc_endpoint_region=connection.vpc_endpoint_region,
        decision="held",
        actor=actor if actor.startswith("operator:") else ("reconcile" if trigger == "reconcile" else "auto"),
        trigger=trigger,
        decided_at=at,
    )


def _took_effect(decision: Decision, state: str) -> bool:
    """After an `Unsuccessful` answer: had an earlier attempt already done this?"""
    if decision.decision == "accepted":
        return state in ("pending", "available")
    return state == "rejected"


def _record_guard(tenant: Tenant, service_id: str, at: datetime) -> tuple[str, str] | None:
    """What the tenant record alone forbids; no template can widen access beyond it."""
    if tenant.status != "active":
        return "TenantSuspended", f"tenant {tenant.tenant_id} is {tenant.status}"
    if tenant.is_expired(at):
        return "TenantExpired", f"tenant {tenant.tenant_id} expired at {tenant.expires_at}"
    if not tenant.is_entitled(service_id):
        return "ServiceNotEntitled", f"tenant {tenant.tenant_id} is not entitled to {service_id}"
    return None


def _quota_limit(tenant: Tenant, parameters: Mapping[str, Any]) -> int:
    limit = tenant.max_endpoints
    template_limit = parameters.get("MaxEndpoints")
    if isinstance(template_limit, int | float) and not isinstance(template_limit, bool):
        limit = min(limit, int(template_limit))
    return limit


def _quota_exceeded(decision: Decision, limit: int) -> Decision:
    return decision.model_copy(
        update={
            "decision": "rejected",
            "reasons": ("QuotaExceeded",),
            "explanation": (
                *decision.explanation,
                f"tenant {decision.tenant_id} already uses {limit} of {limit} endpoints",
            ),
        }
    )


def _ids(connection: VpcEndpointConnection) -> dict[str, str]:
    return {"vpc_endpoint_id": connection.vpc_endpoint_id, "service_id": connection.service_id}
