"""Test data builders shared by the unit and integration suites."""

from __future__ import annotations

from gatekeeper.models.tenant import Tenant


def tenant(tenant_id: str, account: str, service: str, **changes: object) -> Tenant:
    """A valid tenant record (standard template, three endpoints) with `changes` applied."""
    fields: dict[str, object] = {
        "tenant_id": tenant_id,
        "display_name": tenant_id.title(),
        "principals": (account,),
        "services": (service,),
        "template": "standard",
        "max_endpoints": 3,
    }
    return Tenant.model_validate({**fields, **changes})
