"""The stores as `simulate`, `pending`, `approve` and `reject` hand them to the decision service:
each read of `assess` made once per invocation. `pending` assesses every waiting connection, and
those mostly come from a few tenants on a few templates: one read per tenant, template and quota
counter, not one per connection. Only reads are remembered; these stores are never written through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatekeeper.dal.decisions import DecisionStore
from gatekeeper.dal.templates import StoredTemplate, TemplateStore
from gatekeeper.dal.tenants import TenantStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from gatekeeper.models.tenant import Tenant


class TenantsSnapshot(TenantStore):
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        super().__init__(client, table)
        self._by_account: dict[str, Tenant | None] = {}

    def find_by_account(self, account: str) -> Tenant | None:
        if account not in self._by_account:
            self._by_account[account] = super().find_by_account(account)
        return self._by_account[account]


class TemplatesSnapshot(TemplateStore):
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        super().__init__(client, table)
        self._read: dict[tuple[str, int | None], StoredTemplate] = {}

    def get(self, name: str, version: int | None = None) -> StoredTemplate:
        if (name, version) not in self._read:
            self._read[(name, version)] = super().get(name, version)
        return self._read[(name, version)]


class DecisionsSnapshot(DecisionStore):
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        super().__init__(client, table)
        self._active: dict[str, int] = {}

    def active_endpoints(self, tenant_id: str) -> int:
        if tenant_id not in self._active:
            self._active[tenant_id] = super().active_endpoints(tenant_id)
        return self._active[tenant_id]
