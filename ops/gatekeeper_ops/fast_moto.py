"""moto, faster where its costs grow with the data: same answers, for the sandbox's load runs and
the tests that make thousands of decisions. Each speed-up below says what moto does and what it
does instead (transactions snapshot only the items they touch; parsers, action lookups and
attribute names are computed once). Most tests run moto unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import time
import types
from collections.abc import Iterator
from typing import Any

import jsonpath_ng.ext
import moto.core.responses as core_responses
import moto.core.utils as core_utils
import moto.dynamodb.models as dynamodb_models
import moto.sqs.models as sqs_models
from moto.dynamodb.models.table import Table
from moto.sqs.exceptions import ReceiptHandleIsInvalid

_original_transact = dynamodb_models.DynamoDBBackend.transact_write_items


def _deepcopy_but_tables(value: Any, memo: Any = None) -> Any:
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


# `copy` as moto.dynamodb.models sees it: tables are no longer copied wholesale.
_copy = types.SimpleNamespace(**{name: getattr(copy, name) for name in ("copy", "Error")})
_copy.deepcopy = _deepcopy_but_tables


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto deep-copies every table a transaction touches to be able to roll back (O(table size)
    per decision, and its model tracker kept the copies: 1.3 GB after 300 sandbox decisions). This
    snapshots only the items the transaction touches, and the stream records it appends, and puts
    them back on failure: the same all-or-nothing answer."""
    touched: list[tuple[Table, Any, Any, Any]] = []
    streams: dict[str, tuple[Any, int]] = {}
    for entry in transact_items:
        _, operation = next(iter(entry.items()))
        table = self.tables.get(operation.get("TableName"))
        if table is None:
            continue
        if "Key" in operation:
            raw_key = operation["Key"]
        else:
            names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
            raw_key = {n: operation["Item"][n] for n in names if n in operation.get("Item", {})}
        try:
            hash_value, range_value = self.get_keys_value(table, raw_key)
        except Exception:  # noqa: S112 - a malformed key: moto's own call reports it
            continue
        before = copy.deepcopy(table.get_item(hash_value, range_value))
        touched.append((table, hash_value, range_value, before))
        if table.stream_shard is not None:
            streams.setdefault(table.name, (table.stream_shard, len(table.stream_shard.items)))
    try:
        _original_transact(self, transact_items)
    except Exception:
        for table, hash_value, range_value, before in reversed(touched):
            if range_value is not None:
                table.items[hash_value].pop(range_value, None)
                if before is not None:
                    table.items[hash_value][range_value] = before
            else:
                table.items.pop(hash_value, None)
                if before is not None:
                    table.items[hash_value] = before
        for shard, length in streams.values():
            del shard.items[length:]
        raise


def _unix_time(dt: Any = None) -> float:
    """SQS checks every message's visibility on every send and receive, building datetimes to
    compute "now"; `time.time()` is the same epoch seconds for a fraction of the cost."""
    return time.time() if dt is None else _moto_unix_time(dt)


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


_moto_unix_time = sqs_models.unix_time  # type: ignore[attr-defined]

_moto_method_names = core_utils.method_names_from_class
_method_names_by_class: dict[type, list[str]] = {}


def _method_names_from_class(clazz: Any) -> list[str]:
    """moto's method_names_from_class, once per class (its result is only read)."""
    names = _method_names_by_class.get(clazz)
    if names is None:
        names = _method_names_by_class[clazz] = _moto_method_names(clazz)
    return names


def _counts(queue: Any) -> tuple[int, int, int]:
    """(visible, delayed, in flight) in one pass at one instant; moto reads the clock twice per
    message for each of the three."""
    now = _unix_time() * 1000.0
    visible = delayed = in_flight = 0
    for message in queue._messages:
        is_delayed = now < message.delayed_until
        delayed += is_delayed
        if now <= message.visible_at:
            in_flight += 1
        elif not is_delayed:
            visible += 1
    return visible, delayed, in_flight


def _queue_attributes(self: Any) -> dict[str, Any]:
    """moto's Queue.attributes, with its three counts taken in one pass (`_counts`): moto counts the
    queue's messages three times over, and SQS reads the attributes on every send (content-based
    deduplication, the retention period), which makes a burst's sends quadratic in the queue's depth."""
    visible, delayed, in_flight = _counts(self)
    counted = {
        "ApproximateNumberOfMessages": visible,
        "ApproximateNumberOfMessagesDelayed": delayed,
        "ApproximateNumberOfMessagesNotVisible": in_flight,
    }
    names = list(self.BASE_ATTRIBUTES)
    if self.fifo_queue:
        names += self.FIFO_ATTRIBUTES
    if self.kms_master_key_id:
        names += self.KMS_ATTRIBUTES
    result: dict[str, Any] = {
        name: counted[name] if name in counted else getattr(self, _camelcase_to_underscores(name))
        for name in names
    }
    if self.policy:
        result["Policy"] = self.policy
    if self.redrive_policy:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy)
    return {key: str(value).lower() if isinstance(value, bool) else value for key, value in result.items()}


def _retained(self: Any, queue_name: str, message: Any) -> bool:
    """moto's SQSBackend.is_message_valid_based_on_retention_period, reading the one attribute it
    needs instead of building all of them three times (on every send and receive)."""
    retention_period = self.get_queue(queue_name).message_retention_period
    return bool(int(retention_period) + message.sent_timestamp / 1000 > _unix_time())


def _delete_message(self: Any, receipt_handle: str) -> None:
    """moto's Queue.delete_message scans the whole queue twice and builds each message's list of
    receipt handles; this stops at the message (the oldest are deleted first, and sit first)."""
    if receipt_handle in self.deleted_messages:
        return
    for index, message in enumerate(self._messages):
        if message.receipt_handle == receipt_handle or receipt_handle in message._old_receipt_handles:
            del self._messages[index]
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)
            return
    raise ReceiptHandleIsInvalid()


# SQS converts each attribute name from camelCase for every message it receives: a pure function.
_camelcase_to_underscores = functools.cache(core_utils.camelcase_to_underscores)


@contextlib.contextmanager
def faster_moto() -> Iterator[None]:
    """Apply the speed-ups for the duration of the block (in this process; moto's server too)."""
    from moto.core.model_instances import model_data

    def transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
        try:
            _transact_write_items(self, transact_items)
        finally:
            # moto's tracker (read only by its dashboard) would keep every item copy alive.
            for model in model_data["dynamodb"].values():
                model.instances_tracked.clear()  # type: ignore[attr-defined]

    patches = [
        (dynamodb_models, "copy", _copy),
        (dynamodb_models.DynamoDBBackend, "transact_write_items", transact),
        # EventBridge → SQS targets built a JSONPath parser per delivered event; parses are immutable.
        (jsonpath_ng.ext, "parse", functools.cache(jsonpath_ng.ext.parse)),  # type: ignore[attr-defined]
        (sqs_models, "unix_time", _unix_time),
        (sqs_models, "unix_time_millis", _unix_time_millis),
        (core_responses, "method_names_from_class", _method_names_from_class),
        (core_responses, "camelcase_to_underscores", _camelcase_to_underscores),
        (sqs_models, "camelcase_to_underscores", _camelcase_to_underscores),
        (sqs_models.Queue, "attributes", property(_queue_attributes)),
        (sqs_models.Queue, "delete_message", _delete_message),
        (sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", _retained),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)
