"""What every integration suite shares: an emulated producer account running the real stack
(moto + the PrivateLink emulator, resources from template.yaml, the handlers delivered in-process),
and the speed-ups that change nothing but time."""

from __future__ import annotations

import contextlib
import copy
import json
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from moto import mock_aws

from gatekeeper_ops import stack
from gatekeeper_ops.emulator import EmulatorSettings, EventualConsistency, privatelink_emulator
from gatekeeper_ops.fast_moto import faster_moto
from gatekeeper_ops.iam_contract import CallRecorder, load_transformed, violations
from gatekeeper_ops.local_lambda import LocalLambda
from gatekeeper_ops.sandbox.account import ProducerAccount
from gatekeeper_ops.service_models import OPERATIONS
from tests.builders import tenant
from tests.integration.snapshots import AccountSnapshots

__all__ = ["MakeProducer", "tenant"]

MakeProducer = Callable[..., ProducerAccount]
_SNAPSHOTS = AccountSnapshots()


_load_template = stack.load_template


@cache
def _parsed_template() -> dict[str, Any]:
    return _load_template()


@pytest.fixture(autouse=True)
def decider_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the decider takes between re-reads of a connection EC2 does not list yet, recorded
    instead of slept: the emulator's lag (`EventualConsistency()`) ends for a reader after its first
    stale read (or 5 s), so the answers are the same, and the suites do not wait 0.2 s per request."""
    from gatekeeper.wiring import services

    waits: list[float] = []
    monkeypatch.setattr(services, "sleep", waits.append)
    return waits


@pytest.fixture
def producer_factory(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Callable[..., MakeProducer]]:
    """`producer_factory(fast=False, eventual=…)` → `make(allowed_principals=…, parameters=…, services=1)`:
    producer accounts on one emulated AWS for the test, built-in templates pushed. `fast` adds
    gatekeeper_ops.fast_moto (for tests that make thousands of decisions); `eventual`: EC2's read lag
    (True: `EventualConsistency()`, False: consistent reads, or the test's own settings)."""
    # Speed only: template.yaml is parsed once per session; every account gets its own copy.
    monkeypatch.setattr(stack, "load_template", lambda path=stack.TEMPLATE: copy.deepcopy(_parsed_template()))
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    monkeypatch.delenv("GATEKEEPER_STACK", raising=False)
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # ~1 s per test of AMIs nobody uses
    with contextlib.ExitStack() as scope:
        # EC2's read lag is on for every suite; a test that checks an exact delivery sequence step by
        # step (one delivery, then an assertion) is marked `consistent_reads` and runs without it.
        lagging = request.node.get_closest_marker("consistent_reads") is None

        def factory(fast: bool = False, eventual: bool | EventualConsistency = lagging) -> MakeProducer:
            if fast:
                scope.enter_context(faster_moto())
            scope.enter_context(mock_aws())
            # EC2 as it is: a new connection is missing from the first Describe after its notification,
            # and notifications go out asynchronously, in a seeded, shuffled order (docs/emulator.md).
            # A test may give its own lag instead.
            consistency = EventualConsistency() if eventual is True else eventual or None
            scope.enter_context(privatelink_emulator(EmulatorSettings(eventual_consistency=consistency)))

            def make(
                *,
                allowed_principals: tuple[str, ...] = ("*",),
                parameters: dict[str, Any] | None = None,
                services: int = 1,
            ) -> ProducerAccount:
                def provision(session: boto3.Session) -> ProducerAccount:
                    account = ProducerAccount.create(
                        session,
                        allowed_principals=allowed_principals,
                        parameters=parameters,
                        services=services,
                    )
                    account.push_builtin_templates()
                    return account

                kind = (
                    tuple(allowed_principals),
                    json.dumps(parameters, sort_keys=True),
                    services,
                    fast,
                    repr(consistency),
                )
                return _SNAPSHOTS.account(kind, provision)

            return make

        yield factory


TRANSFORMED = stack.ROOT / ".aws-sam" / "template.transformed.json"


@cache
def transformed_template() -> dict[str, Any]:
    """What CloudFormation receives (template.yaml after the SAM transform), brought up to date by
    `make transform` (the SAM translator lives in the tools venv: it pins another pydantic)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "transform"],
        cwd=stack.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"`make transform` failed; the IAM contract cannot be checked:\n{done.stderr}")
    return load_transformed(TRANSFORMED)


@pytest.fixture(autouse=True)
def iam_contract(monkeypatch: pytest.MonkeyPatch) -> Iterator[CallRecorder]:
    """Every AWS call a handler makes in the test must be allowed by its function's role in the
    transformed template (and by the target's resource policy), and be in the trimmed service models
    the handlers' clients load. Checked at teardown; a gap fails the test with the function, the
    action and the resource."""
    recorder = CallRecorder()
    monkeypatch.setattr(LocalLambda, "invoke", recorder.wrap_invoke(LocalLambda.invoke))
    monkeypatch.setattr(BaseClient, "_make_api_call", recorder.wrap_api_call(BaseClient._make_api_call))
    yield recorder
    # The handlers' clients load the trimmed models: an operation missing from them has failed already
    # (no such client method), a service missing from them ran on botocore's full model. Both are named.
    untrimmed = sorted(
        {
            f"{c.function} {c.service}:{c.operation}"
            for c in recorder.calls
            if c.operation not in OPERATIONS.get(c.service, ())
        }
    )
    assert not untrimmed, (
        "calls outside the trimmed service models: add them to gatekeeper_ops.service_models.OPERATIONS "
        "and run `make service-models`\n  " + "\n  ".join(untrimmed)
    )
    if recorder.calls:
        problems = violations(recorder.calls, transformed_template())
        assert not problems, "IAM contract: calls the deployed roles would refuse:\n  " + "\n  ".join(
            problems
        )
