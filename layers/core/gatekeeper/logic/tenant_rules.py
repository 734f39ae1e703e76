"""The rules a tenant record must meet before it is written, beyond what its model checks: the one
implementation behind the operator CLI (`gatekeeper tenants …`) and the SaaS control plane's tenant
changes (`apply_tenant_change`), so an event can never write what the CLI would refuse, or the
other way round.

- the template (and pinned version) exists and parses; the parameter overrides fit its
  declarations and are stored as their JSON types;
- the write itself would be accepted: a create of a tenant id that is free, an update of the
  version that was read, no account another tenant claims. Checked by reading first, with the
  store's own messages; the store's conditional write still decides a race between the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gatekeeper.dal.templates import StoredTemplate, TemplateStore
from gatekeeper.dal.tenants import TenantStore, changed_since_read, claimed_elsewhere
from gatekeeper.models.errors import GatekeeperError, TenantConflict, TenantInvalid, TenantNotFound
from gatekeeper.models.tenant import Tenant
from gatekeeper.policy import PolicyTemplate, TemplateInvalid, resolve_parameters
from gatekeeper.policy.parameters import ParamValue, coerce_parameter


class TemplateUnusable(GatekeeperError):
    """A tenant names a template version that does not parse: nothing may be written against it."""


class QuotaUnset(GatekeeperError):
    """Neither the record (`max_endpoints`) nor its template (`MaxEndpoints`) sets a quota."""


class TenantRules:
    """Checks what the model alone cannot: the template (and pinned version) exists and parses,
    and the parameter overrides fit its declarations. Overrides come back coerced to their types."""

    def __init__(self, templates: TemplateStore) -> None:
        self._templates = templates
        self._read: dict[tuple[str, int | None], StoredTemplate] = {}
        self._cache: dict[tuple[str, int | None], PolicyTemplate] = {}

    def read_latest_templates(self) -> TenantRules:
        """Every template's latest version in one scan, instead of one query per template: for the
        commands that check many tenants. A pinned older version is still read on its own."""
        for stored in self._templates.latest():
            self._read[(stored.name, None)] = self._read[(stored.name, stored.version)] = stored
        return self

    def template(self, name: str, version: int | None) -> PolicyTemplate:
        if (name, version) not in self._cache:
            stored = self._read.get((name, version)) or self._templates.get(name, version)
            try:
                self._cache[(name, version)] = stored.parse()
            except TemplateInvalid as exc:
                raise TemplateUnusable(
                    f"template {name} v{stored.version} is invalid ({'; '.join(exc.problems)}); "
                    "push a fixed version with `gatekeeper templates push` first"
                ) from None
        return self._cache[(name, version)]

    def check(self, tenant: Tenant) -> Tenant:
        template = self.template(tenant.template, tenant.template_version)
        if tenant.max_endpoints is None and "MaxEndpoints" not in template.parameters:
            raise QuotaUnset(
                f"template {tenant.template} declares no MaxEndpoints parameter, so it sets no quota: "
                "give max_endpoints (--max-endpoints N)"
            )
        return tenant.model_copy(update={"parameters": normalise_parameters(template, tenant.parameters)})


def write_refusal(tenants: TenantStore, before: Tenant | None, after: Tenant) -> None:
    """What the store's conditional write would refuse, found by reading first, with the store's
    own message: the same checks for a dry run and for the write (which still relies on its
    conditions for a race between this read and the write)."""
    if before is None:
        try:
            tenants.get(after.tenant_id)
        except TenantNotFound:
            pass
        except TenantInvalid:
            raise TenantConflict(
                f"tenant {after.tenant_id} already exists, and its stored record does not validate: "
                f"fix it with `gatekeeper tenants repair {after.tenant_id}`"
            ) from None
        else:
            raise TenantConflict(f"tenant {after.tenant_id} already exists")
    else:
        try:
            current_version = tenants.get(before.tenant_id).version
        except TenantInvalid:
            current_version = None
        if current_version != before.version:
            raise TenantConflict(changed_since_read(before.tenant_id))
    released = before.accounts() if before else frozenset()
    for account in sorted(after.accounts() - released):
        owner = tenants.owner_of(account)
        if owner is not None and owner != after.tenant_id:
            raise TenantConflict(claimed_elsewhere(account, owner))


def normalise_parameters(template: PolicyTemplate, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides validated against the template (ParameterInvalid lists every problem) and stored
    as their JSON type: "5" for a Number becomes 5, "a,b" for a StringList becomes ["a", "b"]."""
    resolve_parameters(template, overrides)
    return {
        name: _jsonable(coerce_parameter(template.parameters[name].type, value))
        for name, value in overrides.items()
        if value is not None
    }


def _jsonable(value: ParamValue) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
