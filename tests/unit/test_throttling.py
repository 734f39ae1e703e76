"""EC2's token buckets (gatekeeper_ops.emulator.throttling): the arithmetic, on a hand-moved clock."""

from __future__ import annotations

import pytest

from gatekeeper_ops.emulator import clock
from gatekeeper_ops.emulator.throttling import (
    MUTATING,
    NON_MUTATING,
    Buckets,
    BucketSize,
    RequestThrottling,
    TokenBucket,
    request_limit_exceeded,
)


def test_a_full_bucket_gives_its_capacity_then_refuses() -> None:
    bucket = TokenBucket(BucketSize(3, 1), tokens=3, updated=0.0)

    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_refill_is_at_the_rate_and_never_above_capacity() -> None:
    bucket = TokenBucket(BucketSize(100, 20), tokens=0, updated=0.0)

    assert not bucket.take(0.04)  # 0.8 of a token
    assert bucket.take(0.05)  # 1.0
    assert not bucket.take(0.05)
    bucket.take(1000.0)  # a long pause: refilled to capacity, not beyond
    assert bucket.tokens == 99


def test_documented_sizes_by_category_and_overrides() -> None:
    throttling = RequestThrottling(overrides={"AcceptVpcEndpointConnections": BucketSize(2, 1)})

    assert throttling.size("DescribeVpcEndpointConnections") == NON_MUTATING == BucketSize(100, 20)
    assert throttling.size("RejectVpcEndpointConnections") == MUTATING == BucketSize(200, 5)
    assert throttling.size("ModifyVpcEndpointServicePermissions") == MUTATING
    assert throttling.size("CreateVpcEndpoint") == MUTATING
    assert throttling.size("RunInstances") == BucketSize(1000, 2)
    assert throttling.size("AcceptVpcEndpointConnections") == BucketSize(2, 1)


def test_each_account_region_and_action_has_its_own_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: 0.0)
    buckets = Buckets(RequestThrottling(non_mutating=BucketSize(1, 1)))

    first = buckets.take("111111111111", "us-east-1", "DescribeVpcEndpointConnections")
    again = buckets.take("111111111111", "us-east-1", "DescribeVpcEndpointConnections")
    other_action = buckets.take("111111111111", "us-east-1", "DescribeVpcEndpoints")
    other_region = buckets.take("111111111111", "us-west-2", "DescribeVpcEndpointConnections")
    other_account = buckets.take("222222222222", "us-east-1", "DescribeVpcEndpointConnections")

    assert (first, again, other_action, other_region, other_account) == (True, False, True, True, True)
    assert buckets.throttled[("111111111111", "us-east-1", "DescribeVpcEndpointConnections")] == 1


def test_drained_buckets_start_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(clock, "now", lambda: now[0])
    buckets = Buckets(RequestThrottling.drained())

    refused = buckets.take("111111111111", "us-east-1", "AcceptVpcEndpointConnections")
    now[0] = 0.2  # 5 tokens/s: one token
    allowed = buckets.take("111111111111", "us-east-1", "AcceptVpcEndpointConnections")

    assert (refused, allowed) == (False, True)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="bucket"):
        BucketSize(0, 1)
    with pytest.raises(ValueError, match="initial_fill"):
        RequestThrottling(initial_fill=1.5)


def test_the_answer_is_ec2s_503_request_limit_exceeded() -> None:
    status, headers, body = request_limit_exceeded()

    assert status == 503
    assert "<Code>RequestLimitExceeded</Code>" in body
    assert body.count("<RequestID>") == 1
    assert headers["Content-Type"].startswith("text/xml")
