"""The reconciler and the tenant sync on an emulated producer account running the real stack:
moto + the PrivateLink emulator, resources from template.yaml, the handlers delivered in-process
(schedules fired with `run_schedule`, the tenants table's stream delivered by `settle()`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gatekeeper.wiring import services as runtime
from gatekeeper_ops.emulator import deliver_notifications
from gatekeeper_ops.emulator.provisioning import account_root
from gatekeeper_ops.local_lambda import Invocation
from gatekeeper_ops.sandbox.account import ProducerAccount
from tests.integration.conftest import MakeProducer, tenant

ACME = "111122223333"  # active tenant, standard template
NEWCO = "666677778888"  # an account that joins acme later
STRANGER = "999988887777"  # no tenant


@pytest.fixture
def make_producer(producer_factory: Callable[..., MakeProducer]) -> MakeProducer:
    """A factory: the producer's service is created with the allowed principals a test needs
    (with gatekeeper_ops.fast_moto: some tests here make thousands of decisions)."""
    return producer_factory(fast=True)


@pytest.fixture
def producer(make_producer: MakeProducer) -> ProducerAccount:
    """The service open to anyone (acceptance decides), tenant acme active and synced."""
    account = make_producer()
    account.add_tenant(tenant("acme", ACME, account.service.service_id))
    account.settle()
    return account


# -- helpers ---------------------------------------------------------------------------------------
def sweep(producer: ProducerAccount) -> dict[str, Any]:
    """One reconcile tick: the schedule fires the real handler."""
    invocation = producer.lambdas.run_schedule("ReconcileConnectionsFunction")
    assert invocation.ok, invocation.error
    return dict(invocation.result)


def lose_notifications(producer: ProducerAccount) -> int:
    """Drop every connection notification waiting in the queue, as if SNS never delivered it."""
    deliver_notifications()  # what the emulator still holds back reaches the queue first
    sqs = producer.client("sqs")
    queue = producer.stack.outputs["NotificationQueueUrl"]
    lost = 0
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            lost += 1
    return lost


def outcomes(producer: ProducerAccount, endpoint: str) -> list[str]:
    return [d.outcome for d in producer.decisions.decisions_for_endpoint(endpoint)]


def invocations(producer: ProducerAccount, function: str, trigger: str | None = None) -> list[Invocation]:
    return [
        i
        for i in producer.lambdas.invocations
        if i.function == function and (trigger is None or i.trigger == trigger)
    ]


def allowed_principals(producer: ProducerAccount) -> set[str]:
    answer = producer.client("ec2").describe_vpc_endpoint_service_permissions(
        ServiceId=producer.service.service_id
    )
    return {p["Principal"] for p in answer["AllowedPrincipals"]}


def subscribe_alarms(producer: ProducerAccount) -> str:
    """An SQS queue subscribed to the stack's alarm topic (operators' alerts); returns its url."""
    sqs, sns = producer.client("sqs"), producer.client("sns")
    url = sqs.create_queue(QueueName=f"{producer.stack.name}-operators")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=producer.stack.outputs["AlarmTopicArn"], Protocol="sqs", Endpoint=arn)
    return str(url)


def alerts(producer: ProducerAccount, queue_url: str) -> list[dict[str, Any]]:
    sqs = producer.client("sqs")
    found = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            found.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def travel(days: float) -> datetime:
    """Move the deciders' and the reconciler's clocks (the handlers' cached services) forward."""
    moment = datetime.now(UTC) + timedelta(days=days)
    for service in (runtime.decision_service(), runtime.reconciler(), runtime.tenant_sync()):
        service.clock = lambda: moment
    return moment


def root(account: str) -> str:
    return account_root(account)
