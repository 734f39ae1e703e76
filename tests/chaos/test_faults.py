"""The fault injector does to a call what AWS would: answers that botocore's retry handler retries,
calls applied whose answer is lost, and DynamoDB's ClientRequestToken idempotency."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from moto import mock_aws

from gatekeeper_ops.chaos.faults import FaultInjector, FaultPlan, SimulatedTimeout
from gatekeeper_ops.local_lambda import FunctionTimedOut

TABLE = "counters"
KEY = {"pk": {"S": "k"}}
ADD_ONE: dict[str, Any] = {
    "TableName": TABLE,
    "Key": KEY,
    "UpdateExpression": "ADD n :one",
    "ExpressionAttributeValues": {":one": {"N": "1"}},
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield


def injector(kind: str | None, clock: Clock | None = None, **plan: Any) -> FaultInjector:
    weights = {kind: 1.0} if kind else {"throttle": 1.0}
    settings = {"rate": 1.0 if kind else 0.0, "crash_rate": 0.0, "unsuccessful_rate": 0.0, **plan}
    return FaultInjector(FaultPlan(weights=weights, **settings), random.Random(7), clock or Clock())


def first_attempt_only(faults: FaultInjector) -> FaultInjector:
    """A fault on the first attempt only; the retry goes through."""
    count = faults._count

    def once(*args: Any) -> None:
        count(*args)
        faults.enabled = False

    faults._count = once  # type: ignore[method-assign]
    return faults


def client(service: str, faults: FaultInjector, attempts: int = 3) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return faults.instrument(boto3.client(service, region_name="us-east-1", config=config))  # type: ignore[call-overload]


def counter() -> int:
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(TableName=TABLE, Key=KEY).get("Item")
    return int(item["n"]["N"]) if item else 0


def test_lost_response_was_applied_and_the_sdk_retry_applies_it_again(aws):
    faults = first_attempt_only(injector("lost"))
    client("dynamodb", faults).update_item(**ADD_ONE)  # succeeds: botocore retried the read timeout
    assert counter() == 2  # the lost attempt had been applied: an UpdateItem is not idempotent
    assert faults.faults == {("lost", "dynamodb", "UpdateItem"): 1}
    assert faults.sdk_retries == {("dynamodb", "UpdateItem"): 1}


def test_lost_transaction_is_answered_from_its_client_request_token(aws):
    faults = first_attempt_only(injector("lost"))
    client("dynamodb", faults).transact_write_items(TransactItems=[{"Update": ADD_ONE}])
    assert counter() == 1  # botocore reused the token; the retry got the first answer
    assert faults.idempotent_replays == 1


def test_client_request_token_is_remembered_for_ten_minutes(aws):
    clock = Clock()
    dynamodb = client("dynamodb", injector(None, clock))
    for at, expected in ((0, 1), (599, 1), (601, 2)):
        clock.now = at
        dynamodb.transact_write_items(TransactItems=[{"Update": ADD_ONE}], ClientRequestToken="same-token")
        assert counter() == expected


@pytest.mark.parametrize(
    ("service", "call", "codes"),
    [
        ("ec2", lambda c: c.describe_vpc_endpoint_connections(), {"RequestLimitExceeded"}),
        (
            "dynamodb",
            lambda c: c.list_tables(),
            {"ThrottlingException", "ProvisionedThroughputExceededException"},
        ),
        ("sns", lambda c: c.list_topics(), {"Throttling"}),
        ("events", lambda c: c.list_event_buses(), {"ThrottlingException"}),
    ],
)
def test_throttling_answers_are_parsed_and_retried_by_botocore(aws, service, call, codes):
    faults = injector("throttle")
    with pytest.raises(ClientError) as raised:
        call(client(service, faults, attempts=3))
    assert raised.value.response["Error"]["Code"] in codes
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert sum(faults.faults.values()) == 3


CALLS = [
    ("ec2", lambda c: c.describe_vpc_endpoints()),
    ("dynamodb", lambda c: c.list_tables()),
    ("sns", lambda c: c.list_topics()),
    ("events", lambda c: c.list_event_buses()),
]


@pytest.mark.parametrize(("service", "call"), CALLS)
def test_server_errors_are_5xx_and_retried(aws, service, call):
    with pytest.raises(ClientError) as raised:
        call(client(service, injector("server_error"), attempts=1))
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)
    faults = first_attempt_only(injector("server_error"))
    call(client(service, faults))
    assert sum(faults.sdk_retries.values()) == 1


def test_connection_errors_never_reach_moto(aws):
    faults = injector("connection")
    with pytest.raises((EndpointConnectionError, ConnectionClosedError)):
        client("dynamodb", faults, attempts=2).update_item(**ADD_ONE)
    assert counter() == 0


def test_a_killed_invocation_is_not_an_exception_the_handler_can_catch(aws):
    faults = injector(None, crash_rate=2.0)  # every call: killed before it is sent
    dynamodb = client("dynamodb", faults)
    with pytest.raises(SimulatedTimeout):
        dynamodb.update_item(**ADD_ONE)
    assert not issubclass(SimulatedTimeout, Exception)  # a rollback or a batch processor cannot catch it
    assert issubclass(SimulatedTimeout, FunctionTimedOut)
    assert counter() == 0
