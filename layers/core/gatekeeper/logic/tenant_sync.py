"""Tenant sync: a tenant record changed (DynamoDB stream) → allowed principals follow it, connections
it no longer allows are put to the decision path for revocation, and held requests it now allows are
requested again. A record that does not validate never widens access (operators are alerted) and
narrows it only where it says so unambiguously. See docs/reconciler.md, "Tenant sync".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gatekeeper.adapters.alerts import OperatorAlerts
from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.dal.decisions import DecisionStore
from gatekeeper.dal.tenant_stream import TenantChange, TenantImage
from gatekeeper.logic.announcer import Announcer
from gatekeeper.models.connection import OPEN_STATES, PENDING_ACCEPTANCE, VpcEndpointConnection
from gatekeeper.models.decision import Decision
from gatekeeper.models.identifiers import now_utc
from gatekeeper.observability import logger

OWNERS_PER_CALL = 100  # accounts in one vpc-endpoint-owner filter


# ---------------------------------------------------------------------------------------------
# The plan (pure)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServicePlan:
    service_id: str
    grant: frozenset[str] = frozenset()  # principal ARNs that must be allowed
    withdraw: frozenset[str] = frozenset()  # principal ARNs to remove
    revoke: Mapping[str, str] = field(default_factory=dict)  # account → why its connections go
    rerequest: frozenset[str] = frozenset()  # accounts whose held requests are requested again

    @property
    def empty(self) -> bool:
        return not (self.grant or self.withdraw or self.revoke or self.rerequest)


@dataclass(frozen=True)
class SyncPlan:
    tenant_id: str
    services: tuple[ServicePlan, ...]
    problem: str | None = None  # the new record does not validate: operators must hear of it


def plan_change(change: TenantChange, managed_services: Sequence[str], at: datetime) -> SyncPlan:
    old, new = change.old, change.new
    services = tuple(
        plan
        for plan in (_plan_service(old, new, service_id, at) for service_id in managed_services)
        if not plan.empty
    )
    return SyncPlan(change.tenant_id, services, new.problem if new is not None else None)


def _plan_service(
    old: TenantImage | None, new: TenantImage | None, service_id: str, at: datetime
) -> ServicePlan:
    old_arns = (old.principal_arns(service_id) if old else None) or frozenset()
    new_arns = new.principal_arns(service_id) if new else frozenset()
    grant = new_arns if new is not None and new.valid and new_arns else frozenset()
    withdraw = old_arns - new_arns if new_arns is not None else frozenset()

    old_accounts = old.accounts() if old else frozenset()
    revoke: dict[str, str] = {}
    if new is None:
        revoke = dict.fromkeys(old_accounts, f"tenant {old.tenant_id if old else '?'} was removed")
    elif denial := new.denial(service_id, at):
        revoke = dict.fromkeys(old_accounts | new.accounts(), denial.why)
    elif new.principals is not None:
        revoke = {
            account: f"account {account} was removed from tenant {new.tenant_id}"
            for account in old_accounts - new.accounts()
        }
    rerequest = new.accounts() if new is not None and new.grants(service_id, at) else frozenset()
    return ServicePlan(service_id, grant, withdraw, revoke, rerequest)


# ---------------------------------------------------------------------------------------------
# Carrying a plan out
# ---------------------------------------------------------------------------------------------
# A connection created moments before the change may not be listed by Describe yet (EC2's read lag):
# a hold that recent is found among the tenant's decisions instead, and requested again by its ids.
RECENT_HOLDS = timedelta(minutes=15)


@dataclass
class SyncResult:
    tenant_id: str
    principals_added: int = 0
    principals_removed: int = 0
    revocations_requested: int = 0
    rerequested: int = 0
    invalid: bool = False
    held_requested: set[str] = field(default_factory=set)  # endpoints requested again, once each


@dataclass
class TenantSync:
    endpoint_service: EndpointService
    decisions: DecisionStore
    announcer: Announcer
    alerts: OperatorAlerts
    managed_services: Sequence[str]
    manage_allowed_principals: bool = True
    clock: Callable[[], datetime] = now_utc

    def apply(self, change: TenantChange) -> SyncResult:
        """Carry one change out. Every step is safe to repeat, so a retried record is harmless."""
        plan = plan_change(change, self.managed_services, self.clock())
        result = SyncResult(change.tenant_id, invalid=plan.problem is not None)
        if plan.problem is not None:
            self.alerts.invalid_tenant_record(
                change.tenant_id,
                plan.problem,
                "nothing was granted or re-requested from this record; its new requests are held "
                "until it is fixed; only what it clearly takes away was revoked",
            )
        recent: list[Decision] | None = None  # the tenant's recent decisions: one Query per change
        for service in plan.services:
            if self.manage_allowed_principals:
                self._permissions(service, result)
            self._connections(service, result)
            if service.rerequest:
                if recent is None:
                    since = self.clock() - RECENT_HOLDS
                    recent = self.decisions.decisions_for_tenant(result.tenant_id, since=since)
                self._recent_holds(service, result, recent)
        logger.info(
            "Tenant change synced", extra={k: v for k, v in vars(result).items() if k != "held_requested"}
        )
        return result

    def _permissions(self, plan: ServicePlan, result: SyncResult) -> None:
        if not (plan.grant or plan.withdraw):
            return
        current = self.endpoint_service.allowed_principals(plan.service_id)
        add, remove = plan.grant - current, plan.withdraw & current
        self.endpoint_service.change_allowed_principals(plan.service_id, add=add, remove=remove)
        result.principals_added += len(add)
        result.principals_removed += len(remove)

    def _connections(self, plan: ServicePlan, result: SyncResult) -> None:
        accounts = sorted(set(plan.revoke) | plan.rerequest)
        if not accounts:
            return
        connections: list[VpcEndpointConnection] = []
        for start in range(0, len(accounts), OWNERS_PER_CALL):
            owners = accounts[start : start + OWNERS_PER_CALL]
            connections += self.endpoint_service.connections(plan.service_id, sorted(OPEN_STATES), owners)
        revoke = [
            (c, plan.revoke[c.vpc_endpoint_owner]) for c in connections if c.vpc_endpoint_owner in plan.revoke
        ]
        waiting = [
            c
            for c in connections
            if c.vpc_endpoint_owner in plan.rerequest and c.vpc_endpoint_state == PENDING_ACCEPTANCE
        ]
        result.revocations_requested += self.announcer.revocations(revoke, "tenant-change")
        if waiting:
            states = self.decisions.states([c.vpc_endpoint_id for c in waiting])
            held = [c for c in waiting if (s := states.get(c.vpc_endpoint_id)) and s.status == "held"]
            result.rerequested += self.announcer.requested(held, "tenant-change")
            result.held_requested.update(c.vpc_endpoint_id for c in held)

    def _recent_holds(self, plan: ServicePlan, result: SyncResult, decided: Sequence[Decision]) -> None:
        """Requests of this service held in the last RECENT_HOLDS that Describe did not list (the
        decider reads each again from EC2, waiting out a short lag itself)."""
        recent = {
            d.vpc_endpoint_id
            for d in decided
            if d.outcome == "held"
            and d.service_id == plan.service_id
            and d.vpc_endpoint_owner in plan.rerequest
        } - result.held_requested
        if not recent:
            return
        states = self.decisions.states(sorted(recent))
        held = [e for e in sorted(recent) if (s := states.get(e)) and s.status == "held"]
        if held:
            endpoints = [(e, plan.service_id) for e in held]
            result.rerequested += self.announcer.requested_again(endpoints, "tenant-change")
            result.held_requested.update(held)
