"""What policy says about a connection, as plain values: the condition keys a template tests, the
decision built from them, and the quota rule. No I/O here; the decider (decision_service) reads the
inputs and carries the decision out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gatekeeper.adapters.load_balancers import DataPlane
from gatekeeper.dal.decisions import Slot
from gatekeeper.models.connection import VpcEndpointConnection
from gatekeeper.models.decision import Action, Decision, Outcome, Trigger
from gatekeeper.models.errors import DataPlaneUnreadable
from gatekeeper.models.tenant import Tenant
from gatekeeper.models.tenant import quota_limit as tenant_quota_limit

if TYPE_CHECKING:
    from gatekeeper.policy import ContextValue, Evaluation

ACTION_OUTCOME: dict[Action, Outcome] = {"reject": "rejected", "hold": "held"}
EFFECT_OUTCOME: dict[str, Outcome] = {"Allow": "accepted", "Deny": "rejected", "Review": "held"}


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
        "endpoint:Registered": tenant.registered(connection.vpc_endpoint_id),
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


def data_plane_explanation(
    connection: VpcEndpointConnection, data_plane: DataPlane | DataPlaneUnreadable | None
) -> tuple[str, ...]:
    if data_plane is None:
        return ()
    if isinstance(data_plane, DataPlaneUnreadable):
        return (f"the load balancer of {connection.service_id} could not be read: {data_plane}",)
    return (data_plane.describe(),)


def decision_fields(
    connection: VpcEndpointConnection, trigger: Trigger, actor: str, at: datetime
) -> dict[str, Any]:
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


def decided(
    fields: Mapping[str, Any], outcome: Outcome, reasons: tuple[str, ...], explanation: tuple[str, ...]
) -> Decision:
    """The decision, built once and validated."""
    return Decision.model_validate(
        {**fields, "outcome": outcome, "reasons": reasons, "explanation": explanation}
    )


def with_outcome(
    decision: Decision, outcome: Outcome, reasons: tuple[str, ...], explanation: tuple[str, ...]
) -> Decision:
    """Another outcome for a decision already built (an operator's, a refused quota), validated."""
    return decided(decision.model_dump(by_alias=False), outcome, reasons, explanation)


def quota_limit(tenant: Tenant, parameters: Mapping[str, Any]) -> int:
    """A tenant's endpoint limit: one rule, in the model, so the CLI shows the quota the decider uses."""
    return tenant_quota_limit(tenant, parameters)


def quota_line(tenant_id: str | None, limit: int) -> str:
    return f"tenant {tenant_id} already uses {limit} of {limit} endpoints"


def quota_refusal(decision: Decision, slot: Slot | None) -> Decision:
    """An accept whose quota slot could not be taken, as the reject it becomes."""
    limit = slot.limit if slot and slot.limit is not None else 0
    explanation = (*decision.explanation, quota_line(decision.tenant_id, limit))
    return with_outcome(decision, "rejected", ("QuotaExceeded",), explanation)
