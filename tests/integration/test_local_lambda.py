"""The local Lambda service does only what AWS does to deliver, and misses nothing: a stream poller
goes on from GetRecords' NextShardIterator (no new shard iterator each poll)."""

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
