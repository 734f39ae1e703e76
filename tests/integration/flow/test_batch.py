"""A batch of requests over two services: the EC2 and DynamoDB calls are per batch, not per request,
and a connection EC2 answers in `Unsuccessful` fails alone (its message comes back) while the others
are decided. The real handler, on the emulator, with a batch handed to it as SQS would."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pytest

from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.models.errors import ConnectionActionFailed
from gatekeeper.wiring import services as runtime
from gatekeeper_ops.emulator.provisioning import create_endpoint_service
from gatekeeper_ops.iam_contract import CallRecorder
from gatekeeper_ops.local_lambda import LocalLambda
from gatekeeper_ops.sandbox.account import ProducerAccount
from gatekeeper_ops.stack import provision, register_outputs
from tests.integration.conftest import tenant

from .conftest import ACME, STRANGER

EVALUATE = "EvaluateConnectionFunction"


@pytest.fixture
def two_services(producer_factory) -> ProducerAccount:
    """A producer managing two endpoint services; acme may use both (up to 100 endpoints)."""
    producer_factory()  # the emulated AWS; this account is built by hand, with a second service
    session = boto3.Session(region_name="us-east-1")
    ec2, elbv2 = session.client("ec2"), session.client("elbv2")
    first = create_endpoint_service(ec2, elbv2, name="first", allowed_principals=("*",), cidr="10.1.0.0/16")
    second = create_endpoint_service(ec2, elbv2, name="second", allowed_principals=("*",), cidr="10.2.0.0/16")
    stack = provision(session, {"EndpointServiceIds": f"{first.service_id},{second.service_id}"})
    register_outputs(session, stack)
    producer = ProducerAccount(session, first, stack, LocalLambda(stack, session))
    producer.push_builtin_templates()
    services = (first.service_id, second.service_id)
    producer.add_tenant(
        tenant(
            "acme",
            ACME,
            first.service_id,
            services=services,
            parameters={"MaxEndpoints": 100},
            max_endpoints=100,
        )
    )
    producer.second = second  # type: ignore[attr-defined]
    return producer


def sqs_batch(requests: list[tuple[str, str]]) -> dict[str, Any]:
    """The SQS event the decision queue's mapping hands over: each body a bus event (endpoint, service)."""
    records = []
    for endpoint, service in requests:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Endpoint Connection Requested",
            "source": "vpce.gatekeeper",
            "account": "123456789012",
            "time": "2026-11-27T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "connection": {"VpcEndpointId": endpoint, "ServiceId": service},
                "trigger": "notification",
            },
        }
        records.append(
            {
                "messageId": endpoint,  # one message per endpoint: the failures name their endpoints
                "receiptHandle": "r",
                "body": json.dumps(event),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }
        )
    return {"Records": records}


def decide(producer: ProducerAccount, requests: list[tuple[str, str]]) -> dict[str, Any]:
    binding = producer.stack.functions[EVALUATE]
    invocation = producer.lambdas.invoke(binding, sqs_batch(requests), "sqs")
    assert invocation.ok, invocation.error
    return invocation.result


def endpoints(producer: ProducerAccount, count: int) -> list[tuple[str, str, str]]:
    """`count` new endpoints, alternately to each service and from acme / a stranger: (id, service, owner)."""
    services = [producer.service, producer.second]  # type: ignore[attr-defined]
    made = []
    for i in range(count):
        service = services[i % 2]
        owner = ACME if (i // 2) % 2 == 0 else STRANGER
        made.append((producer.consumer(owner).request_endpoint(service), service.service_id, owner))
    return made


@pytest.mark.consistent_reads
def test_a_batch_of_fifty_costs_one_read_and_one_accept_and_one_reject_per_service(
    two_services, iam_contract: CallRecorder
):
    producer = two_services
    [(warm, service, _)] = endpoints(producer, 1)
    decide(producer, [(warm, service)])  # warm: clients built, the template and acme's account seen
    made = endpoints(producer, 50)
    iam_contract.calls.clear()
    assert decide(producer, [(e, s) for e, s, _ in made]) == {"batchItemFailures": []}
    calls = Counter(f"{c.service}:{c.operation}" for c in iam_contract.calls if c.function == EVALUATE)
    assert calls["ec2:DescribeVpcEndpointConnections"] == 1  # one page: 50 ids in one filter
    assert calls["dynamodb:BatchGetItem"] == 1  # 50 states + 2 claims + acme's record and counter
    assert calls["ec2:AcceptVpcEndpointConnections"] == 2  # one per service
    assert calls["ec2:RejectVpcEndpointConnections"] == 2
    assert calls["sns:PublishBatch"] == 5
    assert calls["events:PutEvents"] == 5
    assert calls["dynamodb:TransactWriteItems"] == 100  # the claim and the record, each per connection
    accepted = [e for e, _, owner in made if owner == ACME]
    assert {producer.connection_state(e) for e in accepted} <= {"pending", "available"}
    assert {producer.connection_state(e) for e, _, owner in made if owner == STRANGER} == {"rejected"}
    assert producer.decisions.active_endpoints("acme") == len(accepted) + 1
    for endpoint, _, _ in made:
        state = producer.decisions.state(endpoint)
        assert state is not None, endpoint
        assert state.settled, endpoint


@pytest.mark.consistent_reads
def test_an_unsuccessful_id_fails_alone_and_the_others_are_decided(
    two_services, iam_contract: CallRecorder, monkeypatch
):
    producer = two_services
    made = endpoints(producer, 8)
    victim = made[0][0]  # acme's, on the first service: EC2 refuses it, and applies the others
    accept_all = EndpointService.accept_all

    def refusing(self: EndpointService, service_id: str, ids: list[str]) -> dict[str, ConnectionActionFailed]:
        failed = accept_all(self, service_id, [i for i in ids if i != victim])
        if victim in ids:
            failed[victim] = ConnectionActionFailed("Accept", victim, "InvalidState", "try again")
        return failed

    monkeypatch.setattr(EndpointService, "accept_all", refusing)
    iam_contract.calls.clear()
    assert decide(producer, [(e, s) for e, s, _ in made]) == {
        "batchItemFailures": [{"itemIdentifier": victim}]
    }
    calls = Counter(f"{c.service}:{c.operation}" for c in iam_contract.calls if c.function == EVALUATE)
    assert calls["ec2:DescribeVpcEndpointConnections"] == 2  # the batch's read, and the victim's re-read
    assert producer.connection_state(victim) == "pendingAcceptance"
    assert producer.decisions.state(victim).status == "accepting"  # kept for its redelivery to finish
    for endpoint, _, owner in made[1:]:
        assert producer.decisions.state(endpoint).settled, endpoint
        assert producer.connection_state(endpoint) in (
            {"pending", "available"} if owner == ACME else {"rejected"}
        )
    # The redelivery (once the claim is stale) finishes the victim's accept.
    monkeypatch.setattr(EndpointService, "accept_all", accept_all)
    runtime.decision_service().stale_after = timedelta(0)
    assert decide(producer, [(victim, made[0][1])]) == {"batchItemFailures": []}
    assert producer.decisions.state(victim).status == "accepted"
    assert producer.connection_state(victim) in {"pending", "available"}
