"""The local Lambda service on a virtual clock retries as Lambda does on AWS (`RetryTiming.aws()`):
async events after 1 and 2 minutes, then the on-failure destination; SQS messages after the
queue's visibility timeout, then its DLQ after maxReceiveCount."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from gatekeeper_ops.chaos.clock import VirtualClock
from gatekeeper_ops.emulator import EventualConsistency, inject_unsuccessful
from gatekeeper_ops.local_lambda import RetryTiming
from gatekeeper_ops.sandbox.account import ProducerAccount
from tests.builders import tenant

ACME = "111122223333"


@pytest.fixture
def clock() -> Iterator[VirtualClock]:
    with VirtualClock(datetime.now(UTC).replace(microsecond=0)).running() as running:
        yield running


@pytest.fixture
def producer(producer_factory, clock) -> ProducerAccount:
    producer = producer_factory(eventual=False)()  # timing alone, without EC2's read lag
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id))
    producer.lambdas.timing = RetryTiming.aws()
    return producer


def settle(producer: ProducerAccount, clock: VirtualClock, seconds: float = 0.0) -> None:
    clock.advance(seconds)
    while True:
        clock.advance(0.01)
        if not producer.lambdas.pump():
            return


def attempts(producer: ProducerAccount, function: str) -> list[tuple[bool, int]]:
    """(whether it succeeded: nothing comes back, attempt) per invocation."""
    return [(not i.failed_records, i.attempt) for i in producer.lambdas.invocations if i.function == function]


def test_a_failed_request_comes_back_after_the_decision_queues_visibility_timeout(producer, clock):
    endpoint = producer.consumer(ACME).request_endpoint(producer.service)
    inject_unsuccessful(endpoint, times=2)
    settle(producer, clock)
    assert attempts(producer, "EvaluateConnectionFunction") == [(False, 1)]
    for attempt in (2, 3):  # the template's VisibilityTimeout: 210 s
        settle(producer, clock, 208)
        assert len(attempts(producer, "EvaluateConnectionFunction")) == attempt - 1
        settle(producer, clock, 3)
    assert attempts(producer, "EvaluateConnectionFunction") == [(False, 1), (False, 2), (True, 3)]
    assert [d.outcome for d in producer.decisions.decisions_for_endpoint(endpoint)] == ["accepted"]


def test_the_deciders_re_reads_wait_on_the_virtual_clock(producer_factory, clock):
    # EC2 lists a new connection only half a (virtual) second after it appears: the decider's first
    # read and its re-read after 0.2 s miss it, the one 0.5 s later lists it. The pauses move the
    # virtual clock (nothing really sleeps), and the request is decided in its first invocation.
    producer = producer_factory(eventual=EventualConsistency(stale_reads=None, stale_seconds=0.5))()
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id))
    producer.lambdas.timing = RetryTiming.aws()
    settle(producer, clock)
    slept = clock.slept
    endpoint = producer.consumer(ACME).request_endpoint(producer.service)
    settle(producer, clock)
    assert attempts(producer, "EvaluateConnectionFunction") == [(True, 1)]
    assert [d.outcome for d in producer.decisions.decisions_for_endpoint(endpoint)] == ["accepted"]
    assert clock.slept - slept == pytest.approx(0.2 + 0.5)


def test_a_failed_sqs_message_comes_back_after_the_visibility_timeout_then_goes_to_the_dlq(producer, clock):
    sqs = producer.client("sqs")
    garbage = json.dumps({"Type": "Notification", "Message": "garbage"})
    sqs.send_message(QueueUrl=producer.stack.outputs["NotificationQueueUrl"], MessageBody=garbage)

    def receives() -> list[int]:  # the message failed each time (as an item failure or the whole batch)
        return [attempt for _, attempt in attempts(producer, "IngestNotificationsFunction")]

    settle(producer, clock)
    assert receives() == [1]
    settle(producer, clock, 170)
    assert receives() == [1]
    for receive in range(2, 6):  # the template's VisibilityTimeout 180, maxReceiveCount 5
        settle(producer, clock, 11 if receive == 2 else 181)
        assert receives() == list(range(1, receive + 1))
    settle(producer, clock, 181)
    assert receives() == [1, 2, 3, 4, 5]
    assert producer.queue_depth("NotificationDeadLetterQueueUrl") == 1
