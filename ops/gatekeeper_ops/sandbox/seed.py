"""The demo's seed file (demo-seed.yaml): services, templates, tenants, the scripted scenario with
its expected outcomes, the decision subscribers and the load profile — validated once, here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gatekeeper.models.decision import Outcome
from gatekeeper.models.identifiers import ACCOUNT_ID, account_of
from gatekeeper.models.tenant import Tenant

DEFAULT_SEED = Path(__file__).with_name("demo-seed.yaml")


class _Seed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServiceSeed(_Seed):
    key: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,20}$")  # the NLB is named <name>-nlb (32 chars max)


class TenantSeed(_Seed):
    """A tenant record with services named by key and an expiry relative to now."""

    tenant_id: str
    display_name: str
    status: Literal["active", "suspended"] = "active"
    principals: tuple[str, ...]
    services: tuple[str, ...]
    template: str
    template_version: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    max_endpoints: int
    expires_in_days: int | None = None
    contact: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    def to_tenant(self, service_ids: Mapping[str, str], now: datetime) -> Tenant:
        fields = self.model_dump(exclude={"expires_in_days", "services"})
        fields["services"] = tuple("*" if key == "*" else service_ids[key] for key in self.services)
        if self.expires_in_days is not None:
            fields["expires_at"] = now + timedelta(days=self.expires_in_days)
        return Tenant.model_validate(fields)


class Expectation(_Seed):
    # `refused`: EC2 refuses the consumer's CreateVpcEndpoint (its account is not an allowed
    # principal), so no request ever reaches the gatekeeper; `reason` is then EC2's error code.
    decision: Outcome | Literal["refused"]
    reason: str | None = None  # the deciding statement id / reason code; None: any

    def describe(self) -> str:
        return f"{self.decision} ({self.reason})" if self.reason else self.decision


class StepSeed(_Seed):
    """One scripted step: a consumer's endpoint request, a tenant suspension, or a tenant's
    registration of an earlier step's endpoint (through the control plane)."""

    id: str
    title: str
    expect: Expectation
    # an endpoint request
    account: str | None = Field(default=None, pattern=ACCOUNT_ID.pattern)
    service: str | None = None
    region: str | None = None
    # a tenant change, judged by what happens to an earlier step's endpoint
    suspend: str | None = None
    # `register` in the seed; not the attribute name, which would shadow ABCMeta.register
    registers: str | None = Field(default=None, alias="register")
    endpoint_of: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        request = self.account is not None and self.service is not None
        change = (self.suspend is not None) + (self.registers is not None)
        if request == bool(change) or change > 1 or (change and self.endpoint_of is None):
            raise ValueError(
                f"step {self.id}: give account+service, suspend+endpoint_of or register+endpoint_of"
            )
        return self

    @property
    def tenant_change(self) -> str | None:
        """The tenant a suspension or registration step changes."""
        return self.suspend or self.registers

    @property
    def is_request(self) -> bool:
        return self.account is not None


class SubscriberSeed(_Seed):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    filter_policy: dict[str, list[str]]

    def matches(self, attributes: Mapping[str, str]) -> bool:
        """SNS filter-policy matching for exact string values (all this file uses)."""
        return all(attributes.get(key) in values for key, values in self.filter_policy.items())


class LoadSeed(_Seed):
    template: str
    requests_per_account: int = Field(ge=1, le=40)
    mix: dict[Literal["entitled", "suspended", "unknown"], float]

    @model_validator(mode="after")
    def _mix(self) -> Self:
        if abs(sum(self.mix.values()) - 1.0) > 1e-6:
            raise ValueError(f"load mix must add up to 1, got {sum(self.mix.values())}")
        return self


class DemoSeed(_Seed):
    region: str
    services: tuple[ServiceSeed, ...] = Field(min_length=1, max_length=5)
    supported_regions: tuple[str, ...] = ()
    templates: tuple[str, ...]
    tenants: tuple[TenantSeed, ...]
    # Tenants the SaaS control plane onboards with a `Tenant Change Requested` event, after seeding.
    control_plane: tuple[TenantSeed, ...] = ()
    scenario: tuple[StepSeed, ...]
    subscribers: tuple[SubscriberSeed, ...] = ()
    load: LoadSeed

    @model_validator(mode="after")
    def _references(self) -> Self:
        keys = {s.key for s in self.services}
        tenant_ids = {t.tenant_id for t in self.all_tenants}
        seen: set[str] = set()
        for tenant in self.all_tenants:
            unknown = set(tenant.services) - keys - {"*"}
            if unknown:
                raise ValueError(f"tenant {tenant.tenant_id}: unknown services {sorted(unknown)}")
        for step in self.scenario:
            if step.id in seen:
                raise ValueError(f"step id {step.id} is used twice")
            if step.service is not None and step.service not in keys:
                raise ValueError(f"step {step.id}: unknown service {step.service}")
            if step.tenant_change is not None and step.tenant_change not in tenant_ids:
                raise ValueError(f"step {step.id}: unknown tenant {step.tenant_change}")
            if step.endpoint_of is not None and step.endpoint_of not in seen:
                raise ValueError(f"step {step.id}: endpoint_of must name an earlier step")
            seen.add(step.id)
        return self

    @property
    def all_tenants(self) -> tuple[TenantSeed, ...]:
        return (*self.tenants, *self.control_plane)

    def tenant_of(self, account: str) -> str | None:
        """The tenant that claims an account, as the seed declares it."""
        for tenant in self.all_tenants:
            if any(account_of(principal) == account for principal in tenant.principals):
                return tenant.tenant_id
        return None


def load_seed(path: Path = DEFAULT_SEED) -> DemoSeed:
    with path.open() as handle:
        return DemoSeed.model_validate(yaml.safe_load(handle))
