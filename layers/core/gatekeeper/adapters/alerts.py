"""Operator alerts on the stack's alarm topic: things a person has to fix, said in words.

The alarm topic (not the decision topic) because its subscribers are operators — the decision
topic carries decision documents that tenants subscribe to, filtered on their tenant id.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from gatekeeper.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class OperatorAlerts:
    def __init__(self, client: SNSClient | None, topic_arn: str | None) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def invalid_tenant_record(self, tenant_id: str, problem: str, effect: str) -> None:
        """A tenant record that does not validate (e.g. edited by hand): what is wrong, what we did."""
        subject = f"vpce-gatekeeper: tenant record {tenant_id} is invalid"
        body = {
            "alert": "TenantRecordInvalid",
            "tenant_id": tenant_id,
            "problem": problem,
            "effect": effect,
            "fix": (
                f"`gatekeeper tenants repair {tenant_id}` shows each problem and the fix it writes, "
                "keeping the record's claims; its held requests are then decided again"
            ),
        }
        logger.error("Tenant record is invalid", extra=body)
        if self._client is None or self._topic_arn is None:
            return
        self._client.publish(
            TopicArn=self._topic_arn,
            Subject=subject[:100],
            Message=json.dumps(body),
            MessageAttributes={"alert": {"DataType": "String", "StringValue": "TenantRecordInvalid"}},
        )
