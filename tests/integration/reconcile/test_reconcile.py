"""The reconcile sweep through the emulator: nothing missed, nothing decided twice, expiry within one
period, quota drift repaired, the allow-list caught up."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from gatekeeper.logic.tenant_sync import TenantSync
from gatekeeper_ops.emulator import clock as emulator_clock
from gatekeeper_ops.emulator import seed_connections
from gatekeeper_ops.local_lambda import handler_session
from gatekeeper_ops.sandbox.account import ProducerAccount
from gatekeeper_ops.stack import ROOT
from tests.integration.reconcile.conftest import (
    ACME,
    STRANGER,
    MakeProducer,
    allowed_principals,
    invocations,
    lose_notifications,
    outcomes,
    root,
    sweep,
    tenant,
    travel,
)

EVALUATE = "EvaluateConnectionFunction"
# Connections of each of two accounts: 1,200 in all, two of the sweep's 1,000-connection pages (the
# smallest count that crosses a page; 2,500 took a minute of the suite and paged the same way).
N = 600


def test_request_whose_notification_was_lost_is_decided_by_the_next_sweep(producer):
    endpoint = producer.consumer(ACME).request_endpoint(producer.service)
    assert lose_notifications(producer) == 1
    producer.settle()
    assert producer.decisions.state(endpoint) is None
    assert producer.connection_state(endpoint) == "pendingAcceptance"

    report = sweep(producer)
    assert (report["pending"], report["announced"]) == (1, 1)
    assert report["oldest_pending_age"] >= 0
    producer.settle()
    [decision] = producer.decisions.decisions_for_endpoint(endpoint)
    assert (decision.outcome, decision.trigger, decision.actor) == ("accepted", "reconcile", "reconcile")
    assert producer.consumer(ACME).endpoint_state(endpoint) in ("pending", "available")
    # Decided: the next sweep has nothing to announce.
    assert sweep(producer)["announced"] == 0


def test_held_requests_are_not_announced_again(producer):
    endpoint = producer.consumer(ACME, "us-west-2").request_endpoint(
        producer.service, service_region="us-east-1"
    )
    producer.settle()
    assert outcomes(producer, endpoint) == ["held"]
    before = len(invocations(producer, EVALUATE))
    report = sweep(producer)
    assert (report["pending"], report["held"], report["announced"]) == (1, 1, 0)
    producer.settle()
    assert len(invocations(producer, EVALUATE)) == before
    assert outcomes(producer, endpoint) == ["held"]


@pytest.mark.consistent_reads
def test_1200_pending_connections_over_two_pages_are_all_decided_none_twice(make_producer: MakeProducer):
    producer = make_producer()
    service = producer.service.service_id
    producer.add_tenant(
        tenant(
            "acme",
            ACME,
            service,
            template="enterprise",
            max_endpoints=2000,
            parameters={"MaxEndpoints": 2000},
        )
    )
    producer.settle()
    # Seeded connections send no Connect notification; the Reject/Delete ones are switched off too:
    # the sweep alone has to find and announce every request.
    ec2 = producer.client("ec2")
    notifications = ec2.describe_vpc_endpoint_connection_notifications()["ConnectionNotificationSet"]
    ec2.delete_vpc_endpoint_connection_notifications(
        ConnectionNotificationIds=[n["ConnectionNotificationId"] for n in notifications]
    )
    account = producer.stack.account_id
    accepted = set(seed_connections(service, N, account_id=account, consumer_account_id=ACME))
    rejected = set(seed_connections(service, N, account_id=account, consumer_account_id=STRANGER))
    calls = count_ec2_calls()

    report = sweep(producer)
    assert (report["connections"], report["pending"], report["announced"]) == (2 * N, 2 * N, 2 * N)
    assert calls["DescribeVpcEndpointConnections"] == -(-2 * N // 1000)  # 1,000 a page
    producer.settle()

    requested = [  # what each invocation was handed, and what it topped its batch up with itself
        json.loads(body)["detail"]["connection"]["VpcEndpointId"]
        for i in invocations(producer, EVALUATE)
        for body in [r["body"] for r in i.event["Records"]] + [m["Body"] for m in i.received]
    ]
    assert len(requested) == len(set(requested)) == 2 * N  # each announced once, decided in batches
    assert not [i for i in invocations(producer, EVALUATE) if i.failed_records]
    decided = Counter((d.vpc_endpoint_id in accepted, d.outcome) for d in producer.decisions.all_decisions())
    assert decided == {(True, "accepted"): N, (False, "rejected"): N}
    assert producer.decisions.active_endpoints("acme") == N
    states = {c["VpcEndpointId"]: c["VpcEndpointState"] for c in _connections(producer)}
    assert {states[e] for e in accepted} <= {"pending", "available"}
    assert {states[e] for e in rejected} == {"rejected"}
    # Nothing left to announce, and nothing is decided twice when the sweep runs again.
    assert sweep(producer)["announced"] == 0
    assert producer.settle() == 0


def test_expired_tenant_is_revoked_within_one_sweep(
    make_producer: MakeProducer, monkeypatch: pytest.MonkeyPatch
):
    producer = make_producer()
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id, expires_at=tomorrow))
    endpoint = producer.consumer(ACME).request_endpoint(producer.service)
    producer.settle()
    assert outcomes(producer, endpoint) == ["accepted"]

    moment = travel(days=2)  # nobody touches the record: only the sweep can notice

    # Two days on, EC2's read lag after the accept is long over: the sweep reads the connection as
    # accepted, not as the pendingAcceptance it was right before the accept.
    def emulator_now() -> float:  # the emulator's clock follows the handlers' travels
        return moment.timestamp()

    monkeypatch.setattr(emulator_clock, "now", emulator_now)
    report = sweep(producer)
    assert report["revocations_requested"] == 1
    producer.settle()
    assert outcomes(producer, endpoint) == ["accepted", "revoked"]
    [_, revoked] = producer.decisions.decisions_for_endpoint(endpoint)
    assert (revoked.reasons, revoked.trigger, revoked.actor) == (("TenantExpired",), "reconcile", "reconcile")
    assert producer.consumer(ACME).endpoint_state(endpoint) == "rejected"
    assert producer.decisions.active_endpoints("acme") == 0
    moment = travel(days=2 + 5 / (24 * 60))  # the next sweep, a schedule period (5 min) later
    assert sweep(producer)["revocations_requested"] == 0


@pytest.mark.consistent_reads
def test_quota_drift_is_repaired(producer):
    service = producer.service.service_id
    consumer = producer.consumer(ACME)
    deleted = consumer.request_endpoint(producer.service)
    kept = consumer.request_endpoint(producer.service)
    producer.settle()
    assert producer.decisions.active_endpoints("acme") == 2
    # Drift 1: the Delete notification is lost, the slot stays taken.
    consumer.delete_endpoint(deleted)
    lose_notifications(producer)
    # Drift 2: a slot for an endpoint EC2 has never heard of (written by a crashed decider).
    producer.decisions.record_slot("acme", "vpce-0123456789abcdef0")
    # Drift 3: an endpoint accepted before the gatekeeper managed the service has no slot.
    [unrecorded] = seed_connections(
        service, 1, account_id=producer.stack.account_id, consumer_account_id=ACME, state="available"
    )
    assert producer.decisions.active_endpoints("acme") == 3

    report = sweep(producer)
    assert (report["slots_released"], report["slots_recorded"], report["repairs"]) == (2, 1, 3)
    assert sorted(producer.decisions.slots("acme")) == sorted([kept, unrecorded])
    assert producer.decisions.active_endpoints("acme") == 2
    assert sweep(producer)["repairs"] == 0


def test_sweep_puts_a_missing_tenant_principal_back_on_the_allow_list(make_producer: MakeProducer):
    producer = make_producer(allowed_principals=(root("123456789012"),))
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id))
    producer.settle()
    assert root(ACME) in allowed_principals(producer)
    # Someone removes it by hand (or the tenant's stream record was lost).
    producer.client("ec2").modify_vpc_endpoint_service_permissions(
        ServiceId=producer.service.service_id, RemoveAllowedPrincipals=[root(ACME)]
    )
    report = sweep(producer)
    assert report["principals_added"] == 1
    assert allowed_principals(producer) == {root("123456789012"), root(ACME)}
    assert sweep(producer)["principals_added"] == 0


def test_sweep_catches_a_suspension_whose_sync_failed(producer, monkeypatch):
    endpoint = producer.consumer(ACME).request_endpoint(producer.service)
    producer.settle()
    with monkeypatch.context() as outage:
        outage.setattr(TenantSync, "apply", _fail)
        current = producer.tenants.get("acme")
        producer.tenants.update(current.model_copy(update={"status": "suspended"}), "operator")
        producer.settle()
    # The stream record failed its retries: its position waits in the DLQ, the access is still there.
    assert producer.queue_depth("TenantSyncDeadLetterQueueUrl") == 1
    assert producer.connection_state(endpoint) in ("pending", "available")

    assert sweep(producer)["revocations_requested"] == 1
    producer.settle()
    assert outcomes(producer, endpoint) == ["accepted", "revoked"]
    assert producer.consumer(ACME).endpoint_state(endpoint) == "rejected"


def test_the_sample_schedule_event_runs_a_sweep(producer):
    binding = producer.stack.functions["ReconcileConnectionsFunction"]
    sample = json.loads((ROOT / "events/reconcile_connections.json").read_text())
    invocation = producer.lambdas.invoke(binding, sample, "sample")
    assert invocation.ok, invocation.error
    assert invocation.result["services"] == 1


def _fail(self, change):
    raise RuntimeError("EC2 is unavailable")


def count_ec2_calls() -> Counter[str]:
    """EC2 calls the handlers make from now on (their clients are rebuilt on a hooked session)."""
    calls: Counter[str] = Counter()
    handler_session().events.register("before-call.ec2", lambda model, **_: calls.update([model.name]))
    return calls


def _connections(producer: ProducerAccount) -> list[dict[str, str]]:
    ec2 = producer.client("ec2")
    pages = ec2.get_paginator("describe_vpc_endpoint_connections").paginate(
        Filters=[{"Name": "service-id", "Values": [producer.service.service_id]}]
    )
    return [c for page in pages for c in page["VpcEndpointConnections"]]
