"""``${Param}`` and ``${tenant:…}`` substitution in condition values."""

from datetime import UTC, datetime

import pytest

from gatekeeper.policy import PolicyEvaluationError
from tests.unit.policy.builders import matches, run

REGIONS = {"HomeRegions": {"Type": "StringList", "Default": ["us-east-1", "eu-west-1"]}}


def test_string_list_parameter_expands_to_values_or() -> None:
    cond = {"StringEquals": {"endpoint:Region": "${HomeRegions}"}}
    assert matches(cond, {"endpoint:Region": "eu-west-1"}, parameters=REGIONS)
    assert not matches(cond, {"endpoint:Region": "ap-south-1"}, parameters=REGIONS)
    result = run(cond, {"endpoint:Region": "eu-west-1"}, parameters=REGIONS)
    assert result.statements[0].conditions[0].condition_values == ("us-east-1", "eu-west-1")


def test_list_parameter_mixes_with_literal_values() -> None:
    cond = {"StringEquals": {"endpoint:Region": ["ap-south-1", "${HomeRegions}"]}}
    result = run(cond, {"endpoint:Region": "ap-south-1"}, parameters=REGIONS)
    assert result.statements[0].conditions[0].condition_values == ("ap-south-1", "us-east-1", "eu-west-1")
    assert result.statements[0].matched


def test_negated_operator_with_list_parameter_is_not_in() -> None:
    cond = {"StringNotEquals": {"endpoint:Region": "${HomeRegions}"}}
    assert not matches(cond, {"endpoint:Region": "us-east-1"}, parameters=REGIONS)
    assert matches(cond, {"endpoint:Region": "ap-south-1"}, parameters=REGIONS)


def test_override_replaces_list_parameter() -> None:
    cond = {"StringEquals": {"endpoint:Region": "${HomeRegions}"}}
    assert matches(
        cond, {"endpoint:Region": "ap-south-1"}, parameters=REGIONS, overrides={"HomeRegions": ["ap-south-1"]}
    )


def test_number_parameter_keeps_its_type() -> None:
    params = {"MaxEndpoints": {"Type": "Number", "Default": 3}}
    cond = {"NumericGreaterThanEquals": {"tenant:ActiveEndpoints": "${MaxEndpoints}"}}
    assert matches(cond, {"tenant:ActiveEndpoints": 3}, parameters=params)
    assert not matches(cond, {"tenant:ActiveEndpoints": 2}, parameters=params)
    assert matches(cond, {"tenant:ActiveEndpoints": 2}, parameters=params, overrides={"MaxEndpoints": "2"})


def test_boolean_and_date_parameters() -> None:
    params = {
        "Managed": {"Type": "Boolean", "Default": "true"},
        "Cutoff": {"Type": "Date", "Default": "2025-01-01"},
    }
    assert matches(
        {"Bool": {"tenant:Labels/managed": "${Managed}"}},
        {"tenant:Labels/managed": "true"},
        parameters=params,
    )
    cond = {"DateLessThan": {"endpoint:CreatedAt": "${Cutoff}"}}
    assert matches(cond, {"endpoint:CreatedAt": datetime(2024, 12, 31, tzinfo=UTC)}, parameters=params)
    # a Boolean parameter rendered into a string operator
    assert matches(
        {"StringEquals": {"tenant:Labels/x": "${Managed}"}}, {"tenant:Labels/x": "true"}, parameters=params
    )


def test_tenant_services_expand_and_keep_wildcards() -> None:
    cond = {"ForAllValues:StringNotLike": {"endpoint:ServiceId": "${tenant:Services}"}}
    context = {"endpoint:ServiceId": "vpce-svc-0abc"}
    assert not matches(cond, {**context, "tenant:Services": ["vpce-svc-0abc"]})
    assert not matches(cond, {**context, "tenant:Services": ["*"]})  # entitled to every service
    assert not matches(cond, {**context, "tenant:Services": ["vpce-svc-0a*"]})
    assert matches(cond, {**context, "tenant:Services": ["vpce-svc-other"]})
    assert matches(cond, {**context, "tenant:Services": []})  # entitled to nothing: empty list, no values


def test_scalar_context_reference() -> None:
    cond = {"NumericGreaterThanEquals": {"tenant:ActiveEndpoints": "${tenant:MaxEndpoints}"}}
    assert matches(cond, {"tenant:ActiveEndpoints": 5, "tenant:MaxEndpoints": 5})
    assert not matches(cond, {"tenant:ActiveEndpoints": 4, "tenant:MaxEndpoints": 5})


def test_embedded_scalar_substitution() -> None:
    params = {"Prefix": {"Type": "String", "Default": "team"}}
    cond = {"StringLike": {"tenant:Labels/owner": "${Prefix}-${tenant:Id}-*"}}
    context = {"tenant:Id": "acme", "tenant:Labels/owner": "team-acme-42"}
    result = run(cond, context, parameters=params)
    assert result.statements[0].matched
    assert result.statements[0].conditions[0].condition_values == ("team-acme-*",)


def test_embedded_number_renders_as_text() -> None:
    params = {"N": {"Type": "Number", "Default": 7}}
    assert matches(
        {"StringEquals": {"tenant:Labels/x": "n${N}"}}, {"tenant:Labels/x": "n7"}, parameters=params
    )


def test_reference_key_names_are_case_insensitive() -> None:
    assert matches(
        {"StringEquals": {"tenant:Labels/x": "${TENANT:id}"}}, {"tenant:Labels/x": "a", "tenant:Id": "a"}
    )


def test_absent_context_reference_raises() -> None:
    cond = {"ForAllValues:StringNotLike": {"endpoint:ServiceId": "${tenant:Services}"}}
    with pytest.raises(PolicyEvaluationError) as caught:
        matches(cond, {"endpoint:ServiceId": "vpce-svc-1"})
    error = caught.value
    assert (error.sid, error.operator, error.key) == (
        "Test",
        "ForAllValues:StringNotLike",
        "endpoint:ServiceId",
    )
    assert "tenant:Services is absent" in str(error)


def test_absent_reference_raises_even_under_if_exists() -> None:
    with pytest.raises(PolicyEvaluationError, match="tenant:Id is absent"):
        matches({"StringEqualsIfExists": {"tenant:Labels/x": "${tenant:Id}"}}, {})


def test_reference_default_applies_when_absent() -> None:
    cond = {"StringEquals": {"endpoint:Region": "${tenant:Labels/region, 'us-east-1'}"}}
    assert matches(cond, {"endpoint:Region": "us-east-1"})
    assert not matches(cond, {"endpoint:Region": "us-east-1", "tenant:Labels/region": "eu-west-1"})


def test_embedded_multi_valued_context_raises_at_runtime() -> None:
    # ${tenant:Labels/x} is declared scalar but the context gives it two values
    cond = {"StringEquals": {"tenant:Id": "x-${tenant:Labels/x}"}}
    with pytest.raises(PolicyEvaluationError, match="holds 2 values"):
        matches(cond, {"tenant:Id": "x-a", "tenant:Labels/x": ["a", "b"]})


def test_substituted_value_of_wrong_type_raises() -> None:
    cond = {"NumericLessThan": {"tenant:ActiveEndpoints": "${tenant:Labels/limit}"}}
    with pytest.raises(PolicyEvaluationError, match="'abc' is not a number") as caught:
        matches(cond, {"tenant:ActiveEndpoints": 1, "tenant:Labels/limit": "abc"})
    assert caught.value.key == "tenant:ActiveEndpoints"
    assert matches(cond, {"tenant:ActiveEndpoints": 1, "tenant:Labels/limit": "2"})


def test_substituted_date_into_numeric_raises() -> None:
    cond = {"NumericLessThan": {"tenant:Labels/n": "${tenant:Labels/when}"}}
    with pytest.raises(PolicyEvaluationError, match="is a date, not a number"):
        matches(cond, {"tenant:Labels/n": 1, "tenant:Labels/when": datetime(2025, 1, 1, tzinfo=UTC)})


def test_substituted_arn_pattern_must_be_an_arn() -> None:
    cond = {"ArnLike": {"tenant:Labels/arn": "${tenant:Labels/pattern}"}}
    with pytest.raises(PolicyEvaluationError, match="not an ARN pattern"):
        matches(cond, {"tenant:Labels/arn": "arn:aws:iam::1:root", "tenant:Labels/pattern": "nope"})
    assert matches(
        cond, {"tenant:Labels/arn": "arn:aws:iam::1:root", "tenant:Labels/pattern": "arn:aws:iam::*:root"}
    )


def test_whole_reference_to_number_in_like_operator_renders() -> None:
    params = {"N": {"Type": "Number", "Default": 42}}
    assert matches({"StringLike": {"tenant:Labels/x": "${N}"}}, {"tenant:Labels/x": "42"}, parameters=params)


def test_whole_reference_to_context_datetime_in_string_operator() -> None:
    when = datetime(2025, 1, 31, tzinfo=UTC)
    cond = {"StringEquals": {"tenant:Labels/x": "${tenant:ExpiresAt}"}}
    assert matches(cond, {"tenant:Labels/x": "2025-01-31T00:00:00Z", "tenant:ExpiresAt": when})
