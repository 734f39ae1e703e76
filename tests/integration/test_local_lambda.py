"""The local Lambda service does only what AWS does to deliver, and misses nothing: a stream poller
goes on from GetRecords' NextShardIterator (no new shard iterator each poll); EventBridge pushes to
Lambda, so an async-invoke queue moto shows empty is not polled."""

from __future__ import annotations

from collections import Counter

from gatekeeper_ops.sandbox.account import ProducerAccount
from tests.builders import tenant

ACME = "111122223333"


def calls_of(producer: ProducerAccount) -> Counter[str]:
    """The local Lambda service's own calls (its clients), by operation and target."""
    counted: Counter[str] = Counter()

    def count(model, params, **_):
        counted[f"{model.name} {params.get('QueueUrl', params.get('StreamArn', ''))}".strip()] += 1

    for client in (producer.lambdas.sqs, producer.lambdas.streams):
        client.meta.events.register("provide-client-params", count)
    return counted


def synced(producer: ProducerAccount) -> list[bool]:
    return [i.ok for i in producer.lambdas.invocations if i.function == "SyncTenantsFunction"]


def test_the_stream_poller_goes_on_from_where_its_last_read_ended_and_misses_nothing(producer_factory):
    producer = producer_factory()()
    producer.settle()
    calls = calls_of(producer)

    for _ in range(3):
        producer.lambdas.pump()

    assert [c for c in calls if c.startswith("GetShardIterator")] == []
    assert sum(n for c, n in calls.items() if c.startswith("GetRecords")) == 3
    before = len(synced(producer))
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id))
    producer.settle()
    producer.settle()
    assert synced(producer)[before:] == [True]  # the record written after the idle polls, once


def test_an_async_invoke_queue_moto_shows_empty_is_not_polled_and_events_are_delivered_still(
    producer_factory,
):
    producer = producer_factory()()
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id))
    producer.settle()
    calls = calls_of(producer)
    rules = [url for binding in producer.stack.functions.values() for url in binding.rules]
    assert rules

    producer.lambdas.pump()
    producer.lambdas.pump()

    assert not [c for c in calls if any(url in c for url in rules)]  # pushed on AWS: no poll
    notifications = producer.stack.outputs["NotificationQueueUrl"]
    assert calls[f"ReceiveMessage {notifications}"] == 2  # an SQS event source is polled, as on AWS
    endpoint = producer.consumer(ACME).request_endpoint(producer.service)
    producer.settle()
    [decision] = producer.decisions.decisions_for_endpoint(endpoint)
    assert decision.outcome == "accepted"
