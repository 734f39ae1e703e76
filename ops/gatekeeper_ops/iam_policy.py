"""A small IAM policy evaluator for the IAM contract test (never deployed): is one request, within
one account, allowed by the principal's identity policies and the resource's policy? Explicit Deny
wins, then any Allow, else an implicit deny; anything it does not understand (an operator, a
policy variable, an element) fails closed, with the reason.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any

ContextValue = str | Sequence[str]

_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
    "Principal",
    "NotPrincipal",
}


class Outcome(Enum):
    ALLOWED = "allowed"
    IMPLICIT_DENY = "implicitly denied (no statement allows it)"
    EXPLICIT_DENY = "explicitly denied"


@dataclass(frozen=True)
class Request:
    principal_arn: str  # the caller, e.g. the function's role
    action: str  # service:Operation, e.g. dynamodb:Query
    resource: str  # an ARN, or "*" for actions without resource-level permissions
    context: Mapping[str, ContextValue] = field(default_factory=dict)  # condition keys


@dataclass(frozen=True)
class Policy:
    """A policy document and where it came from (for messages)."""

    name: str
    document: Mapping[str, Any]
    resource_policy: bool = False


@dataclass(frozen=True)
class Evaluation:
    outcome: Outcome
    reasons: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED


class UnknownPolicyElement(ValueError):
    """A policy uses something this evaluator does not model (it fails closed on it)."""


def evaluate(request: Request, policies: Sequence[Policy]) -> Evaluation:
    allows: list[str] = []
    denies: list[str] = []
    for policy in policies:
        for index, statement in enumerate(_statements(policy.document)):
            label = f"{policy.name}#{statement.get('Sid', index)}"
            deny = statement.get("Effect") == "Deny"
            try:
                matched = _statement_matches(statement, request, policy.resource_policy, deny)
            except UnknownPolicyElement as exc:
                # Fail closed: an unknown element never grants, and always denies.
                if deny:
                    denies.append(f"{label} (fails closed: {exc})")
                continue
            if not matched:
                continue
            if deny:
                denies.append(label)
            elif statement.get("Effect") == "Allow":
                allows.append(label)
    if denies:
        return Evaluation(Outcome.EXPLICIT_DENY, tuple(denies))
    if allows:
        return Evaluation(Outcome.ALLOWED, tuple(allows))
    return Evaluation(Outcome.IMPLICIT_DENY)


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _statement_matches(
    statement: Mapping[str, Any], request: Request, resource_policy: bool, deny: bool
) -> bool:
    unknown = set(statement) - _STATEMENT_KEYS
    if unknown:
        raise UnknownPolicyElement(f"statement elements {sorted(unknown)}")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise UnknownPolicyElement(f"Effect {statement.get('Effect')!r}")
    if not _principal_matches(statement, request, resource_policy, deny):
        return False
    if "Action" in statement:
        if not any(_glob(p, request.action, case=False) for p in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_glob(p, request.action, case=False) for p in _as_list(statement["NotAction"])):
            return False
    else:
        raise UnknownPolicyElement("a statement without Action or NotAction")
    if "Resource" in statement:
        if not any(_glob(p, request.resource, case=True) for p in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_glob(p, request.resource, case=True) for p in _as_list(statement["NotResource"])):
            return False
    elif not resource_policy:
        raise UnknownPolicyElement("an identity policy statement without Resource")
    return _conditions_match(statement.get("Condition", {}), request.context)


def _principal_matches(
    statement: Mapping[str, Any], request: Request, resource_policy: bool, deny: bool
) -> bool:
    if not resource_policy:
        if "Principal" in statement or "NotPrincipal" in statement:
            raise UnknownPolicyElement("Principal in an identity policy")
        return True
    if "NotPrincipal" in statement:
        raise UnknownPolicyElement("NotPrincipal")
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise UnknownPolicyElement(f"Principal {principal!r}")
    arns = [str(a) for a in _as_list(principal.get("AWS", []))]
    if "*" in arns or request.principal_arn in arns:
        return True
    account = _account(request.principal_arn)
    if account and (account in arns or any(a.endswith(f":{account}:root") for a in arns)):
        # The account itself: for the same account this delegates to the identity policies; it
        # grants nothing by itself, but a Deny naming the account applies to all its principals.
        return deny
    return False  # a service principal or another account


def _account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def _glob(pattern: Any, value: str, *, case: bool) -> bool:
    if not isinstance(pattern, str):
        raise UnknownPolicyElement(f"pattern {pattern!r} (an unresolved intrinsic function?)")
    if "${" in pattern:
        raise UnknownPolicyElement(f"policy variable in {pattern!r}")
    return _glob_regex(pattern, case).fullmatch(value) is not None


@cache  # the IAM contract checks thousands of calls a test against the same few dozen patterns
def _glob_regex(pattern: str, case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, 0 if case else re.IGNORECASE)


# ------------------------------------------------------------------------------------ conditions
def _string_equals(expected: str, actual: str) -> bool:
    return expected == actual


def _string_equals_ignore_case(expected: str, actual: str) -> bool:
    return expected.lower() == actual.lower()


def _string_like(expected: str, actual: str) -> bool:
    return _glob(expected, actual, case=True)


def _arn_like(expected: str, actual: str) -> bool:
    # ARN operators compare the six colon-separated parts, each with globs.
    want, have = expected.split(":", 5), actual.split(":", 5)
    return len(want) == len(have) == 6 and all(
        fnmatch.fnmatchcase(h, w) for w, h in zip(want, have, strict=True)
    )


_MATCHERS = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
}


def _conditions_match(conditions: Mapping[str, Any], context: Mapping[str, ContextValue]) -> bool:
    """All operators, and all keys within an operator, must match (AND); values of a key OR."""
    if not isinstance(conditions, Mapping):
        raise UnknownPolicyElement(f"Condition {conditions!r}")
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            if not _condition_matches(operator, key, [str(v) for v in _as_list(expected)], context):
                return False
    return True


def _condition_matches(
    operator: str, key: str, expected: list[str], context: Mapping[str, ContextValue]
) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    actual = _context_value(context, key)
    if base == "Null":
        wants_missing = expected == ["true"]
        if expected not in (["true"], ["false"]):
            raise UnknownPolicyElement(f"Null value {expected!r}")
        return (actual is None) == wants_missing
    if base == "Bool":
        if actual is None:
            return if_exists
        return any(str(a).lower() == e.lower() for a in actual for e in expected)
    if base not in _MATCHERS:
        raise UnknownPolicyElement(f"condition operator {operator}")
    compare, negated = _MATCHERS[base]
    if actual is None:
        return if_exists or negated
    hit = any(compare(e, a) for a in actual for e in expected)
    return not hit if negated else hit


def _context_value(context: Mapping[str, ContextValue], key: str) -> list[str] | None:
    for name, value in context.items():
        if name.lower() == key.lower():  # condition key names are case-insensitive
            return [value] if isinstance(value, str) else list(value)
    return None
