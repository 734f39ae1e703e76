"""Small builders for policy-engine tests: one-statement templates and the standard template."""

from collections.abc import Mapping
from typing import Any

from gatekeeper.policy import ContextValue, Evaluation, PolicyTemplate, evaluate, parse_template

STANDARD: dict[str, Any] = {
    "Name": "standard",
    "Description": "Reject inactive or unentitled tenants, hold other regions, accept the rest.",
    "Parameters": {
        "MaxEndpoints": {"Type": "Number", "Default": 3},
        "HomeRegions": {"Type": "StringList", "Default": ["us-east-1"]},
    },
    "Statement": [
        {
            "Sid": "TenantActive",
            "Effect": "Deny",
            "Condition": {"StringNotEquals": {"tenant:Status": "active"}},
        },
        {
            "Sid": "Entitled",
            "Effect": "Deny",
            "Condition": {"ForAllValues:StringNotLike": {"endpoint:ServiceId": "${tenant:Services}"}},
        },
        {
            "Sid": "OtherRegion",
            "Effect": "Review",
            "Condition": {"StringNotEquals": {"endpoint:Region": "${HomeRegions}"}},
        },
        {"Sid": "Accept", "Effect": "Allow"},
    ],
}

GOOD_CONTEXT: dict[str, ContextValue] = {
    "tenant:Id": "acme",
    "tenant:Status": "active",
    "tenant:Services": ["vpce-svc-0123456789abcdef0"],
    "endpoint:Id": "vpce-0aaaabbbbccccdddd",
    "endpoint:ServiceId": "vpce-svc-0123456789abcdef0",
    "endpoint:Region": "us-east-1",
    "endpoint:Owner": "111122223333",
}


def one_statement(
    condition: Mapping[str, Any] | None,
    *,
    parameters: Mapping[str, Any] | None = None,
    effect: str = "Deny",
) -> PolicyTemplate:
    statement: dict[str, Any] = {"Sid": "Test", "Effect": effect}
    if condition is not None:
        statement["Condition"] = dict(condition)
    document: dict[str, Any] = {"Name": "test", "Statement": [statement]}
    if parameters:
        document["Parameters"] = dict(parameters)
    return parse_template(document)


def run(
    condition: Mapping[str, Any],
    context: Mapping[str, ContextValue],
    *,
    parameters: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Evaluation:
    return evaluate(one_statement(condition, parameters=parameters), context, overrides)


def matches(
    condition: Mapping[str, Any],
    context: Mapping[str, ContextValue],
    *,
    parameters: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> bool:
    """Whether a one-statement template with this condition matches the context."""
    return run(condition, context, parameters=parameters, overrides=overrides).statements[0].matched
