"""Decision notifications on SNS: the decision document as the body, filterable attributes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from gatekeeper.models.decision import Decision

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class DecisionNotifier:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, decision: Decision) -> str:
        attributes = {
            "decision": decision.outcome,
            "tenant_id": decision.tenant_id or "unknown",
            "service_id": decision.service_id,
        }
        response = self._client.publish(
            TopicArn=self._topic_arn,
            Subject=f"PrivateLink connection {decision.vpc_endpoint_id} {decision.outcome}"[:100],
            Message=json.dumps(decision.model_dump(mode="json")),
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
        return response["MessageId"]
