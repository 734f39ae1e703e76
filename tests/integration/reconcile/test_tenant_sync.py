"""Tenant changes through the tenants table's stream: allow-lists follow the records, revocation
works, held requests get a second chance, and a record written by hand never widens access."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gatekeeper.dal.codec import encode
from gatekeeper.dal.tenant_stream import TenantChange
from gatekeeper.dal.tenants import tenant_to_item
from gatekeeper.logic.tenant_sync import TenantSync
from gatekeeper.models.tenant import Tenant
from gatekeeper_ops.emulator import EventualConsistency
from gatekeeper_ops.emulator import clock as emulator_clock
from gatekeeper_ops.sandbox.account import ProducerAccount
from gatekeeper_ops.stack import ROOT
from tests.integration.reconcile.conftest import (
    ACME,
    NEWCO,
    MakeProducer,
    alerts,
    allowed_principals,
    invocations,
    outcomes,
    root,
    subscribe_alarms,
    sweep,
    tenant,
)

OTHER_SERVICE = "vpce-svc-0fffffffffffffff0"
PRODUCER = "123456789012"  # moto's account: the producer's own principal on its allow-list


# The tenant changes below come some seconds after the decisions they affect: by then EC2's read lag
# (EventualConsistency.stale_seconds) is over for every reader, tenant sync's own included. A change
# made within the lag is caught by the reconciler's sweep (tests/integration/reconcile/test_reconcile.py).
_EC2_CLOCK_AHEAD = [0.0]


@pytest.fixture(autouse=True)
def _emulator_clock(monkeypatch):
    _EC2_CLOCK_AHEAD[0] = 0.0
    wall = emulator_clock.now
    monkeypatch.setattr(emulator_clock, "now", lambda: wall() + _EC2_CLOCK_AHEAD[0])


def ec2_catches_up() -> None:
    """Some seconds pass, as far as EC2's consistency is concerned."""
    _EC2_CLOCK_AHEAD[0] += EventualConsistency().stale_seconds + 1


def accepted_endpoint(producer: ProducerAccount, account: str = ACME) -> str:
    endpoint = producer.consumer(account).request_endpoint(producer.service)
    producer.settle()
    assert outcomes(producer, endpoint) == ["accepted"]
    ec2_catches_up()
    return endpoint


def held_endpoint(producer: ProducerAccount) -> str:
    """acme asks from us-west-2: the standard template holds other regions for review."""
    endpoint = producer.consumer(ACME, "us-west-2").request_endpoint(
        producer.service, service_region="us-east-1"
    )
    producer.settle()
    assert outcomes(producer, endpoint) == ["held"]
    ec2_catches_up()
    return endpoint


def change(producer: ProducerAccount, tenant_id: str = "acme", **fields: Any) -> Tenant:
    """An operator's edit through the store (what the CLI does): a new version of the record."""
    current = producer.tenants.get(tenant_id)
    return producer.tenants.update(current.model_copy(update=fields), "operator:arn:aws:iam::123:user/ops")


def write_by_hand(producer: ProducerAccount, tenant_id: str, **fields: Any) -> None:
    """A console edit: the item is put as typed, no validation, no claims, same version."""
    item = tenant_to_item(producer.tenants.get(tenant_id))
    item.update(fields)
    producer.client("dynamodb").put_item(
        TableName=producer.stack.outputs["TenantsTableName"], Item=encode(item)
    )


# -- revocation ------------------------------------------------------------------------------------
def test_suspension_rejects_the_tenants_connections_and_the_consumer_sees_its_endpoint_rejected(producer):
    inbox = producer.subscribe_decisions("acme", {"tenant_id": ["acme"]})
    available = accepted_endpoint(producer)
    waiting = held_endpoint(producer)
    producer.received(inbox)
    assert producer.decisions.active_endpoints("acme") == 1

    change(producer, status="suspended")
    producer.settle()

    assert producer.consumer(ACME).endpoint_state(available) == "rejected"
    assert producer.consumer(ACME, "us-west-2").endpoint_state(waiting) == "rejected"
    [_, revoked] = producer.decisions.decisions_for_endpoint(available)
    assert (revoked.outcome, revoked.reasons, revoked.trigger) == (
        "revoked",
        ("TenantSuspended",),
        "tenant-change",
    )
    assert outcomes(producer, waiting) == ["held", "rejected"]
    notices = sorted((n["vpc_endpoint_id"], n["decision"]) for n in producer.received(inbox))
    assert notices == sorted([(available, "revoked"), (waiting, "rejected")])
    assert producer.decisions.active_endpoints("acme") == 0


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ("removed", "UnknownPrincipal"),
        ("no-longer-entitled", "ServiceNotEntitled"),
        ("expired", "TenantExpired"),
    ],
)
def test_removed_unentitled_or_expired_tenant_loses_its_connections_and_allow_list_entry(
    make_producer: MakeProducer, edit, reason
):
    producer = make_producer(allowed_principals=(root(PRODUCER),))
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id))
    producer.settle()
    assert root(ACME) in allowed_principals(producer)
    endpoint = accepted_endpoint(producer)

    if edit == "removed":
        producer.tenants.remove("acme", producer.tenants.get("acme").version)
    elif edit == "no-longer-entitled":
        change(producer, services=(OTHER_SERVICE,))
    else:
        change(producer, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    producer.settle()

    [_, revoked] = producer.decisions.decisions_for_endpoint(endpoint)
    assert (revoked.outcome, revoked.reasons) == ("revoked", (reason,))
    assert producer.consumer(ACME).endpoint_state(endpoint) == "rejected"
    # An expired tenant stays on the allow-list (its requests are rejected, with a reason it can read).
    expected = {root(PRODUCER), root(ACME)} if edit == "expired" else {root(PRODUCER)}
    assert allowed_principals(producer) == expected


def test_revocation_request_made_stale_by_a_later_change_revokes_nothing(producer):
    endpoint = accepted_endpoint(producer)
    change(producer, status="suspended")
    change(producer, status="active")  # re-enabled before anything was delivered
    producer.settle()
    # The revocation request was done (stale: nothing to revoke), not failed into the DLQ.
    assert invocations(producer, "EvaluateConnectionFunction")[-1].failed_records == 0
    assert outcomes(producer, endpoint) == ["accepted"]
    assert producer.consumer(ACME).endpoint_state(endpoint) == "available"


# -- allowed principals ---------------------------------------------------------------------------
def test_principal_added_to_a_tenant_appears_in_allowed_principals_and_that_account_can_create_its_endpoint(
    make_producer: MakeProducer,
):
    producer = make_producer(allowed_principals=(root(PRODUCER),))
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id))
    producer.settle()
    newco = producer.consumer(NEWCO)
    with pytest.raises(ClientError, match="InvalidServiceName"):
        newco.request_endpoint(producer.service)

    change(producer, principals=(ACME, NEWCO))
    producer.settle()

    assert allowed_principals(producer) == {root(PRODUCER), root(ACME), root(NEWCO)}
    endpoint = newco.request_endpoint(producer.service)
    producer.settle()
    [decision] = producer.decisions.decisions_for_endpoint(endpoint)
    assert (decision.outcome, decision.tenant_id) == ("accepted", "acme")


@pytest.mark.consistent_reads
def test_principal_taken_off_a_tenant_leaves_the_allow_list_and_its_connections_are_revoked(
    make_producer: MakeProducer,
):
    producer = make_producer(allowed_principals=(root(PRODUCER),))
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id, principals=(ACME, NEWCO)))
    producer.settle()
    kept, dropped = accepted_endpoint(producer, ACME), accepted_endpoint(producer, NEWCO)

    change(producer, principals=(ACME,))
    producer.settle()

    assert allowed_principals(producer) == {root(PRODUCER), root(ACME)}
    assert producer.consumer(NEWCO).endpoint_state(dropped) == "rejected"
    assert producer.decisions.decisions_for_endpoint(dropped)[-1].reasons == ("UnknownPrincipal",)
    assert producer.consumer(ACME).endpoint_state(kept) == "available"
    assert producer.decisions.active_endpoints("acme") == 1


def test_allow_list_is_left_alone_when_the_stack_does_not_manage_it(make_producer: MakeProducer):
    producer = make_producer(
        allowed_principals=(root(PRODUCER),), parameters={"ManageAllowedPrincipals": "false"}
    )
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id, principals=(ACME, NEWCO)))
    producer.settle()
    assert allowed_principals(producer) == {root(PRODUCER)}
    assert sweep(producer)["principals_added"] == 0
    assert allowed_principals(producer) == {root(PRODUCER)}


# -- held requests get a second chance ------------------------------------------------------------
def test_reenabling_a_tenant_gets_its_pending_request_accepted(make_producer: MakeProducer):
    """acme is flagged for review (enterprise template: its requests wait for an operator); clearing
    the flag re-enables automatic acceptance, and the request already waiting is accepted."""
    producer = make_producer()
    flagged = tenant(
        "acme", ACME, producer.service.service_id, template="enterprise", labels={"review": "true"}
    )
    producer.add_tenant(flagged)
    endpoint = producer.consumer(ACME).request_endpoint(producer.service)
    producer.settle()
    assert producer.decisions.decisions_for_endpoint(endpoint)[0].reasons == ("FlaggedForReview",)

    change(producer, labels={})
    producer.settle()

    [held, accepted] = producer.decisions.decisions_for_endpoint(endpoint)
    assert held.outcome == "held"
    assert (accepted.outcome, accepted.trigger) == ("accepted", "tenant-change")
    assert producer.consumer(ACME).endpoint_state(endpoint) in ("pending", "available")


def test_fixing_a_hand_broken_record_gets_the_requests_it_held_accepted(producer):
    write_by_hand(producer, "acme", max_endpoints="lots")
    producer.settle()
    endpoint = producer.consumer(ACME).request_endpoint(producer.service)
    producer.settle()
    assert producer.decisions.decisions_for_endpoint(endpoint)[0].reasons == ("TenantInvalid",)

    fixed = tenant("acme", ACME, producer.service.service_id, version=1)
    producer.tenants.update(fixed, "operator:arn:aws:iam::123:user/ops")
    producer.settle()

    assert outcomes(producer, endpoint) == ["held", "accepted"]


# -- records written by hand ----------------------------------------------------------------------
def test_hand_written_invalid_record_changes_no_access(make_producer: MakeProducer):
    producer = make_producer(allowed_principals=(root(PRODUCER),))
    producer.add_tenant(tenant("acme", ACME, producer.service.service_id))
    producer.settle()
    operators = subscribe_alarms(producer)
    available = accepted_endpoint(producer)
    before = allowed_principals(producer)

    # In the console: another account added, and a quota that is not a number.
    write_by_hand(producer, "acme", principals=[ACME, NEWCO], max_endpoints="lots")
    producer.settle()

    [alert] = alerts(producer, operators)
    assert (alert["alert"], alert["tenant_id"]) == ("TenantRecordInvalid", "acme")
    assert "max_endpoints" in alert["problem"]
    # Nothing widened: NEWCO is not allowed and cannot connect; acme's new request is held...
    assert allowed_principals(producer) == before
    with pytest.raises(ClientError, match="InvalidServiceName"):
        producer.consumer(NEWCO).request_endpoint(producer.service)
    waiting = producer.consumer(ACME).request_endpoint(producer.service)
    producer.settle()
    assert outcomes(producer, waiting) == ["held"]
    assert producer.connection_state(waiting) == "pendingAcceptance"
    # ...and nothing it does not clearly ask for is taken away, by the sync or the sweep.
    assert producer.consumer(ACME).endpoint_state(available) in ("pending", "available")
    report = sweep(producer)
    assert (report["invalid_tenants"], report["revocations_requested"], report["announced"]) == (1, 0, 0)
    producer.settle()
    assert producer.consumer(ACME).endpoint_state(available) == "available"


def test_hand_written_record_that_disables_the_tenant_revokes_its_access(producer):
    operators = subscribe_alarms(producer)
    endpoint = accepted_endpoint(producer)
    write_by_hand(producer, "acme", status="Disabled")  # not a status the model knows, but clear
    producer.settle()
    [alert] = alerts(producer, operators)
    assert "status" in alert["problem"]
    [_, revoked] = producer.decisions.decisions_for_endpoint(endpoint)
    assert (revoked.outcome, revoked.reasons) == ("revoked", ("TenantInvalid",))
    assert producer.consumer(ACME).endpoint_state(endpoint) == "rejected"


# -- the stream source ------------------------------------------------------------------------------
def test_a_tenant_change_that_keeps_failing_goes_to_the_dlq_and_the_rest_of_the_batch_is_synced(
    make_producer: MakeProducer, monkeypatch
):
    from functions.sync_tenants import app

    producer = make_producer(allowed_principals=(root(PRODUCER),))
    service = producer.service.service_id
    apply, parse = TenantSync.apply, app.change_from_stream
    delivered: list[dict[str, Any]] = []

    def fail_for_globex(self: TenantSync, change: TenantChange):
        if change.tenant_id == "globex":
            raise RuntimeError("EC2 is unavailable")
        return apply(self, change)

    def record_keys(record: dict[str, Any]):
        delivered.append(record["dynamodb"]["Keys"])
        return parse(record)

    monkeypatch.setattr(TenantSync, "apply", fail_for_globex)
    monkeypatch.setattr(app, "change_from_stream", record_keys)
    producer.add_tenant(tenant("globex", "222233334444", service))
    producer.add_tenant(tenant("acme", ACME, service))
    producer.settle()

    # acme, in the same batch after the failing record, was synced on every retry of the batch.
    assert allowed_principals(producer) == {root(PRODUCER), root(ACME)}
    syncs = invocations(producer, "SyncTenantsFunction")
    assert len(syncs) == 1 + 10  # the first try and MaximumRetryAttempts retries from globex on
    assert all(i.ok and len(i.result["batchItemFailures"]) == 1 for i in syncs)
    sqs = producer.client("sqs")
    [message] = sqs.receive_message(QueueUrl=producer.stack.outputs["TenantSyncDeadLetterQueueUrl"])[
        "Messages"
    ]
    info = json.loads(message["Body"])["DDBStreamBatchInfo"]
    assert info["batchSize"] == 2
    assert info["streamArn"].startswith(f"arn:aws:dynamodb:us-east-1:{PRODUCER}:table/")
    assert producer.settle() == 0  # the stream moved on
    # Account claims never reach the function: the event filter keeps tenant records only.
    assert delivered
    assert all(keys["sk"] == {"S": "TENANT"} for keys in delivered)


def test_a_batch_that_crashes_the_function_is_bisected_down_to_the_record_at_fault(
    make_producer: MakeProducer, monkeypatch
):
    from functions.sync_tenants import app

    producer = make_producer(allowed_principals=(root(PRODUCER),))
    service = producer.service.service_id
    handler = app.lambda_handler

    def crashes_on_globex(event: dict[str, Any], context: Any):
        if any(r["dynamodb"]["Keys"]["pk"] == {"S": "TENANT#globex"} for r in event["Records"]):
            raise MemoryError("the function ran out of memory")
        return handler(event, context)

    monkeypatch.setattr(app, "lambda_handler", crashes_on_globex)
    for tenant_id, account in (("acme", ACME), ("globex", "222233334444"), ("initech", NEWCO)):
        producer.add_tenant(tenant(tenant_id, account, service))
    producer.settle()

    assert allowed_principals(producer) == {root(PRODUCER), root(ACME), root(NEWCO)}
    batches = [len(i.event["Records"]) for i in invocations(producer, "SyncTenantsFunction")]
    # [acme, globex, initech] crashes → halves: [acme] ok, [globex, initech] crashes → [globex]
    # alone, tried 1 + 10 times, then discarded → [initech] ok.
    assert batches == [3, 1, 2] + [1] * 11 + [1]
    dlq = producer.stack.outputs["TenantSyncDeadLetterQueueUrl"]
    [message] = producer.client("sqs").receive_message(QueueUrl=dlq)["Messages"]
    assert json.loads(message["Body"])["DDBStreamBatchInfo"]["batchSize"] == 1


def test_the_sample_stream_batch_is_processed_and_its_hand_edit_reported(producer):
    operators = subscribe_alarms(producer)
    binding = producer.stack.functions["SyncTenantsFunction"]
    sample = json.loads((ROOT / "events/sync_tenants.json").read_text())
    invocation = producer.lambdas.invoke(binding, sample, "sample")
    assert invocation.ok, invocation.error
    assert invocation.result == {"batchItemFailures": []}
    assert [a["tenant_id"] for a in alerts(producer, operators)] == ["initech"]
