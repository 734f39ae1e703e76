"""Property tests: Deny always wins, broken templates never decide, explanations name the deciders."""

import copy
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gatekeeper.policy import (
    ContextValue,
    PolicyError,
    TemplateInvalid,
    evaluate,
    parse_template,
)
from gatekeeper.policy.conditions import parse_operator
from gatekeeper.policy.keys import canonical_key
from gatekeeper.policy.values import to_number

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

WORDS = ["a", "b", "c"]
PATTERNS = [*WORDS, "a*", "?", "*", "${Regions}", "${tenant:Status}"]
STRING_KEYS = ["tenant:Status", "endpoint:Region", "tenant:Services", "tenant:Labels/env"]
NUMBER_KEYS = ["tenant:ActiveEndpoints", "tenant:MaxEndpoints"]
STRING_OPERATORS = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
]
NUMERIC_OPERATORS = [
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
]
EFFECTS = ["Allow", "Deny", "Review"]
PARAMETERS = {
    "Regions": {"Type": "StringList", "Default": ["a", "b"]},
    "Limit": {"Type": "Number", "Default": 2},
}


@st.composite
def condition_entries(draw: st.DrawFn) -> tuple[str, str, list[Any]]:
    kind = draw(st.sampled_from(["string", "numeric", "null"]))
    if kind == "null":
        return (
            "Null",
            draw(st.sampled_from(STRING_KEYS + NUMBER_KEYS)),
            [draw(st.sampled_from(["true", "false"]))],
        )
    if kind == "string":
        base = draw(st.sampled_from(STRING_OPERATORS))
        key = draw(st.sampled_from(STRING_KEYS))
        values: list[Any] = draw(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3))
    else:
        base = draw(st.sampled_from(NUMERIC_OPERATORS))
        key = draw(st.sampled_from(NUMBER_KEYS))
        values = draw(st.lists(st.one_of(st.integers(0, 4), st.just("${Limit}")), min_size=1, max_size=2))
    suffix = draw(st.sampled_from(["", "IfExists"]))
    prefix = draw(st.sampled_from(["", "ForAnyValue:", "ForAllValues:"]))
    return prefix + base + suffix, key, values


@st.composite
def statements(draw: st.DrawFn, index: int) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": f"S{index}", "Effect": draw(st.sampled_from(EFFECTS))}
    entries = draw(st.lists(condition_entries(), max_size=3))
    if entries:
        condition: dict[str, dict[str, list[Any]]] = {}
        for operator, key, values in entries:
            condition.setdefault(operator, {})[key] = values
        statement["Condition"] = condition
    return statement


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 6))
    return {
        "Name": "generated",
        "Parameters": copy.deepcopy(PARAMETERS),
        "Statement": [draw(statements(i)) for i in range(count)],
    }


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {
        # ${tenant:Status} may be referenced, so it is always present
        "tenant:Status": draw(st.sampled_from(WORDS)),
        "tenant:Services": draw(st.lists(st.sampled_from(WORDS), max_size=3)),
    }
    for key in ("endpoint:Region", "tenant:Labels/env"):
        value = draw(st.one_of(st.none(), st.sampled_from([*WORDS, "A"])))
        if value is not None:
            context[key] = value
    for key in NUMBER_KEYS:
        number = draw(st.one_of(st.none(), st.integers(0, 4)))
        if number is not None:
            context[key] = number
    return context


def decide(document: Mapping[str, Any], context: Mapping[str, ContextValue]) -> str | None:
    """What a caller does: parse, evaluate, and hold on any policy error."""
    try:
        return evaluate(parse_template(document), context).effect
    except PolicyError:
        return "Hold"


@PROPERTY_SETTINGS
@given(documents(), contexts())
def test_any_matching_deny_wins(document: dict[str, Any], context: dict[str, ContextValue]) -> None:
    template = parse_template(document)
    result = evaluate(template, context)
    for statement, outcome in zip(document["Statement"], result.statements, strict=True):
        # a statement's outcome does not depend on the others
        alone = evaluate(parse_template({**document, "Statement": [statement]}), context)
        assert alone.statements[0].matched == outcome.matched
        if statement["Effect"] == "Deny" and alone.statements[0].matched:
            assert result.effect == "Deny"
    matched = {s.effect for s in result.statements if s.matched}
    event(f"matched effects: {sorted(matched)}")
    if result.effect == "Allow":
        assert not any(s.matched for s in result.statements if s.effect in ("Deny", "Review"))


@PROPERTY_SETTINGS
@given(documents(), contexts())
def test_deciding_sids_are_exactly_the_matched_statements_of_the_winning_effect(
    document: dict[str, Any], context: dict[str, ContextValue]
) -> None:
    result = evaluate(parse_template(document), context)
    expected = tuple(s.sid for s in result.statements if s.matched and s.effect == result.effect)
    assert result.deciding_sids == expected
    if result.effect is None:
        assert not any(s.matched for s in result.statements)
    else:
        assert result.deciding_sids
    lines = result.explain()
    assert len(lines) == len(result.statements)
    for sid in result.deciding_sids:
        assert f"{result.effect} {sid} matched:" in "\n".join(lines)


def _not_an_operator(name: str) -> bool:
    try:
        parse_operator(name)
    except ValueError:
        return True
    return False


def _not_a_number(value: str) -> bool:
    try:
        to_number(value)
    except ValueError:
        return True
    return False


junk = st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1, max_size=12)
CORRUPTIONS = st.one_of(
    st.tuples(st.just("effect"), junk.filter(lambda s: s not in EFFECTS)),
    st.tuples(st.just("operator"), junk.filter(_not_an_operator)),
    st.tuples(st.just("key"), junk.filter(lambda s: canonical_key(s) is None)),
    st.tuples(st.just("number_default"), junk.filter(_not_a_number)),
    st.tuples(
        st.just("param_type"),
        junk.filter(lambda s: s not in ("String", "Number", "StringList", "Boolean", "Date")),
    ),
    st.tuples(
        st.just("unknown_param"),
        st.from_regex(r"[A-Z][a-z]{2,8}", fullmatch=True).filter(lambda s: s not in PARAMETERS),
    ),
    st.tuples(st.just("no_statements"), st.just("")),
    st.tuples(st.just("duplicate_sid"), st.just("")),
)


def corrupt(document: dict[str, Any], corruption: tuple[str, str], index: int) -> str:
    """Apply one corruption in place; return a fragment the problem list must contain."""
    kind, junk_value = corruption
    statement = document["Statement"][index]
    where = f"Statement[{index}] '{statement['Sid']}'"
    if kind == "effect":
        statement["Effect"] = junk_value
        return where
    if kind in ("operator", "key", "unknown_param"):
        operator, key, value = {
            "operator": (junk_value, "tenant:Status", "a"),
            "key": ("StringEquals", junk_value, "a"),
            "unknown_param": ("StringEquals", "tenant:Status", f"${{{junk_value}}}"),
        }[kind]
        statement.setdefault("Condition", {})[operator] = {key: value}
        return where
    if kind == "number_default":
        document["Parameters"]["Limit"]["Default"] = junk_value
        return "Parameters.Limit"
    if kind == "param_type":
        document["Parameters"]["Regions"]["Type"] = junk_value
        return "Parameters.Regions"
    if kind == "no_statements":
        document["Statement"] = []
        return "Statement"
    document["Statement"].append({"Sid": statement["Sid"], "Effect": "Allow"})
    return "Sid duplicates"


@PROPERTY_SETTINGS
@given(documents(), CORRUPTIONS, st.data(), contexts())
def test_a_corrupted_template_never_decides(
    document: dict[str, Any],
    corruption: tuple[str, str],
    data: st.DataObject,
    context: dict[str, ContextValue],
) -> None:
    index = data.draw(st.integers(0, len(document["Statement"]) - 1))
    broken = copy.deepcopy(document)
    fragment = corrupt(broken, corruption, index)
    with pytest.raises(TemplateInvalid) as caught:
        parse_template(broken)
    assert any(fragment in problem for problem in caught.value.problems), (fragment, caught.value.problems)
    assert decide(broken, context) == "Hold"
