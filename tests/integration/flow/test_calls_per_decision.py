"""How many AWS API calls one request costs, end to end in the handlers (issue 11): consumer
CreateVpcEndpoint → notification → ingest → bus → evaluate → EC2 → SNS + bus "Decided" (and
whatever EC2's own notifications of the decision then cause).

Every call a handler makes is recorded (the IAM contract's recorder). A warm container (clients
built, the template and the account's tenant seen by a first request of the same kind) decides one
request of each outcome; the exact count and its breakdown per function and operation are pinned,
so a change that adds a call fails here and says which. With consistent EC2 reads nothing is read
twice; with the emulator's read lag, what one re-read adds is pinned too.
"""

from __future__ import annotations

from collections import Counter

import pytest

from gatekeeper_ops.iam_contract import CallRecorder
from gatekeeper_ops.sandbox.account import ProducerAccount

from .conftest import ACME, GLOBEX, STRANGER

INGEST = "IngestNotificationsFunction"
EVALUATE = "EvaluateConnectionFunction"
# What every decided request costs: the notification put on the bus by id (the decider reads EC2
# itself), then EC2 read once, and the endpoint state + tenant claim + tenant record + quota counter
# read in one BatchGetItem.
READS = {
    f"{INGEST} events:PutEvents": 1,
    f"{EVALUATE} ec2:DescribeVpcEndpointConnections": 1,
    f"{EVALUATE} dynamodb:BatchGetItem": 1,
}
# Carried out in EC2: claim (+ quota slot), the action, the record, both announcements. EC2's own
# Accept/Reject notification of it costs nothing.
EXECUTED = {
    f"{EVALUATE} dynamodb:TransactWriteItems": 2,
    f"{EVALUATE} sns:PublishBatch": 1,
    f"{EVALUATE} events:PutEvents": 1,
}
EXPECTED = {
    # Recorded, announced, then marked notified: an accept is on record before anyone hears of it
    # (EC2 cannot confirm one later once the consumer deletes the endpoint).
    "accepted": {
        **READS,
        **EXECUTED,
        f"{EVALUATE} ec2:AcceptVpcEndpointConnections": 1,
        f"{EVALUATE} dynamodb:UpdateItem": 1,
    },
    # Announced, then recorded with `notified` in the same write: every closed state EC2 can show
    # later confirms a reject.
    "rejected": {**READS, **EXECUTED, f"{EVALUATE} ec2:RejectVpcEndpointConnections": 1},
    # No EC2 action: the hold and its record in one transaction, announced, then marked notified.
    "held": {
        **READS,
        f"{EVALUATE} dynamodb:TransactWriteItems": 1,
        f"{EVALUATE} sns:PublishBatch": 1,
        f"{EVALUATE} events:PutEvents": 1,
        f"{EVALUATE} dynamodb:UpdateItem": 1,
    },
}
LIMITS = {"accepted": 9, "rejected": 8, "held": 7}  # issue 11's goals


def request(producer: ProducerAccount, account: str, region: str | None) -> str:
    consumer = producer.consumer(account, region)
    endpoint = consumer.request_endpoint(producer.service, service_region=producer.stack.region)
    producer.settle()
    return endpoint


@pytest.mark.consistent_reads
@pytest.mark.parametrize(
    ("account", "region", "outcome", "reason"),
    [
        (ACME, None, "accepted", "Accept"),
        (GLOBEX, None, "rejected", "TenantSuspended"),
        (STRANGER, None, "rejected", "UnknownPrincipal"),
        (ACME, "us-west-2", "held", "OtherRegion"),
    ],
    ids=["accepted", "rejected-suspended", "rejected-unknown-account", "held"],
)
def test_calls_per_decision(tenants, iam_contract: CallRecorder, account, region, outcome, reason):
    request(tenants, account, region)  # warm: clients built, template and tenant seen
    iam_contract.calls.clear()
    endpoint = request(tenants, account, region)
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert (decision.outcome, decision.reasons) == (outcome, (reason,))
    calls = Counter(f"{c.function} {c.service}:{c.operation}" for c in iam_contract.calls)
    assert dict(calls) == EXPECTED[outcome]
    assert calls.total() <= LIMITS[outcome]
    state = tenants.decisions.state(endpoint)
    assert state is not None
    assert state.settled  # recorded and announced: nothing left to sweep


def test_calls_when_ec2_lists_the_connection_at_the_second_read(
    tenants, iam_contract: CallRecorder, decider_waits
):
    # EC2's read lag on (the emulator's: the first Describe after the notification misses it): one
    # more Describe after a 0.2 s pause, and the tables read again with the owner's tenant, in the
    # same invocation. No failed invocation, no retry.
    request(tenants, ACME, None)
    iam_contract.calls.clear()
    decider_waits.clear()
    endpoint = request(tenants, ACME, None)
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert decision.outcome == "accepted"
    calls = Counter(f"{c.function} {c.service}:{c.operation}" for c in iam_contract.calls)
    assert dict(calls) == {
        **EXPECTED["accepted"],
        f"{EVALUATE} ec2:DescribeVpcEndpointConnections": 2,
        f"{EVALUATE} dynamodb:BatchGetItem": 2,
    }
    assert decider_waits == [0.2]
    evaluated = [i for i in tenants.lambdas.invocations if i.function == EVALUATE]
    assert [i.ok for i in evaluated] == [True, True]  # the warm-up's and this one's: both first tries
