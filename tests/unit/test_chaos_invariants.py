"""The chaos run's delivery contract, on hand-made observations: every raw copy is kept and counted;
a duplicate of a decision passes, a second decision or a missing, altered or unlabelled copy fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gatekeeper.models.decision import Decision
from gatekeeper_ops.chaos.invariants import Invariant, Observations, _announced, _one_decision

ENDPOINT = "vpce-0a1b2c3d4e5f60718"
DECIDED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ACCEPTED = Decision(
    vpc_endpoint_id=ENDPOINT,
    service_id="vpce-svc-0123456789abcdef0",
    vpc_endpoint_owner="111111111111",
    tenant_id="acme",
    decision="accepted",
    reasons=("Accept",),
    decided_at=DECIDED_AT,
)


def _record(decision: Decision) -> dict[str, Any]:
    return {
        "pk": f"ENDPOINT#{decision.vpc_endpoint_id}",
        "sk": f"DECISION#{decision.decided_at.isoformat()}#{decision.outcome}",
        "decision": decision.model_dump_json(),
    }


def _sns(decision: Decision, attribute: str | None = None, message_id: str = "m-1") -> dict[str, Any]:
    """An SNS message as its SQS subscriber receives it (no raw delivery)."""
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "Message": decision.model_dump_json(),
        "MessageAttributes": {"decision_id": {"Type": "String", "Value": attribute or decision.decision_id}},
    }


def _event(decision: Decision, event_id: str = "e-1") -> dict[str, Any]:
    return {
        "id": event_id,
        "detail-type": "Endpoint Connection Decided",
        "detail": decision.model_dump(mode="json"),
    }


def _seen(
    sns: list[dict[str, Any]], bus: list[dict[str, Any]], records: tuple[Decision, ...] = (ACCEPTED,)
) -> Observations:
    return Observations({}, [_record(d) for d in records], sns, bus, {"DecisionDeadLetterQueueUrl": []})


def _offenders(*invariants: Invariant) -> list[str]:
    return [o for i in invariants for o in i.offenders]


def test_a_duplicate_copy_of_a_decision_is_counted_not_failed():
    # A Publish whose answer was lost, retried: two SNS messages (two message ids), one decision.
    seen = _seen([_sns(ACCEPTED, message_id="m-1"), _sns(ACCEPTED, message_id="m-2")], [_event(ACCEPTED)])
    assert _offenders(_one_decision(seen), _announced(seen)) == []
    assert [len(seen.copies["sns"]), len(seen.copies["bus"])] == [2, 1]
    assert [seen.extra_copies("sns"), seen.extra_copies("bus")] == [1, 0]
    assert seen.per_thousand(len(seen.copies["sns"])) == 2000.0


def test_a_second_decision_id_for_one_endpoint_fails_whatever_its_time():
    again = ACCEPTED.model_copy(update={"decided_at": DECIDED_AT + timedelta(seconds=1)})
    seen = _seen([_sns(ACCEPTED), _sns(again)], [_event(ACCEPTED), _event(again)])
    assert _one_decision(seen).offenders == [
        f"{ENDPOINT} (sns: 2 different accepted)",
        f"{ENDPOINT} (bus: 2 different accepted)",
    ]
    assert _announced(seen).offenders == [
        f"{ENDPOINT} (accepted on sns, not recorded)",
        f"{ENDPOINT} (accepted on bus, not recorded)",
    ]
    # Recorded twice as well: two decisions in the table.
    both = _seen([_sns(ACCEPTED), _sns(again)], [_event(ACCEPTED), _event(again)], (ACCEPTED, again))
    assert f"{ENDPOINT} (records: 2 different accepted)" in _one_decision(both).offenders
    assert _announced(both).offenders == []


def test_a_decision_missing_on_one_channel_fails():
    seen = _seen([_sns(ACCEPTED)], [])
    assert _announced(seen).offenders == [f"{ENDPOINT} (accepted not on bus)"]
    assert _announced(_seen([], [_event(ACCEPTED)])).offenders == [f"{ENDPOINT} (accepted not on sns)"]


def test_a_copy_whose_body_is_not_its_decisions_fails():
    altered = ACCEPTED.model_copy(update={"reasons": ("QuotaExceeded",)})  # same decision_id
    assert altered.decision_id == ACCEPTED.decision_id
    seen = _seen([_sns(ACCEPTED), _sns(altered)], [_event(ACCEPTED)])
    assert _announced(seen).offenders == [f"{ENDPOINT} (accepted on sns, not its record's body)"]


def test_an_sns_copy_without_its_decision_id_attribute_fails():
    unlabelled = _sns(ACCEPTED)
    del unlabelled["MessageAttributes"]
    seen = _seen([unlabelled], [_event(ACCEPTED)])
    assert _announced(seen).offenders == [f"{ENDPOINT} (sns attribute decision_id '')"]
    other = _seen([_sns(ACCEPTED, attribute="other")], [_event(ACCEPTED)])
    assert _announced(other).offenders == [f"{ENDPOINT} (sns attribute decision_id 'other')"]
