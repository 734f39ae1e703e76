"""moto, faster where its costs grow with the data: same answers, for the sandbox's load runs and
the tests that make thousands of decisions. Each speed-up below says what moto does and what it
does instead (transactions snapshot only the items they touch; parsers, action lookups and
attribute names are computed once). Most tests run moto unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import functools
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
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)
