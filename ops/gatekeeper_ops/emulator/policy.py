"""A small IAM resource-policy evaluator: may an AWS service principal do an action on a resource?

The emulator asks it whether ``vpce.amazonaws.com`` may publish a connection notification to a
topic (topic policy) and use its KMS key (key policy), as AWS does before delivering, and, with
``explicitly_denied``, whether an event bus policy's Deny refuses a caller of its own account.
Explicit Deny wins; no Allow means no; an operator it does not know fails closed. Every answer
carries a reason. What it evaluates: :func:`evaluate`; fidelity: docs/emulator.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

_NEGATED = {
    "stringnotequals": "stringequals",
    "stringnotequalsignorecase": "stringequalsignorecase",
    "stringnotlike": "stringlike",
    "arnnotequals": "arnequals",
    "arnnotlike": "arnlike",
}
_POSITIVE = {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike", "bool"}


@dataclass(frozen=True)
class Request:
    """What a service principal asks: ``action`` on ``resource``, with these context keys."""

    service_principal: str
    action: str
    resource: str
    context: Mapping[str, str]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


def evaluate(document: str | Mapping[str, Any] | None, request: Request) -> Verdict:
    """Whether ``document`` allows ``request``; an explicit Deny wins, no Allow means no."""
    if document is None or document == "":
        return Verdict(False, "there is no policy")
    try:
        policy = json.loads(document) if isinstance(document, str) else dict(document)
    except ValueError:
        return Verdict(False, "the policy is not valid JSON")
    statements = policy.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        return Verdict(False, "the policy has no Statement list")
    allowed_by: str | None = None
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping):
            continue
        sid = str(statement.get("Sid") or f"#{index}")
        effect = statement.get("Effect")
        if effect == "Deny" and _applies(statement, request, deny=True):
            return Verdict(False, f"statement {sid} explicitly denies {request.action}")
        if effect == "Allow" and allowed_by is None and _applies(statement, request, deny=False):
            allowed_by = sid
    if allowed_by is not None:
        return Verdict(True, f"statement {allowed_by} allows {request.action}")
    return Verdict(
        False,
        f"no statement allows {request.service_principal} to {request.action} "
        f"(with aws:SourceAccount={request.context.get('aws:SourceAccount', '-')}, "
        f"aws:SourceArn={request.context.get('aws:SourceArn', '-')})",
    )


def explicitly_denied(document: str | Mapping[str, Any] | None, request: Request) -> Verdict | None:
    """The Deny statement of ``document`` that refuses ``request``, or ``None``; a document that does
    not parse denies nothing here (AWS would not have stored it)."""
    try:
        policy = json.loads(document) if isinstance(document, str) else dict(document or {})
    except ValueError:
        return None
    statements = policy.get("Statement", [])
    for index, statement in enumerate([statements] if isinstance(statements, Mapping) else statements):
        if (
            isinstance(statement, Mapping)
            and statement.get("Effect") == "Deny"
            and _applies(statement, request, deny=True)
        ):
            sid = str(statement.get("Sid") or f"#{index}")
            return Verdict(False, f"statement {sid} explicitly denies {request.action}")
    return None


def _applies(statement: Mapping[str, Any], request: Request, *, deny: bool) -> bool:
    if "NotPrincipal" in statement:
        if _principal_matches(statement["NotPrincipal"], request.service_principal):
            return False
    elif not _principal_matches(statement.get("Principal"), request.service_principal):
        return False
    if "NotAction" in statement:
        if _any_like(_strings(statement["NotAction"]), request.action, ignore_case=True):
            return False
    elif not _any_like(_strings(statement.get("Action")), request.action, ignore_case=True):
        return False
    if "NotResource" in statement:
        if _any_like(_strings(statement["NotResource"]), request.resource, ignore_case=False):
            return False
    elif not _any_like(_strings(statement.get("Resource", "*")), request.resource, ignore_case=False):
        return False
    return _conditions_hold(statement.get("Condition") or {}, request.context, deny=deny)


def _principal_matches(principal: object, service_principal: str) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return service_principal in _strings(principal.get("Service"))
    return False


def _conditions_hold(conditions: object, context: Mapping[str, str], *, deny: bool) -> bool:
    if not isinstance(conditions, Mapping):
        return deny  # unreadable: fail closed
    keys = {key.casefold(): value for key, value in context.items()}
    for raw_operator, block in conditions.items():
        if not isinstance(block, Mapping):
            return deny
        for key, values in block.items():
            outcome = _condition(str(raw_operator), keys.get(str(key).casefold()), _strings(values))
            if outcome is None:
                return deny  # an operator we do not know
            if not outcome:
                return False
    return True


def _condition(raw_operator: str, value: str | None, wanted: list[str]) -> bool | None:
    """One condition key; ``None`` when the operator is unknown."""
    operator = raw_operator.casefold()
    if ":" in operator:
        # A single-valued context key: ForAnyValue needs a match, ForAllValues holds when absent.
        qualifier, operator = operator.split(":", 1)
        if qualifier not in ("foranyvalue", "forallvalues"):
            return None
        if value is None:
            return qualifier == "forallvalues"
    if_exists = operator.endswith("ifexists")
    if if_exists:
        operator = operator.removesuffix("ifexists")
    if operator == "null":
        return (value is None) == (wanted[:1] == ["true"]) if wanted else None
    if value is None:
        # A missing key fails a positive test and satisfies a negated one (IAM's rule).
        if operator in _POSITIVE:
            return if_exists
        return True if operator in _NEGATED else None
    if operator in _NEGATED:
        positive = _positive(_NEGATED[operator], value, wanted)
        return None if positive is None else not positive
    return _positive(operator, value, wanted)


def _positive(operator: str, value: str, wanted: list[str]) -> bool | None:
    if operator == "stringequals":
        return value in wanted
    if operator == "stringequalsignorecase":
        return value.casefold() in {w.casefold() for w in wanted}
    if operator == "bool":
        return value.casefold() in {w.casefold() for w in wanted}
    if operator in ("stringlike", "arnlike", "arnequals"):
        # IAM: ArnEquals and ArnLike both take * and ? wildcards in every ARN component.
        return _any_like(wanted, value, ignore_case=False)
    return None


def _any_like(patterns: Iterable[str], value: str, *, ignore_case: bool) -> bool:
    return any(_pattern(p, ignore_case).fullmatch(value) for p in patterns)


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    translated = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile(translated, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, bool):
        return [str(value).lower()]
    return [str(value)]
