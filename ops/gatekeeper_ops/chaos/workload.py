"""The chaos run's workload: tenants, consumer accounts and a timeline of what consumers do.

Everything is drawn from one seeded `random.Random`, so a seed gives the same timeline.

Kinds of request (and what policy must make of them):
- `tenant`: an active, entitled tenant in its home region — accepted while its quota lasts, then
  rejected (`QuotaExceeded`); the standard template caps a tenant at 3, enterprise ones at 8;
- `suspend`: the tenant that is suspended half-way through the run — accepted before, revoked after;
- `held`: a standard tenant's account in another region — held for review (`OtherRegion`);
- `unknown`: an account no tenant claims — rejected (`UnknownPrincipal`);
- `suspended`: a tenant suspended from the start — rejected (`TenantSuspended`);
- `not_entitled`: a tenant entitled to another service only — rejected (`ServiceNotEntitled`).
Some consumers delete their endpoint later; some delete it while it is being decided (just before
the decider's Accept/Reject reaches EC2); some notifications are delivered twice more.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from gatekeeper.models.tenant import Tenant

Kind = Literal["tenant", "suspend", "held", "unknown", "suspended", "not_entitled"]
KIND_WEIGHTS: dict[Kind, float] = {
    "tenant": 0.50,
    "suspend": 0.12,
    "held": 0.08,
    "unknown": 0.10,
    "suspended": 0.10,
    "not_entitled": 0.10,
}
OTHER_SERVICE = "vpce-svc-0fffffffffffffff0"
HOME, OTHER_REGION = "us-east-1", "us-west-2"
SUSPENDED_MID_RUN = "suspendco"


@dataclass(frozen=True)
class TenantPlan:
    tenant: Tenant
    quota: int  # what policy allows at once: min(max_endpoints, the template's MaxEndpoints)
    kind: Kind


@dataclass
class Request:
    """One CreateVpcEndpoint a consumer makes, and what happens to it afterwards."""

    number: int
    kind: Kind
    account: str
    region: str
    at: float  # virtual seconds after the start of the run
    tenant_id: str | None
    delete_at: float | None = None  # the consumer deletes its endpoint then
    delete_during_decision: bool = False  # ... or just before the decider's Accept/Reject
    duplicates_at: tuple[float, ...] = ()  # the Connect notification is delivered again then
    service_id: str = ""  # the endpoint service it asks for (requests take the services in turn)
    endpoint: str | None = None
    deleted: bool = False


@dataclass
class Workload:
    tenants: list[TenantPlan]
    accounts: dict[Kind, list[tuple[str, str | None]]]  # kind → (account, tenant id)
    requests: list[Request] = field(default_factory=list)
    suspend_at: float = 0.0

    def tenant_of(self, account: str) -> str | None:
        return next((t.tenant.tenant_id for t in self.tenants if account in t.tenant.principals), None)


def build(
    service_id: str | tuple[str, ...],
    requests: int,
    window: float,
    rng: random.Random,
    *,
    delete_share: float = 0.10,
    delete_during_share: float = 0.04,
    duplicate_share: float = 0.10,
    weights: dict[Kind, float] = KIND_WEIGHTS,
) -> Workload:
    """Tenants (entitled to `service_id`, or to each of several) and `requests` requests spread over
    `window` virtual seconds, of the kinds `weights` draws."""
    services = (service_id,) if isinstance(service_id, str) else service_id
    tenants: list[TenantPlan] = []
    accounts: dict[Kind, list[tuple[str, str | None]]] = {kind: [] for kind in KIND_WEIGHTS}
    number = iter(range(100_000_000_001, 100_000_001_000))

    def add(tenant_id: str, kind: Kind, **changes: object) -> None:
        principals = (str(next(number)), str(next(number)))
        template = str(changes.pop("template", "standard"))
        max_endpoints = int(changes.pop("max_endpoints", 3))  # type: ignore[call-overload]
        record = Tenant.model_validate(
            {
                "tenant_id": tenant_id,
                "display_name": tenant_id.title(),
                "principals": principals,
                "services": services,
                "template": template,
                "max_endpoints": max_endpoints,
                **changes,
            }
        )
        quota = min(max_endpoints, 3 if template == "standard" else 50)
        tenants.append(TenantPlan(record, quota, kind))
        accounts[kind] += [(p, tenant_id) for p in principals]

    for index in range(6):
        add(f"std{index:02d}", "tenant")
    for index in range(2):
        add(f"ent{index:02d}", "tenant", template="enterprise", max_endpoints=8)
    add(SUSPENDED_MID_RUN, "suspend", template="enterprise", max_endpoints=12)
    add("dormant", "suspended", status="suspended")
    add("elsewhere", "not_entitled", services=(OTHER_SERVICE,))
    # Held: standard tenants' own accounts, from another region (the standard template's Review).
    accounts["held"] = [
        (account, tid) for account, tid in accounts["tenant"] if tid and tid.startswith("std")
    ]
    accounts["unknown"] = [(str(next(number)), None) for _ in range(4)]
    workload = Workload(tenants, accounts, suspend_at=window / 2)
    kinds = list(weights)
    for index in range(requests):
        kind = rng.choices(kinds, weights=[weights[k] for k in kinds])[0]
        account, tenant_id = rng.choice(accounts[kind])
        at = round(window * (index + rng.random()) / requests, 3)
        request = Request(index, kind, account, OTHER_REGION if kind == "held" else HOME, at, tenant_id)
        request.service_id = services[index % len(services)]
        draw = rng.random()
        if draw < delete_during_share:
            request.delete_during_decision = True
        elif draw < delete_during_share + delete_share:
            request.delete_at = round(at + rng.uniform(5, window / 2), 3)
        if rng.random() < duplicate_share:
            request.duplicates_at = tuple(
                sorted(round(at + rng.uniform(1, 600), 3) for _ in range(rng.randint(1, 2)))
            )
        workload.requests.append(request)
    return workload
