"""What a change to the allow-list or a template would do to open connections, before it is written.

Operators preview a write with it (`--dry-run`) and confirm what it revokes; the preview and the
write use the same plan. Pure: the records before and after, the connections EC2 reports (one
Describe) and which of them are held in, the endpoints affected out.

A tenant write revokes through the decision path (tenant sync asks, the sweep catches the rest, the
decider re-reads the record): an open connection is revoked — or rejected, if it was still waiting
— exactly when the table after the write forbids it, by the one tenant rule (`record_denial`) or
because no record names its account any more. A held request the new record allows is requested
again (re-decided). A template change revokes nothing: it changes how the next request is decided,
so the preview lists the open connections whose decision would differ under the new version.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal

from gatekeeper.dal.tenant_stream import TenantChange, TenantImage
from gatekeeper.logic.decision_service import _ACTION_OUTCOME, _EFFECT_OUTCOME, connection_context
from gatekeeper.models.connection import (
    ACCEPTED_STATES,
    OPEN_STATES,
    PENDING_ACCEPTANCE,
    VpcEndpointConnection,
)
from gatekeeper.models.decision import Action
from gatekeeper.models.tenant import Tenant
from gatekeeper.policy import PolicyError, PolicyTemplate, evaluate

# revoke: an accepted connection is closed; reject: a waiting one is; re-decide: a waiting request
# is decided again (tenant sync re-requests it, or the next decision uses the new template);
# differs: an accepted connection the new template would not accept now — it stays open.
ImpactAction = Literal["revoke", "reject", "re-decide", "differs"]
REVOKING: frozenset[str] = frozenset({"revoke", "reject"})


@dataclass(frozen=True)
class EndpointImpact:
    vpc_endpoint_id: str
    owner: str
    service_id: str
    state: str
    tenant_id: str | None
    action: ImpactAction
    why: str

    @property
    def revokes(self) -> bool:
        return self.action in REVOKING

    def document(self) -> dict[str, Any]:
        return {
            "vpc_endpoint_id": self.vpc_endpoint_id,
            "owner": self.owner,
            "service_id": self.service_id,
            "state": self.state,
            "tenant_id": self.tenant_id,
            "action": self.action,
            "why": self.why,
        }


def touched_accounts(changes: Sequence[TenantChange]) -> frozenset[str]:
    """The consumer accounts whose connections a set of tenant writes can affect."""
    accounts: set[str] = set()
    for change in changes:
        for image in (change.old, change.new):
            if image is not None:
                accounts |= image.accounts()
    return frozenset(accounts)


def tenant_change_impact(
    changes: Sequence[TenantChange],
    connections: Iterable[VpcEndpointConnection],
    held: Collection[str],
    at: datetime,
) -> list[EndpointImpact]:
    """The open connections these writes (applied together, e.g. one import) revoke, reject or
    re-decide. `connections`: what EC2 reports for the managed services; `held`: the endpoint ids
    recorded as held."""
    after: dict[str, TenantImage | None] = {}
    before: dict[str, str] = {}  # account → the tenant that named it before the writes
    for change in changes:
        if change.old is not None:
            for account in change.old.accounts():
                after.setdefault(account, None)
                before[account] = change.tenant_id
    for change in changes:
        if change.new is not None:
            for account in change.new.accounts():
                after[account] = change.new
    impacts: list[EndpointImpact] = []
    for connection in sorted(
        connections, key=lambda c: (c.service_id, c.vpc_endpoint_owner, c.vpc_endpoint_id)
    ):
        account = connection.vpc_endpoint_owner
        if account not in after or connection.vpc_endpoint_state not in OPEN_STATES:
            continue
        image = after[account]
        if image is None:
            why = f"account {account} would no longer be a principal of any tenant (was {before[account]})"
            impacts.append(_closing(connection, before[account], why))
        elif denial := image.denial(connection.service_id, at):
            impacts.append(_closing(connection, image.tenant_id, denial.why))
        elif (
            connection.vpc_endpoint_state == PENDING_ACCEPTANCE
            and connection.vpc_endpoint_id in held
            and image.grants(connection.service_id, at)
        ):
            why = f"held; tenant {image.tenant_id} now allows {connection.service_id}: requested again"
            impacts.append(_impact(connection, image.tenant_id, "re-decide", why))
    return impacts


def template_change_impact(
    old: PolicyTemplate | None,
    new: PolicyTemplate,
    owners: Mapping[str, Tenant],
    connections: Iterable[VpcEndpointConnection],
    *,
    at: datetime,
    service_region: str,
    default_action: Action,
) -> list[EndpointImpact]:
    """The open connections of tenants following this template (`owners`: account → tenant) whose
    decision differs under `new` from `old` (None: a new template), by the decider's engine.
    Quota and load-balancer health are left out: they do not change with the template."""
    impacts: list[EndpointImpact] = []
    for connection in connections:
        tenant = owners.get(connection.vpc_endpoint_owner)
        if tenant is None or connection.vpc_endpoint_state not in OPEN_STATES:
            continue
        decide = partial(policy_outcome, at=at, service_region=service_region, default_action=default_action)
        was = decide(old, tenant, connection) if old else None
        now = decide(new, tenant, connection)
        if was == now:
            continue
        change = f"{_outcome(was) if was else 'no template'} → {_outcome(now)} under {new.name}"
        if connection.vpc_endpoint_state == PENDING_ACCEPTANCE:
            impacts.append(
                _impact(connection, tenant.tenant_id, "re-decide", f"{change}, at its next decision")
            )
        elif now[0] != "accepted":
            why = f"{change}; accepted connections stay open (`gatekeeper reject` revokes one)"
            impacts.append(_impact(connection, tenant.tenant_id, "differs", why))
    return impacts


def policy_outcome(
    template: PolicyTemplate,
    tenant: Tenant,
    connection: VpcEndpointConnection,
    *,
    at: datetime,
    service_region: str,
    default_action: Action,
) -> tuple[str, tuple[str, ...]]:
    """The outcome and the deciding statements the decider's engine gives this connection under
    this template (the tenant record guards first, as in the decider)."""
    denial = tenant.denial(connection.service_id, at)
    if denial is not None:
        return "rejected", (denial.reason,)
    context = connection_context(connection, tenant, 0, at, service_region)
    try:
        evaluation = evaluate(template, context, tenant.parameters)
    except PolicyError:
        return "held", ("TemplateInvalid",)
    if evaluation.effect is None:
        return _ACTION_OUTCOME[default_action], ("NoStatementMatched",)
    return _EFFECT_OUTCOME[evaluation.effect], tuple(evaluation.deciding_sids)


def _outcome(outcome: tuple[str, tuple[str, ...]]) -> str:
    return f"{outcome[0]} ({', '.join(outcome[1])})" if outcome[1] else outcome[0]


def _closing(connection: VpcEndpointConnection, tenant_id: str | None, why: str) -> EndpointImpact:
    action: ImpactAction = "revoke" if connection.vpc_endpoint_state in ACCEPTED_STATES else "reject"
    return _impact(connection, tenant_id, action, why)


def _impact(
    connection: VpcEndpointConnection, tenant_id: str | None, action: ImpactAction, why: str
) -> EndpointImpact:
    return EndpointImpact(
        connection.vpc_endpoint_id,
        connection.vpc_endpoint_owner,
        connection.service_id,
        connection.vpc_endpoint_state,
        tenant_id,
        action,
        why,
    )
