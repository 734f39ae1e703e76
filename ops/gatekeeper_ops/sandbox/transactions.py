"""TransactWriteItems for the sandbox's moto: DynamoDB's semantics without whole-table copies.

moto deep-copies every table a transaction touches, once per action, so that it can roll back;
the copies cost CPU that grows with table size (28 % of a 1,000-request load, each decision slower
than the last) and moto's model tracker keeps them all alive (1.3 GB after 300 decisions).
DynamoDB evaluates every condition of a transaction against the state before it, and a
transaction never touches an item twice; so this version checks every condition first, cancels
with per-item reasons if any fails (nothing written), and only then applies the writes, keeping
copies of just the touched items to undo an apply that fails half-way.
Sandbox only: the tests run moto's own implementation.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.core.model_instances import model_data
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend

Reason = tuple[str | None, str | None, None]


@dataclass(frozen=True)
class _Write:
    kind: str  # Put | Delete | Update | ConditionCheck
    op: dict[str, Any]
    table: str
    key: dict[str, Any]
    before: Any  # the item before the transaction (a copy), or None


def _key(backend: DynamoDBBackend, kind: str, op: dict[str, Any]) -> dict[str, Any]:
    if kind != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _plan(backend: DynamoDBBackend, items: list[dict[str, Any]]) -> list[_Write]:
    """Every write with its condition checked against the state before the transaction."""
    if len(items) > 100:
        raise TooManyTransactionsException()
    plan: list[_Write] = []
    reasons: list[Reason] = []
    seen: set[tuple[str, str]] = set()
    for entry in items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        kind, op = next(iter(entry.items()))
        key = _key(backend, kind, op)
        target = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if target in seen:
            raise MultipleTransactionsException()
        seen.add(target)
        current = backend.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        holds = condition is None or get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current)
        reasons.append(
            (None, None, None)
            if holds
            else ("ConditionalCheckFailed", ConditionalCheckFailed().message, None)
        )
        plan.append(_Write(kind, op, op["TableName"], key, copy.deepcopy(current)))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    return plan


def _apply(backend: DynamoDBBackend, write: _Write) -> None:
    if write.kind == "Put":
        backend.put_item(write.table, write.op["Item"])
    elif write.kind == "Delete":
        backend.delete_item(write.table, write.key)
    elif write.kind == "Update":
        backend.update_item(
            write.table,
            write.key,
            update_expression=write.op["UpdateExpression"],
            expression_attribute_names=write.op.get("ExpressionAttributeNames") or {},
            expression_attribute_values=write.op.get("ExpressionAttributeValues") or {},
        )


def _undo(backend: DynamoDBBackend, write: _Write) -> None:
    if write.before is None:
        backend.delete_item(write.table, write.key)
    else:
        backend.put_item(write.table, write.before.to_json()["Attributes"])


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    try:
        plan = _plan(self, transact_items)
        for done, write in enumerate(plan):
            try:
                _apply(self, write)
            except Exception as exc:
                for applied in reversed(plan[:done]):
                    _undo(self, applied)
                reasons: list[Reason] = [(None, None, None)] * len(plan)
                reasons[done] = (type(exc).__name__, str(exc), None)
                raise TransactionCanceledException(reasons) from exc
    finally:
        # moto's tracker (read only by its dashboard) would keep every item copy alive.
        for model in model_data["dynamodb"].values():
            model.instances_tracked.clear()  # type: ignore[attr-defined]


@contextlib.contextmanager
def item_level_transactions() -> Iterator[None]:
    original = DynamoDBBackend.transact_write_items
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
