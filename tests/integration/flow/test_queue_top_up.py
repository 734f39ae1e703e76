"""A burst queued behind a full delivery is decided in one invocation: the decider tops the mapping's
ten up from its queue to DecisionBatchSize (100), with one Describe, one Accept and one Reject for all
of them, and deletes what it is done with. What it is not done with (EC2 refused it, its body is no
request) stays in the queue: it comes back after the visibility timeout, and a malformed one goes to
the DLQ by the queue's redrive. The real handlers through the local Lambda service, on the emulator."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from gatekeeper.adapters.decision_queue import DecisionQueue
from gatekeeper_ops.emulator import inject_unsuccessful
from gatekeeper_ops.iam_contract import CallRecorder
from gatekeeper_ops.local_lambda import FunctionTimedOut
from tests.integration.conftest import tenant

from .conftest import ACME, STRANGER

EVALUATE = "EvaluateConnectionFunction"


def queue_counts(producer, logical_id: str) -> tuple[int, int]:
    """(visible, in flight) messages of one of the stack's queues."""
    attributes = producer.client("sqs").get_queue_attributes(
        QueueUrl=producer.stack.physical[logical_id]["Ref"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.mark.consistent_reads
def test_a_burst_behind_a_full_delivery_is_decided_in_one_invocation_and_what_fails_comes_back(
    producer_factory, iam_contract: CallRecorder, monkeypatch
):
    producer = producer_factory(fast=True)()
    service = producer.service.service_id
    producer.add_tenant(tenant("acme", ACME, service, parameters={"MaxEndpoints": 100}, max_endpoints=100))
    producer.settle()
    binding = producer.stack.functions[EVALUATE]
    assert binding.environment["DECISION_BATCH_SIZE"] == "100"
    # The burst reaches the queue before the decider's mapping polls it (as behind a busy mapping).
    monkeypatch.setattr(binding, "sqs_queue_url", None)
    made = [
        producer.consumer(ACME if i % 2 else STRANGER).request_endpoint(producer.service) for i in range(99)
    ]
    producer.settle()
    queue_url = producer.stack.physical["DecisionQueue"]["Ref"]
    producer.client("sqs").send_message(QueueUrl=queue_url, MessageBody="not a bus event")
    assert queue_counts(producer, "DecisionQueue") == (100, 0)
    victim = made[-2]  # acme's, among the last queued: EC2 answers it in Unsuccessful once
    inject_unsuccessful(victim, action="accept", code="InvalidState", account_id=producer.stack.account_id)
    monkeypatch.setattr(binding, "sqs_queue_url", queue_url)
    iam_contract.calls.clear()
    producer.lambdas.pump()

    [invocation] = [i for i in producer.lambdas.invocations if i.function == EVALUATE]
    assert invocation.ok, invocation.error
    delivered = {r["messageId"] for r in invocation.event["Records"]}
    assert len(delivered) == 10
    assert victim not in str(invocation.event)  # both are among those the decider took itself
    assert "not a bus event" not in str(invocation.event)
    assert invocation.result == {"batchItemFailures": []}  # the mapping's ten were all decided
    calls = Counter(f"{c.service}:{c.operation}" for c in iam_contract.calls if c.function == EVALUATE)
    [read, reread] = [c.params for c in iam_contract.calls if c.operation == "DescribeVpcEndpointConnections"]
    assert len(read["Filters"][0]["Values"]) == 99  # the batch's one read: every connection in it
    assert reread["Filters"][0]["Values"] == [victim]  # what EC2 refused is read again (test_batch.py)
    assert calls["ec2:AcceptVpcEndpointConnections"] == 1
    assert calls["ec2:RejectVpcEndpointConnections"] == 1
    assert calls["sqs:ReceiveMessage"] == 9  # 90 taken, ten a call
    assert calls["sqs:DeleteMessageBatch"] == 9  # the 88 taken and done
    assert queue_counts(producer, "DecisionQueue") == (0, 2)  # the victim and the malformed one
    assert [
        e for e in made if not producer.decisions.state(e) or not producer.decisions.state(e).settled
    ] == [victim]
    assert producer.connection_state(victim) == "pendingAcceptance"

    # The queue's visibility timeout later, both come back: the victim is decided, the malformed one
    # fails every delivery and the redrive moves it to the DLQ.
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=211), tick=True):
        producer.settle()
    assert producer.connection_state(victim) in {"pending", "available"}
    assert producer.decisions.state(victim).settled
    assert queue_counts(producer, "DecisionQueue") == (0, 0)
    assert sum(queue_counts(producer, "DecisionQueueDeadLetterQueue")) == 1  # moto moves it in flight


@pytest.mark.consistent_reads
def test_an_invocation_killed_before_it_deletes_what_it_took_leaves_duplicates_that_end_at_once(
    producer_factory, iam_contract: CallRecorder, monkeypatch
):
    producer = producer_factory()()
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id))
    producer.settle()
    binding = producer.stack.functions[EVALUATE]
    queue_url = binding.sqs_queue_url
    monkeypatch.setattr(binding, "sqs_queue_url", None)
    made = [producer.consumer(STRANGER).request_endpoint(producer.service) for _ in range(15)]
    producer.settle()
    assert queue_counts(producer, "DecisionQueue") == (15, 0)

    def killed(self: DecisionQueue, records: list[dict[str, Any]]) -> None:
        raise FunctionTimedOut("the function timeout, after deciding and before deleting")

    delete = DecisionQueue.delete
    monkeypatch.setattr(DecisionQueue, "delete", killed)
    monkeypatch.setattr(binding, "sqs_queue_url", queue_url)
    producer.lambdas.pump()
    [invocation] = [i for i in producer.lambdas.invocations if i.function == EVALUATE]
    assert not invocation.ok
    assert len(invocation.received) == 5
    assert {producer.connection_state(e) for e in made} == {"rejected"}  # decided, then killed

    # The mapping's ten come back now (local Lambda's default timing), the five taken after the
    # visibility timeout: all are duplicates, ended without another EC2 action.
    monkeypatch.setattr(DecisionQueue, "delete", delete)
    iam_contract.calls.clear()
    producer.settle()
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=211), tick=True):
        producer.settle()
    deciders = [i for i in producer.lambdas.invocations if i.function == EVALUATE][1:]
    assert sum(len(i.event["Records"]) for i in deciders) == 15
    assert all(i.ok and i.result == {"batchItemFailures": []} for i in deciders)
    calls = Counter(f"{c.service}:{c.operation}" for c in iam_contract.calls if c.function == EVALUATE)
    assert calls["ec2:DescribeVpcEndpointConnections"] >= 1  # the calls are recorded
    assert calls["ec2:RejectVpcEndpointConnections"] == calls["ec2:AcceptVpcEndpointConnections"] == 0
    assert queue_counts(producer, "DecisionQueue") == (0, 0)
    assert queue_counts(producer, "DecisionQueueDeadLetterQueue") == (0, 0)
