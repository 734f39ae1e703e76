"""Tenant allow-list records: who may connect, to what, under which policy template."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatekeeper.models.identifiers import (
    SERVICE_ID,
    TENANT_ID,
    account_of,
)


class Tenant(BaseModel):
    """A tenant allow-list record: who may connect, to what, under which policy template."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID.pattern)
    display_name: str = Field(min_length=1, max_length=256)
    status: Literal["active", "suspended"] = "active"
    principals: tuple[str, ...] = Field(min_length=1)
    services: tuple[str, ...] = Field(min_length=1)
    template: str = Field(min_length=1, max_length=64)
    template_version: int | None = Field(default=None, ge=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    max_endpoints: int = Field(ge=0, le=10_000)
    expires_at: datetime | None = None
    contact: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    version: int = Field(default=0, ge=0)
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

    def is_expired(self, at: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= at

    def is_entitled(self, service_id: str) -> bool:
        return "*" in self.services or service_id in self.services

    def is_eligible(self, service_id: str, at: datetime) -> bool:
        """Whether the record alone (before any template) still lets this tenant use the service."""
        return self.status == "active" and not self.is_expired(at) and self.is_entitled(service_id)
