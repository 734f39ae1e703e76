"""Lambda's concurrency as the local Lambda service models it under the burst's conductor: each
invocation's sleeps delay only itself, the function timeout is enforced on virtual time, an SQS
mapping runs at most ScalingConfig.MaximumConcurrency batches at once, each of up to BatchSize
gathered within MaximumBatchingWindowInSeconds, and a fan-out (the decider's writes at once) forks
child tasks and joins them. A stand-in handler (below) records what it got."""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from collections.abc import Iterator
from functools import partial
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gatekeeper.wiring import services
from gatekeeper_ops.burst.conductor import Conductor
from gatekeeper_ops.local_lambda import FunctionTimedOut, LocalLambda
from gatekeeper_ops.stack import EmulatedStack, FunctionBinding

SEEN: list[dict[str, Any]] = []  # what the stand-in handler was given, and when


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Works `seconds` (virtual) per batch; a batch is running from its start to its end."""
    started = conductor().elapsed
    seconds = json.loads(event["Records"][0]["body"])["seconds"]
    services.sleep(seconds)
    SEEN.append({"size": len(event["Records"]), "started": started, "ended": conductor().elapsed})
    return {"batchItemFailures": []}


_CONDUCTOR: list[Conductor] = []


def conductor() -> Conductor:
    return _CONDUCTOR[-1]


@contextlib.contextmanager
def world() -> Iterator[tuple[Conductor, Any, str]]:
    SEEN.clear()
    clock = Conductor()
    _CONDUCTOR.append(clock)
    saved = dict(os.environ)
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    try:
        with clock.running(), mock_aws():
            sqs = boto3.Session(region_name="us-east-1").client("sqs")
            url = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "180"})["QueueUrl"]
            yield clock, sqs, url
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _CONDUCTOR.pop()


def local_lambda(url: str, **binding: Any) -> LocalLambda:
    stack = EmulatedStack("s", "us-east-1", "123456789012", {})
    stack.functions["Work"] = FunctionBinding(
        "Work", "tests.chaos.test_concurrency", "handler", {}, timeout=30, sqs_queue_url=url, **binding
    )
    return LocalLambda(stack, boto3.Session(region_name="us-east-1"), concurrency=conductor())


def run(clock: Conductor, lambdas: LocalLambda, until: float) -> None:
    while clock.elapsed < until:
        lambdas.pump()
        clock.run_until(clock.elapsed + 0.05)


def send(sqs: Any, url: str, count: int, seconds: float) -> None:
    for first in range(0, count, 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps({"seconds": seconds})}
            for i in range(min(10, count - first))
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def overlapping(seen: list[dict[str, Any]]) -> int:
    """The most batches running at one instant."""
    return max(sum(1 for o in seen if o["started"] <= s["started"] < o["ended"]) for s in seen)


def test_an_sqs_mapping_runs_at_most_maximum_concurrency_batches_of_batch_size():
    with world() as (clock, sqs, url):
        lambdas = local_lambda(url, sqs_batch_size=5, sqs_maximum_concurrency=2)
        send(sqs, url, 30, seconds=2.0)
        run(clock, lambdas, until=20)

    assert sum(s["size"] for s in SEEN) == 30
    assert {s["size"] for s in SEEN} == {5}
    assert overlapping(SEEN) == 2
    assert max(s["ended"] for s in SEEN) >= 3 * 2.0  # 6 batches, two at a time, 2 s each


def test_without_maximum_concurrency_lambdas_pollers_start_at_five():
    with world() as (clock, sqs, url):
        lambdas = local_lambda(url, sqs_batch_size=1)
        send(sqs, url, 20, seconds=5.0)
        run(clock, lambdas, until=0.5)

    assert SEEN == []
    assert lambdas.in_flight["Work"] == 5


def test_a_short_batch_waits_out_the_batching_window():
    with world() as (clock, sqs, url):
        lambdas = local_lambda(url, sqs_batch_size=50, sqs_batching_window=3.0)
        send(sqs, url, 4, seconds=0.0)
        run(clock, lambdas, until=1.0)
        send(sqs, url, 6, seconds=0.0)
        run(clock, lambdas, until=5.0)

    assert [s["size"] for s in SEEN] == [10]
    assert SEEN[0]["started"] == pytest.approx(3.0, abs=0.2)


def test_one_invocations_sleep_delays_only_itself_and_the_timeout_is_virtual():
    finished: list[tuple[str, float]] = []

    def invocation(name: str, seconds: float, timeout: float) -> None:
        try:
            with conductor().function_timeout(timeout):
                services.sleep(seconds)
            finished.append((name, conductor().elapsed))
        except FunctionTimedOut:
            finished.append((f"{name} timed out", conductor().elapsed))

    with world() as (clock, _, _):
        clock.dispatch(lambda: invocation("slow", 20.0, 30))
        clock.dispatch(lambda: invocation("quick", 1.0, 30))
        clock.dispatch(lambda: invocation("overrun", 40.0, 30))
        clock.run_until(100)

    assert finished == [("quick", 1.0), ("slow", 20.0), ("overrun timed out", 30.0)]
    assert clock.timeouts == 1


def test_the_stack_reads_an_sqs_mappings_scaling_and_batching_and_reserved_concurrency():
    from gatekeeper_ops.stack import provision

    template = {
        "Resources": {
            "Work": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Worker": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "tests/chaos/",
                    "Handler": "test_concurrency.handler",
                    "Timeout": 20,
                    "ReservedConcurrentExecutions": 7,
                    "Events": {
                        "Batches": {
                            "Type": "SQS",
                            "Properties": {
                                "Queue": {"Fn::GetAtt": ["Work", "Arn"]},
                                "BatchSize": 100,
                                "MaximumBatchingWindowInSeconds": 2,
                                "ScalingConfig": {"MaximumConcurrency": 3},
                            },
                        }
                    },
                },
            },
        }
    }
    with world():
        stack = provision(boto3.Session(region_name="us-east-1"), {}, template=template)

    binding = stack.functions["Worker"]
    assert (binding.sqs_batch_size, binding.sqs_batching_window) == (100, 2.0)
    assert (binding.sqs_maximum_concurrency, binding.reserved_concurrency, binding.timeout) == (3, 7, 20)


def test_a_fan_out_runs_its_tasks_as_child_tasks_at_once_and_the_invocation_waits_for_the_last():
    ended: list[tuple[str, float]] = []
    role: contextvars.ContextVar[str] = contextvars.ContextVar("role", default="none")

    def child(name: str, seconds: float) -> None:
        services.sleep(seconds)
        ended.append((f"{name} as {role.get()}", conductor().elapsed))

    def invocation() -> None:
        role.set("the invocation's")  # what a child inherits: the context it was forked from
        with conductor().function_timeout(30):
            services.fan_out([partial(child, "a", 1.0), partial(child, "b", 3.0), partial(child, "c", 2.0)])
        ended.append(("invocation", conductor().elapsed))

    with world() as (clock, _, _):
        clock.dispatch(invocation)
        clock.run_until(100)

    assert ended == [
        ("a as the invocation's", 1.0),
        ("c as the invocation's", 2.0),
        ("b as the invocation's", 3.0),
        ("invocation", 3.0),
    ]
    assert not clock.busy
    assert clock.errors == []


def test_aws_calls_of_a_fan_out_overlap_ten_cost_one_call_latency_not_ten():
    """Virtual time, a property of the model: ten children's calls all start at the same instant."""
    finished: list[float] = []

    def invocation(sqs: Any, url: str, fan_out: Any) -> None:
        started = conductor().elapsed
        fan_out([partial(sqs.get_queue_attributes, QueueUrl=url) for _ in range(10)])
        finished.append(conductor().elapsed - started)

    with world() as (clock, sqs, url):
        clock.dispatch(partial(invocation, sqs, url, services.fan_out))
        clock.dispatch(partial(invocation, sqs, url, lambda tasks: [task() for task in tasks]))
        clock.run_until(10)

    at_once, one_by_one = finished
    assert at_once == pytest.approx(clock.call_latency)
    assert one_by_one == pytest.approx(10 * clock.call_latency)


def test_an_invocation_that_times_out_in_a_fan_out_kills_its_children_and_counts_one_timeout():
    ended: list[tuple[str, float]] = []
    calls_after: list[str] = []

    def child(name: str, seconds: float, sqs: Any, url: str) -> None:
        services.sleep(seconds)
        ended.append((name, conductor().elapsed))
        sqs.get_queue_attributes(QueueUrl=url)
        calls_after.append(name)

    def invocation(sqs: Any, url: str) -> None:
        try:
            with conductor().function_timeout(30):
                services.fan_out(
                    [partial(child, "quick", 10.0, sqs, url), partial(child, "slow", 40.0, sqs, url)]
                )
            ended.append(("invocation", conductor().elapsed))
        except FunctionTimedOut:
            ended.append(("invocation timed out", conductor().elapsed))

    with world() as (clock, sqs, url):
        clock.dispatch(partial(invocation, sqs, url))
        clock.run_until(100)

    assert ended == [("quick", 10.0), ("invocation timed out", 30.0)]
    assert calls_after == ["quick"]  # the slow child was killed at the deadline, before its call
    assert clock.timeouts == 1
    assert not clock.busy
    assert clock.errors == []
