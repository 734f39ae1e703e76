"""The IAM evaluator behind the IAM contract test: IAM's rules, and failing closed."""

from __future__ import annotations

import pytest

from gatekeeper_ops.iam_policy import Outcome, Policy, Request, evaluate

ROLE = "arn:aws:iam::123456789012:role/gk-EvaluateConnectionFunctionRole"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/gk-DecisionsTable"
BUS = "arn:aws:events:us-east-1:123456789012:event-bus/gk-connections"


def identity(*statements: dict) -> Policy:
    return Policy("role/inline", {"Version": "2012-10-17", "Statement": list(statements)})


def resource(*statements: dict) -> Policy:
    return Policy("bus-policy", {"Statement": list(statements)}, resource_policy=True)


def allow(action, res, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": res, **extra}


def request(action="dynamodb:Query", res=TABLE, **context) -> Request:
    return Request(ROLE, action, res, {"aws:PrincipalArn": ROLE, **context})


def test_a_missing_permission_is_an_implicit_deny():
    verdict = evaluate(request("dynamodb:Query"), [identity(allow("dynamodb:GetItem", TABLE))])
    assert verdict.outcome is Outcome.IMPLICIT_DENY
    assert not verdict.allowed


def test_an_allowed_action_on_its_resource_passes():
    assert evaluate(request(), [identity(allow(["dynamodb:GetItem", "dynamodb:Query"], TABLE))]).allowed


def test_the_resource_must_match():
    other = "arn:aws:dynamodb:us-east-1:123456789012:table/gk-TenantsTable"
    assert not evaluate(request(res=other), [identity(allow("dynamodb:Query", TABLE))]).allowed
    # A table grant does not cover its indexes.
    assert not evaluate(
        request(res=f"{TABLE}/index/ByTenant"), [identity(allow("dynamodb:Query", TABLE))]
    ).allowed


def test_a_deny_wins_over_any_allow():
    policies = [
        identity(allow("dynamodb:*", "*")),
        identity({"Sid": "NoQuery", "Effect": "Deny", "Action": "dynamodb:Query", "Resource": TABLE}),
    ]
    verdict = evaluate(request(), policies)
    assert verdict.outcome is Outcome.EXPLICIT_DENY
    assert verdict.reasons == ("role/inline#NoQuery",)


@pytest.mark.parametrize(
    ("pattern", "action", "allowed"),
    [
        ("dynamodb:*", "dynamodb:Query", True),
        ("DynamoDB:query", "dynamodb:Query", True),  # actions are case-insensitive
        ("dynamodb:Get*", "dynamodb:GetItem", True),
        ("dynamodb:Get*", "dynamodb:Query", False),
        ("dynamodb:?etItem", "dynamodb:GetItem", True),
        ("ec2:*", "dynamodb:Query", False),
    ],
)
def test_action_wildcards(pattern, action, allowed):
    assert evaluate(request(action), [identity(allow(pattern, "*"))]).allowed is allowed


@pytest.mark.parametrize(
    ("pattern", "allowed"),
    [
        ("arn:aws:dynamodb:us-east-1:123456789012:table/gk-*", True),
        ("arn:aws:dynamodb:*:*:table/gk-DecisionsTable", True),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/GK-*", False),  # resources are case-sensitive
        ("*", True),
    ],
)
def test_resource_wildcards(pattern, allowed):
    assert evaluate(request(), [identity(allow("dynamodb:Query", pattern))]).allowed is allowed


def test_a_describe_request_on_star_needs_a_star_grant():
    describe = request("ec2:DescribeVpcEndpointConnections", "*")
    assert evaluate(describe, [identity(allow("ec2:DescribeVpcEndpointConnections", "*"))]).allowed
    scoped = allow("ec2:DescribeVpcEndpointConnections", "arn:aws:ec2:*:*:vpc-endpoint-service/*")
    assert not evaluate(describe, [identity(scoped)]).allowed


def test_not_action_and_not_resource():
    everything_but_delete = {"Effect": "Allow", "NotAction": "dynamodb:Delete*", "Resource": "*"}
    assert evaluate(request(), [identity(everything_but_delete)]).allowed
    assert not evaluate(request("dynamodb:DeleteItem"), [identity(everything_but_delete)]).allowed
    not_this_table = {"Effect": "Allow", "Action": "dynamodb:Query", "NotResource": TABLE}
    assert not evaluate(request(), [identity(not_this_table)]).allowed


def test_conditions_and_missing_keys():
    only_ours = allow(
        "events:PutEvents", BUS, Condition={"StringEquals": {"events:source": "vpce.gatekeeper"}}
    )
    put = request("events:PutEvents", BUS, **{"events:source": "vpce.gatekeeper"})
    assert evaluate(put, [identity(only_ours)]).allowed
    assert not evaluate(
        request("events:PutEvents", BUS, **{"events:source": "x"}), [identity(only_ours)]
    ).allowed
    # A key the request does not carry: positive operators do not match …
    assert not evaluate(request("events:PutEvents", BUS), [identity(only_ours)]).allowed
    # … IfExists does …
    if_exists = allow("events:PutEvents", BUS, Condition={"StringEqualsIfExists": {"events:source": "y"}})
    assert evaluate(request("events:PutEvents", BUS), [identity(if_exists)]).allowed
    # … and so do negated operators.
    negated = {
        "Effect": "Deny",
        "Action": "events:PutEvents",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"events:source": "vpce.gatekeeper"}},
    }
    assert not evaluate(
        request("events:PutEvents", BUS), [identity(allow("events:*", "*")), identity(negated)]
    ).allowed


def test_unknown_operators_fail_closed():
    weird = {"NumericGreaterThanEqualsMaybe": {"aws:MultiFactorAuthAge": "1"}}
    assert not evaluate(request(), [identity(allow("dynamodb:Query", TABLE, Condition=weird))]).allowed
    deny = {"Effect": "Deny", "Action": "dynamodb:Query", "Resource": TABLE, "Condition": weird}
    verdict = evaluate(request(), [identity(allow("dynamodb:*", "*")), identity(deny)])
    assert verdict.outcome is Outcome.EXPLICIT_DENY
    assert "fails closed" in verdict.reasons[0]


def test_unresolved_intrinsics_and_policy_variables_fail_closed():
    unresolved = allow("dynamodb:Query", {"Fn::GetAtt": ["DecisionsTable", "Arn"]})
    assert not evaluate(request(), [identity(unresolved)]).allowed
    variable = allow("dynamodb:Query", "arn:aws:dynamodb:*:*:table/${aws:username}")
    assert not evaluate(request(), [identity(variable)]).allowed


def test_resource_policy_deny_applies_to_the_account_and_allow_needs_the_principal():
    deny_forged = {
        "Sid": "OnlyAnnouncers",
        "Effect": "Deny",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "events:PutEvents",
        "Resource": BUS,
        "Condition": {
            "StringEquals": {"events:source": "vpce.gatekeeper"},
            "ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/gk-Ingest*"]},
        },
    }
    put = request("events:PutEvents", BUS, **{"events:source": "vpce.gatekeeper"})
    verdict = evaluate(put, [identity(allow("events:PutEvents", BUS)), resource(deny_forged)])
    assert verdict.outcome is Outcome.EXPLICIT_DENY
    ingest = "arn:aws:iam::123456789012:role/gk-IngestNotificationsFunctionRole"
    as_ingest = Request(
        ingest, "events:PutEvents", BUS, {"aws:PrincipalArn": ingest, "events:source": "vpce.gatekeeper"}
    )
    assert evaluate(as_ingest, [identity(allow("events:PutEvents", BUS)), resource(deny_forged)]).allowed
    # The account root in an Allow grants nothing by itself; the role's own policy must.
    root_allow = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "*",
        "Resource": "*",
    }
    assert not evaluate(put, [resource(root_allow)]).allowed
    role_allow = {
        "Effect": "Allow",
        "Principal": {"AWS": ROLE},
        "Action": "events:PutEvents",
        "Resource": BUS,
    }
    assert evaluate(put, [resource(role_allow)]).allowed


def test_principal_in_an_identity_policy_is_refused():
    odd = allow("dynamodb:Query", TABLE, Principal="*")
    assert not evaluate(request(), [identity(odd)]).allowed
