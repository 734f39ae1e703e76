"""Tenant sync: a tenant record changed (DynamoDB stream) → EC2 and the decision path follow.

For every managed service, comparing the record before and after the change:

- allowed principals: the new record's principals are allowed on the services it is entitled to,
  principals it no longer names (or no longer for that service) are removed
  (`ModifyVpcEndpointServicePermissions`; off with `ManageAllowedPrincipals=false`). Removing a
  principal closes nothing by itself — revocation does that;
- revocation: a tenant suspended, removed, expired or no longer entitled, and an account taken off a
  tenant, has its open connections (`pendingAcceptance`, `pending`, `available`) to the affected
  services put to the decision path as revocation requests (trigger `tenant-change`); the decider
  re-reads the record and rejects only what it still forbids, so a stale or reordered stream
  record cannot take away access the tenant has again;
- re-request: when the new record lets the tenant use a service, its *held* requests are requested
  again (trigger `tenant-change`), which is how clearing a review flag, fixing a record or
  re-enabling a tenant gets a waiting request accepted. Undecided ones are already on their way
  (notification) or found by the next sweep.

A record that does not validate (typically written by hand in the console) never widens access:
nothing is granted or re-requested from it; operators are alerted (alarm topic + error log). It
still narrows access where it says so unambiguously — a status other than `active`, an expiry in
the past, a service or principal list that no longer names something — because that is what its
author asked for; anything it does not say clearly is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gatekeeper.adapters.alerts import OperatorAlerts
from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.dal.codec import decode
from gatekeeper.dal.decisions import DecisionStore
from gatekeeper.dal.tenants import TENANT_SK, tenant_from_item
from gatekeeper.errors import InvalidPrincipal, TenantInvalid
from gatekeeper.models import SERVICE_ID, Tenant, VpcEndpointConnection, account_of, now_utc, principal_arn
from gatekeeper.observability import logger
from gatekeeper.sources import Announcer

OPEN_STATES = ["pendingAcceptance", "pending", "available"]
OWNERS_PER_CALL = 100  # accounts in one vpc-endpoint-owner filter


# ---------------------------------------------------------------------------------------------
# What a stream image says
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TenantImage:
    """One image of a tenant record, read as far as it can be trusted.

    `tenant` is set when the record validates. When it does not, only the fields that read
    unambiguously are kept — enough to narrow access, never to widen it.
    """

    tenant_id: str
    tenant: Tenant | None = None
    problem: str | None = None
    principals: frozenset[str] | None = None  # None: the image does not say (unreadable)
    services: frozenset[str] | None = None
    status: object = "active"  # as written; only a string that is not "active" takes access away
    expires_at: datetime | None = None

    @classmethod
    def read(cls, tenant_id: str, raw: Mapping[str, Any]) -> TenantImage:
        """A stream image (DynamoDB attribute values) → the image."""
        try:
            tenant = tenant_from_item(raw)
        except TenantInvalid as exc:
            item = decode(raw)
            return cls(
                tenant_id=tenant_id,
                problem=str(exc),
                principals=_readable_principals(item.get("principals")),
                services=_readable_services(item.get("services")),
                status=item.get("status", "active"),
                expires_at=_readable_time(item.get("expires_at")),
            )
        return cls(
            tenant_id=tenant_id,
            tenant=tenant,
            principals=frozenset(tenant.principals),
            services=frozenset(tenant.services),
            status=tenant.status,
            expires_at=tenant.expires_at,
        )

    @property
    def valid(self) -> bool:
        return self.tenant is not None

    def accounts(self) -> frozenset[str]:
        return frozenset(account_of(p) for p in self.principals or ())

    def grants(self, service_id: str, at: datetime) -> bool:
        """Whether the record lets the tenant use the service now (only a valid record can)."""
        return self.tenant is not None and self.tenant.is_eligible(service_id, at)

    def forbids(self, service_id: str, at: datetime) -> str | None:
        """Why the record clearly takes the service away from the tenant, or None."""
        if isinstance(self.status, str) and self.status.strip().lower() != "active":
            return f"tenant {self.tenant_id} is {self.status}"
        if self.expires_at is not None and self.expires_at <= at:
            return f"tenant {self.tenant_id} expired at {self.expires_at.isoformat()}"
        if self.services is not None and "*" not in self.services and service_id not in self.services:
            return f"tenant {self.tenant_id} is not entitled to {service_id}"
        return None

    def principal_arns(self, service_id: str) -> frozenset[str] | None:
        """The allowed-principal ARNs this image wants on the service; None when it does not say."""
        if self.principals is None:
            return None
        if self.services is not None and "*" not in self.services and service_id not in self.services:
            return frozenset()
        return frozenset(principal_arn(p) for p in self.principals)


@dataclass(frozen=True)
class TenantChange:
    """A tenant record before and after one write (None: it did not exist)."""

    tenant_id: str
    old: TenantImage | None
    new: TenantImage | None


def change_from_stream(record: Mapping[str, Any]) -> TenantChange | None:
    """A DynamoDB stream record of the tenants table → the change; None for other items (claims)."""
    stream = record.get("dynamodb") or {}
    keys = decode(stream.get("Keys") or {})
    pk = str(keys.get("pk", ""))
    if keys.get("sk") != TENANT_SK or not pk.startswith("TENANT#"):
        return None
    tenant_id = pk.removeprefix("TENANT#")
    old, new = stream.get("OldImage"), stream.get("NewImage")
    return TenantChange(
        tenant_id,
        TenantImage.read(tenant_id, old) if old else None,
        TenantImage.read(tenant_id, new) if new else None,
    )


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
    elif why := new.forbids(service_id, at):
        revoke = dict.fromkeys(old_accounts | new.accounts(), why)
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
@dataclass
class SyncResult:
    tenant_id: str
    principals_added: int = 0
    principals_removed: int = 0
    revocations_requested: int = 0
    rerequested: int = 0
    invalid: bool = False


@dataclass
class TenantSync:
    endpoints: EndpointService
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
        for service in plan.services:
            if self.manage_allowed_principals:
                self._permissions(service, result)
            self._connections(service, result)
        logger.info("Tenant change synced", extra={**result.__dict__})
        return result

    def _permissions(self, plan: ServicePlan, result: SyncResult) -> None:
        if not (plan.grant or plan.withdraw):
            return
        current = self.endpoints.allowed_principals(plan.service_id)
        add, remove = plan.grant - current, plan.withdraw & current
        self.endpoints.change_allowed_principals(plan.service_id, add=add, remove=remove)
        result.principals_added += len(add)
        result.principals_removed += len(remove)

    def _connections(self, plan: ServicePlan, result: SyncResult) -> None:
        accounts = sorted(set(plan.revoke) | plan.rerequest)
        if not accounts:
            return
        connections: list[VpcEndpointConnection] = []
        for start in range(0, len(accounts), OWNERS_PER_CALL):
            owners = accounts[start : start + OWNERS_PER_CALL]
            connections += self.endpoints.connections(plan.service_id, OPEN_STATES, owners)
        revoke = [
            (c, plan.revoke[c.vpc_endpoint_owner]) for c in connections if c.vpc_endpoint_owner in plan.revoke
        ]
        waiting = [
            c
            for c in connections
            if c.vpc_endpoint_owner in plan.rerequest and c.vpc_endpoint_state == "pendingAcceptance"
        ]
        result.revocations_requested += self.announcer.revocations(revoke, "tenant-change")
        if waiting:
            states = self.decisions.states([c.vpc_endpoint_id for c in waiting])
            held = [c for c in waiting if (s := states.get(c.vpc_endpoint_id)) and s.status == "held"]
            result.rerequested += self.announcer.requested(held, "tenant-change")


# ---------------------------------------------------------------------------------------------
# Lenient reading of an invalid record
# ---------------------------------------------------------------------------------------------
def _readable_principals(value: object) -> frozenset[str] | None:
    """All of the principals, or None when any of them does not read as one (then it says nothing)."""
    if not isinstance(value, list | tuple) or not all(isinstance(p, str) for p in value):
        return None
    try:
        for principal in value:
            account_of(principal)
    except InvalidPrincipal:
        return None
    return frozenset(value)


def _readable_services(value: object) -> frozenset[str] | None:
    if not isinstance(value, list | tuple):
        return None
    if not all(isinstance(v, str) and (v == "*" or SERVICE_ID.match(v)) for v in value):
        return None
    return frozenset(value)


def _readable_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
