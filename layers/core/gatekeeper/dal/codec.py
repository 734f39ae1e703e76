"""DynamoDB attribute-value encoding shared by the stores (low-level client: cheaper to import)."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return sorted(_from_dynamo(v) for v in value)
    return value


def encode(item: Mapping[str, Any]) -> Item:
    """Plain values → attribute values; None attributes are left out."""
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def decode(item: Mapping[str, Any]) -> Item:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def key(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def cancellation_codes(error: Exception) -> list[str]:
    """Per-item reasons of a TransactionCanceledException ("None" for items that were fine)."""
    response = getattr(error, "response", {}) or {}
    return [r.get("Code", "None") for r in response.get("CancellationReasons", [])]


def error_code(error: Exception) -> str:
    response = getattr(error, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", ""))


# DynamoDB cancels a transaction that meets another one on an item (reason TransactionConflict),
# e.g. the two deciders claiming slots of one tenant's quota item at once; nothing was written, and
# botocore does not retry it. Tried again after a short jittered pause (seconds) instead of failing
# the request into its message's redelivery, minutes later.
CONFLICT_PAUSES: tuple[float, ...] = (0.025, 0.05, 0.1)


def transact(client: DynamoDBClient, items: list[TransactWriteItemTypeDef]) -> ClientError | None:
    """Write `items` in one transaction. None when it commits; the error when DynamoDB cancelled it
    (`cancellation_codes(error)` says why, item by item: the caller decides what a failed condition
    means, and re-raises what it does not handle). Any other failure raises here. A cancellation
    only by conflicting transactions is tried again (CONFLICT_PAUSES) before it is returned."""
    for pause in CONFLICT_PAUSES:
        cancelled = _transact_once(client, items)
        codes = cancellation_codes(cancelled) if cancelled is not None else []
        if "TransactionConflict" not in codes or "ConditionalCheckFailed" in codes:
            return cancelled
        time.sleep(pause * (0.5 + random.random()))  # noqa: S311 - jitter, not a secret
    return _transact_once(client, items)


def _transact_once(client: DynamoDBClient, items: list[TransactWriteItemTypeDef]) -> ClientError | None:
    try:
        client.transact_write_items(TransactItems=items)
    except ClientError as exc:
        if not cancellation_codes(exc):
            raise
        return exc
    return None
