"""Decision notifications on SNS: the decision document as the body, filterable attributes.

Delivery is at-least-once (SNS's, and a decider that dies after publishing announces again): every
message carries the decision's stable `decision_id`, in the body and as a message attribute, so
subscribers de-duplicate on it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gatekeeper.models.decision import Decision

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

BATCH = 10  # PublishBatch takes at most ten entries


class DecisionNotifier:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, decision: Decision) -> str:
        response = self._client.publish(TopicArn=self._topic_arn, **_message(decision))
        return response["MessageId"]

    def publish_batch(self, decisions: Sequence[Decision]) -> list[str | None]:
        """Publish decisions ten a PublishBatch call. What became of each, in order: None when SNS
        took it, else why it failed ("code: message"). A call that fails raises (the decisions of
        earlier calls were published)."""
        failed: list[str | None] = []
        for start in range(0, len(decisions), BATCH):
            chunk = decisions[start : start + BATCH]
            response = self._client.publish_batch(
                TopicArn=self._topic_arn,
                PublishBatchRequestEntries=[{"Id": str(i), **_message(d)} for i, d in enumerate(chunk)],  # type: ignore[typeddict-item]
            )
            errors = {f["Id"]: f"{f.get('Code')}: {f.get('Message')}" for f in response.get("Failed", [])}
            published = {s["Id"] for s in response.get("Successful", [])}
            failed += [
                errors.get(str(i), None if str(i) in published else "not in SNS's answer")
                for i in range(len(chunk))
            ]
        return failed


def _message(decision: Decision) -> dict[str, Any]:
    attributes = {
        "decision": decision.outcome,
        "tenant_id": decision.tenant_id or "unknown",
        "service_id": decision.service_id,
        "decision_id": decision.decision_id,
    }
    return {
        "Subject": f"PrivateLink connection {decision.vpc_endpoint_id} {decision.outcome}"[:100],
        "Message": json.dumps(decision.model_dump(mode="json")),
        "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    }
