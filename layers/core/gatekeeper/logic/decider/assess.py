"""Step 3, assess: what each request asks for, decided on what was read — an evaluation by the live
policy (`assessment_of`), a revocation by the tenant record read now, an operator's call. Reads
only, fails closed; a duplicate or a lost race ends here with nothing new decided.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatekeeper.adapters.load_balancers import DataPlane
from gatekeeper.dal.decisions import REFUSALS, DecisionInputs, EndpointState, Slot
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
    with_outcome,
)
from gatekeeper.logic.decider.announce import publish
from gatekeeper.logic.decider.read import gave_up_waiting
from gatekeeper.logic.decider.work import Work, ids_of, not_visible
from gatekeeper.models.connection import (
    ACCEPTED_STATES,
    CLOSED_STATES,
    PENDING_ACCEPTANCE,
    VpcEndpointConnection,
)
from gatekeeper.models.decision import Outcome, Trigger
from gatekeeper.models.errors import DataPlaneUnreadable, TemplateNotFound, TenantInvalid, WriteConflict
from gatekeeper.models.requests import (
    CARRIED_OUT,
    EvaluationRequest,
    OperatorRequest,
    RevocationRequest,
    operator_verdict,
)
from gatekeeper.models.tenant import Tenant
from gatekeeper.observability import logger

if TYPE_CHECKING:
    from gatekeeper.logic.decision_service import DecisionService


def assess(service: DecisionService, work: Work) -> None:
    match work.request:
        case EvaluationRequest():
            _evaluate(service, work, work.request)
        case RevocationRequest():
            _enforce(service, work, work.request)
        case OperatorRequest():
            _operator(service, work, work.request)
        case _:  # pragma: no cover - exhaustive
            raise TypeError(f"not a decision request: {work.request!r}")


def _evaluate(service: DecisionService, work: Work, request: EvaluationRequest) -> None:
    state, connection = work.inputs.state, work.connection
    if state is not None and not (state.status == "held" and request.trigger == "tenant-change"):
        _already_decided(service, work, state)
        return
    if connection is None:
        if gave_up_waiting(service, request):
            work.finish()
            return
        raise not_visible(work.ref)
    if connection.vpc_endpoint_state != "pendingAcceptance":
        logger.info("Connection is not pending acceptance; nothing to decide", extra=ids_of(work.ref))
        work.finish()
        return
    assessment = assessment_of(service, connection, request.trigger, inputs=work.inputs)
    if (
        state is not None
        and assessment.decision.outcome == "held"
        and state.decision.reasons == assessment.decision.reasons
    ):
        work.finish()  # re-evaluated, same hold for the same reasons: nothing new to say
        return
    _to_claim(service, work, assessment, state)


def _enforce(service: DecisionService, work: Work, request: RevocationRequest) -> None:
    """Revoke a connection unless the tenant record, read now, still lets its owner use the
    service. A request made stale by a later change (the tenant was re-enabled) revokes nothing;
    an invalid record never vouches for one."""
    connection = work.connection
    if connection is None or connection.vpc_endpoint_state in CLOSED_STATES:
        logger.info("Connection already closed; nothing to revoke", extra=ids_of(work.ref))
        work.finish()
        return
    forbidden = _forbidden(service, connection, work.inputs)
    if forbidden is None:
        logger.info(
            "Revocation request is stale: the tenant record allows the connection again",
            extra={**ids_of(work.ref), "requested_because": request.reason},
        )
        work.finish()
        return
    reason, why, tenant_id = forbidden
    actor = "reconcile" if request.trigger == "reconcile" else "auto"
    _revoke(service, work, why, actor, request.trigger, reasons=(reason,), tenant_id=tenant_id)


def _operator(service: DecisionService, work: Work, request: OperatorRequest) -> None:
    """An operator's approval (of a waiting or held request) or rejection (of a waiting one, or
    revocation of an open one). Overrides policy, not bookkeeping: an approval takes a slot."""
    state, connection = work.inputs.state, work.connection
    if connection is None:
        raise not_visible(work.ref)
    why = request.reason or f"{request.decision} by an operator"
    if request.requested_by:
        why = f"{why} (requested by {request.requested_by}, as stated by the caller)"
    recorded = state.status if state else None
    verdict = operator_verdict(request.decision, connection.vpc_endpoint_state, recorded)
    if recorded == "accepted" and connection.vpc_endpoint_state == PENDING_ACCEPTANCE:
        # EC2 never goes back from an accept: this read is stale (its lag). Come back, not drop.
        raise not_visible(work.ref)
    if verdict not in CARRIED_OUT:
        logger.info("Operator request not carried out", extra={**ids_of(work.ref), "verdict": verdict})
        work.finish()
        return
    if request.decision == "rejected":
        _revoke(service, work, why, service.operator_actor, "operator", reasons=("OperatorDecision",))
        return
    policy = assessment_of(service, connection, "operator", service.operator_actor, work.inputs).decision
    decision = with_outcome(policy, "accepted", ("OperatorDecision",), (why, *policy.explanation))
    slot = Slot(decision.tenant_id, work.vpc_endpoint_id, None) if decision.tenant_id else None
    _to_claim(service, work, Assessment(decision, slot), state)


def _revoke(
    service: DecisionService,
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
        _already_decided(service, work, state)
        return
    tenant_id = (state.decision.tenant_id if state else None) or tenant_id or work.inputs.owner
    outcome: Outcome = "revoked" if connection.vpc_endpoint_state in ACCEPTED_STATES else "rejected"
    fields = {**decision_fields(connection, trigger, actor, service.clock()), "tenant_id": tenant_id}
    _to_claim(service, work, Assessment(decided(fields, outcome, reasons, (why,))), state)


def _already_decided(service: DecisionService, work: Work, state: EndpointState) -> None:
    """A duplicate delivery, or a race lost: nothing new to decide. Only a notification whose
    announcer died (unannounced for longer than stale_after) is announced again, by this request."""
    work.finish()
    if state.notified or state.in_flight or service.clock() - state.claimed_at < service.stale_after:
        return
    try:
        taken = service.decisions.take_over_notification(state, service.clock())
    except WriteConflict:
        return
    logger.warning("Announcing a decision whose announcer died", extra=ids_of(state.decision))
    work.claimed, work.step = taken, "announce"


def _to_claim(
    service: DecisionService, work: Work, assessment: Assessment, previous: EndpointState | None
) -> None:
    if previous is not None and not previous.notified and not previous.in_flight:
        # A decision about to be superseded (a revocation of an accept, an operator's call on a
        # hold) that was never announced — its announcer died, or is still at it: announced now,
        # first, so that no decision is replaced unheard (a duplicate at worst). Rare: one call more.
        [failure] = publish(service, [previous.decision])
        if failure is not None:
            raise failure
    work.assessment, work.previous, work.step = assessment, previous, "claim"


def assessment_of(
    service: DecisionService,
    connection: VpcEndpointConnection,
    trigger: Trigger = "operator",
    actor: str = "auto",
    inputs: DecisionInputs | None = None,
) -> Assessment:
    """What the live policy decides for this connection now. Reads only; no side effects.
    `inputs`: the tables as the caller already read them for this connection (else read here)."""
    at = service.clock()
    fields = decision_fields(connection, trigger, actor, at)
    owner, tenant, active = _tenant(service, connection, inputs)
    if isinstance(tenant, TenantInvalid):
        # Held, and said so to the tenant the account is claimed by (its subscribers filter on it).
        fields["tenant_id"] = owner
        return Assessment(decided(fields, "held", ("TenantInvalid",), (str(tenant),)))
    if tenant is None:
        why = f"account {connection.vpc_endpoint_owner} is not a principal of any tenant"
        outcome = ACTION_OUTCOME[service.unknown_principal_action]
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
        stored = service.templates.cached(tenant.template, tenant.template_version)
        fields.update(template=stored.name, template_version=stored.version)
        template = stored.parse()
        context = connection_context(connection, tenant, active, at, service.service_region)
        data_plane = _data_plane(service, connection, template.referenced_keys)
        context.update(data_plane_context(data_plane))
        evaluation = evaluate(template, context, tenant.parameters)
    except (TemplateNotFound, PolicyError) as exc:
        # Fail closed: an unusable template holds the request and operators are told why.
        reason = "PolicyEvaluationError" if isinstance(exc, PolicyEvaluationError) else "TemplateInvalid"
        return Assessment(decided(fields, "held", (reason,), (str(exc),)))
    explanation = (*evaluation.explain(), *data_plane_explanation(connection, data_plane))
    if evaluation.effect is None:
        outcome = ACTION_OUTCOME[service.default_action]
        return Assessment(
            decided(fields, outcome, ("NoStatementMatched",), explanation), evaluation=evaluation
        )
    outcome = EFFECT_OUTCOME[evaluation.effect]
    if outcome == "accepted" and isinstance(data_plane, DataPlaneUnreadable):
        # Fail closed: the template tests the load balancer and it cannot be read. Its own
        # Deny/Review statements for an absent key (Null, …IfExists) decided above.
        return Assessment(decided(fields, "held", ("DataPlaneUnknown",), explanation), evaluation=evaluation)
    if outcome != "accepted":
        return Assessment(
            decided(fields, outcome, evaluation.deciding_sids, explanation), evaluation=evaluation
        )
    # The quota is the claim transaction's to enforce (a condition on the counter); the counter
    # read with the tenant only spares a claim that is sure to fail.
    limit = quota_limit(tenant, evaluation.parameters)
    if active >= limit:
        explanation = (*explanation, quota_line(tenant.tenant_id, limit))
        return Assessment(decided(fields, "rejected", ("QuotaExceeded",), explanation), evaluation=evaluation)
    decision = decided(fields, "accepted", evaluation.deciding_sids, explanation)
    return Assessment(decision, Slot(tenant.tenant_id, connection.vpc_endpoint_id, limit), evaluation)


def _tenant(
    service: DecisionService, connection: VpcEndpointConnection, inputs: DecisionInputs | None
) -> tuple[str | None, Tenant | TenantInvalid | None, int]:
    """(claiming tenant id, its record, its active endpoints): as read with the batch, or read now
    (the CLI's `simulate` and `pending`, with plain reads)."""
    if inputs is not None:
        return inputs.owner, inputs.tenant, inputs.active
    try:
        tenant = service.tenants.find_by_account(connection.vpc_endpoint_owner)
    except TenantInvalid as exc:
        return service.tenants.owner_of(connection.vpc_endpoint_owner), exc, 0
    if tenant is None:
        return None, None, 0
    return tenant.tenant_id, tenant, service.decisions.active_endpoints(tenant.tenant_id)


def _forbidden(
    service: DecisionService, connection: VpcEndpointConnection, inputs: DecisionInputs
) -> tuple[str, str, str | None] | None:
    """Why the tenant record (now) forbids this connection, or None when it allows it."""
    owner, tenant, _ = _tenant(service, connection, inputs)
    if isinstance(tenant, TenantInvalid):
        return "TenantInvalid", f"the tenant record does not validate: {tenant}", owner
    if tenant is None:
        why = f"account {connection.vpc_endpoint_owner} is no longer a principal of any tenant"
        return "UnknownPrincipal", why, None
    guard = tenant.denial(connection.service_id, service.clock())
    return None if guard is None else (*guard, tenant.tenant_id)


def _data_plane(
    service: DecisionService, connection: VpcEndpointConnection, keys: frozenset[str]
) -> DataPlane | DataPlaneUnreadable | None:
    """The service's load balancer health, read only for a template that tests it (None)."""
    from gatekeeper.policy import DATA_PLANE_KEYS

    if not keys & DATA_PLANE_KEYS:
        return None
    if service.load_balancers is None:
        return DataPlaneUnreadable("no load balancer reader was given to this decision service")
    try:
        arns = connection.network_load_balancer_arns
        return service.load_balancers.data_plane(connection.service_id, arns)
    except DataPlaneUnreadable as exc:
        logger.warning("Load balancer health unreadable", extra={**ids_of(connection), "error": str(exc)})
        return exc
