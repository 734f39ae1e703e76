"""Condition operators with IAM semantics, and ``${…}`` substitution in condition values.

Follows the IAM User Guide ("Condition operators", "Set operators for multivalued context keys"):
values OR, keys and operators AND, negated operators NOR, IAM's rules for absent keys, ``…IfExists``
and the ``ForAnyValue:``/``ForAllValues:`` prefixes. A context value that cannot be read as the
operator's type is an evaluation error, never a silent mismatch (the request is held). The rules,
operator by operator: docs/policy-templates.md.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from operator import eq, ge, gt, le, lt
from typing import Any, Final, Literal

from .keys import KeyType, canonical_key
from .values import Number, Scalar, describe, render, to_bool, to_datetime, to_number


class Family(StrEnum):
    STRING = "String"
    STRING_IGNORE_CASE = "StringIgnoreCase"
    LIKE = "StringLike"
    NUMERIC = "Numeric"
    DATE = "Date"
    BOOL = "Bool"
    NULL = "Null"
    ARN = "Arn"


class Comparison(StrEnum):
    EQ = "eq"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"


Qualifier = Literal["ForAnyValue", "ForAllValues"]

_BASE_OPERATORS: Final[Mapping[str, tuple[Family, Comparison, bool]]] = {
    "StringEquals": (Family.STRING, Comparison.EQ, False),
    "StringNotEquals": (Family.STRING, Comparison.EQ, True),
    "StringEqualsIgnoreCase": (Family.STRING_IGNORE_CASE, Comparison.EQ, False),
    "StringNotEqualsIgnoreCase": (Family.STRING_IGNORE_CASE, Comparison.EQ, True),
    "StringLike": (Family.LIKE, Comparison.EQ, False),
    "StringNotLike": (Family.LIKE, Comparison.EQ, True),
    "NumericEquals": (Family.NUMERIC, Comparison.EQ, False),
    "NumericNotEquals": (Family.NUMERIC, Comparison.EQ, True),
    "NumericLessThan": (Family.NUMERIC, Comparison.LT, False),
    "NumericLessThanEquals": (Family.NUMERIC, Comparison.LE, False),
    "NumericGreaterThan": (Family.NUMERIC, Comparison.GT, False),
    "NumericGreaterThanEquals": (Family.NUMERIC, Comparison.GE, False),
    "DateEquals": (Family.DATE, Comparison.EQ, False),
    "DateNotEquals": (Family.DATE, Comparison.EQ, True),
    "DateLessThan": (Family.DATE, Comparison.LT, False),
    "DateLessThanEquals": (Family.DATE, Comparison.LE, False),
    "DateGreaterThan": (Family.DATE, Comparison.GT, False),
    "DateGreaterThanEquals": (Family.DATE, Comparison.GE, False),
    "Bool": (Family.BOOL, Comparison.EQ, False),
    "Null": (Family.NULL, Comparison.EQ, False),
    "ArnEquals": (Family.ARN, Comparison.EQ, False),
    "ArnNotEquals": (Family.ARN, Comparison.EQ, True),
    "ArnLike": (Family.ARN, Comparison.EQ, False),
    "ArnNotLike": (Family.ARN, Comparison.EQ, True),
}
BASE_OPERATORS: Final = tuple(_BASE_OPERATORS)
_QUALIFIERS: Final[tuple[Qualifier, ...]] = ("ForAnyValue", "ForAllValues")
_IF_EXISTS: Final = "IfExists"

# Which key types each operator family may test. Labels are free text, so anything goes.
_FAMILY_KEY_TYPES: Final[Mapping[Family, frozenset[KeyType]]] = {
    Family.NUMERIC: frozenset({KeyType.NUMBER, KeyType.LABEL}),
    Family.DATE: frozenset({KeyType.DATE, KeyType.LABEL}),
    Family.BOOL: frozenset({KeyType.BOOL, KeyType.LABEL}),
}
_FAMILY_NOUN: Final[Mapping[Family, str]] = {
    Family.NUMERIC: "numbers",
    Family.DATE: "dates",
    Family.BOOL: "booleans",
}


@dataclass(frozen=True, slots=True)
class Operator:
    """A parsed condition operator such as ``ForAllValues:StringNotLikeIfExists``."""

    name: str
    base: str
    family: Family
    comparison: Comparison
    negated: bool
    if_exists: bool
    qualifier: Qualifier | None


def parse_operator(name: str) -> Operator:
    """Parse an operator name; ``ValueError`` says what is wrong with it."""
    qualifier: Qualifier | None = None
    rest = name
    if ":" in name:
        prefix, _, rest = name.partition(":")
        if prefix not in _QUALIFIERS:
            raise ValueError(
                f"unknown set operator prefix {prefix!r} in {name!r}; use ForAnyValue: or ForAllValues:"
                + suggest(prefix, _QUALIFIERS)
            )
        qualifier = "ForAnyValue" if prefix == "ForAnyValue" else "ForAllValues"
    if_exists = rest.endswith(_IF_EXISTS) and rest != _IF_EXISTS
    base = rest.removesuffix(_IF_EXISTS) if if_exists else rest
    spec = _BASE_OPERATORS.get(base)
    if spec is None:
        raise ValueError(f"unknown condition operator {name!r}" + suggest(base, BASE_OPERATORS))
    family, comparison, negated = spec
    if family is Family.NULL and if_exists:
        raise ValueError("NullIfExists is not an operator: Null already tests whether the key exists")
    if family is Family.NULL and qualifier is not None:
        raise ValueError(f"{name!r}: Null takes no ForAnyValue:/ForAllValues: prefix")
    return Operator(name, base, family, comparison, negated, if_exists, qualifier)


def check_key_type(operator: Operator, key_type: KeyType, key: str) -> str | None:
    """A problem when the operator cannot sensibly test a key of this type, else None."""
    allowed = _FAMILY_KEY_TYPES.get(operator.family)
    if allowed is None or key_type in allowed:
        return None
    hint = " (use a String operator)" if key_type in (KeyType.STRING, KeyType.STRING_LIST) else ""
    return f"{operator.base} compares {_FAMILY_NOUN[operator.family]} but {key} is a {key_type} key{hint}"


def suggest(word: str, choices: Sequence[str]) -> str:
    """A "; did you mean 'X'?" hint for a near miss (or a case slip), else an empty string."""
    import difflib  # only on the error path: keeps the cold start lean

    lowered = {choice.lower(): choice for choice in choices}
    if word.lower() in lowered:
        return f"; did you mean {lowered[word.lower()]!r}? (names are case-sensitive)"
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def not_one_of(value: object, choices: Sequence[str], listed: str = "") -> str:
    """ "<value> is not one of <choices>" (`(missing)` for None), with a hint for a near miss."""
    shown = "(missing)" if value is None else describe(value)
    hint = suggest(value, choices) if isinstance(value, str) else ""
    return f"{shown} is not one of {listed or ', '.join(choices)}{hint}"


# --- ${…} references -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """``${Name}`` (a template parameter) or ``${tenant:Key}`` (a context key), maybe with a default."""

    name: str
    is_context: bool
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Escape:
    """``${*}``, ``${?}`` or ``${$}``: the character itself, never a wildcard."""

    char: str


Part = str | Reference | Escape

_REFERENCE_BODY: Final = re.compile(r"\s*([^\s,']+)\s*(?:,\s*'((?:[^']|'')*)'\s*)?")
_PARAMETER_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class ValueTemplate:
    """One condition value as written: a plain literal, or text with references and escapes."""

    raw: str | int | float | bool
    parts: tuple[Part, ...]

    @property
    def references(self) -> tuple[Reference, ...]:
        return tuple(part for part in self.parts if isinstance(part, Reference))

    @property
    def whole_reference(self) -> Reference | None:
        """The reference when the value is exactly one ``${…}`` (so lists expand)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Reference):
            return self.parts[0]
        return None

    @property
    def is_literal(self) -> bool:
        return not self.references


def parse_value(raw: str | int | float | bool) -> ValueTemplate:
    """Split a condition value into text, references and escapes; ``ValueError`` on bad syntax.

    Reference names are checked for form only (a context key must be a known key); whether a
    parameter exists is the template's check.
    """
    if not isinstance(raw, str):
        return ValueTemplate(raw, ())
    parts: list[Part] = []
    text: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        if not raw.startswith("${", i):
            text.append(raw[i])
            i += 1
            continue
        end = _reference_end(raw, i + 2)
        if end < 0:
            raise ValueError(f"{raw!r} has an unterminated '${{' (write ${{$}} for a literal '$')")
        body = raw[i + 2 : end]
        if text:
            parts.append("".join(text))
            text = []
        parts.append(_parse_reference(body))
        i = end + 1
    if text:
        parts.append("".join(text))
    return ValueTemplate(raw, tuple(parts))


def _reference_end(raw: str, start: int) -> int:
    in_quote = False
    j = start
    while j < len(raw):
        char = raw[j]
        if in_quote:
            if char == "'":
                if raw.startswith("''", j):
                    j += 2
                    continue
                in_quote = False
        elif char == "'":
            in_quote = True
        elif char == "}":
            return j
        j += 1
    return -1


def _parse_reference(body: str) -> Part:
    if body in ("*", "?", "$"):
        return Escape(body)
    match = _REFERENCE_BODY.fullmatch(body)
    if match is None:
        raise ValueError(
            f"'${{{body}}}' is not a reference; write ${{Parameter}}, ${{tenant:Key}} "
            "or ${tenant:Key, 'default'}"
        )
    name, default = match.group(1), match.group(2)
    if default is not None:
        default = default.replace("''", "'")
    if ":" in name:
        key = canonical_key(name)
        if key is None:
            raise ValueError(f"'${{{body}}}' references unknown condition key {name!r}")
        return Reference(key, is_context=True, default=default)
    if not _PARAMETER_NAME.fullmatch(name):
        raise ValueError(f"'${{{body}}}': {name!r} is not a parameter name")
    return Reference(name, is_context=False, default=default)


# --- substitution ----------------------------------------------------------------------------

STAR: Final = 0
ONE: Final = 1
Token = str | int
"""A pattern token: one literal character, or STAR / ONE."""


@dataclass(frozen=True, slots=True)
class Text:
    """Substituted text: segments whose wildcards are live (True) or escaped (False)."""

    segments: tuple[tuple[str, bool], ...]

    @property
    def value(self) -> str:
        return "".join(segment for segment, _ in self.segments)

    def tokens(self) -> tuple[Token, ...]:
        out: list[Token] = []
        for segment, live in self.segments:
            for char in segment:
                if live and char == "*":
                    out.append(STAR)
                elif live and char == "?":
                    out.append(ONE)
                else:
                    out.append(char)
        return tuple(out)


Substituted = Text | int | float | bool | datetime
ParamLookup = Callable[[str], object]
ContextLookup = Callable[[str], tuple[Scalar, ...] | None]


class Unresolvable(ValueError):
    """A reference cannot be substituted in this evaluation."""


def substitute(template: ValueTemplate, parameter: ParamLookup, context: ContextLookup) -> list[Substituted]:
    """The value(s) a condition value stands for in this evaluation."""
    if isinstance(template.raw, bool | int | float):
        return [template.raw]
    whole = template.whole_reference
    if whole is not None:
        return [_as_substituted(value) for value in _resolve(whole, parameter, context)]
    segments: list[tuple[str, bool]] = []
    for part in template.parts:
        if isinstance(part, str):
            segments.append((part, True))
        elif isinstance(part, Escape):
            segments.append((part.char, False))
        else:
            values = _resolve(part, parameter, context)
            if len(values) != 1:
                raise Unresolvable(
                    f"${{{part.name}}} holds {len(values)} values; inside a longer string "
                    f"(here {template.raw!r}) a reference must hold exactly one"
                )
            segments.append((render(values[0]), True))
    return [Text(tuple(segments))]


def _resolve(reference: Reference, parameter: ParamLookup, context: ContextLookup) -> tuple[object, ...]:
    if reference.is_context:
        values: tuple[object, ...] | None = context(reference.name)
        if values is None:
            if reference.default is None:
                raise Unresolvable(
                    f"${{{reference.name}}} cannot be resolved: {reference.name} is absent from the context "
                    f"(give a default: ${{{reference.name}, 'value'}})"
                )
            return (reference.default,)
        return values
    value = parameter(reference.name)
    if isinstance(value, tuple):
        return value
    return (value,)


def _as_substituted(value: object) -> Substituted:
    if isinstance(value, str):
        return Text(((value, True),))
    # parameters and context values are typed before they get here
    assert isinstance(value, bool | int | float | datetime)
    return value


# --- typing values for an operator ----------------------------------------------------------

Typed = str | Number | bool | datetime | tuple[Token, ...]


def type_condition_value(operator: Operator, value: Substituted) -> Typed:
    """Read a (substituted) condition value as the operator's type; ``ValueError`` if it cannot be."""
    family = operator.family
    if family in (Family.LIKE, Family.ARN):
        tokens = value.tokens() if isinstance(value, Text) else tuple(render(value))
        if family is Family.ARN and tokens.count(":") < 5:
            shown = value.value if isinstance(value, Text) else render(value)
            raise ValueError(
                f"{shown!r} is not an ARN pattern (arn:partition:service:region:account:resource)"
            )
        return tokens
    return _type_scalar(family, value.value if isinstance(value, Text) else value)


def type_context_value(operator: Operator, value: Scalar) -> str | Number | bool | datetime:
    """Read one context value as the operator's type; ``ValueError`` if it cannot be. (Null tests
    presence only: the engine never types a context value for it.)"""
    return _type_scalar(operator.family, value)


def _type_scalar(family: Family, value: Scalar) -> str | Number | bool | datetime:
    if family is Family.NUMERIC:
        if isinstance(value, datetime):
            raise ValueError(f"{describe(value)} is a date, not a number")
        return to_number(value)
    if family is Family.DATE:
        return to_datetime(value)
    if family in (Family.BOOL, Family.NULL):
        return to_bool(value)
    return render(value)  # String, StringIgnoreCase (and the text of Like and Arn)


def display(value: Typed) -> Scalar:
    """A typed condition value as shown in results: patterns back to text."""
    if isinstance(value, tuple):
        return "".join(_display_token(token) for token in value)
    return value


def _display_token(token: Token) -> str:
    if token == STAR:
        return "*"
    if token == ONE:
        return "?"
    assert isinstance(token, str)
    return f"${{{token}}}" if token in ("*", "?") else token  # an escaped, literal wildcard


# --- matching ---------------------------------------------------------------------------------


def glob_match(tokens: Sequence[Token], text: str) -> bool:
    """Wildcard match in O(len(tokens) * len(text)) — no regex, so no catastrophic backtracking."""
    t = p = 0
    star_p, star_t = -1, 0
    n_tokens, n_text = len(tokens), len(text)
    while t < n_text:
        if p < n_tokens and tokens[p] != STAR and (tokens[p] == ONE or tokens[p] == text[t]):
            t += 1
            p += 1
        elif p < n_tokens and tokens[p] == STAR:
            star_p, star_t = p, t
            p += 1
        elif star_p >= 0:
            star_t += 1
            p, t = star_p + 1, star_t
        else:
            return False
    while p < n_tokens and tokens[p] == STAR:
        p += 1
    return p == n_tokens


def arn_match(tokens: tuple[Token, ...], arn: str) -> bool:
    """IAM ARN matching: six colon-separated parts, each matched on its own."""
    arn_parts = arn.split(":", 5)
    if len(arn_parts) != 6:
        return False
    pattern_parts: list[list[Token]] = [[]]
    for token in tokens:
        if token == ":" and len(pattern_parts) < 6:
            pattern_parts.append([])
        else:
            pattern_parts[-1].append(token)
    return all(glob_match(pattern, part) for pattern, part in zip(pattern_parts, arn_parts, strict=True))


_COMPARE: Final[Mapping[Comparison, Callable[[Any, Any], bool]]] = {
    Comparison.EQ: eq,
    Comparison.LT: lt,
    Comparison.LE: le,
    Comparison.GT: gt,
    Comparison.GE: ge,
}


def matches_one(operator: Operator, context_value: str | Number | bool | datetime, condition: Typed) -> bool:
    """The positive (un-negated) comparison of one context value with one condition value."""
    family = operator.family
    if family is Family.LIKE:
        assert isinstance(context_value, str)
        assert isinstance(condition, tuple)
        return glob_match(condition, context_value)
    if family is Family.ARN:
        assert isinstance(context_value, str)
        assert isinstance(condition, tuple)
        return arn_match(condition, context_value)
    if family is Family.STRING_IGNORE_CASE:
        assert isinstance(context_value, str)
        assert isinstance(condition, str)
        return context_value.casefold() == condition.casefold()
    if family in (Family.NUMERIC, Family.DATE):
        # both sides were typed by the same family: numbers with numbers, datetimes with datetimes
        return _COMPARE[operator.comparison](context_value, condition)
    return context_value == condition  # String, Bool


def evaluate_operator(
    operator: Operator,
    context_values: Sequence[str | Number | bool | datetime],
    condition_values: Sequence[Typed],
) -> bool:
    """Apply the operator with IAM set, negation and absent-key semantics.

    ``context_values`` empty means the key is absent. Null is handled by the caller.
    """
    if not context_values:
        if operator.if_exists or operator.qualifier == "ForAllValues":
            return True
        if operator.qualifier == "ForAnyValue":
            return False
        return operator.negated

    def satisfies(value: str | Number | bool | datetime) -> bool:
        any_match = any(matches_one(operator, value, condition) for condition in condition_values)
        return not any_match if operator.negated else any_match

    if operator.qualifier == "ForAllValues":
        return all(satisfies(value) for value in context_values)
    if operator.qualifier == "ForAnyValue":
        return any(satisfies(value) for value in context_values)
    any_value_matches = any(
        matches_one(operator, value, condition) for value in context_values for condition in condition_values
    )
    return not any_value_matches if operator.negated else any_value_matches


def evaluate_null(present: bool, condition_values: Sequence[Typed]) -> bool:
    """``Null: true`` matches an absent key, ``Null: false`` a present one (values OR)."""
    return any(expected == (not present) for expected in condition_values)
