"""Tenant allow-list records: who may connect, to what, under which policy template."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from gatekeeper.models.identifiers import (
    SERVICE_ID,
    TENANT_ID,
    account_of,
)


class Denial(NamedTuple):
    """Why a tenant record does not let the tenant use a service now: the decision's reason code
    and the explanation a person reads."""

    reason: str  # TenantSuspended | TenantExpired | ServiceNotEntitled
    why: str


def entitles(services: Collection[str], service_id: str) -> bool:
    """Whether a record's service list names the service (or every service, `*`)."""
    return "*" in services or service_id in services


class TenantRecord(Protocol):
    """What the tenant rule reads of a record: a `Tenant`, or an image of one that does not validate."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def status(self) -> object: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def services(self) -> Collection[str] | None: ...


def record_denial(record: TenantRecord, service_id: str, at: datetime) -> Denial | None:
    """The one tenant-permission rule: why this record does not let the tenant use `service_id`
    at `at`, or None when it does. No policy template can widen access beyond it.

    It also reads records that do not validate, field by field: a field the record does not state
    clearly (a status that is not a word, an unreadable expiry or service list: None) takes nothing
    away, so such a record narrows access only where it says so.
    """
    tenant = f"tenant {record.tenant_id}"
    if isinstance(record.status, str) and record.status.strip().lower() != "active":
        return Denial("TenantSuspended", f"{tenant} is {record.status}")
    if record.expires_at is not None and record.expires_at <= at:
        return Denial("TenantExpired", f"{tenant} expired at {record.expires_at}")
    if record.services is not None and not entitles(record.services, service_id):
        return Denial("ServiceNotEntitled", f"{tenant} is not entitled to {service_id}")
    return None


class Tenant(BaseModel):
    """A tenant allow-list record: who may connect, to what, under which policy template."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID.pattern)
    display_name: str = Field(min_length=1, max_length=256)
    status: Literal["active", "suspended"] = "active"
    principals: tuple[str, ...] = Field(min_length=1)
    services: tuple[str, ...] = Field(min_length=1)
    template: str = Field(min_length=1, max_length=64)
    # Numbers are numbers: "3" is refused, never read as 3 (a record or file says what it means).
    template_version: StrictInt | None = Field(default=None, ge=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    # None: the template's MaxEndpoints parameter (its default, or the tenant's override) decides.
    # Slots are one item each (dal.decisions): a tenant may hold 100,000 endpoints at one cost per claim.
    max_endpoints: StrictInt | None = Field(default=None, ge=0, le=100_000)
    expires_at: datetime | None = None
    contact: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    version: StrictInt = Field(default=0, ge=0)
    updated_by: str | None = None
    updated_at: datetime | None = None

    @field_validator("principals")
    @classmethod
    def _principals(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for principal in value:
            account_of(principal)
        if len(set(value)) != len(value):
            raise ValueError("principals are listed more than once")
        return value

    @field_validator("services")
    @classmethod
    def _services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for service in value:
            if service != "*" and not SERVICE_ID.match(service):
                raise ValueError(f"service {service!r} is not an endpoint service id (vpce-svc-…) or '*'")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def accounts(self) -> frozenset[str]:
        return frozenset(account_of(p) for p in self.principals)

    def is_entitled(self, service_id: str) -> bool:
        return entitles(self.services, service_id)

    def denial(self, service_id: str, at: datetime) -> Denial | None:
        """Why the record alone (before any template) does not let this tenant use the service
        now, or None when it does (`record_denial`)."""
        return record_denial(self, service_id, at)


def quota_limit(tenant: Tenant, parameters: Mapping[str, Any]) -> int:
    """The endpoints a tenant may have connected at once: the smaller of its record's max_endpoints
    and its template's MaxEndpoints (with the tenant's overrides); either may be absent. Neither
    set: 0 — fail closed, nothing is accepted on a quota nobody stated."""
    limits = [tenant.max_endpoints] if tenant.max_endpoints is not None else []
    template_limit = parameters.get("MaxEndpoints")
    if isinstance(template_limit, int | float) and not isinstance(template_limit, bool):
        limits.append(int(template_limit))
    return min(limits, default=0)
