"""Parameter defaults, tenant overrides, coercion and errors."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gatekeeper.policy import ParameterInvalid, TemplateInvalid, evaluate, parse_template, resolve_parameters
from gatekeeper.policy.parameters import coerce_parameter

TEMPLATE = parse_template(
    {
        "Name": "params",
        "Parameters": {
            "MaxEndpoints": {"Type": "Number", "Default": 3, "MinValue": 0, "MaxValue": 100},
            "HomeRegions": {"Type": "StringList", "Default": ["us-east-1"]},
            "Tier": {"Type": "String", "Default": "gold", "AllowedValues": ["gold", "silver"]},
            "Managed": {"Type": "Boolean", "Default": False},
            "Cutoff": {"Type": "Date", "Default": "2025-01-01"},
            "Owner": {"Type": "String"},
        },
        "Statement": [{"Sid": "A", "Effect": "Allow"}],
    }
)


def test_defaults_and_required_override() -> None:
    values = resolve_parameters(TEMPLATE, {"Owner": "team-a"})
    assert values == {
        "MaxEndpoints": 3,
        "HomeRegions": ("us-east-1",),
        "Tier": "gold",
        "Managed": False,
        "Cutoff": datetime(2025, 1, 1, tzinfo=UTC),
        "Owner": "team-a",
    }


@pytest.mark.parametrize(
    ("name", "override", "expected"),
    [
        ("MaxEndpoints", "5", 5),
        ("MaxEndpoints", " 5 ", 5),
        ("MaxEndpoints", 7.5, 7.5),
        ("MaxEndpoints", Decimal("10"), 10),
        ("MaxEndpoints", Decimal("2.5"), 2.5),
        ("HomeRegions", ["eu-west-1", "us-east-1"], ("eu-west-1", "us-east-1")),
        ("HomeRegions", ("eu-west-1",), ("eu-west-1",)),
        ("HomeRegions", {"b", "a"}, ("a", "b")),  # DynamoDB string sets
        ("HomeRegions", "eu-west-1, us-east-1", ("eu-west-1", "us-east-1")),
        ("HomeRegions", "", ()),
        ("HomeRegions", [], ()),
        ("Tier", "silver", "silver"),
        ("Managed", "TRUE", True),
        ("Managed", True, True),
        ("Cutoff", "2025-06-01T00:00:00Z", datetime(2025, 6, 1, tzinfo=UTC)),
        ("Cutoff", 0, datetime(1970, 1, 1, tzinfo=UTC)),
        ("Owner", 42, "42"),
    ],
)
def test_override_coercion(name: str, override: Any, expected: Any) -> None:
    values = resolve_parameters(TEMPLATE, {"Owner": "x", name: override})
    assert values[name] == expected
    assert type(values[name]) is type(expected)


def test_none_override_means_default() -> None:
    assert resolve_parameters(TEMPLATE, {"Owner": "x", "MaxEndpoints": None})["MaxEndpoints"] == 3


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (
            {"MaxEndpoint": 3},
            ["override 'MaxEndpoint'", "declares no such parameter", "did you mean 'MaxEndpoints'"],
        ),
        ({"MaxEndpoints": "many"}, ["override 'MaxEndpoints'", "'many' is not a number (Type Number)"]),
        ({"MaxEndpoints": True}, ["override 'MaxEndpoints'", "boolean, not a number"]),
        ({"MaxEndpoints": 101}, ["override 'MaxEndpoints'", "101 is above MaxValue 100"]),
        ({"MaxEndpoints": -1}, ["override 'MaxEndpoints'", "-1 is below MinValue 0"]),
        (
            {"Tier": "bronze"},
            ["override 'Tier'", "'bronze' is not one of the AllowedValues ('gold', 'silver')"],
        ),
        ({"HomeRegions": 5}, ["override 'HomeRegions'", "5 is not a list of strings"]),
        ({"HomeRegions": ["a", 1]}, ["override 'HomeRegions'", "item [1] 1 is not a string"]),
        ({"Managed": "maybe"}, ["override 'Managed'", '\'maybe\' is not "true" or "false"']),
        ({"Cutoff": "later"}, ["override 'Cutoff'", "'later' is not a date"]),
        ({"Owner": ["a"]}, ["override 'Owner'", "a list is not a string"]),
    ],
)
def test_override_errors(overrides: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ParameterInvalid) as caught:
        resolve_parameters(TEMPLATE, {"Owner": "x", **overrides})
    assert isinstance(caught.value, TemplateInvalid)
    joined = "\n".join(caught.value.problems)
    for fragment in fragments:
        assert fragment in joined, joined


def test_missing_required_parameter() -> None:
    with pytest.raises(ParameterInvalid) as caught:
        resolve_parameters(TEMPLATE, {})
    (problem,) = caught.value.problems
    assert problem.startswith("parameter 'Owner' (String) has no Default in template 'params'")
    assert "tenant's parameter overrides" in problem
    assert caught.value.template == "params"


def test_every_problem_reported_together() -> None:
    with pytest.raises(ParameterInvalid) as caught:
        resolve_parameters(TEMPLATE, {"Bogus": 1, "MaxEndpoints": "x"})
    assert len(caught.value.problems) == 3  # unknown name, bad value, missing Owner


def test_evaluate_raises_parameter_invalid_for_bad_overrides() -> None:
    with pytest.raises(ParameterInvalid):
        evaluate(TEMPLATE, {}, {"Owner": "x", "MaxEndpoints": "lots"})


def test_template_without_parameters_rejects_any_override() -> None:
    template = parse_template({"Name": "bare", "Statement": [{"Sid": "A", "Effect": "Allow"}]})
    with pytest.raises(ParameterInvalid, match=r"declared: none"):
        resolve_parameters(template, {"X": 1})


def test_spec_helpers() -> None:
    spec = TEMPLATE.parameters["Owner"]
    assert spec.default is None  # required: every tenant must override it
    assert spec.to_document() == {"Type": "String"}
    assert coerce_parameter("Number", "1e3") == 1000.0
