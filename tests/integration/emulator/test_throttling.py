"""EC2's request throttling through real boto3 clients: RequestLimitExceeded (503) once an action's
bucket is empty, success again after the refill. The emulator's clock is moved by hand and
botocore's back-off is recorded, not slept."""

from __future__ import annotations

import time
import types
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gatekeeper_ops.emulator import BucketSize, EmulatorSettings, RequestThrottling, unthrottled
from gatekeeper_ops.emulator.throttling import buckets
from tests.integration.emulator.conftest import PRODUCER, REGION, FakeClock, Producer, make_producer

SMALL = RequestThrottling(non_mutating=BucketSize(3, 1), mutating=BucketSize(2, 0.5))
DESCRIBE = (PRODUCER, REGION, "DescribeVpcEndpointConnections")


@pytest.fixture
def producer(aws: None) -> Producer:
    with unthrottled():  # the fixture's setup is not the traffic under test
        return make_producer()


def ec2(max_attempts: int = 0) -> Any:
    """A client; botocore's max_attempts counts retries (0: one attempt, each answer seen)."""
    config = Config(retries={"mode": "standard", "max_attempts": max_attempts})
    return boto3.Session(region_name=REGION).client("ec2", config=config)


def describe(producer: Producer, client: Any) -> None:
    client.describe_vpc_endpoint_connections(
        Filters=[{"Name": "service-id", "Values": [producer.service.service_id]}]
    )


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(throttling=SMALL)])
def test_request_limit_exceeded_after_the_bucket_empties_then_refilled(
    producer: Producer, fake_clock: FakeClock
) -> None:
    client = ec2()
    for _ in range(3):
        describe(producer, client)
    with pytest.raises(ClientError) as refused:
        describe(producer, client)
    fake_clock.advance(1.0)
    describe(producer, client)

    error = refused.value.response
    assert error["Error"]["Code"] == "RequestLimitExceeded"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(throttling=SMALL)])
def test_botocore_standard_retries_treat_it_as_throttling(
    producer: Producer, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=slept.append, time=time.time))
    client = ec2(max_attempts=2)  # 3 attempts
    for _ in range(3):
        describe(producer, client)
    with pytest.raises(ClientError) as refused:
        describe(producer, client)  # the clock stands still: every attempt finds the bucket empty

    assert refused.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert refused.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(slept) == 2  # backed off before each retry
    assert buckets(SMALL).throttled[DESCRIBE] == 3


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(throttling=RequestThrottling.drained())])
def test_drained_start_and_per_action_independence(producer: Producer, fake_clock: FakeClock) -> None:
    client = ec2()
    service = producer.service.service_id
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        describe(producer, client)
    fake_clock.advance(0.06)  # 20 tokens/s: a Describe token
    describe(producer, client)
    with pytest.raises(ClientError, match="RequestLimitExceeded"):  # its own bucket, empty at first use
        client.reject_vpc_endpoint_connections(ServiceId=service, VpcEndpointIds=["vpce-0123456789abcdef0"])
    fake_clock.advance(0.21)  # 5 tokens/s: 1.05
    client.reject_vpc_endpoint_connections(ServiceId=service, VpcEndpointIds=["vpce-0123456789abcdef0"])


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(throttling=SMALL)])
def test_unthrottled_calls_neither_spend_nor_are_refused(producer: Producer) -> None:
    client = ec2()
    with unthrottled():
        for _ in range(10):
            describe(producer, client)
    for _ in range(3):
        describe(producer, client)

    assert buckets(SMALL).allowed[DESCRIBE] == 3


def test_off_unless_the_settings_say_so(producer: Producer) -> None:
    client = ec2()
    for _ in range(150):
        describe(producer, client)
