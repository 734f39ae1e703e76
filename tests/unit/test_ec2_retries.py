"""The EC2 client's retries fit the decider's timeout, counted as botocore counts them.

botocore's standard mode backs off before retry i (1-based) for rand(0..1) x min(base x 2**(i-1),
20) s, base 1 s for throttling; a Config's `max_attempts` counts retries, `total_max_attempts`
every attempt. One fully throttled call (RequestLimitExceeded on every attempt) is sent to the
real client here, its sleeps recorded instead of slept."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff

from gatekeeper.wiring import services as runtime
from gatekeeper_ops.stack import load_template

THROTTLED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code>'
    b"<Message>Request limit exceeded.</Message></Error></Errors><RequestID>r</RequestID></Response>"
)


class _Body:
    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: object) -> list[bytes]:
        return [self._content]

    def read(self) -> bytes:
        return self._content


def worst_case_backoff(total_attempts: int) -> float:
    """The longest botocore's standard mode can sleep over one call of `total_attempts` attempts,
    all throttled (its own constants: base 2, throttling scale 1 s, cap 20 s; jitter at its top)."""
    scale = ExponentialBackoff._DEFAULT_BACKOFF_CONFIG["throttling_base_scale"]
    return sum(
        min(scale * ExponentialBackoff._BASE ** (retry - 1), ExponentialBackoff._MAX_BACKOFF)
        for retry in range(1, total_attempts)
    )


def test_one_fully_throttled_ec2_call_backs_off_well_inside_the_deciders_timeout(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    runtime.session.cache_clear()
    ec2 = runtime.client("ec2", runtime._EC2_CONFIG)
    attempts: list[str] = []
    slept: list[float] = []

    def throttled(request, **_):
        attempts.append(request.url)
        return AWSResponse(request.url, 503, {}, _Body(THROTTLED))

    ec2.meta.events.register("before-send.ec2", throttled)
    monkeypatch.setattr("botocore.endpoint.time", SimpleNamespace(sleep=slept.append, time=lambda: 0.0))
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        ec2.describe_vpc_endpoint_connections()
    runtime.session.cache_clear()

    total = ec2.meta.config.retries["total_max_attempts"]  # what botocore made of the Config
    assert total == runtime.EC2_TOTAL_ATTEMPTS == len(attempts) == len(slept) + 1
    for retry, pause in enumerate(slept, start=1):  # each sleep within its cap
        assert pause <= min(2 ** (retry - 1), 20)
    timeout = load_template()["Globals"]["Function"]["Timeout"]
    worst = worst_case_backoff(total)
    assert worst == 7
    assert worst <= timeout / 4, f"{worst} s of back-off in one call leaves too little of {timeout} s"


def test_max_attempts_in_a_config_counts_retries_not_attempts():
    # Why the EC2 client says total_max_attempts: `max_attempts: 5` (as it once did) is 6 attempts,
    # up to 1+2+4+8+16 = 31 s of back-off, more than the function's timeout.
    runtime.session.cache_clear()
    legacy = runtime.session().client(
        "ec2", region_name="us-east-1", config=runtime.Config(retries={"mode": "standard", "max_attempts": 5})
    )
    runtime.session.cache_clear()
    assert legacy.meta.config.retries["total_max_attempts"] == 6
    assert worst_case_backoff(6) == 31
