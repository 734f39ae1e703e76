"""Template parsing: the model, round-trips, and every validation message."""

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gatekeeper.policy import PolicyTemplate, TemplateInvalid, parse_template
from tests.unit.policy.builders import STANDARD


def test_parses_the_design_example() -> None:
    template = parse_template(STANDARD)
    assert template.name == "standard"
    assert [s.sid for s in template.statements] == ["TenantActive", "Entitled", "OtherRegion", "Accept"]
    assert template.parameters["MaxEndpoints"].default == 3
    assert template.parameters["HomeRegions"].default == ("us-east-1",)
    assert template.statement("Accept").condition is None
    with pytest.raises(KeyError):
        template.statement("Nope")


def test_round_trip() -> None:
    template = parse_template(STANDARD)
    document = template.to_document()
    assert document == STANDARD
    assert parse_template(json.loads(json.dumps(document))) == template


def test_round_trip_of_every_parameter_field() -> None:
    document = {
        "Name": "full",
        "Parameters": {
            "Tier": {
                "Type": "String",
                "Default": "gold",
                "Description": "d",
                "AllowedValues": ["gold", "silver"],
            },
            "Max": {"Type": "Number", "Default": 2.5, "MinValue": 0, "MaxValue": 10},
            "Regions": {"Type": "StringList", "AllowedValues": ["us-east-1", "eu-west-1"]},
            "On": {"Type": "Boolean", "Default": False},
            "Cutoff": {"Type": "Date", "Default": "2025-01-31T00:00:00Z"},
        },
        "Statement": [
            {"Sid": "A", "Effect": "Allow", "Condition": {"StringEquals": {"endpoint:Region": ["a", "b"]}}},
        ],
    }
    template = parse_template(document)
    assert template.to_document() == document
    assert template.parameters["Cutoff"].default == datetime(2025, 1, 31, tzinfo=UTC)
    assert template.parameters["Regions"].default is None
    assert parse_template(template.to_document()) == template


def test_key_names_are_normalised_and_single_statement_object_accepted() -> None:
    template = parse_template(
        {
            "Name": "n",
            "Statement": {"Sid": "A", "Effect": "Deny", "Condition": {"Bool": {"TENANT:labels/Beta": True}}},
        }
    )
    assert template.statements[0].condition == {"Bool": {"tenant:Labels/Beta": (True,)}}
    assert template.to_document()["Statement"][0]["Condition"] == {"Bool": {"tenant:Labels/Beta": True}}


def test_model_validate_runs_the_same_checks() -> None:
    with pytest.raises(TemplateInvalid):
        PolicyTemplate.model_validate({"Name": "x", "Statement": []})


def test_template_is_frozen() -> None:
    template = parse_template(STANDARD)
    with pytest.raises(ValueError, match="frozen"):
        template.name = "other"  # type: ignore[misc]


def problems_of(document: Any) -> list[str]:
    with pytest.raises(TemplateInvalid) as caught:
        parse_template(document)
    assert caught.value.problems
    assert str(caught.value).startswith("template")
    return caught.value.problems


def with_statement(statement: dict[str, Any], **extra: Any) -> dict[str, Any]:
    document = copy.deepcopy(STANDARD)
    document["Statement"].insert(1, statement)
    document.update(extra)
    return document


def one_problem(document: Any) -> str:
    problems = problems_of(document)
    assert len(problems) == 1, problems
    return problems[0]


# (statement inserted at index 1, expected fragments of the single problem)
STATEMENT_PROBLEMS: list[tuple[dict[str, Any], list[str]]] = [
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringNotEqual": {"tenant:Status": "a"}}},
        ["Statement[1] 'S'", "StringNotEqual tenant:Status", "unknown condition operator", "StringNotEquals"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringEquals": {"tenant:Statu": "a"}}},
        [
            "Statement[1] 'S'",
            "StringEquals tenant:Statu",
            "unknown condition key",
            "did you mean 'tenant:Status'",
        ],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringEquals": {"aws:SourceVpc": "a"}}},
        ["Statement[1] 'S'", "StringEquals aws:SourceVpc", "unknown condition key.", "Known keys"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringEquals": {"tenant:Labels/bad key": "a"}}},
        ["Statement[1] 'S'", "StringEquals tenant:Labels/bad key", "'bad key' is not a label key"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringEquals": {"endpoint:Region": "${HomeRegion}"}}},
        ["Statement[1] 'S'", "StringEquals endpoint:Region", "unknown parameter 'HomeRegion'", "HomeRegions"],
    ),
    (
        {
            "Sid": "S",
            "Effect": "Deny",
            "Condition": {"StringEquals": {"endpoint:Region": "${tenant:Region}"}},
        },
        ["Statement[1] 'S'", "StringEquals endpoint:Region", "unknown condition key 'tenant:Region'"],
    ),
    (
        {
            "Sid": "S",
            "Effect": "Deny",
            "Condition": {"StringEquals": {"endpoint:Id": "x-${tenant:Services}"}},
        },
        ["Statement[1] 'S'", "StringEquals endpoint:Id", "embeds ${tenant:Services}", "StringList key"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringEquals": {"endpoint:Id": "x-${HomeRegions}"}}},
        ["Statement[1] 'S'", "StringEquals endpoint:Id", "embeds ${HomeRegions}", "StringList parameter"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"NumericLessThan": {"tenant:ActiveEndpoints": "abc"}}},
        ["Statement[1] 'S'", "NumericLessThan tenant:ActiveEndpoints", "'abc' is not a number"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"DateLessThan": {"tenant:ExpiresAt": "tomorrow"}}},
        ["Statement[1] 'S'", "DateLessThan tenant:ExpiresAt", "'tomorrow' is not a date"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"Bool": {"tenant:Labels/x": "yes"}}},
        ["Statement[1] 'S'", "Bool tenant:Labels/x", '\'yes\' is not "true" or "false"'],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"Null": {"tenant:ExpiresAt": 1}}},
        ["Statement[1] 'S'", "Null tenant:ExpiresAt", '1 is not "true" or "false"'],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"ArnLike": {"tenant:Labels/a": "arn:aws:iam"}}},
        ["Statement[1] 'S'", "ArnLike tenant:Labels/a", "not an ARN pattern"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"NumericLessThan": {"tenant:Status": 3}}},
        [
            "Statement[1] 'S'",
            "NumericLessThan tenant:Status",
            "compares numbers but tenant:Status is a String key",
        ],
    ),
    (
        {
            "Sid": "S",
            "Effect": "Deny",
            "Condition": {"DateLessThan": {"tenant:ActiveEndpoints": "2025-01-01"}},
        },
        ["Statement[1] 'S'", "DateLessThan tenant:ActiveEndpoints", "compares dates", "Number key"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"Bool": {"tenant:Status": "true"}}},
        ["Statement[1] 'S'", "Bool tenant:Status", "compares booleans", "use a String operator"],
    ),
    (
        {
            "Sid": "S",
            "Effect": "Deny",
            "Condition": {"NumericLessThan": {"tenant:ActiveEndpoints": "${HomeRegions}"}},
        },
        [
            "Statement[1] 'S'",
            "NumericLessThan tenant:ActiveEndpoints",
            "${HomeRegions} is a StringList parameter",
        ],
    ),
    (
        {
            "Sid": "S",
            "Effect": "Deny",
            "Condition": {"NumericLessThan": {"tenant:ActiveEndpoints": "${tenant:Id}"}},
        },
        ["Statement[1] 'S'", "NumericLessThan tenant:ActiveEndpoints", "${tenant:Id} is a String key"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"NullIfExists": {"tenant:ExpiresAt": "true"}}},
        ["Statement[1] 'S'", "NullIfExists tenant:ExpiresAt", "Null already tests"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"ForEachValue:StringEquals": {"tenant:Services": "a"}}},
        ["Statement[1] 'S'", "ForEachValue:StringEquals tenant:Services", "unknown set operator prefix"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringEquals": {"tenant:Status": []}}},
        ["Statement[1] 'S'", "StringEquals tenant:Status", "empty value list"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringEquals": {"tenant:Status": {"a": 1}}}},
        ["Statement[1] 'S'", "StringEquals tenant:Status", "must be a string, number or boolean"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringEquals": {"tenant:Status": [None]}}},
        ["Statement[1] 'S'", "StringEquals tenant:Status", "value null must be a string"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringEquals": {"tenant:Status": "${tenant:Status"}}},
        ["Statement[1] 'S'", "StringEquals tenant:Status", "unterminated"],
    ),
    (
        {
            "Sid": "S",
            "Effect": "Deny",
            "Condition": {"StringEquals": {"tenant:Status": "a", "Tenant:STATUS": "b"}},
        },
        ["Statement[1] 'S'", "StringEquals Tenant:STATUS", "repeats key 'tenant:Status'"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringEquals": {}}},
        ["Statement[1] 'S'", "StringEquals", "non-empty object", "an empty object"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {"StringEquals": "tenant:Status"}},
        ["Statement[1] 'S'", "StringEquals", "non-empty object", "'tenant:Status'"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": {}},
        ["Statement[1] 'S'", "Condition must be a non-empty object", "omit Condition"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Condition": ["StringEquals"]},
        ["Statement[1] 'S'", "Condition must be a non-empty object", "got a list"],
    ),
    ({"Sid": "S", "Effect": "allow"}, ["Statement[1] 'S'", "Effect 'allow'", "did you mean 'Allow'"]),
    ({"Sid": "S", "Effect": "Accept"}, ["Statement[1] 'S'", "Effect 'Accept' is not one of Allow"]),
    ({"Sid": "S"}, ["Statement[1] 'S'", "Effect (missing)"]),
    ({"Effect": "Deny"}, ["Statement[1]:", "Sid is required"]),
    (
        {"Sid": "has space", "Effect": "Deny"},
        ["Statement[1]:", "Sid 'has space' must be 1-128 letters and digits"],
    ),
    ({"Sid": "Accept", "Effect": "Deny"}, ["Statement[4] 'Accept': Sid duplicates Statement[1] 'Accept'"]),
    (
        {"Sid": "S", "Effect": "Deny", "Action": "ec2:AcceptVpcEndpointConnections"},
        ["Statement[1] 'S'", "unknown field 'Action'", "no Action, Resource or Principal"],
    ),
    (
        {"Sid": "S", "Effect": "Deny", "Conditions": {}},
        ["Statement[1] 'S'", "unknown field 'Conditions'", "did you mean 'Condition'"],
    ),
]


@pytest.mark.parametrize(("statement", "fragments"), STATEMENT_PROBLEMS)
def test_statement_problem_messages(statement: dict[str, Any], fragments: list[str]) -> None:
    problem = one_problem(with_statement(statement))
    for fragment in fragments:
        assert fragment in problem, problem


def test_duplicate_sid_reported_against_the_later_statement() -> None:
    document = copy.deepcopy(STANDARD)
    document["Statement"].append({"Sid": "tenantactive", "Effect": "Deny"})
    assert one_problem(document) == (
        "Statement[4] 'tenantactive': Sid duplicates Statement[0] 'TenantActive'; "
        "every statement needs its own Sid"
    )


def test_condition_null_means_no_condition() -> None:
    template = parse_template(
        {"Name": "n", "Statement": [{"Sid": "A", "Effect": "Allow", "Condition": None}]}
    )
    assert template.statements[0].condition is None


TOP_LEVEL_PROBLEMS: list[tuple[Any, list[str]]] = [
    ("not an object", ["a template must be a JSON object", "'not an object'"]),
    ({"Statement": STANDARD["Statement"]}, ["Name is required"]),
    ({"Name": "has space", "Statement": STANDARD["Statement"]}, ["Name 'has space' is not a template name"]),
    ({"Name": 5, "Statement": STANDARD["Statement"]}, ["Name 5 is not a template name"]),
    ({"Name": "n"}, ["Statement is required"]),
    ({"Name": "n", "Statement": []}, ["Statement is empty: a template needs at least one statement"]),
    ({"Name": "n", "Statement": "Allow"}, ["Statement must be a list of statements"]),
    ({"Name": "n", "Statement": ["Allow"]}, ["Statement[0]: must be an object"]),
    (
        {"Name": "n", "Description": 1, "Statement": [{"Sid": "A", "Effect": "Allow"}]},
        ["Description must be a string"],
    ),
    (
        {"Name": "n", "Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow"}]},
        ["unknown top-level field 'Version'", "kept by the template store"],
    ),
    (
        {"Name": "n", "Statements": [{"Sid": "A", "Effect": "Allow"}]},
        ["unknown top-level field 'Statements'", "did you mean 'Statement'"],
    ),
    (
        {"Name": "n", "Parameters": [], "Statement": [{"Sid": "A", "Effect": "Allow"}]},
        ["Parameters must be an object"],
    ),
]


@pytest.mark.parametrize(("document", "fragments"), TOP_LEVEL_PROBLEMS)
def test_top_level_problem_messages(document: Any, fragments: list[str]) -> None:
    problems = problems_of(document)
    joined = "\n".join(problems)
    for fragment in fragments:
        assert fragment in joined, joined


PARAMETER_PROBLEMS: list[tuple[str, Any, list[str]]] = [
    (
        "MaxEndpoints",
        {"Type": "Number", "Default": "three"},
        ["Parameters.MaxEndpoints", "Default 'three' is not a number"],
    ),
    (
        "MaxEndpoints",
        {"Type": "Number", "Default": True},
        ["Parameters.MaxEndpoints", "boolean, not a number"],
    ),
    ("MaxEndpoints", {"Type": "Integer"}, ["Parameters.MaxEndpoints", "Type 'Integer' is not one of"]),
    ("MaxEndpoints", {"Type": "number"}, ["Parameters.MaxEndpoints", "did you mean 'Number'"]),
    ("MaxEndpoints", {"Default": 3}, ["Parameters.MaxEndpoints", "Type (missing)"]),
    ("MaxEndpoints", 3, ["Parameters.MaxEndpoints", "must be an object with Type"]),
    ("MaxEndpoints", {"Type": "Number", "Min": 1}, ["Parameters.MaxEndpoints", "unknown field 'Min'"]),
    (
        "MaxEndpoints",
        {"Type": "Number", "Default": 3, "MaxValue": 2},
        ["Parameters.MaxEndpoints", "Default 3 is above MaxValue 2"],
    ),
    (
        "MaxEndpoints",
        {"Type": "Number", "Default": 0, "MinValue": 1},
        ["Parameters.MaxEndpoints", "Default 0 is below MinValue 1"],
    ),
    ("MaxEndpoints", {"Type": "Number", "MinValue": 5, "MaxValue": 1}, ["MinValue 5 is above MaxValue 1"]),
    (
        "MaxEndpoints",
        {"Type": "Number", "MinValue": "x"},
        ["Parameters.MaxEndpoints", "MinValue: 'x' is not a number"],
    ),
    ("MaxEndpoints", {"Type": "Number", "Default": 3, "Description": 3}, ["Description must be a string"]),
    (
        "HomeRegions",
        {"Type": "StringList", "Default": "us-east-1", "MinValue": 1},
        ["MinValue applies only to Type Number"],
    ),
    (
        "HomeRegions",
        {"Type": "StringList", "Default": [1]},
        ["Parameters.HomeRegions", "item [0] 1 is not a string"],
    ),
    (
        "HomeRegions",
        {"Type": "StringList", "Default": 5},
        ["Parameters.HomeRegions", "5 is not a list of strings"],
    ),
    (
        "HomeRegions",
        {"Type": "StringList", "Default": ["us-east-1", "mars-1"], "AllowedValues": ["us-east-1"]},
        ["Parameters.HomeRegions", "Default 'mars-1' is not one of the AllowedValues ('us-east-1')"],
    ),
    ("HomeRegions", {"Type": "StringList", "AllowedValues": []}, ["AllowedValues must be a non-empty list"]),
    (
        "HomeRegions",
        {"Type": "StringList", "AllowedValues": [["x"]]},
        ["AllowedValues[0]", "is not a string"],
    ),
    (
        "Flag",
        {"Type": "Boolean", "Default": "yes"},
        ["Parameters.Flag", 'Default \'yes\' is not "true" or "false"'],
    ),
    (
        "Flag",
        {"Type": "Boolean", "AllowedValues": [True]},
        ["AllowedValues is not supported for Type Boolean"],
    ),
    ("When", {"Type": "Date", "Default": "soon"}, ["Parameters.When", "Default 'soon' is not a date"]),
    ("Name", {"Type": "String", "Default": ["a"]}, ["Parameters.Name", "a list is not a string"]),
    ("bad:name", {"Type": "String"}, ["'bad:name' is not a parameter name"]),
]


@pytest.mark.parametrize(("name", "spec", "fragments"), PARAMETER_PROBLEMS)
def test_parameter_problem_messages(name: str, spec: Any, fragments: list[str]) -> None:
    document = copy.deepcopy(STANDARD)
    document["Parameters"][name] = spec
    joined = "\n".join(problems_of(document))
    for fragment in fragments:
        assert fragment in joined, joined


def test_a_parameter_with_a_bad_default_still_resolves_references() -> None:
    # only the default is reported, not a cascade of "unknown parameter" errors
    document = copy.deepcopy(STANDARD)
    document["Parameters"]["HomeRegions"]["Default"] = 7
    problems = problems_of(document)
    assert len(problems) == 1
    assert "Parameters.HomeRegions" in problems[0]


def test_all_problems_reported_at_once() -> None:
    document = {
        "Name": "bad name",
        "Parameters": {"N": {"Type": "Number", "Default": "x"}},
        "Statement": [
            {"Sid": "A", "Effect": "Alow", "Condition": {"StringEquals": {"tenant:Nope": "${Missing}"}}},
            {"Sid": "A", "Effect": "Deny", "Condition": {"Bogus": {"tenant:Status": "a"}}},
        ],
    }
    with pytest.raises(TemplateInvalid) as caught:
        parse_template(document)
    assert len(caught.value.problems) == 7, caught.value.problems  # incl. ${Missing} under tenant:Nope
    assert caught.value.template == "bad name"
    assert "(7 problems)" in str(caught.value)


def test_template_invalid_names_the_template() -> None:
    with pytest.raises(TemplateInvalid) as caught:
        parse_template({"Name": "std", "Statement": []})
    assert caught.value.template == "std"
    assert str(caught.value).startswith("template 'std' is invalid (1 problem):")


def test_model_dump_by_alias_validates_back() -> None:
    template = parse_template(STANDARD)
    assert PolicyTemplate.model_validate(template.model_dump(by_alias=True)) == template
