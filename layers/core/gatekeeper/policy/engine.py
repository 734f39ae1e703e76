"""Evaluate a policy template against one connection request's context.

Pure (no clock, no I/O: the caller supplies ``gatekeeper:CurrentTime``). Every statement is
evaluated, so the result explains the whole template; precedence Deny → Review → Allow → none (the
stack's default). A condition that cannot be evaluated raises a :class:`PolicyError`: hold, never
guess. See docs/policy-templates.md.
"""

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from .conditions import (
    Family,
    Typed,
    display,
    evaluate_null,
    evaluate_operator,
    substitute,
    type_condition_value,
    type_context_value,
)
from .errors import PolicyEvaluationError
from .keys import LABEL_PREFIX, canonical_key, known_key_names
from .parameters import ParamValue, resolve_parameters
from .template import CompiledCondition, Effect, PolicyTemplate, Statement
from .values import Scalar, describe, render, to_datetime, to_number

ContextValue = str | int | float | Decimal | bool | datetime | date | Sequence[str] | AbstractSet[str] | None
"""A context value: a scalar, a list (or set) of strings for multi-valued keys, or None (= absent).

Decimals, dates and sets are accepted as DynamoDB and boto3 hand them over; naive datetimes are UTC."""

ResultValue = str | int | float | bool | datetime
_PRECEDENCE: Final[tuple[Effect, ...]] = ("Deny", "Review", "Allow")


class ConditionResult(BaseModel):
    """One (operator, key) test: what the context held, what it was compared with, the outcome."""

    model_config = ConfigDict(frozen=True)

    operator: str
    key: str
    present: bool
    context_values: tuple[ResultValue, ...]
    condition_values: tuple[ResultValue, ...]
    """After substitution, typed for the operator (patterns shown as written)."""
    matched: bool

    def describe(self) -> str:
        if not self.present:
            shown = "(absent)"
        elif len(self.context_values) == 1:
            shown = _show(self.context_values[0])
        else:
            shown = "[" + ", ".join(_show(v) for v in self.context_values) + "]"
        conditions = "[" + ", ".join(_show(v) for v in self.condition_values) + "]"
        return f"{self.operator} {self.key} {shown} vs {conditions}"


class StatementResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    sid: str
    effect: Effect
    matched: bool
    conditions: tuple[ConditionResult, ...]

    def explain(self) -> str:
        if not self.conditions:
            return f"{self.effect} {self.sid} matched: no condition"
        if self.matched:
            return f"{self.effect} {self.sid} matched: " + " and ".join(c.describe() for c in self.conditions)
        failed = "; ".join(f"{c.describe()} is false" for c in self.conditions if not c.matched)
        return f"{self.effect} {self.sid} did not match: {failed}"


class Evaluation(BaseModel):
    """The decision of one template for one request, with its full explanation.

    ``effect`` is None when no statement matched. ``deciding_sids`` are the matched statements of
    the winning effect, in template order (all matching Deny statements when Deny wins).
    """

    model_config = ConfigDict(frozen=True)

    template: str
    effect: Effect | None
    deciding_sids: tuple[str, ...]
    statements: tuple[StatementResult, ...]
    parameters: dict[str, ParamValue]

    def explain(self) -> list[str]:
        """One line per statement, in template order."""
        return [statement.explain() for statement in self.statements]


def evaluate(
    template: PolicyTemplate,
    context: Mapping[str, ContextValue],
    overrides: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Evaluate every statement of ``template`` against ``context`` (condition key → value; key
    names case-insensitive) with the tenant's parameter ``overrides``.

    Raises :class:`ParameterInvalid` for bad overrides and :class:`PolicyEvaluationError` when a
    condition cannot be evaluated.
    """
    parameters = resolve_parameters(template, overrides or {})
    lookup = _Context(context)
    results = tuple(_evaluate_statement(statement, parameters, lookup) for statement in template.statements)
    effect = next((e for e in _PRECEDENCE if any(r.matched and r.effect == e for r in results)), None)
    deciding = tuple(r.sid for r in results if r.matched and r.effect == effect)
    return Evaluation(
        template=template.name,
        effect=effect,
        deciding_sids=deciding,
        statements=results,
        parameters=parameters,
    )


def _evaluate_statement(
    statement: Statement, parameters: Mapping[str, ParamValue], context: "_Context"
) -> StatementResult:
    conditions = tuple(
        _evaluate_condition(statement.sid, condition, parameters, context)
        for condition in statement.conditions
    )
    return StatementResult(
        sid=statement.sid,
        effect=statement.effect,
        matched=all(c.matched for c in conditions),
        conditions=conditions,
    )


def _evaluate_condition(
    sid: str, condition: CompiledCondition, parameters: Mapping[str, ParamValue], context: "_Context"
) -> ConditionResult:
    operator = condition.operator

    def fail(message: str) -> PolicyEvaluationError:
        return PolicyEvaluationError(message, sid=sid, operator=operator.name, key=condition.key)

    typed_conditions: list[Typed] = []
    for template in condition.values:
        try:
            substituted = substitute(template, parameters.__getitem__, context.lookup)
        except ValueError as exc:
            raise fail(str(exc)) from None
        for value in substituted:
            try:
                typed_conditions.append(type_condition_value(operator, value))
            except ValueError as exc:
                raise fail(f"condition value {template.raw!r}: {exc}") from None
    try:
        raw = context.lookup(condition.key) or ()
    except ValueError as exc:
        raise fail(str(exc)) from None
    present = bool(raw)
    if operator.family is Family.NULL:
        shown: tuple[ResultValue, ...] = tuple(render(v) for v in raw)
        matched = evaluate_null(present, typed_conditions)
    else:
        try:
            typed_context = [type_context_value(operator, value) for value in raw]
        except ValueError as exc:
            raise fail(f"context value {exc}") from None
        shown = tuple(typed_context)
        matched = evaluate_operator(operator, typed_context, typed_conditions)
    return ConditionResult(
        operator=operator.name,
        key=condition.key,
        present=present,
        context_values=shown,
        condition_values=tuple(display(value) for value in typed_conditions),
        matched=matched,
    )


class _Context:
    """Case-insensitive access to the caller's context, values normalised to tuples of scalars."""

    def __init__(self, context: Mapping[str, ContextValue]) -> None:
        self._entries: dict[str, list[tuple[str, object]]] = {}
        unknown: list[str] = []
        for name, value in context.items():
            canonical = canonical_key(name) if isinstance(name, str) else None
            if canonical is None:
                if isinstance(name, str) and name.lower().startswith(LABEL_PREFIX.lower()):
                    continue  # a label no template can name (see keys.LABEL_PREFIX rules): not a bug
                unknown.append(repr(name))
                continue
            self._entries.setdefault(canonical.lower(), []).append((name, value))
        if unknown:
            raise PolicyEvaluationError(
                f"the context has unknown condition keys {', '.join(unknown)}; "
                f"known keys: {known_key_names()}"
            )

    def lookup(self, key: str) -> tuple[Scalar, ...] | None:
        """The key's values; None when absent (missing or None); () for an empty list."""
        entries = self._entries.get(key.lower())
        if not entries:
            return None
        if len(entries) > 1:
            names = ", ".join(repr(name) for name, _ in entries)
            raise ValueError(
                f"the context gives {key} more than once ({names}); key names are case-insensitive"
            )
        return _normalise(key, entries[0][1])


def _normalise(key: str, value: object) -> tuple[Scalar, ...] | None:
    if value is None:
        return None
    items: Sequence[object]
    if isinstance(value, set | frozenset):
        items = sorted(value, key=str)
    elif isinstance(value, list | tuple):
        items = value
    else:
        return (_scalar(key, value),)
    return tuple(_scalar(key, item) for item in items)


def _scalar(key: str, value: object) -> Scalar:
    if isinstance(value, str | bool | int | float | datetime):
        return value
    if isinstance(value, Decimal):  # DynamoDB numbers
        return to_number(value)
    if isinstance(value, date):
        return to_datetime(value)
    raise ValueError(
        f"the context value of {key} is {describe(value)}; "
        "expected a string, number, boolean or datetime (or a list of strings)"
    )


def _show(value: ResultValue) -> str:
    if isinstance(value, str):
        return repr(value)
    return describe(value)
