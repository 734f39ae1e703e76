"""The control plane's tenant change requests, by request id: what each was answered.

Keys (TenantChangesTable): `pk=CHANGE#<request_id>` `sk=CHANGE` — `digest` (what the request asked
for), `answer` (the answer's JSON), `expires_at_epoch` (DynamoDB TTL: a request id is remembered for
RETENTION, far longer than any redelivery or retry of the event).

An applied change's entry is written in the same transaction as the tenant record (`entry`), so a
change is never applied twice and never applied without its answer; a refusal is recorded on its own
(`record_refusal`), writing nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gatekeeper.dal.codec import decode, encode, key
from gatekeeper.models.identifiers import now_utc
from gatekeeper.models.tenant_change import ChangeAnswer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

CHANGE_SK = "CHANGE"
RETENTION = timedelta(days=7)


def change_pk(request_id: str) -> str:
    return f"CHANGE#{request_id}"


@dataclass(frozen=True)
class RecordedChange:
    digest: str
    answer: ChangeAnswer


class ChangeLog:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, request_id: str) -> RecordedChange | None:
        response = self._client.get_item(
            TableName=self._table, Key=key(change_pk(request_id), CHANGE_SK), ConsistentRead=True
        )
        if "Item" not in response:
            return None
        item = decode(response["Item"])
        return RecordedChange(str(item["digest"]), ChangeAnswer.model_validate_json(str(item["answer"])))

    def entry(
        self, request_id: str, digest: str, answer: ChangeAnswer, at: datetime | None = None
    ) -> TransactWriteItemTypeDef:
        """The Put that records an applied change, for the tenant write's transaction."""
        return {"Put": self._put(request_id, digest, answer, at)}

    def record_refusal(self, request_id: str, digest: str, answer: ChangeAnswer) -> bool:
        """Record a refusal; False when the request id is recorded already (a duplicate delivery
        answered first: its answer stands)."""
        try:
            self._client.put_item(**self._put(request_id, digest, answer, None))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _put(self, request_id: str, digest: str, answer: ChangeAnswer, at: datetime | None) -> Any:
        expires = int(((at or now_utc()) + RETENTION).timestamp())
        item = {
            "pk": change_pk(request_id),
            "sk": CHANGE_SK,
            "tenant_id": answer.tenant_id,
            "outcome": answer.detail_type,
            "digest": digest,
            "answer": json.dumps(answer.model_dump(mode="json"), sort_keys=True),
            "expires_at_epoch": expires,
        }
        return {
            "TableName": self._table,
            "Item": encode(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
