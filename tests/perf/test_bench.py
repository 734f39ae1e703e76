"""`make bench` cannot rot: its call counting, outcomes, baseline and A/B runs at a tiny size.
Counts and outcomes are asserted, never a time (the numbers are for the notes, not a gate)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.perf import outcomes, throughput
from tests.perf.harness import ENTITLED, SUSPENDED, BenchStack, bench_stack, partition_scoped_queries

pytestmark = pytest.mark.xdist_group("bench")  # one xdist worker: the module's stack is built once


@pytest.fixture(scope="module")
def stack() -> Iterator[BenchStack]:
    with bench_stack() as embedded:
        yield embedded


def test_every_outcome_is_decided_as_labelled_and_its_calls_counted(stack: BenchStack) -> None:
    measured = outcomes.calls_per_outcome(stack)  # raises when a request gets another decision

    assert list(measured) == [outcome.label for outcome in outcomes.OUTCOMES]
    for label, calls in measured.items():
        # One decision each, announced once on SNS and on the bus, read from EC2 first.
        assert calls["sns:PublishBatch"] == 1, label
        assert calls["events:PutEvents"] >= 2, label
        assert calls["ec2:DescribeVpcEndpointConnections"] >= 1, label
    accepted, suspended, unknown, held = measured.values()
    assert accepted["ec2:AcceptVpcEndpointConnections"] == 1
    assert suspended["ec2:RejectVpcEndpointConnections"] == unknown["ec2:RejectVpcEndpointConnections"] == 1
    assert "ec2:AcceptVpcEndpointConnections" not in held
    assert "ec2:RejectVpcEndpointConnections" not in held


def test_the_baseline_makes_the_plain_calls_and_decides_like_the_project(stack: BenchStack) -> None:
    match = throughput.Match(stack)
    accounts = [ENTITLED, ENTITLED, SUSPENDED]

    stack.calls.clear()
    plain = match.run(match.baseline, accounts, burst=3)
    plain_calls = Counter(stack.calls.counts)
    project = match.run(match.project, accounts, burst=3)

    for run in (plain, project):
        assert run.wrong == [], run.implementation
        assert run.outcomes == Counter(accepted=2, rejected=1), run.implementation
        assert run.decisions == len(run.latencies) == 3
        assert run.calls > 0
        assert run.wall >= run.handler > 0
    # Per decision: Describe, GetItem, Accept|Reject, PutItem, Publish; the Reject's notification
    # costs one more Describe (the stack subscribes to Connect, Reject and Delete).
    assert plain_calls == Counter(
        {
            "ec2:DescribeVpcEndpointConnections": 4,
            "dynamodb:GetItem": 3,
            "ec2:AcceptVpcEndpointConnections": 2,
            "ec2:RejectVpcEndpointConnections": 1,
            "dynamodb:PutItem": 3,
            "sns:Publish": 3,
        }
    )
    assert plain.calls == 16
    # The project's bookkeeping (claims, records, announced marks) costs calls the baseline does not
    # make, but its decider shares the reads, EC2 actions and announcements of a batch: never more
    # than one request alone costs (9), and in a burst about what the baseline spends.
    assert 0 < project.calls <= 9 * project.decisions


def test_partition_scoped_queries_answer_what_moto_answers() -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        for pk in ("a", "b", "c"):
            for n in range(7):
                dynamodb.put_item(TableName="t", Item={"pk": {"S": pk}, "sk": {"S": f"SLOT#{n}"}})

        def query(pk: str, **extra: object) -> list[object]:
            pages = dynamodb.get_paginator("query").paginate(
                TableName="t",
                KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
                ExpressionAttributeValues={":pk": {"S": pk}, ":s": {"S": "SLOT#"}},
                **extra,
            )
            return [item for page in pages for item in page["Items"]]

        asked = [("b", {}), ("b", {"Limit": 3}), ("b", {"ScanIndexForward": False, "Limit": 2}), ("zz", {})]
        plain = [query(pk, **extra) for pk, extra in asked]
        with partition_scoped_queries():
            scoped = [query(pk, **extra) for pk, extra in asked]

    assert scoped == plain
    assert len(plain[0]) == 7
    assert plain[3] == []
