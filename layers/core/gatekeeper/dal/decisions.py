"""Decision records, the per-endpoint decision state (conditional on its `seq`: of two deciders one
wins) and tenant quota slots (a slot item and the counter in one transaction: constant size, never
two on the last slot). Keys: state `ENDPOINT#<vpce>`/`STATE`, records `ENDPOINT#<vpce>`/`DECISION#…`
(GSI ByTenant), counter `TENANT#<id>`/`QUOTA`, slots `TENANT#<id>`/`SLOT#<vpce>`; what still needs
work is in the sparse, sharded `Unsettled` index. See docs/how-it-decides.md and docs/reconciler.md.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from botocore.exceptions import ClientError

from gatekeeper.dal.codec import cancellation_codes, decode, encode, error_code, key, transact
from gatekeeper.dal.tenants import CLAIM_SK, TENANT_SK, TenantStore, claim_pk, tenant_from_item, tenant_pk
from gatekeeper.models.decision import Decision, Outcome
from gatekeeper.models.errors import QuotaExceeded, TenantInvalid, WriteConflict
from gatekeeper.models.identifiers import now_utc
from gatekeeper.models.tenant import Tenant

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

Status = Literal["accepting", "accepted", "rejecting", "rejected", "held", "revoking", "revoked"]
FINAL: frozenset[str] = frozenset({"accepted", "rejected", "revoked"})
IN_FLIGHT: frozenset[str] = frozenset({"accepting", "rejecting", "revoking"})
# Outcomes (and final statuses) that take access away: recording one frees the quota slot.
REFUSALS: frozenset[str] = frozenset({"rejected", "revoked"})
# The status an endpoint is claimed with while an outcome is carried out (the one mapping).
CLAIM_STATUS: dict[Outcome, Status] = {
    "accepted": "accepting",
    "rejected": "rejecting",
    "revoked": "revoking",
    "held": "held",
}
STATE_SK = "STATE"
QUOTA_SK = "QUOTA"
# What the decision path reads of the decisions table's items (one projection serves the table in a
# BatchGetItem): the keys, an endpoint state's fields (_state_from_item) and the quota counter's
# `active` (read_inputs). Not a legacy counter's `endpoints` set (module docstring).
READ_ATTRIBUTES = ("pk", "sk", "status", "seq", "decision", "notified", "claimed_at", "slot_tenant", "active")
UNSETTLED_INDEX = "Unsettled"
UNSETTLED_PK = "UNSETTLED"
# The Unsettled index's partitions: every claim writes one, and a partition key takes ~1,000 writes a
# second (GSIs included), so a burst spreads them over UNSETTLED_SHARDS keys by a hash of the endpoint
# id; the reconciler queries them all (one Query each, a sweep).
UNSETTLED_SHARDS = 8
BATCH_GET_KEYS = 100  # BatchGetItem takes at most 100 keys a call


def unsettled_partition(vpc_endpoint_id: str) -> str:
    """The Unsettled partition of an endpoint's state: stable (crc32, not Python's salted hash)."""
    return f"{UNSETTLED_PK}#{zlib.crc32(vpc_endpoint_id.encode()) % UNSETTLED_SHARDS}"


def endpoint_pk(vpc_endpoint_id: str) -> str:
    return f"ENDPOINT#{vpc_endpoint_id}"


def slot_sk(vpc_endpoint_id: str) -> str:
    return f"SLOT#{vpc_endpoint_id}"


@dataclass(frozen=True)
class Slot:
    """A quota reservation: one endpoint of one tenant, under a limit."""

    tenant_id: str
    vpc_endpoint_id: str
    limit: int | None  # None: no limit (an operator's approval, drift repair, resuming a claim)


@dataclass(frozen=True)
class EndpointState:
    vpc_endpoint_id: str
    status: Status
    seq: int
    decision: Decision
    notified: bool
    claimed_at: datetime
    slot_tenant: str | None

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def in_flight(self) -> bool:
        """Claimed for an EC2 action that has not been confirmed yet."""
        return self.status in IN_FLIGHT

    @property
    def settled(self) -> bool:
        """Nothing left to do: decided (or held) and announced."""
        return not self.in_flight and self.notified


@dataclass(frozen=True)
class DecisionInputs:
    """What the decision path reads from the tables about one request, in one or two calls."""

    state: EndpointState | None
    owner: str | None  # the tenant id that claims the account
    tenant: Tenant | TenantInvalid | None  # its record (an invalid one as its error); None: unknown
    active: int  # the owner's active endpoints (quota counter)


Keys = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class BatchInputs:
    """What the decision path read from the tables for a batch (DecisionStore.read_batch)."""

    states: dict[str, EndpointState]  # endpoint id → its state (absent: never decided)
    tenants: dict[
        str, tuple[str | None, Tenant | TenantInvalid | None, int]
    ]  # account → owner, record, active

    def inputs(self, vpc_endpoint_id: str | None, account: str | None) -> DecisionInputs:
        state = self.states.get(vpc_endpoint_id) if vpc_endpoint_id else None
        owner, tenant, active = self.tenants.get(account, (None, None, 0)) if account else (None, None, 0)
        return DecisionInputs(state, owner, tenant, active)


def _state_from_item(item: dict[str, Any]) -> EndpointState:
    return EndpointState(
        vpc_endpoint_id=item["pk"].removeprefix("ENDPOINT#"),
        status=item["status"],
        seq=int(item["seq"]),
        decision=Decision.model_validate_json(item["decision"]),
        notified=bool(item.get("notified", False)),
        claimed_at=datetime.fromisoformat(item["claimed_at"]),
        slot_tenant=item.get("slot_tenant"),
    )


class DecisionStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    # -- endpoint state --------------------------------------------------------------------
    def state(self, vpc_endpoint_id: str) -> EndpointState | None:
        response = self._client.get_item(
            TableName=self._table, Key=key(endpoint_pk(vpc_endpoint_id), STATE_SK), ConsistentRead=True
        )
        return _state_from_item(decode(response["Item"])) if "Item" in response else None

    def states(self, vpc_endpoint_ids: list[str]) -> dict[str, EndpointState]:
        """Batch read (100 keys a call) of the decision state of many endpoints."""
        found: dict[str, EndpointState] = {}
        for start in range(0, len(vpc_endpoint_ids), 100):
            keys = [key(endpoint_pk(v), STATE_SK) for v in vpc_endpoint_ids[start : start + 100]]
            request: dict[str, Any] = {self._table: {"Keys": keys}}
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self._table, []):
                    state = _state_from_item(decode(raw))
                    found[state.vpc_endpoint_id] = state
                request = dict(response.get("UnprocessedKeys") or {})
        return found

    def read_inputs(
        self,
        tenants: TenantStore,
        vpc_endpoint_id: str | None,
        account: str | None,
        tenant_guess: str | None = None,
    ) -> DecisionInputs:
        """The endpoint's state (when an id is given) and the tenant claiming the account (when one is
        given), consistently read. `tenant_guess` (the tenant this container last saw claim the account)
        is read in the same call; when the claim names another tenant, its record is read after it."""
        guesses = {account: tenant_guess} if account is not None else {}
        batch = self.read_batch(tenants, [vpc_endpoint_id] if vpc_endpoint_id else [], guesses)
        return batch.inputs(vpc_endpoint_id, account)

    def read_batch(
        self, tenants: TenantStore, vpc_endpoint_ids: Sequence[str], accounts: Mapping[str, str | None]
    ) -> BatchInputs:
        """What a batch of requests needs from the tables, consistently read in one BatchGetItem (100
        keys a call): the endpoints' states, the accounts' claims and, for each account (→ the tenant
        this container last saw claim it, or None), that tenant's record and quota counter. Accounts
        whose claim names a tenant not guessed cost one more BatchGetItem, for all of them together."""
        wanted: list[tuple[str, Keys]] = [
            (self._table, key(endpoint_pk(v), STATE_SK)) for v in vpc_endpoint_ids
        ]
        wanted += [(tenants.table, key(claim_pk(account), CLAIM_SK)) for account in accounts]
        guessed = {guess for guess in accounts.values() if guess is not None}
        for tenant_id in sorted(guessed):
            wanted += self._tenant_keys(tenants, tenant_id)
        found = self._batch_get(wanted, READ_ATTRIBUTES)
        states: dict[str, EndpointState] = {}
        for vpc_endpoint_id in vpc_endpoint_ids:
            raw_state = found.get((self._table, endpoint_pk(vpc_endpoint_id), STATE_SK))
            if raw_state:
                states[vpc_endpoint_id] = _state_from_item(decode(raw_state))
        owners: dict[str, str] = {}
        for account in accounts:
            claim = found.get((tenants.table, claim_pk(account), CLAIM_SK))
            if claim and "S" in claim.get("tenant_id", {}):
                owners[account] = str(claim["tenant_id"]["S"])
        unguessed = sorted(set(owners.values()) - guessed)
        if unguessed:
            found.update(
                self._batch_get(
                    [k for t in unguessed for k in self._tenant_keys(tenants, t)], READ_ATTRIBUTES
                )
            )
        return BatchInputs(
            states,
            {account: self._tenant_of(tenants, account, owners.get(account), found) for account in accounts},
        )

    def _tenant_of(
        self,
        tenants: TenantStore,
        account: str,
        owner: str | None,
        found: dict[tuple[str, str, str], dict[str, Any]],
    ) -> tuple[str | None, Tenant | TenantInvalid | None, int]:
        """(owner, its record, its active endpoints) for an account, from what was read; fails closed."""
        if owner is None:
            return None, None, 0
        raw_tenant = found.get((tenants.table, tenant_pk(owner), TENANT_SK))
        quota = found.get((self._table, tenant_pk(owner), QUOTA_SK))
        active = int(decode(quota).get("active", 0)) if quota else 0
        if raw_tenant is None:
            return owner, None, active  # a claim whose record is gone: unknown
        try:
            tenant: Tenant | TenantInvalid | None = tenant_from_item(raw_tenant)
        except TenantInvalid as exc:
            tenant = exc
        if isinstance(tenant, Tenant) and account not in tenant.accounts():
            tenant = None  # the claim and the record disagree: fail closed
        return owner, tenant, active

    def _tenant_keys(self, tenants: TenantStore, tenant_id: str) -> list[tuple[str, Keys]]:
        return [
            (tenants.table, key(tenant_pk(tenant_id), TENANT_SK)),
            (self._table, key(tenant_pk(tenant_id), QUOTA_SK)),
        ]

    def _batch_get(
        self, wanted: list[tuple[str, Keys]], attributes: tuple[str, ...] | None = None
    ) -> dict[tuple[str, str, str], dict[str, Any]]:
        """Consistent BatchGetItem of a few keys over several tables, keyed (table, pk, sk).
        `attributes`: all that is read of this store's table (None: whole items); other tables'
        items are read whole."""
        options: dict[str, dict[str, Any]] = {}
        keys: dict[str, list[Any]] = {}  # table → its keys still to read
        for table, item_key in wanted:
            keys.setdefault(table, []).append(item_key)
            options.setdefault(table, {"ConsistentRead": True})
        if attributes and self._table in options:
            # Placeholders for every name: some are DynamoDB reserved words (`status`).
            names = {f"#a{i}": name for i, name in enumerate(attributes)}
            options[self._table]["ProjectionExpression"] = ", ".join(names)
            options[self._table]["ExpressionAttributeNames"] = names
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        if sum(len(k) for k in keys.values()) > BATCH_GET_KEYS:
            for start in range(0, len(wanted), BATCH_GET_KEYS):
                found.update(self._batch_get(wanted[start : start + BATCH_GET_KEYS], attributes))
            return found
        while keys:
            request: dict[str, Any] = {table: {**options[table], "Keys": k} for table, k in keys.items()}
            response = self._client.batch_get_item(RequestItems=request)
            for table, items in response.get("Responses", {}).items():
                for raw in items:
                    found[(table, str(raw["pk"]["S"]), str(raw["sk"]["S"]))] = dict(raw)
            # Retried with the same options: what comes back unprocessed need not carry them.
            unprocessed = response.get("UnprocessedKeys") or {}
            keys = {table: list(rest["Keys"]) for table, rest in unprocessed.items() if rest.get("Keys")}
        return found

    def claim(
        self,
        decision: Decision,
        status: Status,
        previous: EndpointState | None,
        slot: Slot | None = None,
        at: datetime | None = None,
    ) -> EndpointState:
        """Take the endpoint for a decision about to be carried out in EC2 (or held).

        Raises WriteConflict when another decider got there first, QuotaExceeded when the slot
        cannot be taken. `held` is final for this call: its record is written in the same transaction.
        """
        at = at or now_utc()
        seq = previous.seq + 1 if previous else 1
        slot_tenant = slot.tenant_id if slot else (previous.slot_tenant if previous else None)
        state = EndpointState(decision.vpc_endpoint_id, status, seq, decision, False, at, slot_tenant)
        items: list[TransactWriteItemTypeDef] = [self._put_state(state, previous)]
        if status == "held":
            items.append(self._put_record(decision))
        if slot:
            items += self._take_slot(slot, at)
        cancelled = transact(self._client, items)
        if cancelled is not None:
            codes = cancellation_codes(cancelled)
            if codes[0] == "ConditionalCheckFailed":
                raise WriteConflict(f"{decision.vpc_endpoint_id} is being decided by someone else") from None
            if slot and codes[-1] == "ConditionalCheckFailed":
                raise QuotaExceeded(
                    f"tenant {slot.tenant_id} has {slot.limit} of {slot.limit} endpoints in use"
                ) from None
            if slot and codes[-2] == "ConditionalCheckFailed":
                # The endpoint already holds a slot (recorded by the reconciler): keep that one.
                return self.claim(decision, status, previous, None, at)
            raise cancelled
        return state

    def finalise(
        self,
        claimed: EndpointState,
        decision: Decision,
        release_slot: bool = False,
        at: datetime | None = None,
        notified: bool = False,
    ) -> EndpointState:
        """Record the outcome of a claimed action. `notified`: it was announced before this write
        (until this write the claim stays in flight, so a crash before it is resumed and announced
        again); otherwise the decider now owns its notification."""
        status: Status = decision.outcome
        state = EndpointState(
            claimed.vpc_endpoint_id,
            status,
            claimed.seq + 1,
            decision,
            notified,
            at or now_utc(),
            None if release_slot else claimed.slot_tenant,
        )
        items: list[TransactWriteItemTypeDef] = [self._put_state(state, claimed), self._put_record(decision)]
        slot_items = (
            self._free_slot(claimed.slot_tenant, claimed.vpc_endpoint_id)
            if release_slot and claimed.slot_tenant
            else []
        )
        self._transact_freeing(items, slot_items, claimed.vpc_endpoint_id)
        return state

    def rollback(self, claimed: EndpointState, previous: EndpointState | None, slot: Slot | None) -> None:
        """Undo a claim whose EC2 action failed, so a retry starts from where we were."""
        items: list[TransactWriteItemTypeDef]
        if previous is None:
            items = [
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": key(endpoint_pk(claimed.vpc_endpoint_id), STATE_SK),
                        "ConditionExpression": "seq = :seq",
                        "ExpressionAttributeValues": {":seq": {"N": str(claimed.seq)}},
                    }
                }
            ]
        else:
            restored = EndpointState(**{**previous.__dict__, "seq": claimed.seq + 1})
            items = [self._put_state(restored, claimed)]
        slot_items = (
            self._free_slot(slot.tenant_id, claimed.vpc_endpoint_id)
            if slot and claimed.slot_tenant == slot.tenant_id
            else []
        )
        self._transact_freeing(items, slot_items, claimed.vpc_endpoint_id)

    def mark_notified(self, state: EndpointState) -> bool:
        """Record that the decision was announced; False when the state moved on meanwhile (another
        invocation took the announcement over, and will mark it itself)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key(endpoint_pk(state.vpc_endpoint_id), STATE_SK),
                UpdateExpression="SET notified = :t REMOVE unsettled_pk, unsettled_sk",
                ConditionExpression="seq = :seq",
                ExpressionAttributeValues={":t": {"BOOL": True}, ":seq": {"N": str(state.seq)}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def unsettled(self, claimed_before: datetime) -> list[EndpointState]:
        """States claimed before a moment and still in flight or unannounced (sparse GSI, every shard,
        every page), oldest first."""
        found: list[EndpointState] = []
        paginator = self._client.get_paginator("query")
        for shard in range(UNSETTLED_SHARDS):
            for page in paginator.paginate(
                TableName=self._table,
                IndexName=UNSETTLED_INDEX,
                KeyConditionExpression="unsettled_pk = :u AND unsettled_sk < :before",
                ExpressionAttributeValues={
                    ":u": {"S": f"{UNSETTLED_PK}#{shard}"},
                    ":before": {"S": claimed_before.isoformat()},
                },
            ):
                found += [_state_from_item(decode(item)) for item in page.get("Items", [])]
        return sorted(found, key=lambda state: (state.claimed_at, state.vpc_endpoint_id))

    def take_over_notification(self, state: EndpointState, at: datetime | None = None) -> EndpointState:
        """Claim an unsent notification whose decider disappeared (crashed after recording)."""
        taken = EndpointState(**{**state.__dict__, "seq": state.seq + 1, "claimed_at": at or now_utc()})
        self._transact_or_conflict([self._put_state(taken, state)], state.vpc_endpoint_id)
        return taken

    # -- quota -----------------------------------------------------------------------------
    def active_endpoints(self, tenant_id: str) -> int:
        response = self._client.get_item(
            TableName=self._table, Key=key(tenant_pk(tenant_id), QUOTA_SK), ConsistentRead=True
        )
        return int(decode(response["Item"]).get("active", 0)) if "Item" in response else 0

    def slots(self, tenant_id: str) -> list[str]:
        """The endpoints holding one of the tenant's quota slots (every page)."""
        found: list[str] = []
        for page in self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :slot)",
            ExpressionAttributeValues={":pk": {"S": tenant_pk(tenant_id)}, ":slot": {"S": "SLOT#"}},
            ProjectionExpression="sk",
        ):
            found += [str(item["sk"]["S"]).removeprefix("SLOT#") for item in page.get("Items", [])]
        return found

    def all_slots(self, tenant_ids: list[str]) -> dict[str, str]:
        """endpoint → the tenant holding a slot for it, for these tenants: their counters' `active`,
        100 a BatchGetItem, then a paginated Query of the slot items of each tenant that holds any
        (a tenant's slots are as many items as it has endpoints; no item lists them)."""
        wanted = [(self._table, key(tenant_pk(t), QUOTA_SK)) for t in tenant_ids]
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        for start in range(0, len(wanted), 100):
            found.update(self._batch_get(wanted[start : start + 100], ("pk", "sk", "active")))
        slots: dict[str, str] = {}
        for tenant_id in tenant_ids:
            raw = found.get((self._table, tenant_pk(tenant_id), QUOTA_SK))
            # No counter, or none active: no slot item (a slot and its counter move together).
            if raw is not None and int(decode(raw).get("active", 0)) > 0:
                slots.update(dict.fromkeys(self.slots(tenant_id), tenant_id))
        return slots

    def release_slot(self, tenant_id: str, vpc_endpoint_id: str) -> bool:
        """Free an endpoint's slot once; False when it was already free."""
        return _unless_condition_failed(transact(self._client, self._free_slot(tenant_id, vpc_endpoint_id)))

    def record_slot(self, tenant_id: str, vpc_endpoint_id: str) -> bool:
        """Record a slot for an endpoint EC2 reports in use (drift repair); never refused for quota."""
        slot = Slot(tenant_id, vpc_endpoint_id, limit=None)
        return _unless_condition_failed(transact(self._client, self._take_slot(slot, now_utc())))

    # -- audit trail -----------------------------------------------------------------------
    def decisions_for_endpoint(self, vpc_endpoint_id: str) -> list[Decision]:
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :d)",
            ExpressionAttributeValues={":pk": {"S": endpoint_pk(vpc_endpoint_id)}, ":d": {"S": "DECISION#"}},
        )
        return [Decision.model_validate_json(decode(i)["decision"]) for i in response.get("Items", [])]

    def decisions_for_tenant(self, tenant_id: str, since: datetime | None = None) -> list[Decision]:
        values: dict[str, Any] = {":t": {"S": tenant_pk(tenant_id)}}
        condition = "tenant_pk = :t"
        if since is not None:
            condition += " AND decided_at_sk >= :since"
            values[":since"] = {"S": since.isoformat()}
        decisions: list[Decision] = []
        for page in self._client.get_paginator("query").paginate(
            TableName=self._table,
            IndexName="ByTenant",
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
        ):
            decisions += [Decision.model_validate_json(decode(i)["decision"]) for i in page.get("Items", [])]
        return decisions

    def all_decisions(self, since: datetime | None = None) -> list[Decision]:
        """Every decision record, with or without a tenant (a scan: the operator's audit view only)."""
        values: dict[str, Any] = {":d": {"S": "DECISION#"}}
        condition = "begins_with(sk, :d)"
        if since is not None:
            condition += " AND sk >= :since"
            values[":since"] = {"S": f"DECISION#{since.isoformat()}"}
        decisions: list[Decision] = []
        for page in self._client.get_paginator("scan").paginate(
            TableName=self._table, FilterExpression=condition, ExpressionAttributeValues=values
        ):
            decisions += [Decision.model_validate_json(decode(i)["decision"]) for i in page.get("Items", [])]
        return decisions

    # -- items -----------------------------------------------------------------------------
    def _put_state(self, state: EndpointState, previous: EndpointState | None) -> TransactWriteItemTypeDef:
        condition = "attribute_not_exists(pk)" if previous is None else "seq = :prev"
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": encode(
                {
                    "pk": endpoint_pk(state.vpc_endpoint_id),
                    "sk": STATE_SK,
                    "item_type": "endpoint_state",
                    "status": state.status,
                    "seq": state.seq,
                    "decision": state.decision.model_dump_json(),
                    "notified": state.notified,
                    "claimed_at": state.claimed_at.isoformat(),
                    "slot_tenant": state.slot_tenant,
                    "tenant_id": state.decision.tenant_id,
                    "service_id": state.decision.service_id,
                    **_unsettled_keys(state),
                }
            ),
            "ConditionExpression": condition,
        }
        if previous is not None:
            put["ExpressionAttributeValues"] = {":prev": {"N": str(previous.seq)}}
        return {"Put": put}  # type: ignore[typeddict-item]

    def _put_record(self, decision: Decision) -> TransactWriteItemTypeDef:
        decided_at = decision.decided_at.isoformat()
        return {
            "Put": {
                "TableName": self._table,
                "Item": encode(
                    {
                        "pk": endpoint_pk(decision.vpc_endpoint_id),
                        "sk": f"DECISION#{decided_at}#{decision.outcome}",
                        "item_type": "decision",
                        "decision": decision.model_dump_json(),
                        "outcome": decision.outcome,
                        "tenant_pk": tenant_pk(decision.tenant_id) if decision.tenant_id else None,
                        "decided_at_sk": f"{decided_at}#{decision.vpc_endpoint_id}",
                    }
                ),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _take_slot(self, slot: Slot, at: datetime) -> list[TransactWriteItemTypeDef]:
        """The slot item and the counter: a constant-size write (REMOVE drops a legacy `endpoints` set)."""
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": key(tenant_pk(slot.tenant_id), QUOTA_SK),
            "UpdateExpression": (
                "SET active = if_not_exists(active, :zero) + :one, item_type = :type REMOVE endpoints"
            ),
            "ExpressionAttributeValues": {":zero": {"N": "0"}, ":one": {"N": "1"}, ":type": {"S": "quota"}},
        }
        if slot.limit is not None:
            update["ConditionExpression"] = "attribute_not_exists(active) OR active < :limit"
            update["ExpressionAttributeValues"][":limit"] = {"N": str(slot.limit)}
            if slot.limit == 0:
                update["ConditionExpression"] = "attribute_not_exists(pk) AND :zero = :one"
        return [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": encode(
                        {
                            "pk": tenant_pk(slot.tenant_id),
                            "sk": slot_sk(slot.vpc_endpoint_id),
                            "item_type": "slot",
                            "taken_at": at.isoformat(),
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Update": update},  # type: ignore[typeddict-item]
        ]

    def _free_slot(self, tenant_id: str, vpc_endpoint_id: str) -> list[TransactWriteItemTypeDef]:
        return [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": key(tenant_pk(tenant_id), slot_sk(vpc_endpoint_id)),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": key(tenant_pk(tenant_id), QUOTA_SK),
                    "UpdateExpression": "SET active = active - :one REMOVE endpoints",
                    "ConditionExpression": "active > :zero",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":zero": {"N": "0"}},
                }
            },
        ]

    def _transact_freeing(
        self,
        items: list[TransactWriteItemTypeDef],
        slot_items: list[TransactWriteItemTypeDef],
        vpc_endpoint_id: str,
    ) -> None:
        """Write a state transition that also frees a quota slot. The slot may already be free (the
        consumer deleted the endpoint and close_connection released it meanwhile): then the
        transition is written alone, instead of failing forever on the slot's condition."""
        cancelled = transact(self._client, [*items, *slot_items])
        if cancelled is not None:
            codes = cancellation_codes(cancelled)
            failed = "ConditionalCheckFailed"
            if not (failed in codes[len(items) :] and failed not in codes[: len(items)]):
                _raise_as_conflict(cancelled, vpc_endpoint_id)
            self._transact_or_conflict(items, vpc_endpoint_id)

    def _transact_or_conflict(self, items: list[TransactWriteItemTypeDef], vpc_endpoint_id: str) -> None:
        cancelled = transact(self._client, items)
        if cancelled is not None:
            _raise_as_conflict(cancelled, vpc_endpoint_id)


def _raise_as_conflict(cancelled: ClientError, vpc_endpoint_id: str) -> NoReturn:
    """A transaction cancelled on a condition is a lost race (WriteConflict); anything else as it is."""
    if "ConditionalCheckFailed" in cancellation_codes(cancelled):
        raise WriteConflict(f"{vpc_endpoint_id} changed while it was being decided") from None
    raise cancelled


def _unless_condition_failed(cancelled: ClientError | None) -> bool:
    """True when the transaction committed; False when its first item's condition failed (the work
    was already done); anything else raises."""
    if cancelled is None:
        return True
    if cancellation_codes(cancelled)[:1] == ["ConditionalCheckFailed"]:
        return False
    raise cancelled


def _unsettled_keys(state: EndpointState) -> dict[str, str]:
    """Sparse-index keys while the state still needs work (see the module docstring)."""
    if state.in_flight or not state.notified:
        return {
            "unsettled_pk": unsettled_partition(state.vpc_endpoint_id),
            "unsettled_sk": f"{state.claimed_at.isoformat()}#{state.vpc_endpoint_id}",
        }
    return {}
