"""The acceptance decision path end to end: consumer CreateVpcEndpoint → notification → SNS →
SQS → ingest_notifications → bus → rule → decision queue → evaluate_connection → EC2 → SNS, on the
emulator."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from gatekeeper_ops.emulator import inject_unsuccessful
from gatekeeper_ops.sandbox.account import ProducerAccount

from .conftest import ACME, GLOBEX, HOOLI, INITECH, STRANGER, UMBRELLA


def request(producer: ProducerAccount, account: str, region: str | None = None) -> str:
    consumer = producer.consumer(account, region)
    endpoint = consumer.request_endpoint(producer.service, service_region=producer.stack.region)
    producer.settle()
    return endpoint


def decisions(producer: ProducerAccount, endpoint: str) -> list[str]:
    return [d.outcome for d in producer.decisions.decisions_for_endpoint(endpoint)]


def test_entitled_active_tenant_is_accepted_and_consumer_endpoint_becomes_available(tenants):
    tenant_queue = tenants.subscribe_decisions("acme", {"tenant_id": ["acme"]})
    endpoint = request(tenants, ACME)
    assert decisions(tenants, endpoint) == ["accepted"]
    consumer = tenants.consumer(ACME)
    states = {consumer.endpoint_state(endpoint) for _ in range(3)}
    assert states <= {"pending", "available"}
    assert consumer.endpoint_state(endpoint) == "available"
    [notice] = tenants.received(tenant_queue)
    assert notice["decision"] == "accepted"
    assert notice["tenant_id"] == "acme"
    assert notice["template"] == "standard"
    assert notice["reasons"] == ["Accept"]
    assert tenants.decisions.active_endpoints("acme") == 1


def test_a_request_ec2_does_not_list_at_first_is_decided_in_its_first_invocation(tenants, decider_waits):
    # The emulator's lag: the decider's first Describe after the notification misses the endpoint,
    # the re-read 0.2 s later lists it; no ConnectionNotVisible, no async retry (~1 min on AWS).
    tenants.settle()  # tenant sync first: its Describe would otherwise be the read that misses it
    endpoint = request(tenants, ACME)
    assert decisions(tenants, endpoint) == ["accepted"]
    evaluated = [i for i in tenants.lambdas.invocations if i.function == "EvaluateConnectionFunction"]
    assert [(i.failed_records, i.attempt) for i in evaluated] == [(0, 1)]
    assert decider_waits == [0.2]


def test_unknown_principal_is_rejected(tenants):
    endpoint = request(tenants, STRANGER)
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert (decision.outcome, decision.reasons, decision.tenant_id) == (
        "rejected",
        ("UnknownPrincipal",),
        None,
    )
    assert tenants.consumer(STRANGER).endpoint_state(endpoint) == "rejected"


@pytest.mark.parametrize(
    ("account", "reason"),
    [(GLOBEX, "TenantSuspended"), (INITECH, "TenantExpired"), (UMBRELLA, "ServiceNotEntitled")],
    ids=["suspended-tenant", "expired-tenant", "service-not-entitled"],
)
def test_tenant_record_guards_reject(tenants, account, reason):
    endpoint = request(tenants, account)
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert decision.outcome == "rejected"
    assert decision.reasons == (reason,)
    assert tenants.connection_state(endpoint) == "rejected"


def test_suspended_tenant(tenants):
    endpoint = request(tenants, GLOBEX)
    assert decisions(tenants, endpoint) == ["rejected"]


def test_expired_tenant(tenants):
    endpoint = request(tenants, INITECH)
    assert decisions(tenants, endpoint) == ["rejected"]


def test_service_not_entitled(tenants):
    endpoint = request(tenants, UMBRELLA)
    assert decisions(tenants, endpoint) == ["rejected"]


def test_review_holds_request_pending_and_notifies_operators(tenants):
    operators = tenants.subscribe_decisions("operators", {"decision": ["held"]})
    endpoint = request(tenants, ACME, region="us-west-2")
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert decision.outcome == "held"
    assert decision.reasons == ("OtherRegion",)
    assert decision.vpc_endpoint_region == "us-west-2"
    assert tenants.connection_state(endpoint) == "pendingAcceptance"
    assert tenants.consumer(ACME, "us-west-2").endpoint_state(endpoint) == "pendingAcceptance"
    [notice] = tenants.received(operators)
    assert notice["vpc_endpoint_id"] == endpoint
    assert any("OtherRegion matched" in line for line in notice["explanation"])


def test_cross_region_request_decided_by_template_rule(tenants):
    # The trial template denies other regions outright where standard would hold them.
    endpoint = request(tenants, HOOLI, region="eu-west-1")
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert (decision.outcome, decision.reasons, decision.template) == (
        "rejected",
        ("HomeRegionOnly",),
        "trial",
    )
    assert tenants.connection_state(endpoint) == "rejected"


def test_quota_full_rejects_and_under_quota_accepts(tenants):
    # hooli's record allows 5, but its trial template caps MaxEndpoints at 1.
    first = request(tenants, HOOLI)
    second = request(tenants, HOOLI)
    assert decisions(tenants, first) == ["accepted"]
    [refused] = tenants.decisions.decisions_for_endpoint(second)
    assert (refused.outcome, refused.reasons) == ("rejected", ("QuotaExceeded",))
    assert tenants.decisions.active_endpoints("hooli") == 1
    # Deleting the first frees the slot (Endpoint Connection Closed) and a new request fits.
    tenants.consumer(HOOLI).delete_endpoint(first)
    tenants.settle()
    assert tenants.decisions.active_endpoints("hooli") == 0
    third = request(tenants, HOOLI)
    assert decisions(tenants, third) == ["accepted"]


@pytest.mark.consistent_reads
def test_same_notification_delivered_three_times_gives_one_decision_and_one_notification(tenants):
    everyone = tenants.subscribe_decisions("everyone")
    sqs = tenants.client("sqs")
    queue = tenants.stack.outputs["NotificationQueueUrl"]
    consumer = tenants.consumer(ACME)
    endpoint = consumer.request_endpoint(tenants.service)
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    for _ in range(2):  # SNS/SQS are at-least-once: the same body twice more
        sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])
    tenants.settle()
    assert decisions(tenants, endpoint) == ["accepted"]
    assert [n["decision"] for n in tenants.received(everyone)] == ["accepted"]
    # Three requests (in one batch or several), each done once: one decision, two duplicates, none left.
    evaluated = [i for i in tenants.lambdas.invocations if i.function == "EvaluateConnectionFunction"]
    assert sum(len(i.event["Records"]) - i.failed_records for i in evaluated) == 3
    assert tenants.queue_depth("DecisionQueueDeadLetterQueueUrl") == 0
    assert tenants.decisions.active_endpoints("acme") == 1


def test_malformed_sns_body_goes_to_dlq_and_accepts_nothing(tenants):
    sqs = tenants.client("sqs")
    queue = tenants.stack.outputs["NotificationQueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Type": "Notification", "Message": "garbage"}))
    endpoint = tenants.consumer(ACME).request_endpoint(tenants.service)
    tenants.settle()
    assert tenants.queue_depth("NotificationDeadLetterQueueUrl") == 1
    # The good message of the same batches went through.
    assert decisions(tenants, endpoint) == ["accepted"]
    assert not [
        i
        for i in tenants.lambdas.invocations
        if i.function == "EvaluateConnectionFunction" and i.failed_records
    ]


@pytest.mark.consistent_reads
def test_endpoint_deleted_before_its_accept_is_not_recorded_and_frees_its_slot(tenants):
    consumer = tenants.consumer(ACME)
    endpoint = consumer.request_endpoint(tenants.service)
    # Ingest the notification, then the consumer deletes its endpoint before the decision runs:
    # EC2 answers the Accept with the endpoint in Unsuccessful; there is nothing left to decide.
    ingest = tenants.stack.functions["IngestNotificationsFunction"]
    tenants.lambdas._deliver_sqs(ingest, tenants.stack.outputs["NotificationQueueUrl"])
    consumer.delete_endpoint(endpoint)
    tenants.settle()
    attempts = [i for i in tenants.lambdas.invocations if i.function == "EvaluateConnectionFunction"]
    assert [(len(i.event["Records"]), i.failed_records) for i in attempts] == [(1, 0)]  # done, not failed
    assert tenants.decisions.decisions_for_endpoint(endpoint) == []
    assert tenants.decisions.state(endpoint) is None
    assert tenants.decisions.active_endpoints("acme") == 0
    assert tenants.queue_depth("DecisionQueueDeadLetterQueueUrl") == 0


def time_passes(seconds: float) -> None:
    """The decider's and the reconciler's clocks move on (a failed request's message comes back after
    the decision queue's visibility timeout; the local runtime delivers it again at once)."""
    from gatekeeper.wiring import services as runtime

    for service in (runtime.decision_service(), runtime.reconciler()):
        earlier = service.clock
        service.clock = lambda earlier=earlier: earlier() + timedelta(seconds=seconds)


@pytest.mark.consistent_reads
def test_accept_answered_unsuccessful_is_not_recorded_and_its_claim_is_finished_by_the_retry(tenants):
    everyone = tenants.subscribe_decisions("everyone")
    consumer = tenants.consumer(ACME)
    endpoint = consumer.request_endpoint(tenants.service)
    inject_unsuccessful(endpoint, times=2, code="InternalError")
    ingest = tenants.stack.functions["IngestNotificationsFunction"]
    evaluate = tenants.stack.functions["EvaluateConnectionFunction"]
    tenants.lambdas._deliver_sqs(ingest, tenants.stack.outputs["NotificationQueueUrl"])
    for _ in range(2):  # the first delivery and the first redelivery both meet Unsuccessful
        tenants.lambdas._deliver_sqs(evaluate, tenants.stack.outputs["DecisionQueueUrl"])
        assert tenants.decisions.decisions_for_endpoint(endpoint) == []  # nothing recorded as accepted
        assert tenants.decisions.state(endpoint).status == "accepting"  # the claim waits for a retry
        assert tenants.decisions.active_endpoints("acme") == 1  # with its slot reserved
        assert tenants.connection_state(endpoint) == "pendingAcceptance"
        time_passes(60)
    tenants.settle()  # the second redelivery resumes the claim and EC2 accepts
    attempts = [i for i in tenants.lambdas.invocations if i.function == "EvaluateConnectionFunction"]
    assert [i.failed_records for i in attempts[:3]] == [1, 1, 0]
    assert decisions(tenants, endpoint) == ["accepted"]
    assert consumer.endpoint_state(endpoint) in ("pending", "available")
    assert [n["decision"] for n in tenants.received(everyone)] == ["accepted"]
    assert tenants.queue_depth("DecisionQueueDeadLetterQueueUrl") == 0


def test_a_claim_whose_retries_all_failed_is_finished_by_the_reconciler(tenants):
    everyone = tenants.subscribe_decisions("everyone")
    endpoint = tenants.consumer(ACME).request_endpoint(tenants.service)
    inject_unsuccessful(endpoint, times=5)  # every delivery of the request (maxReceiveCount)
    from gatekeeper.wiring import services as runtime

    # On AWS every redelivery comes after the claim went stale (the queue's 210 s > 45 s); the local
    # runtime redelivers at once, so here a claim is stale at once.
    runtime.decision_service().stale_after = timedelta(0)
    tenants.settle()
    assert tenants.decisions.decisions_for_endpoint(endpoint) == []
    assert tenants.decisions.state(endpoint).status == "accepting"
    assert tenants.connection_state(endpoint) == "pendingAcceptance"
    sqs = tenants.client("sqs")
    dlq = tenants.stack.outputs["DecisionQueueDeadLetterQueueUrl"]
    [failed] = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert json.loads(failed["Body"])["detail"]["connection"]["VpcEndpointId"] == endpoint
    # The next sweep finds the stale claim in the Unsettled index and puts it back on the path.
    time_passes(300)
    sweep = tenants.lambdas.run_schedule("ReconcileConnectionsFunction")
    assert sweep.result["stale_claims"] == 1
    tenants.settle()
    assert decisions(tenants, endpoint) == ["accepted"]
    assert tenants.connection_state(endpoint) in ("pending", "available")
    assert [n["decision"] for n in tenants.received(everyone)] == ["accepted"]
    assert tenants.decisions.active_endpoints("acme") == 1
