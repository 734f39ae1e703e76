"""Tenant allow-list records and the account claims that make a principal belong to one tenant.

Keys (TenantsTable):
- tenant record  `pk=TENANT#<id>`   `sk=TENANT`  — the record, `version` for optimistic locking
- account claim  `pk=ACCOUNT#<acct>` `sk=CLAIM`  — `tenant_id`; one per account any principal names

A connection only tells us the consumer's account (`VpcEndpointOwner`), so uniqueness is enforced
per account: every principal of a tenant (root, role or user ARN) claims its account with a
conditional write in the same transaction as the record. Lookup is two reads: claim, then record.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gatekeeper.dal.codec import cancellation_codes, decode, encode, key, transact
from gatekeeper.models.errors import TenantConflict, TenantInvalid, TenantNotFound
from gatekeeper.models.identifiers import now_utc
from gatekeeper.models.tenant import Tenant

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_TENANT_PREFIX = "TENANT#"
TENANT_SK = "TENANT"
CLAIM_SK = "CLAIM"


def tenant_pk(tenant_id: str) -> str:
    """The partition of everything about one tenant: its record here, its quota counter and slots in
    the decisions table."""
    return f"{_TENANT_PREFIX}{tenant_id}"


def tenant_id_of(pk: str) -> str | None:
    """The tenant a `tenant_pk` names; None for any other partition (account claims)."""
    return pk.removeprefix(_TENANT_PREFIX) if pk.startswith(_TENANT_PREFIX) else None


def claim_pk(account: str) -> str:
    return f"ACCOUNT#{account}"


# The DynamoDB type each attribute of a tenant record must have, as the CLI writes it. A record
# edited by hand with another type (a string set, a number written as a string) is refused, never
# coerced: the models promise that nothing is guessed. docs/operator-guide.md shows a valid item.
_ATTRIBUTE_TYPES: dict[str, str] = {
    "pk": "S",
    "sk": "S",
    "item_type": "S",
    "tenant_id": "S",
    "display_name": "S",
    "status": "S",
    "principals": "L",
    "services": "L",
    "template": "S",
    "template_version": "N",
    "parameters": "M",
    "max_endpoints": "N",
    "expires_at": "S",
    "contact": "S",
    "labels": "M",
    "version": "N",
    "updated_by": "S",
    "updated_at": "S",
}
_REQUIRED = ("tenant_id", "display_name", "principals", "services", "template", "version")
_TYPE_NAMES = {"S": "a string", "N": "a number", "L": "a list", "M": "a map", "SS": "a string set"}


def attribute_problems(raw: Mapping[str, Any]) -> list[str]:
    """What is wrong with a stored tenant record's DynamoDB types and keys (empty: nothing)."""
    problems: list[str] = []
    for name in _REQUIRED:
        if name not in raw:
            problems.append(f"{name}: missing")
    for name, value in raw.items():
        expected = _ATTRIBUTE_TYPES.get(name)
        if expected is None or not isinstance(value, Mapping):
            continue  # unknown attributes are the model's to refuse
        actual = next(iter(value), "?")
        if actual != expected:
            problems.append(
                f"{name}: is {_TYPE_NAMES.get(actual, actual)} ({actual}), must be "
                f"{_TYPE_NAMES.get(expected, expected)} ({expected})"
            )
        elif expected == "L" and not all(set(v) == {"S"} for v in value["L"]):
            problems.append(f"{name}: every element must be a string (S)")
        elif name == "labels" and not all(set(v) == {"S"} for v in value["M"].values()):
            problems.append("labels: every value must be a string (S)")
    tenant_id = raw.get("tenant_id", {}).get("S") if isinstance(raw.get("tenant_id"), Mapping) else None
    pk = raw.get("pk", {}).get("S") if isinstance(raw.get("pk"), Mapping) else None
    if pk is not None and tenant_id is not None and pk != tenant_pk(tenant_id):
        problems.append(
            f"tenant_id: is {tenant_id!r} but the record's key is {pk!r}; a record can only describe the "
            "tenant its key names"
        )
    return problems


def tenant_from_item(raw: Mapping[str, Any]) -> Tenant:
    """A stored record (DynamoDB attribute values) → Tenant; a record whose types, key or fields do not
    validate raises TenantInvalid (fail closed)."""
    where = raw.get("pk", {}).get("S", "?") if isinstance(raw.get("pk"), Mapping) else "?"
    problems = attribute_problems(raw)
    if not problems:
        fields = {k: v for k, v in decode(raw).items() if k not in ("pk", "sk", "item_type")}
        try:
            return Tenant.model_validate(fields)
        except ValidationError as exc:
            problems = [f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors()]
    raise TenantInvalid(invalid_record_message(where, problems), tenant_id_of(where))


def invalid_record_message(where: str, problems: builtins.list[str]) -> str:
    """What is wrong with a stored record and the one command that fixes it without revoking
    anything (it keeps the record's claims): every message about a broken record names it."""
    tenant_id = tenant_id_of(where) or "<tenant id>"
    return (
        f"tenant record {where} is invalid: {'; '.join(problems)} — "
        f"fix it with `gatekeeper tenants repair {tenant_id}` (shows each fix first)"
    )


def claimed_elsewhere(account: str, owner: str) -> str:
    """Why an account cannot be claimed, and how to move it — with a preview, since taking it off
    its tenant revokes that tenant's connections from it."""
    return (
        f"account {account} is already claimed by tenant {owner}; a principal belongs to at most one "
        f"tenant — to move it, take it off {owner} first (`gatekeeper tenants update {owner} "
        "--remove-principal <principal> --dry-run` lists the endpoints that revokes)"
    )


def changed_since_read(tenant_id: str) -> str:
    return (
        f"tenant {tenant_id} was changed by someone else since you read it; "
        "nothing was written — read it again and retry"
    )


def tenant_to_item(tenant: Tenant) -> dict[str, Any]:
    body = tenant.model_dump(mode="json", exclude_none=True)
    return {"pk": tenant_pk(tenant.tenant_id), "sk": TENANT_SK, "item_type": "tenant", **body}


@dataclass
class TenantDirectory:
    """The tenants table at one moment: valid records, invalid ones (with why), account claims."""

    tenants: dict[str, Tenant] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    claims: dict[str, str] = field(default_factory=dict)  # account → tenant id

    def owner(self, account: str) -> Tenant | None:
        """The valid tenant whose record names this account (claim and record agree), if any."""
        tenant = self.tenants.get(self.claims.get(account, ""))
        return tenant if tenant is not None and account in tenant.accounts() else None


class TenantStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    @property
    def table(self) -> str:
        return self._table

    # -- reads -----------------------------------------------------------------------------
    def get(self, tenant_id: str) -> Tenant:
        response = self._client.get_item(TableName=self._table, Key=key(tenant_pk(tenant_id), TENANT_SK))
        if "Item" not in response:
            raise TenantNotFound(f"no tenant {tenant_id!r}; see `gatekeeper tenants list`")
        return tenant_from_item(response["Item"])

    def raw(self, tenant_id: str) -> dict[str, Any]:
        """The stored record as DynamoDB holds it (attribute values), valid or not: for repairing it."""
        response = self._client.get_item(TableName=self._table, Key=key(tenant_pk(tenant_id), TENANT_SK))
        if "Item" not in response:
            raise TenantNotFound(f"no tenant {tenant_id!r}; see `gatekeeper tenants list`")
        return dict(response["Item"])

    def owner_of(self, account: str) -> str | None:
        """The tenant id that claims this account, if any."""
        response = self._client.get_item(
            TableName=self._table, Key=key(claim_pk(account), CLAIM_SK), ProjectionExpression="tenant_id"
        )
        item = response.get("Item")
        return str(item["tenant_id"]["S"]) if item else None

    def find_by_account(self, account: str) -> Tenant | None:
        """The tenant a consumer account belongs to (two reads), None when nobody claims it.

        A claim whose record is gone (removed by hand) counts as unknown: fail closed.
        """
        owner = self.owner_of(account)
        if owner is None:
            return None
        try:
            tenant = self.get(owner)
        except TenantNotFound:
            return None
        return tenant if account in tenant.accounts() else None

    def list(self) -> Iterator[Tenant | TenantInvalid]:
        """Every tenant record; invalid ones are yielded as their error so callers can report them."""
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="sk = :sk",
            ExpressionAttributeValues={":sk": {"S": TENANT_SK}},
        ):
            for raw in page.get("Items", []):
                try:
                    yield tenant_from_item(raw)
                except TenantInvalid as exc:
                    yield exc

    def directory(self) -> TenantDirectory:
        """Every tenant record and account claim, in one scan (the reconciler's view of the table)."""
        directory = TenantDirectory()
        for page in self._client.get_paginator("scan").paginate(TableName=self._table):
            for raw in page.get("Items", []):
                item = decode(raw)
                pk, sk = str(item.get("pk", "")), item.get("sk")
                if sk == CLAIM_SK and isinstance(item.get("tenant_id"), str):
                    directory.claims[pk.removeprefix("ACCOUNT#")] = item["tenant_id"]
                elif sk == TENANT_SK:
                    tenant_id = pk.removeprefix("TENANT#")
                    try:
                        directory.tenants[tenant_id] = tenant_from_item(raw)
                    except TenantInvalid as exc:
                        directory.invalid[tenant_id] = str(exc)
        return directory

    # -- writes ----------------------------------------------------------------------------
    def create(self, tenant: Tenant, actor: str, at: datetime | None = None) -> Tenant:
        stored = tenant.model_copy(update={"version": 1, "updated_by": actor, "updated_at": at or now_utc()})
        items: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": encode(tenant_to_item(stored)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        accounts = sorted(stored.accounts())
        items += [self._claim(account, stored.tenant_id) for account in accounts]
        self._transact(items, stored.tenant_id, [None, *accounts], exists_message="already exists")
        return stored

    def update(self, tenant: Tenant, actor: str, at: datetime | None = None) -> Tenant:
        """Replace the record if nobody changed it since `tenant.version` was read."""
        current = self._current_accounts(tenant.tenant_id)
        stored = tenant.model_copy(
            update={"version": tenant.version + 1, "updated_by": actor, "updated_at": at or now_utc()}
        )
        items: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": encode(tenant_to_item(stored)),
                    "ConditionExpression": "#v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(tenant.version)}},
                }
            }
        ]
        added = sorted(stored.accounts() - current)
        removed = sorted(current - stored.accounts())
        items += [self._claim(account, stored.tenant_id) for account in added]
        items += [self._release_claim(account, stored.tenant_id) for account in removed]
        self._transact(items, stored.tenant_id, [None, *added, *[None] * len(removed)], stale=True)
        return stored

    def repair(
        self, tenant: Tenant, actor: str, stored_version: Mapping[str, Any] | None, at: datetime | None = None
    ) -> Tenant:
        """Replace a record that does not validate with `tenant`, if nobody changed it since it was
        read: conditional on its `version` attribute exactly as read (`stored_version`, whatever its
        type; None: it had none). Every account of `tenant` is claimed for it (a claim it already
        holds is kept; another tenant's refuses the write) and no claim is released."""
        stored = tenant.model_copy(
            update={"version": tenant.version + 1, "updated_by": actor, "updated_at": at or now_utc()}
        )
        item = encode(tenant_to_item(stored))
        names = {"#v": "version"}
        put: TransactWriteItemTypeDef = (
            {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#v)",
                    "ExpressionAttributeNames": names,
                }
            }
            if stored_version is None
            else {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "#v = :v",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {":v": dict(stored_version)},
                }
            }
        )
        accounts = sorted(stored.accounts())
        items = [put, *(self._claim(account, stored.tenant_id) for account in accounts)]
        self._transact(items, stored.tenant_id, [None, *accounts], stale=True)
        return stored

    def remove(self, tenant_id: str, expected_version: int) -> None:
        accounts = sorted(self._current_accounts(tenant_id))
        items: list[TransactWriteItemTypeDef] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": key(tenant_pk(tenant_id), TENANT_SK),
                    "ConditionExpression": "#v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(expected_version)}},
                }
            }
        ]
        items += [self._release_claim(account, tenant_id) for account in accounts]
        self._transact(items, tenant_id, [None] * len(items), stale=True)

    # -- internals -------------------------------------------------------------------------
    def _current_accounts(self, tenant_id: str) -> frozenset[str]:
        try:
            return self.get(tenant_id).accounts()
        except TenantInvalid:
            return frozenset()

    def _claim(self, account: str, tenant_id: str) -> TransactWriteItemTypeDef:
        return {
            "Put": {
                "TableName": self._table,
                "Item": encode(
                    {"pk": claim_pk(account), "sk": CLAIM_SK, "item_type": "claim", "tenant_id": tenant_id}
                ),
                "ConditionExpression": "attribute_not_exists(pk) OR tenant_id = :t",
                "ExpressionAttributeValues": {":t": {"S": tenant_id}},
            }
        }

    def _release_claim(self, account: str, tenant_id: str) -> TransactWriteItemTypeDef:
        return {
            "Delete": {
                "TableName": self._table,
                "Key": key(claim_pk(account), CLAIM_SK),
                "ConditionExpression": "attribute_not_exists(pk) OR tenant_id = :t",
                "ExpressionAttributeValues": {":t": {"S": tenant_id}},
            }
        }

    def _transact(
        self,
        items: builtins.list[TransactWriteItemTypeDef],
        tenant_id: str,
        claimed_accounts: builtins.list[str | None],
        exists_message: str = "",
        stale: bool = False,
    ) -> None:
        cancelled = transact(self._client, items)
        if cancelled is not None:
            codes = cancellation_codes(cancelled)
            for code, account in zip(codes, claimed_accounts, strict=False):
                if code == "ConditionalCheckFailed" and account is not None:
                    owner = self.owner_of(account) or "another tenant"
                    raise TenantConflict(claimed_elsewhere(account, owner)) from None
            if codes and codes[0] == "ConditionalCheckFailed":
                if stale:
                    raise TenantConflict(changed_since_read(tenant_id)) from None
                raise TenantConflict(f"tenant {tenant_id} {exists_message}") from None
            raise cancelled
