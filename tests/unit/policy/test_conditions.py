"""Each condition operator, modifier and wildcard rule, against IAM semantics."""

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from gatekeeper.policy import ContextValue, PolicyEvaluationError
from gatekeeper.policy.conditions import arn_match, glob_match, parse_operator, parse_value
from tests.unit.policy.builders import matches

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)

# (operator, key, condition value(s), context value, expected)
OPERATOR_CASES: list[tuple[str, str, Any, ContextValue, bool]] = [
    ("StringEquals", "tenant:Status", "active", "active", True),
    ("StringEquals", "tenant:Status", "active", "Active", False),
    ("StringNotEquals", "tenant:Status", "active", "suspended", True),
    ("StringNotEquals", "tenant:Status", "active", "active", False),
    ("StringEqualsIgnoreCase", "tenant:Status", "ACTIVE", "active", True),
    ("StringEqualsIgnoreCase", "tenant:Status", "ACTIVE", "suspended", False),
    ("StringNotEqualsIgnoreCase", "tenant:Status", "ACTIVE", "suspended", True),
    ("StringNotEqualsIgnoreCase", "tenant:Status", "ACTIVE", "Active", False),
    ("StringLike", "endpoint:ServiceId", "vpce-svc-*", "vpce-svc-0abc", True),
    ("StringLike", "endpoint:ServiceId", "vpce-svc-*", "VPCE-SVC-0abc", False),
    ("StringNotLike", "endpoint:ServiceId", "vpce-svc-*", "other", True),
    ("StringNotLike", "endpoint:ServiceId", "vpce-svc-*", "vpce-svc-1", False),
    ("NumericEquals", "tenant:ActiveEndpoints", 3, 3, True),
    ("NumericEquals", "tenant:ActiveEndpoints", "3", 3.0, True),
    ("NumericEquals", "tenant:ActiveEndpoints", 3, 4, False),
    ("NumericNotEquals", "tenant:ActiveEndpoints", 3, 4, True),
    ("NumericNotEquals", "tenant:ActiveEndpoints", 3, 3, False),
    ("NumericLessThan", "tenant:ActiveEndpoints", 3, 2, True),
    ("NumericLessThan", "tenant:ActiveEndpoints", 3, 3, False),
    ("NumericLessThanEquals", "tenant:ActiveEndpoints", 3, 3, True),
    ("NumericLessThanEquals", "tenant:ActiveEndpoints", 3, 4, False),
    ("NumericGreaterThan", "tenant:ActiveEndpoints", 3, 4, True),
    ("NumericGreaterThan", "tenant:ActiveEndpoints", 3, 3, False),
    ("NumericGreaterThanEquals", "tenant:ActiveEndpoints", 3, 3, True),
    ("NumericGreaterThanEquals", "tenant:ActiveEndpoints", 3.5, 3, False),
    ("NumericEquals", "tenant:ActiveEndpoints", 2, Decimal("2"), True),  # DynamoDB numbers
    ("NumericEquals", "tenant:ActiveEndpoints", 2.5, "2.5", True),
    ("DateEquals", "endpoint:CreatedAt", "2025-01-31T12:00:00Z", T0, True),
    ("DateEquals", "endpoint:CreatedAt", "2025-01-31T12:00:00Z", T0 + timedelta(seconds=1), False),
    ("DateNotEquals", "endpoint:CreatedAt", "2025-01-31T12:00:00Z", T0 + timedelta(seconds=1), True),
    ("DateNotEquals", "endpoint:CreatedAt", "2025-01-31T12:00:00Z", T0, False),
    ("DateLessThan", "endpoint:CreatedAt", "2025-02-01", T0, True),
    ("DateLessThan", "endpoint:CreatedAt", "2025-01-31", T0, False),
    ("DateLessThanEquals", "endpoint:CreatedAt", "2025-01-31T12:00:00+00:00", T0, True),
    ("DateLessThanEquals", "endpoint:CreatedAt", "2025-01-31T11:59:59Z", T0, False),
    ("DateGreaterThan", "endpoint:CreatedAt", "2025-01-31", T0, True),
    ("DateGreaterThan", "endpoint:CreatedAt", "2025-02-01", T0, False),
    ("DateGreaterThanEquals", "endpoint:CreatedAt", "2025-01-31T12:00:00Z", T0, True),
    ("DateGreaterThanEquals", "endpoint:CreatedAt", "2025-01-31T12:00:01Z", T0, False),
    # epoch seconds, naive = UTC, offsets, date objects and ISO strings in the context
    ("DateEquals", "endpoint:CreatedAt", int(T0.timestamp()), T0, True),
    ("DateEquals", "endpoint:CreatedAt", str(int(T0.timestamp())), T0, True),
    ("DateEquals", "endpoint:CreatedAt", "2025-01-31T12:00:00", datetime(2025, 1, 31, 12), True),
    ("DateEquals", "endpoint:CreatedAt", "2025-01-31T14:00:00+02:00", T0, True),
    (
        "DateEquals",
        "endpoint:CreatedAt",
        "2025-01-31T12:00:00Z",
        datetime(2025, 1, 31, 7, tzinfo=timezone(timedelta(hours=-5))),
        True,
    ),
    ("DateEquals", "endpoint:CreatedAt", "2025-01-31T00:00:00Z", "2025-01-31", True),
    ("DateLessThan", "endpoint:CreatedAt", "2025-02-01T00:00:00Z", 1738324800, True),
    ("Bool", "tenant:Labels/managed", "true", True, True),
    ("Bool", "tenant:Labels/managed", "true", "TRUE", True),
    ("Bool", "tenant:Labels/managed", True, "false", False),
    ("Bool", "tenant:Labels/managed", "false", False, True),
    (
        "ArnEquals",
        "tenant:Labels/role",
        "arn:aws:iam::111122223333:role/app",
        "arn:aws:iam::111122223333:role/app",
        True,
    ),
    (
        "ArnEquals",
        "tenant:Labels/role",
        "arn:aws:iam::111122223333:role/app",
        "arn:aws:iam::111122223333:role/b",
        False,
    ),
    (
        "ArnNotEquals",
        "tenant:Labels/role",
        "arn:aws:iam::111122223333:role/a",
        "arn:aws:iam::111122223333:role/b",
        True,
    ),
    (
        "ArnNotEquals",
        "tenant:Labels/role",
        "arn:aws:iam::111122223333:role/a",
        "arn:aws:iam::111122223333:role/a",
        False,
    ),
    (
        "ArnLike",
        "tenant:Labels/role",
        "arn:aws:iam::*:role/app-*",
        "arn:aws:iam::111122223333:role/app-1",
        True,
    ),
    (
        "ArnLike",
        "tenant:Labels/role",
        "arn:aws:iam::*:role/app-*",
        "arn:aws:iam::111122223333:user/app-1",
        False,
    ),
    ("ArnNotLike", "tenant:Labels/role", "arn:aws:iam::*:role/*", "arn:aws:iam::111122223333:user/x", True),
    ("ArnNotLike", "tenant:Labels/role", "arn:aws:iam::*:role/*", "arn:aws:iam::111122223333:role/x", False),
]


@pytest.mark.parametrize(("operator", "key", "value", "context_value", "expected"), OPERATOR_CASES)
def test_operator(operator: str, key: str, value: Any, context_value: ContextValue, expected: bool) -> None:
    assert matches({operator: {key: value}}, {key: context_value}) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("false", False), (True, True), ("TRUE", True)],
)
def test_null_on_absent_key(value: Any, expected: bool) -> None:
    assert matches({"Null": {"tenant:ExpiresAt": value}}, {}) is expected


@pytest.mark.parametrize(("value", "expected"), [("true", False), ("false", True)])
def test_null_on_present_key(value: str, expected: bool) -> None:
    assert matches({"Null": {"tenant:ExpiresAt": value}}, {"tenant:ExpiresAt": T0}) is expected


def test_null_treats_none_and_empty_list_as_absent() -> None:
    assert matches({"Null": {"tenant:ExpiresAt": "true"}}, {"tenant:ExpiresAt": None})
    assert matches({"Null": {"tenant:Services": "true"}}, {"tenant:Services": []})
    assert matches({"Null": {"tenant:Labels/x": "false"}}, {"tenant:Labels/x": ""})  # empty string is a value


# --- absent keys -------------------------------------------------------------------------------

POSITIVE = [
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "NumericLessThan",
    "DateLessThan",
    "ArnLike",
]
NEGATED = [
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "NumericNotEquals",
    "DateNotEquals",
    "ArnNotEquals",
    "ArnNotLike",
]
_VALUE_FOR = {"String": "x", "Numeric": 1, "Date": "2025-01-01", "Arn": "arn:aws:iam::1:role/x"}
_KEY_FOR = {"String": "tenant:Status", "Numeric": "tenant:ActiveEndpoints", "Date": "tenant:ExpiresAt"}


def _case(operator: str) -> dict[str, dict[str, Any]]:
    family = next(f for f in ("String", "Numeric", "Date", "Arn") if operator.startswith(f))
    key = _KEY_FOR.get(family, "tenant:Labels/arn")
    return {operator: {key: _VALUE_FOR[family]}}


@pytest.mark.parametrize("operator", [*POSITIVE, "Bool"])
def test_absent_key_fails_a_positive_operator(operator: str) -> None:
    condition = {"Bool": {"tenant:Labels/x": "true"}} if operator == "Bool" else _case(operator)
    assert not matches(condition, {})


@pytest.mark.parametrize("operator", NEGATED)
def test_absent_key_satisfies_a_negated_operator(operator: str) -> None:
    # IAM: "If the policy condition requires that the key is not matched … and the key is not
    # present, the condition is true."
    assert matches(_case(operator), {})


@pytest.mark.parametrize("operator", POSITIVE + NEGATED)
def test_if_exists_is_true_on_absent_key(operator: str) -> None:
    (base, block) = next(iter(_case(operator).items()))
    assert matches({base + "IfExists": block}, {})


def test_if_exists_evaluates_normally_when_present() -> None:
    assert matches({"StringEqualsIfExists": {"tenant:Status": "active"}}, {"tenant:Status": "active"})
    assert not matches({"StringEqualsIfExists": {"tenant:Status": "active"}}, {"tenant:Status": "suspended"})
    assert not matches(
        {"NumericLessThanIfExists": {"tenant:ActiveEndpoints": 3}}, {"tenant:ActiveEndpoints": 5}
    )
    assert matches({"BoolIfExists": {"tenant:Labels/x": "true"}}, {})


def test_none_and_empty_list_are_absent() -> None:
    assert not matches({"StringEquals": {"tenant:Status": "active"}}, {"tenant:Status": None})
    assert matches({"StringNotEquals": {"tenant:Status": "active"}}, {"tenant:Status": None})
    assert not matches({"StringLike": {"tenant:Services": "*"}}, {"tenant:Services": []})


# --- set operators ------------------------------------------------------------------------------


def test_for_any_value() -> None:
    cond = {"ForAnyValue:StringEquals": {"tenant:Services": ["vpce-svc-a", "vpce-svc-b"]}}
    assert matches(cond, {"tenant:Services": ["vpce-svc-x", "vpce-svc-b"]})
    assert not matches(cond, {"tenant:Services": ["vpce-svc-x", "vpce-svc-y"]})
    assert not matches(cond, {"tenant:Services": []})
    assert not matches(cond, {})


def test_for_all_values() -> None:
    cond = {"ForAllValues:StringLike": {"tenant:Services": ["vpce-svc-a*", "vpce-svc-b*"]}}
    assert matches(cond, {"tenant:Services": ["vpce-svc-a1", "vpce-svc-b2"]})
    assert not matches(cond, {"tenant:Services": ["vpce-svc-a1", "vpce-svc-c"]})
    # IAM: ForAllValues "also returns true if there are no context keys in the request"
    assert matches(cond, {"tenant:Services": []})
    assert matches(cond, {})


def test_for_all_values_with_negated_operator_is_nor_per_value() -> None:
    cond = {"ForAllValues:StringNotLike": {"tenant:Services": ["key1*"]}}
    assert not matches(cond, {"tenant:Services": ["key1:legal"]})
    assert not matches(cond, {"tenant:Services": ["key1:hr", "key1:personnel"]})
    assert matches(cond, {"tenant:Services": ["key2:audit"]})
    assert not matches(cond, {"tenant:Services": ["key1:a", "key2:b"]})
    assert matches(cond, {})


def test_for_any_value_with_negated_operator() -> None:
    cond = {"ForAnyValue:StringNotEquals": {"tenant:Services": ["a", "b"]}}
    assert matches(cond, {"tenant:Services": ["a", "c"]})
    assert not matches(cond, {"tenant:Services": ["a", "b"]})
    assert not matches(cond, {})


def test_set_operator_if_exists_on_absent_key() -> None:
    assert matches({"ForAnyValue:StringEqualsIfExists": {"tenant:Services": "a"}}, {})
    assert matches({"ForAllValues:StringEqualsIfExists": {"tenant:Services": "a"}}, {})


def test_multi_valued_context_without_prefix() -> None:
    # a positive operator matches if any context value matches; a negated one if none does
    assert matches({"StringEquals": {"tenant:Services": "b"}}, {"tenant:Services": ["a", "b"]})
    assert not matches({"StringEquals": {"tenant:Services": "c"}}, {"tenant:Services": ["a", "b"]})
    assert not matches({"StringNotEquals": {"tenant:Services": "b"}}, {"tenant:Services": ["a", "b"]})
    assert matches({"StringNotEquals": {"tenant:Services": "c"}}, {"tenant:Services": ["a", "b"]})


def test_context_sets_and_tuples_are_multi_valued() -> None:
    assert matches(
        {"ForAllValues:StringLike": {"tenant:Services": "s-*"}}, {"tenant:Services": {"s-1", "s-2"}}
    )
    assert matches(
        {"ForAnyValue:StringEquals": {"tenant:Services": "s-2"}}, {"tenant:Services": ("s-1", "s-2")}
    )


# --- AND / OR -------------------------------------------------------------------------------------


def test_values_or_together() -> None:
    cond = {"StringEquals": {"endpoint:Region": ["us-east-1", "eu-west-1"]}}
    assert matches(cond, {"endpoint:Region": "eu-west-1"})
    assert not matches(cond, {"endpoint:Region": "ap-south-1"})


def test_negated_values_nor_together() -> None:
    cond = {"StringNotEquals": {"endpoint:Region": ["us-east-1", "eu-west-1"]}}
    assert not matches(cond, {"endpoint:Region": "eu-west-1"})
    assert matches(cond, {"endpoint:Region": "ap-south-1"})


def test_keys_and_together() -> None:
    cond = {"StringEquals": {"endpoint:Region": "us-east-1", "tenant:Status": "active"}}
    assert matches(cond, {"endpoint:Region": "us-east-1", "tenant:Status": "active"})
    assert not matches(cond, {"endpoint:Region": "us-east-1", "tenant:Status": "suspended"})


def test_operators_and_together() -> None:
    cond = {
        "StringEquals": {"tenant:Status": "active"},
        "NumericLessThan": {"tenant:ActiveEndpoints": 3},
    }
    assert matches(cond, {"tenant:Status": "active", "tenant:ActiveEndpoints": 2})
    assert not matches(cond, {"tenant:Status": "active", "tenant:ActiveEndpoints": 3})


# --- wildcards ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*", "", True),
        ("*", "anything", True),
        ("a*", "a", True),
        ("a*c", "abbbc", True),
        ("a*c", "abbbd", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a?c", "abbc", False),
        ("??", "ab", True),
        ("*b*b*", "abcbd", True),
        ("*b*b*", "abcd", False),
        ("a.c", "abc", False),  # '.' is literal, not a regex
        ("a[bc]", "ab", False),
        ("a[bc]", "a[bc]", True),
        ("a+", "aaa", False),
        ("x\\d", "x\\d", True),
        ("vpce-svc-0123", "vpce-svc-01234", False),
        ("", "", True),
        ("", "a", False),
    ],
)
def test_string_like_wildcards(pattern: str, text: str, expected: bool) -> None:
    assert matches({"StringLike": {"tenant:Labels/x": pattern}}, {"tenant:Labels/x": text}) is expected


def test_wildcards_span_newlines() -> None:
    assert matches({"StringLike": {"tenant:Labels/x": "a*b"}}, {"tenant:Labels/x": "a\nb"})


def test_escaped_wildcards_are_literal() -> None:
    cond = {"StringLike": {"tenant:Labels/x": "a${*}b${?}${$}"}}
    assert matches(cond, {"tenant:Labels/x": "a*b?$"})
    assert not matches(cond, {"tenant:Labels/x": "axxb!$"})


def test_string_equals_ignores_wildcards() -> None:
    assert not matches({"StringEquals": {"tenant:Labels/x": "a*"}}, {"tenant:Labels/x": "abc"})
    assert matches({"StringEquals": {"tenant:Labels/x": "a*"}}, {"tenant:Labels/x": "a*"})


def test_glob_is_linear_on_hostile_patterns() -> None:
    # a regex translation would backtrack catastrophically here
    assert not glob_match(parse_pattern("a*" * 30 + "b"), "a" * 5000)


def parse_pattern(text: str) -> tuple[str | int, ...]:
    from gatekeeper.policy.conditions import Text

    return Text(((text, True),)).tokens()


# --- ARNs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "arn", "expected"),
    [
        ("arn:aws:iam::*:root", "arn:aws:iam::111122223333:root", True),
        ("arn:aws:iam::*:*", "arn:aws:iam::111122223333:role/a", True),
        ("arn:*:iam::111122223333:*", "arn:aws-cn:iam::111122223333:user/x", True),
        # '*' does not span a colon outside the resource part
        ("arn:aws:iam::*:role/x", "arn:aws:iam::1:2:role/x", False),
        ("arn:aws:iam::1111222233?3:root", "arn:aws:iam::111122223333:root", True),
        # the resource part keeps its colons
        ("arn:aws:logs:us-east-1:1:log-group:*", "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s", True),
        ("arn:aws:iam::1:role/*", "not-an-arn", False),
        ("arn:aws:iam::1:role/*", "arn:aws:iam::1", False),
        ("arn:aws:iam::1:role/A", "arn:aws:iam::1:role/a", False),  # case-sensitive
    ],
)
def test_arn_like(pattern: str, arn: str, expected: bool) -> None:
    assert arn_match(parse_pattern(pattern), arn) is expected
    assert matches({"ArnLike": {"tenant:Labels/arn": pattern}}, {"tenant:Labels/arn": arn}) is expected
    # IAM: ArnEquals behaves as ArnLike (wildcards allowed in every part)
    assert matches({"ArnEquals": {"tenant:Labels/arn": pattern}}, {"tenant:Labels/arn": arn}) is expected


# --- keys ---------------------------------------------------------------------------------------


def test_condition_keys_are_case_insensitive() -> None:
    assert matches({"StringEquals": {"TENANT:status": "active"}}, {"tenant:Status": "active"})
    assert matches({"StringEquals": {"tenant:Status": "active"}}, {"Tenant:STATUS": "active"})
    assert matches({"StringEquals": {"tenant:labels/Env": "prod"}}, {"tenant:Labels/env": "prod"})


def test_string_operators_render_non_string_context_values() -> None:
    assert matches({"StringEquals": {"tenant:ActiveEndpoints": "3"}}, {"tenant:ActiveEndpoints": 3})
    assert matches({"StringEquals": {"tenant:Labels/x": "true"}}, {"tenant:Labels/x": True})
    assert matches({"StringLike": {"tenant:ExpiresAt": "2025-01-31T*"}}, {"tenant:ExpiresAt": T0})
    assert matches(
        {"StringEquals": {"tenant:ExpiresAt": "2025-01-31T00:00:00Z"}},
        {"tenant:ExpiresAt": date(2025, 1, 31)},
    )


# --- context values the operator cannot read: hold, never guess ---------------------------------


@pytest.mark.parametrize(
    ("condition", "context", "phrase"),
    [
        (
            {"NumericLessThan": {"tenant:ActiveEndpoints": 3}},
            {"tenant:ActiveEndpoints": "abc"},
            "not a number",
        ),
        ({"NumericLessThan": {"tenant:ActiveEndpoints": 3}}, {"tenant:ActiveEndpoints": True}, "boolean"),
        ({"NumericLessThan": {"tenant:Labels/n": 3}}, {"tenant:Labels/n": T0}, "is a date"),
        (
            {"NumericLessThan": {"tenant:ActiveEndpoints": 3}},
            {"tenant:ActiveEndpoints": float("nan")},
            "finite",
        ),
        ({"DateLessThan": {"tenant:ExpiresAt": "2025-01-01"}}, {"tenant:ExpiresAt": "soon"}, "not a date"),
        ({"DateLessThan": {"tenant:ExpiresAt": "2025-01-01"}}, {"tenant:ExpiresAt": 1e20}, "out of range"),
        ({"Bool": {"tenant:Labels/x": "true"}}, {"tenant:Labels/x": "yes"}, '"true" or "false"'),
        ({"StringEquals": {"tenant:Labels/x": "a"}}, {"tenant:Labels/x": {"a": 1}}, "expected a string"),
        ({"StringEquals": {"tenant:Services": "a"}}, {"tenant:Services": [["a"]]}, "expected a string"),
    ],
)
def test_unreadable_context_value_raises(
    condition: dict[str, Any], context: dict[str, Any], phrase: str
) -> None:
    with pytest.raises(PolicyEvaluationError) as caught:
        matches(condition, context)
    operator, block = next(iter(condition.items()))
    (key,) = block
    assert caught.value.sid == "Test"
    assert caught.value.operator == operator
    assert caught.value.key == key
    assert phrase in str(caught.value)
    assert "statement 'Test'" in str(caught.value)


def test_number_edge_forms() -> None:
    assert matches({"NumericEquals": {"tenant:ActiveEndpoints": "1e2"}}, {"tenant:ActiveEndpoints": 100})
    assert matches(
        {"NumericEquals": {"tenant:ActiveEndpoints": ".5"}}, {"tenant:ActiveEndpoints": Decimal("0.5")}
    )
    with pytest.raises(PolicyEvaluationError, match="not a number"):
        matches({"NumericEquals": {"tenant:ActiveEndpoints": 1}}, {"tenant:ActiveEndpoints": "1_000"})
    with pytest.raises(PolicyEvaluationError, match="finite"):
        matches(
            {"NumericEquals": {"tenant:ActiveEndpoints": 1}}, {"tenant:ActiveEndpoints": Decimal("Infinity")}
        )


def test_date_equality_across_types_does_not_raise_on_mixed_compare() -> None:
    # a whole-value Number parameter in a Date operator is epoch seconds
    params = {"Cutoff": {"Type": "Number", "Default": int(T0.timestamp())}}
    assert matches(
        {"DateGreaterThanEquals": {"endpoint:CreatedAt": "${Cutoff}"}},
        {"endpoint:CreatedAt": T0},
        parameters=params,
    )


# --- parsing helpers -----------------------------------------------------------------------------


def test_parse_operator_fields() -> None:
    op = parse_operator("ForAllValues:StringNotLikeIfExists")
    assert (op.base, op.negated, op.if_exists, op.qualifier) == ("StringNotLike", True, True, "ForAllValues")
    assert parse_operator("Null").qualifier is None


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("StringEqual", "did you mean 'StringEquals'"),
        ("stringequals", "did you mean 'StringEquals'? (names are case-sensitive)"),
        ("ForSomeValues:StringEquals", "unknown set operator prefix"),
        ("NullIfExists", "Null already tests whether the key exists"),
        ("ForAnyValue:Null", "Null takes no"),
        ("IfExists", "unknown condition operator"),
        ("IpAddress", "unknown condition operator"),
    ],
)
def test_parse_operator_errors(name: str, phrase: str) -> None:
    with pytest.raises(ValueError, match=re.escape(phrase)):
        parse_operator(name)


def test_parse_value_parts() -> None:
    value = parse_value("svc-${tenant:id}-${Env, 'dev'}${*}")
    refs = value.references
    assert [(r.name, r.is_context, r.default) for r in refs] == [
        ("tenant:Id", True, None),
        ("Env", False, "dev"),
    ]
    assert value.whole_reference is None
    assert parse_value("${X}").whole_reference is not None
    assert parse_value("plain").is_literal
    assert parse_value(5).is_literal
    assert parse_value("${tenant:Labels/a, 'it''s'}").references[0].default == "it's"
    assert parse_value("cost $5").is_literal


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        ("${tenant:Status", "unterminated"),
        ("${}", "is not a reference"),
        ("${a b}", "is not a reference"),
        ("${tenant:Nope}", "unknown condition key"),
        ("${9lives}", "is not a parameter name"),
    ],
)
def test_parse_value_errors(raw: str, phrase: str) -> None:
    with pytest.raises(ValueError, match=re.escape(phrase)):
        parse_value(raw)


def test_statement_built_directly_is_still_checked() -> None:
    from pydantic import ValidationError

    from gatekeeper.policy import Statement

    with pytest.raises(ValidationError, match="unknown condition key 'bad:key'"):
        Statement.model_validate(
            {"Sid": "A", "Effect": "Deny", "Condition": {"StringEquals": {"bad:key": ("x",)}}}
        )
    with pytest.raises(ValidationError, match="unknown condition operator"):
        Statement.model_validate({"Sid": "A", "Effect": "Deny", "Condition": {"Nope": {"tenant:Id": ("x",)}}})


def test_value_readers_reject_what_they_cannot_read() -> None:
    from gatekeeper.policy.values import render, to_datetime, to_number

    with pytest.raises(ValueError, match="not a number"):
        to_number("1e999")  # overflows to infinity
    with pytest.raises(ValueError, match="not a date"):
        to_datetime(["2025-01-01"])
    with pytest.raises(ValueError, match="null is not a number"):
        to_number(None)
    with pytest.raises(ValueError, match="not a scalar value"):
        render(["a"])
    assert render(2.5) == "2.5"


def test_escaped_wildcards_display_as_written() -> None:
    from tests.unit.policy.builders import run

    result = run({"StringLike": {"tenant:Labels/x": "a${*}b*"}}, {"tenant:Labels/x": "a*bc"})
    assert result.statements[0].conditions[0].condition_values == ("a${*}b*",)
