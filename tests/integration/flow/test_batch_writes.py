"""A batch's per-connection writes (claims, records, announcement marks) go to the decider's fan-out
together, one tenant's quota writes in one lane, and a write that fails fails its request alone.
The real handler on the emulator, with the decider's real thread pool."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gatekeeper.wiring import services as runtime
from gatekeeper_ops.local_lambda import handler_session
from gatekeeper_ops.sandbox.account import ProducerAccount

from .conftest import ACME
from .test_batch import decide, endpoints, two_services

__all__ = ["two_services"]  # the fixture, shared with test_batch


def settled(producer: ProducerAccount, made: list[tuple[str, str, str]]) -> None:
    for endpoint, _, owner in made:
        state = producer.decisions.state(endpoint)
        assert state is not None, endpoint
        assert state.settled, endpoint
        assert state.status == ("accepted" if owner == ACME else "rejected"), endpoint


@pytest.mark.consistent_reads
def test_a_batchs_writes_go_to_the_fan_out_together_one_tenants_claims_in_one_lane(
    two_services: ProducerAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = two_services
    made = endpoints(producer, 8)  # 4 acme's (accepted: a quota slot each), 4 a stranger's (rejected)
    fanned: list[int] = []
    fan_out = runtime.fan_out

    def spy(tasks: Sequence[Callable[[], None]]) -> None:
        fanned.append(len(tasks))
        fan_out(tasks)

    monkeypatch.setattr(runtime, "fan_out", spy)
    runtime.decision_service.cache_clear()  # built again, with the spy

    assert decide(producer, [(e, s) for e, s, _ in made]) == {"batchItemFailures": []}
    # Claims: acme's four in one lane (its quota counter), each rejection its own; then the four
    # accepts' records; then all eight announcement marks.
    assert fanned == [1 + 4, 4, 8]
    settled(producer, made)
    assert producer.decisions.active_endpoints("acme") == 4


@pytest.mark.consistent_reads
def test_a_claim_that_fails_fails_its_request_alone_the_rest_of_its_lane_included(
    two_services: ProducerAccount,
) -> None:
    producer = two_services
    made = endpoints(producer, 8)
    victim = made[0][0]  # acme's first: the head of acme's lane

    def failing_claim(params: dict[str, Any], **_: Any) -> None:
        first = params["TransactItems"][0]
        item = first.get("Put", {}).get("Item", {})
        if item.get("pk", {}).get("S") == f"ENDPOINT#{victim}" and not failed:
            failed.append(victim)
            error = {"Error": {"Code": "InternalServerError", "Message": "injected"}}
            raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]

    failed: list[str] = []
    handler_session().events.register("before-parameter-build.dynamodb.TransactWriteItems", failing_claim)

    assert decide(producer, [(e, s) for e, s, _ in made]) == {
        "batchItemFailures": [{"itemIdentifier": victim}]
    }
    assert failed == [victim]
    assert producer.decisions.state(victim) is None  # nothing claimed: its redelivery decides it
    assert producer.connection_state(victim) == "pendingAcceptance"
    settled(producer, made[1:])
    assert producer.decisions.active_endpoints("acme") == 3
