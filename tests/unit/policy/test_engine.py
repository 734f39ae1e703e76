"""Evaluation: precedence, explanation, context handling and the result model."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gatekeeper.policy import Evaluation, PolicyEvaluationError, evaluate, parse_template
from tests.unit.policy.builders import GOOD_CONTEXT, STANDARD

STD = parse_template(STANDARD)


def template_of(*statements: tuple[str, str, bool]) -> Any:
    """Statements (sid, effect, matches?) — a matching one has no condition, a non-matching one
    tests a key that is absent from the context."""
    body = []
    for sid, effect, hit in statements:
        statement: dict[str, Any] = {"Sid": sid, "Effect": effect}
        if not hit:
            statement["Condition"] = {"StringEquals": {"tenant:Id": "never"}}
        body.append(statement)
    return parse_template({"Name": "p", "Statement": body})


@pytest.mark.parametrize(
    ("statements", "effect", "deciding"),
    [
        ([("A", "Allow", True), ("D", "Deny", True), ("R", "Review", True)], "Deny", ("D",)),
        ([("D1", "Deny", True), ("A", "Allow", True), ("D2", "Deny", True)], "Deny", ("D1", "D2")),
        ([("A", "Allow", True), ("R", "Review", True), ("D", "Deny", False)], "Review", ("R",)),
        ([("R1", "Review", True), ("R2", "Review", True)], "Review", ("R1", "R2")),
        ([("A1", "Allow", True), ("R", "Review", False), ("A2", "Allow", True)], "Allow", ("A1", "A2")),
        ([("A", "Allow", False), ("D", "Deny", False)], None, ()),
    ],
)
def test_precedence(
    statements: list[tuple[str, str, bool]], effect: str | None, deciding: tuple[str, ...]
) -> None:
    result = evaluate(template_of(*statements), {})
    assert result.effect == effect
    assert result.deciding_sids == deciding
    assert len(result.statements) == len(statements)  # every statement evaluated, no short-circuit


def test_standard_template_accepts_a_good_request() -> None:
    result = evaluate(STD, GOOD_CONTEXT)
    assert result.effect == "Allow"
    assert result.deciding_sids == ("Accept",)
    assert result.parameters == {"MaxEndpoints": 3, "HomeRegions": ("us-east-1",)}
    assert result.template == "standard"


def test_standard_template_rejects_a_suspended_tenant_and_explains() -> None:
    result = evaluate(STD, {**GOOD_CONTEXT, "tenant:Status": "suspended", "endpoint:Region": "eu-west-1"})
    assert result.effect == "Deny"
    assert result.deciding_sids == ("TenantActive",)
    assert result.explain() == [
        "Deny TenantActive matched: StringNotEquals tenant:Status 'suspended' vs ['active']",
        "Deny Entitled did not match: ForAllValues:StringNotLike endpoint:ServiceId "
        "'vpce-svc-0123456789abcdef0' vs ['vpce-svc-0123456789abcdef0'] is false",
        "Review OtherRegion matched: StringNotEquals endpoint:Region 'eu-west-1' vs ['us-east-1']",
        "Allow Accept matched: no condition",
    ]


def test_standard_template_holds_another_region() -> None:
    result = evaluate(STD, {**GOOD_CONTEXT, "endpoint:Region": "eu-west-1"})
    assert result.effect == "Review"
    assert result.deciding_sids == ("OtherRegion",)
    # the tenant's override moves its home region
    assert (
        evaluate(STD, {**GOOD_CONTEXT, "endpoint:Region": "eu-west-1"}, {"HomeRegions": ["eu-west-1"]}).effect
        == "Allow"
    )


def test_standard_template_rejects_an_unentitled_service() -> None:
    result = evaluate(STD, {**GOOD_CONTEXT, "endpoint:ServiceId": "vpce-svc-other"})
    assert result.effect == "Deny"
    assert result.deciding_sids == ("Entitled",)


def test_explain_for_absent_and_multi_valued_and_several_conditions() -> None:
    template = parse_template(
        {
            "Name": "x",
            "Statement": [
                {
                    "Sid": "Both",
                    "Effect": "Deny",
                    "Condition": {
                        "StringEquals": {"tenant:Services": "b"},
                        "Null": {"tenant:ExpiresAt": "true"},
                        "NumericLessThan": {"tenant:ActiveEndpoints": 3},
                    },
                },
                {
                    "Sid": "Fails",
                    "Effect": "Allow",
                    "Condition": {
                        "StringEquals": {"tenant:Id": "a"},
                        "DateLessThan": {"gatekeeper:CurrentTime": "2025-01-01"},
                        "Bool": {"tenant:Labels/beta": "true"},
                    },
                },
            ],
        }
    )
    result = evaluate(
        template,
        {
            "tenant:Services": ["a", "b"],
            "tenant:ActiveEndpoints": 1,
            "tenant:Id": "a",
            "gatekeeper:CurrentTime": datetime(2025, 6, 1, tzinfo=UTC),
        },
    )
    assert result.explain() == [
        "Deny Both matched: StringEquals tenant:Services ['a', 'b'] vs ['b'] and "
        "Null tenant:ExpiresAt (absent) vs [true] and NumericLessThan tenant:ActiveEndpoints 1 vs [3]",
        "Allow Fails did not match: DateLessThan gatekeeper:CurrentTime 2025-06-01T00:00:00Z vs "
        "[2025-01-01T00:00:00Z] is false; Bool tenant:Labels/beta (absent) vs [true] is false",
    ]
    assert result.effect == "Deny"


def test_evaluation_is_json_serialisable_and_frozen() -> None:
    result = evaluate(STD, {**GOOD_CONTEXT, "gatekeeper:CurrentTime": datetime(2025, 1, 1, tzinfo=UTC)})
    document = json.loads(result.model_dump_json())
    assert document["effect"] == "Allow"
    assert document["deciding_sids"] == ["Accept"]
    assert document["parameters"]["HomeRegions"] == ["us-east-1"]
    assert document["statements"][0]["conditions"][0] == {
        "operator": "StringNotEquals",
        "key": "tenant:Status",
        "present": True,
        "context_values": ["active"],
        "condition_values": ["active"],
        "matched": False,
    }
    assert Evaluation.model_validate_json(result.model_dump_json()).effect == "Allow"
    with pytest.raises(ValueError, match="frozen"):
        result.effect = "Deny"  # type: ignore[misc]


def test_unknown_context_key_is_a_caller_bug() -> None:
    with pytest.raises(
        PolicyEvaluationError, match=r"unknown condition keys 'tenant:Tier'.*known keys: endpoint:Id"
    ):
        evaluate(STD, {**GOOD_CONTEXT, "tenant:Tier": "gold"})
    with pytest.raises(PolicyEvaluationError, match="unknown condition keys 5"):
        evaluate(STD, {5: "x"})  # type: ignore[dict-item]


def test_duplicated_context_key_is_ambiguous() -> None:
    with pytest.raises(PolicyEvaluationError, match="gives tenant:Status more than once") as caught:
        evaluate(STD, {**GOOD_CONTEXT, "TENANT:STATUS": "suspended"})
    assert caught.value.sid == "TenantActive"


def test_unused_ambiguous_key_does_not_fail() -> None:
    context = {**GOOD_CONTEXT, "tenant:Labels/a": "1", "tenant:Labels/A": "2"}
    assert evaluate(STD, context).effect == "Allow"


def test_evaluation_error_message_and_fields() -> None:
    error = PolicyEvaluationError("boom")
    assert str(error) == "boom"
    assert (error.sid, error.operator, error.key, error.reason) == (None, None, None, "boom")
    error = PolicyEvaluationError("boom", sid="S", operator="StringEquals", key="tenant:Id")
    assert str(error) == "statement 'S' StringEquals tenant:Id: boom"


def test_labels_no_template_can_name_are_ignored() -> None:
    assert evaluate(STD, {**GOOD_CONTEXT, "tenant:Labels/cost centre": "x"}).effect == "Allow"
