"""The plain baseline `make bench` compares the project with: what a straightforward gatekeeper
would be — one function on the connection-notification queue, per notification:

    DescribeVpcEndpointConnections → GetItem tenant (by account) → Accept or Reject
    → PutItem decision record → Publish to the decision topic

No policy templates (an active tenant is accepted, anyone else rejected), no quota, no
exactly-once (a duplicate notification of a connection still pendingAcceptance is decided again),
no EventBridge hop, no reconciler. It reads `Unsuccessful` (cheap, and ignoring it is a bug, not a
simplification) and retries a connection EC2 does not show yet through the batch-item failure.

It runs on the same embedded stack as the project (the stack's notification queue and decision
topic; two tables of its own), fed by a delivery loop that does what the local Lambda service
does for an SQS event source. Not a design to copy: the bar the project's overhead is measured
against.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from gatekeeper_ops.emulator import deliver_notifications
from gatekeeper_ops.local_lambda import sqs_records

TENANTS_TABLE = "baseline-tenants"
DECISIONS_TABLE = "baseline-decisions"


class ConnectionNotYetVisible(Exception):
    """EC2 is eventually consistent: the notification came before Describe shows the connection."""


@dataclass
class PlainGatekeeper:
    ec2: Any
    dynamodb: Any
    sns: Any
    topic_arn: str

    @classmethod
    def from_default_session(cls, topic_arn: str) -> PlainGatekeeper:
        """Clients as a function builds them at init (boto3's default session)."""
        return cls(boto3.client("ec2"), boto3.client("dynamodb"), boto3.client("sns"), topic_arn)

    def handler(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """SQS batch → partial batch response."""
        failures = []
        for record in event["Records"]:
            try:
                self.on_notification(record["body"])
            except Exception:  # retried by SQS, then its DLQ
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def on_notification(self, body: str) -> str | None:
        """Decide the connection a notification names; None when it is not waiting for a decision."""
        message = json.loads(body)
        if "Message" in message:  # the SNS envelope (no raw delivery)
            message = json.loads(message["Message"])
        endpoint, service = message["VpcEndpointId"], message["ServiceId"]
        found = self.ec2.describe_vpc_endpoint_connections(
            Filters=[{"Name": "vpc-endpoint-id", "Values": [endpoint]}]
        )["VpcEndpointConnections"]
        if not found:
            raise ConnectionNotYetVisible(endpoint)
        connection = found[0]
        if connection["VpcEndpointState"].lower() != "pendingacceptance":
            return None  # already decided, or gone: the Accept/Reject/Delete notifications
        owner = connection["VpcEndpointOwner"]
        tenant = self.dynamodb.get_item(
            TableName=TENANTS_TABLE, Key={"account_id": {"S": owner}}, ConsistentRead=True
        ).get("Item")
        active = tenant is not None and tenant["status"]["S"] == "active"
        decision = "accepted" if active else "rejected"
        act = self.ec2.accept_vpc_endpoint_connections if active else self.ec2.reject_vpc_endpoint_connections
        unsuccessful = act(ServiceId=service, VpcEndpointIds=[endpoint]).get("Unsuccessful", [])
        if unsuccessful:
            raise RuntimeError(f"{decision} {endpoint} failed: {unsuccessful}")
        tenant_id = tenant["tenant_id"]["S"] if tenant else ""
        decided_at = datetime.now(UTC).isoformat()
        self.dynamodb.put_item(
            TableName=DECISIONS_TABLE,
            Item={
                "vpc_endpoint_id": {"S": endpoint},
                "decided_at": {"S": decided_at},
                "decision": {"S": decision},
                "tenant_id": {"S": tenant_id},
                "service_id": {"S": service},
                "owner": {"S": owner},
            },
        )
        document = {
            "vpc_endpoint_id": endpoint,
            "service_id": service,
            "owner": owner,
            "tenant_id": tenant_id,
            "decision": decision,
            "decided_at": decided_at,
        }
        self.sns.publish(
            TopicArn=self.topic_arn,
            Message=json.dumps(document),
            MessageAttributes={
                "decision": {"DataType": "String", "StringValue": decision},
                "tenant_id": {"DataType": "String", "StringValue": tenant_id or "unknown"},
                "service_id": {"DataType": "String", "StringValue": service},
            },
        )
        return decision


def create_tables(dynamodb: Any, tenants: dict[str, tuple[str, str]]) -> None:
    """The baseline's two tables; `tenants` maps an account id to (tenant id, status)."""
    for name, key in ((TENANTS_TABLE, ["account_id"]), (DECISIONS_TABLE, ["vpc_endpoint_id", "decided_at"])):
        dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": k, "KeyType": "HASH" if i == 0 else "RANGE"} for i, k in enumerate(key)
            ],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in key],
        )
    for account, (tenant_id, status) in tenants.items():
        dynamodb.put_item(
            TableName=TENANTS_TABLE,
            Item={"account_id": {"S": account}, "tenant_id": {"S": tenant_id}, "status": {"S": status}},
        )


@dataclass
class Invocation:
    seconds: float
    ok: bool


class SqsDelivery:
    """What Lambda's SQS event source mapping does (as gatekeeper_ops.local_lambda does it): receive
    up to a batch, invoke, delete what succeeded, make the failures visible again."""

    def __init__(self, sqs: Any, queue_url: str, handler: Any, batch_size: int = 10) -> None:
        self.sqs, self.queue_url, self.handler, self.batch_size = sqs, queue_url, handler, batch_size
        self.arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.invocations: list[Invocation] = []

    def pump(self) -> int:
        deliver_notifications()  # what the emulator holds back (eventual consistency), as SNS would send it
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            return 0
        records = sqs_records(messages, self.arn, self.sqs.meta.region_name)
        started = time.perf_counter()
        try:
            result, ok = self.handler({"Records": records}, None), True
        except Exception:  # the whole batch is retried, as Lambda does
            result, ok = {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}, False
        self.invocations.append(Invocation(time.perf_counter() - started, ok))
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        done = [m["ReceiptHandle"] for m in messages if m["MessageId"] not in failed]
        if done:  # one DeleteMessageBatch, as Lambda's event source mapping (and local_lambda) does
            entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(done)]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        return len(messages)

    def drain(self, max_rounds: int = 1000) -> int:
        total = 0
        for _ in range(max_rounds):
            delivered = self.pump()
            if not delivered:
                return total
            total += delivered
        raise RuntimeError(f"notifications still flowing after {max_rounds} rounds")
