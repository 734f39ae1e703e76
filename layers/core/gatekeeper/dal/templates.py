"""Versioned, immutable endpoint-policy templates.

Keys (TemplatesTable): `pk=TEMPLATE#<name>`, `sk=V#<version:06d>`. A version is written once with
`attribute_not_exists`; pushing a template stores the next version. The stored document is the
JSON text the operator pushed, parsed again on every read so a bad edit is caught where it is used.

The decision path reads through `cached`: a stored version never changes, so a container keeps every
version it has read; which version is the latest is kept for `LATEST_TTL_SECONDS` only, so a pushed
version (CLI or console) governs new decisions within that time. A tenant that pins a version gets
exactly that version, always.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gatekeeper.dal.codec import decode, encode, error_code
from gatekeeper.models.errors import TemplateNotFound, WriteConflict
from gatekeeper.models.identifiers import now_utc

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from gatekeeper.policy import PolicyTemplate


# How long a container trusts which version is a template's latest (docs/how-it-decides.md, step 4).
LATEST_TTL_SECONDS = 30.0


def template_pk(name: str) -> str:
    return f"TEMPLATE#{name}"


def version_sk(version: int) -> str:
    return f"V#{version:06d}"


@dataclass(frozen=True)
class StoredTemplate:
    name: str
    version: int
    document: dict[str, Any]
    created_by: str
    created_at: str
    # The parsed template, once parse() succeeded: this object is one read of one stored version (the
    # store's cache keeps it per container), so its document is parsed once, not at every decision.
    _parsed: PolicyTemplate | None = field(default=None, init=False, repr=False, compare=False)

    def parse(self) -> PolicyTemplate:
        """The validated template; raises TemplateInvalid naming the stored version."""
        if self._parsed is not None:
            return self._parsed
        # Imported here: close_connection reaches this store through the decision service and never
        # parses a template, so the policy engine stays off its cold start.
        from gatekeeper.policy import TemplateInvalid, parse_template

        try:
            parsed = parse_template(self.document)
        except TemplateInvalid as exc:
            raise TemplateInvalid(
                [f"template {self.name} v{self.version}: {problem}" for problem in exc.problems]
            ) from None
        object.__setattr__(self, "_parsed", parsed)  # frozen dataclass: a cache, not state
        return parsed


def _stored(item: dict[str, Any]) -> StoredTemplate:
    try:
        document = json.loads(item["document"])
    except (KeyError, TypeError, ValueError):
        document = {}
    return StoredTemplate(
        name=str(item.get("name", "")),
        version=int(item.get("version", 0)),
        document=document if isinstance(document, dict) else {},
        created_by=str(item.get("created_by", "")),
        created_at=str(item.get("created_at", "")),
    )


class TemplateStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        latest_ttl_seconds: float = LATEST_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._table = table
        self._latest_ttl = latest_ttl_seconds
        self._monotonic = monotonic
        self._versions: dict[tuple[str, int], StoredTemplate] = {}
        self._latest: dict[str, tuple[float, StoredTemplate]] = {}

    def cached(self, name: str, version: int | None = None) -> StoredTemplate:
        """`get` for the decision path: a stored version is immutable, so it is read once per
        container; the latest version is looked up again after `LATEST_TTL_SECONDS`."""
        now = self._monotonic()
        if version is not None:
            stored = self._versions.get((name, version))
            if stored is None:
                stored = self._versions[(name, version)] = self.get(name, version)
            return stored
        latest = self._latest.get(name)
        if latest is not None and now < latest[0]:
            return latest[1]
        stored = self.get(name)
        self._versions[(name, stored.version)] = stored
        self._latest[name] = (now + self._latest_ttl, stored)
        return stored

    def get(self, name: str, version: int | None = None) -> StoredTemplate:
        """A pinned version, or the latest one."""
        values: dict[str, Any] = {":pk": {"S": template_pk(name)}}
        condition = "pk = :pk"
        if version is not None:
            condition += " AND sk = :sk"
            values[":sk"] = {"S": version_sk(version)}
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=1,
        )
        items = response.get("Items", [])
        if not items:
            which = f"version {version} of " if version is not None else ""
            raise TemplateNotFound(f"no {which}template {name!r}; push it with `gatekeeper templates push`")
        return _stored(decode(items[0]))

    def versions(self, name: str) -> list[StoredTemplate]:
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": template_pk(name)}},
        )
        return [_stored(decode(item)) for item in response.get("Items", [])]

    def latest(self) -> list[StoredTemplate]:
        """The latest version of every template."""
        newest: dict[str, StoredTemplate] = {}
        for page in self._client.get_paginator("scan").paginate(TableName=self._table):
            for item in page.get("Items", []):
                stored = _stored(decode(item))
                if stored.name not in newest or newest[stored.name].version < stored.version:
                    newest[stored.name] = stored
        return [newest[name] for name in sorted(newest)]

    def push(self, document: dict[str, Any], actor: str, at: datetime | None = None) -> StoredTemplate:
        """Validate, then store as the next version. Never overwrites a stored version."""
        from gatekeeper.policy import parse_template

        template = parse_template(document)
        try:
            version = self.get(template.name).version + 1
        except TemplateNotFound:
            version = 1
        stored = StoredTemplate(
            name=template.name,
            version=version,
            document=document,
            created_by=actor,
            created_at=(at or now_utc()).isoformat(),
        )
        try:
            self._client.put_item(
                TableName=self._table,
                Item=encode(
                    {
                        "pk": template_pk(stored.name),
                        "sk": version_sk(version),
                        "name": stored.name,
                        "version": version,
                        "document": json.dumps(document, sort_keys=True),
                        "created_by": actor,
                        "created_at": stored.created_at,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise WriteConflict(
                    f"template {stored.name} v{version} was pushed by someone else meanwhile; push again"
                ) from None
            raise
        return stored
