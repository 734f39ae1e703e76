"""faster_moto keeps DynamoDB's all-or-nothing TransactWriteItems while copying only touched items, and
SQS's answers while counting and deleting messages in one pass."""

import contextlib
import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from gatekeeper.dal.decisions import Slot
from gatekeeper.models.decision import Decision
from gatekeeper.models.errors import QuotaExceeded, TenantConflict, WriteConflict
from gatekeeper.models.tenant import Tenant
from gatekeeper_ops.fast_moto import faster_moto

SERVICE = "vpce-svc-0123456789abcdef0"


@pytest.fixture
def fast(tables):
    with faster_moto():
        yield tables


def scan(tables, name):
    items = tables.client.scan(TableName=tables.names[name])["Items"]
    return sorted(json.dumps(i, sort_keys=True) for i in items)


def decision(endpoint):
    return Decision(
        vpc_endpoint_id=endpoint,
        service_id=SERVICE,
        vpc_endpoint_owner="111111111111",
        tenant_id="acme",
        outcome="accepted",
    )


def test_a_failed_condition_cancels_everything_with_per_item_reasons(fast):
    first = "vpce-00000000000000001"
    fast.decisions.claim(decision(first), "accepting", None, Slot("acme", first, 1))
    before = scan(fast, "DecisionsTableName")
    second = "vpce-00000000000000002"
    with pytest.raises(QuotaExceeded):
        fast.decisions.claim(decision(second), "accepting", None, Slot("acme", second, 1))
    assert scan(fast, "DecisionsTableName") == before
    with pytest.raises(WriteConflict):
        fast.decisions.claim(decision(first), "accepting", None, Slot("acme", first, 5))
    assert scan(fast, "DecisionsTableName") == before


def test_tenant_claims_stay_unique(fast):
    record = {"display_name": "x", "services": (SERVICE,), "template": "standard", "max_endpoints": 1}
    fast.tenants.create(Tenant(tenant_id="acme", principals=("111111111111",), **record), "op")
    before = scan(fast, "TenantsTableName")
    with pytest.raises(TenantConflict, match="claimed by tenant acme"):
        fast.tenants.create(Tenant(tenant_id="globex", principals=("111111111111",), **record), "op")
    assert scan(fast, "TenantsTableName") == before


def test_a_write_that_fails_while_applying_is_undone(fast):
    table = fast.names["DecisionsTableName"]
    with pytest.raises(ClientError, match=r"ValidationException|TransactionCanceled"):
        fast.client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "A"}, "sk": {"S": "1"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "B"}, "sk": {"S": "1"}},
                        # A number minus a string: only detectable while applying.
                        "UpdateExpression": "SET n = :n - :s",
                        "ExpressionAttributeValues": {":n": {"N": "1"}, ":s": {"S": "x"}},
                    }
                },
            ]
        )
    assert fast.client.scan(TableName=table)["Items"] == []


def test_moto_is_restored_afterwards(tables):
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    with faster_moto():
        assert DynamoDBBackend.transact_write_items is not original
    assert DynamoDBBackend.transact_write_items is original


def queue_with_every_kind_of_message(sqs, **attributes):
    url = sqs.create_queue(QueueName="q.fifo" if attributes else "q", Attributes=attributes)["QueueUrl"]
    extra = {"MessageGroupId": "g"} if attributes else {}
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"visible {n}", **extra)
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=300)["Messages"]
    if not attributes:  # FIFO queues take no per-message delay
        sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=600)
    return url, received


@pytest.mark.parametrize(
    "attributes", [{}, {"FifoQueue": "true", "ContentBasedDeduplication": "true"}], ids=["standard", "fifo"]
)
def test_sqs_answers_as_moto_does(attributes):
    answers = []
    for fast in (False, True):
        with mock_aws(), faster_moto() if fast else contextlib.nullcontext():
            sqs = boto3.client("sqs", region_name="us-east-1")
            url, received = queue_with_every_kind_of_message(sqs, **attributes)
            everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            counts = {k: v for k, v in everything.items() if k.startswith("ApproximateNumber")}
            sqs.delete_message(QueueUrl=url, ReceiptHandle=received[1]["ReceiptHandle"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=received[1]["ReceiptHandle"])  # twice: no error
            with pytest.raises(ClientError, match="ReceiptHandleIsInvalid"):
                sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
            after = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
            )
            left = [
                m["Body"]
                for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            ]
            volatile = {"CreatedTimestamp", "LastModifiedTimestamp", "QueueArn"}
            answers.append(
                (
                    {k: v for k, v in everything.items() if k not in volatile},
                    counts,
                    after["Attributes"],
                    left,
                )
            )
    assert answers[0] == answers[1]
    expected = {"standard": ("3", "2", "1"), "fifo": ("3", "2", "0")}["fifo" if attributes else "standard"]
    counts = answers[1][1]
    assert (
        counts["ApproximateNumberOfMessages"],
        counts["ApproximateNumberOfMessagesNotVisible"],
        counts["ApproximateNumberOfMessagesDelayed"],
    ) == expected
