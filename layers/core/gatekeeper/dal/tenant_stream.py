"""Tenant-table stream records decoded: which tenant record changed, and each image read as far as it
can be trusted (a record that does not validate still says enough to narrow access, never to widen
it). The only code that knows the stream's shape and the tenant item's key layout besides the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gatekeeper.dal.codec import decode
from gatekeeper.dal.tenants import TENANT_SK, tenant_from_item, tenant_id_of
from gatekeeper.models.errors import InvalidPrincipal, TenantInvalid
from gatekeeper.models.identifiers import SERVICE_ID, account_of, principal_arn
from gatekeeper.models.tenant import Denial, Tenant, entitles, record_denial


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
        return cls.of(tenant)

    @classmethod
    def of(cls, tenant: Tenant) -> TenantImage:
        """The image of a valid record (one about to be written, for a preview of its effect)."""
        return cls(
            tenant_id=tenant.tenant_id,
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
        return self.tenant is not None and self.tenant.denial(service_id, at) is None

    def denial(self, service_id: str, at: datetime) -> Denial | None:
        """Why the record clearly takes the service away from the tenant, or None: the tenant rule
        (`record_denial`) on what the image says, so an invalid record narrows only where it is clear."""
        return record_denial(self, service_id, at)

    def principal_arns(self, service_id: str) -> frozenset[str] | None:
        """The allowed-principal ARNs this image wants on the service; None when it does not say."""
        if self.principals is None:
            return None
        if self.services is not None and not entitles(self.services, service_id):
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
    tenant_id = tenant_id_of(str(keys.get("pk", "")))
    if keys.get("sk") != TENANT_SK or tenant_id is None:
        return None
    old, new = stream.get("OldImage"), stream.get("NewImage")
    return TenantChange(
        tenant_id,
        TenantImage.read(tenant_id, old) if old else None,
        TenantImage.read(tenant_id, new) if new else None,
    )


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
