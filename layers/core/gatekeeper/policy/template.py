"""Policy templates: the document model (IAM policy grammar) and its validation.

A template is read with :func:`parse_template` (or ``PolicyTemplate.model_validate``, which runs
the same checks). Validation is complete, not first-error: :class:`TemplateInvalid` lists every
problem, each naming where it is — ``Statement[1] 'Entitled': StringNotLike endpoint:ServiceId:
…`` — so an operator can fix a template in one edit. A template that validates can still fail
at evaluation time only on context data (an absent ``${tenant:…}`` reference, a context value of
the wrong type), never on its own shape.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from .conditions import (
    Family,
    Operator,
    ValueTemplate,
    check_key_type,
    not_one_of,
    parse_operator,
    parse_value,
    substitute,
    suggest,
    type_condition_value,
)
from .errors import TemplateInvalid
from .keys import CONDITION_KEYS, LABEL_PREFIX, KeyType, canonical_key, key_info
from .parameters import ParameterSpec, ParamType, check_parameter_spec
from .values import describe

Effect = Literal["Allow", "Deny", "Review"]
EFFECTS: Final[tuple[str, ...]] = get_args(Effect)
ConditionLiteral = str | int | float | bool
ConditionBlock = dict[str, dict[str, tuple[ConditionLiteral, ...]]]
"""operator → {canonical condition key → values}."""

_TEMPLATE_FIELDS: Final = ("Name", "Description", "Parameters", "Statement")
_STATEMENT_FIELDS: Final = ("Sid", "Effect", "Condition")
_IAM_ONLY_FIELDS: Final = frozenset(
    {"Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal"}
)
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SID: Final = re.compile(r"[A-Za-z0-9]{1,128}")
_PARAMETER_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """One (operator, key) pair of a statement, ready to evaluate."""

    operator: Operator
    key: str
    key_type: KeyType
    values: tuple[ValueTemplate, ...]


class Statement(BaseModel):
    """One statement: ``Sid``, ``Effect`` and an optional ``Condition`` (no Condition = always matches)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sid: str = Field(alias="Sid")
    effect: Effect = Field(alias="Effect")
    condition: ConditionBlock | None = Field(default=None, alias="Condition")
    _compiled: tuple[CompiledCondition, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _compile(self) -> Self:
        compiled: list[CompiledCondition] = []
        for operator_name, block in (self.condition or {}).items():
            operator = parse_operator(operator_name)
            for key, values in block.items():
                canonical = canonical_key(key)
                if canonical is None:
                    raise ValueError(f"unknown condition key {key!r}")
                compiled.append(
                    CompiledCondition(
                        operator, canonical, key_info(canonical).type, tuple(parse_value(v) for v in values)
                    )
                )
        self._compiled = tuple(compiled)
        return self

    @property
    def conditions(self) -> tuple[CompiledCondition, ...]:
        return self._compiled

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect}
        if self.condition is not None:
            document["Condition"] = {
                operator: {
                    key: values[0] if len(values) == 1 else list(values) for key, values in block.items()
                }
                for operator, block in self.condition.items()
            }
        return document


class PolicyTemplate(BaseModel):
    """A named producer-side acceptance policy: parameters and statements."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(alias="Name")
    description: str = Field(default="", alias="Description")
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict, alias="Parameters")
    statements: tuple[Statement, ...] = Field(alias="Statement")

    @model_validator(mode="before")
    @classmethod
    def _validate_document(cls, data: Any) -> Any:
        return _check_document(data)

    @property
    def referenced_keys(self) -> frozenset[str]:
        """Every condition key the template reads (canonical names): the keys its conditions test
        and the ``${…}`` context references in their values. A caller computes only these."""
        keys: set[str] = set()
        for statement in self.statements:
            for condition in statement.conditions:
                keys.add(condition.key)
                for value in condition.values:
                    keys.update(r.name for r in value.references if r.is_context)
        return frozenset(keys)

    def statement(self, sid: str) -> Statement:
        for statement in self.statements:
            if statement.sid == sid:
                return statement
        raise KeyError(sid)

    def to_document(self) -> dict[str, Any]:
        """The JSON document; ``parse_template(t.to_document()) == t``."""
        document: dict[str, Any] = {"Name": self.name}
        if self.description:
            document["Description"] = self.description
        if self.parameters:
            document["Parameters"] = {name: spec.to_document() for name, spec in self.parameters.items()}
        document["Statement"] = [statement.to_document() for statement in self.statements]
        return document


def parse_template(document: Mapping[str, Any]) -> PolicyTemplate:
    """Validate a template document (parsed JSON) and build the template.

    Raises :class:`TemplateInvalid` listing every problem found.
    """
    try:
        return PolicyTemplate.model_validate(document)
    except ValidationError as exc:  # pragma: no cover - the checks above reject first; kept as a net
        problems = [f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()]
        name = document.get("Name") if isinstance(document, Mapping) else None
        raise TemplateInvalid(problems, template=name if isinstance(name, str) else None) from None


# --- validation ------------------------------------------------------------------------------


def _check_document(document: object) -> dict[str, Any]:
    if not isinstance(document, Mapping):
        raise TemplateInvalid([f"a template must be a JSON object, got {describe(document)}"])
    problems: list[str] = []
    name = document.get("Name")
    for field in document:
        if field not in _TEMPLATE_FIELDS:
            hint = (
                " (template versions are kept by the template store, not in the document)"
                if field == "Version"
                else suggest(str(field), _TEMPLATE_FIELDS)
            )
            problems.append(
                f"unknown top-level field {field!r}; a template has {', '.join(_TEMPLATE_FIELDS)}{hint}"
            )
    if name is None:
        problems.append("Name is required")
    elif not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(
            f"Name {describe(name)} is not a template name: 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    description = document.get("Description", "")
    if not isinstance(description, str):
        problems.append(f"Description must be a string, got {describe(description)}")
    parameters, parameter_types = _check_parameters(document.get("Parameters"), problems)
    statements = _check_statements(document.get("Statement"), parameter_types, problems)
    if problems:
        raise TemplateInvalid(problems, template=name if isinstance(name, str) else None)
    normalised: dict[str, Any] = {"Name": name, "Statement": statements}
    if description:
        normalised["Description"] = description
    if parameters:
        normalised["Parameters"] = parameters
    return normalised


def _check_parameters(raw: object, problems: list[str]) -> tuple[dict[str, Any], dict[str, ParamType]]:
    if raw is None:
        return {}, {}
    if not isinstance(raw, Mapping):
        problems.append(f"Parameters must be an object of name → declaration, got {describe(raw)}")
        return {}, {}
    normalised: dict[str, Any] = {}
    types: dict[str, ParamType] = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not _PARAMETER_NAME.fullmatch(name):
            problems.append(
                f"Parameters: {describe(name)} is not a parameter name: a letter, then letters, digits "
                "or '_' (no ':' — names with ':' are condition keys)"
            )
            continue
        entry, entry_problems = check_parameter_spec(name, spec)
        problems.extend(entry_problems)
        if isinstance(spec, Mapping) and spec.get("Type") in get_args(ParamType):
            types[name] = spec["Type"]  # known even when the default is wrong: references still resolve
        if entry is not None and not entry_problems:
            normalised[name] = entry
    return normalised, types


def _check_statements(
    raw: object, parameter_types: Mapping[str, ParamType], problems: list[str]
) -> list[Any]:
    if raw is None:
        problems.append("Statement is required: a template needs at least one statement")
        return []
    items = [raw] if isinstance(raw, Mapping) else raw  # IAM allows a single statement object
    if not isinstance(items, list | tuple):
        problems.append(f"Statement must be a list of statements, got {describe(raw)}")
        return []
    if not items:
        problems.append("Statement is empty: a template needs at least one statement")
        return []
    normalised: list[Any] = []
    seen_sids: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"Statement[{index}]"
        if not isinstance(item, Mapping):
            problems.append(
                f"{where}: must be an object with Sid, Effect and optional Condition, got {describe(item)}"
            )
            continue
        sid = item.get("Sid")
        if isinstance(sid, str) and _SID.fullmatch(sid):
            where = f"{where} {sid!r}"
            previous = seen_sids.get(sid.lower())
            if previous is not None:
                problems.append(f"{where}: Sid duplicates {previous}; every statement needs its own Sid")
            else:
                seen_sids[sid.lower()] = where
        elif sid is None:
            problems.append(f"{where}: Sid is required (decisions cite statements by Sid)")
        else:
            problems.append(f"{where}: Sid {describe(sid)} must be 1-128 letters and digits (IAM Sid rules)")
        for field in item:
            if field not in _STATEMENT_FIELDS:
                hint = (
                    "; acceptance policies have no Action, Resource or Principal: every statement is about "
                    "the connection request"
                    if field in _IAM_ONLY_FIELDS
                    else suggest(str(field), _STATEMENT_FIELDS)
                )
                problems.append(
                    f"{where}: unknown field {field!r}; a statement has Sid, Effect and Condition{hint}"
                )
        effect = item.get("Effect")
        if effect not in EFFECTS:
            listed = "Allow (accept), Deny (reject), Review (hold)"
            problems.append(f"{where}: Effect {not_one_of(effect, EFFECTS, listed)}")
        condition = None
        if "Condition" in item and item["Condition"] is not None:
            condition = _check_condition(where, item["Condition"], parameter_types, problems)
        entry: dict[str, Any] = {"Sid": sid, "Effect": effect}
        if condition is not None:
            entry["Condition"] = condition
        normalised.append(entry)
    return normalised


def _check_condition(
    where: str, condition: object, parameter_types: Mapping[str, ParamType], problems: list[str]
) -> dict[str, Any] | None:
    if not isinstance(condition, Mapping) or not condition:
        problems.append(
            f"{where}: Condition must be a non-empty object of operator → {{key: value(s)}}, got "
            f"{describe(condition) if not isinstance(condition, Mapping) else 'an empty object'}; "
            "omit Condition for a statement that always matches"
        )
        return None
    normalised: dict[str, Any] = {}
    for operator_name, block in condition.items():
        checked = _check_operator_block(where, str(operator_name), block, parameter_types, problems)
        if checked is not None:
            normalised[operator_name] = checked
    return normalised


def _check_operator_block(
    where: str,
    operator_name: str,
    block: object,
    parameter_types: Mapping[str, ParamType],
    problems: list[str],
) -> dict[str, tuple[Any, ...]] | None:
    """One `operator: {key: value(s)}` block → its keys made canonical; None when it cannot be read."""
    keys = ", ".join(str(key) for key in block) if isinstance(block, Mapping) else ""
    try:
        operator = parse_operator(operator_name)
    except ValueError as exc:
        problems.append(f"{where}: {operator_name} {keys}: {exc}" if keys else f"{where}: {exc}")
        return None
    if not isinstance(block, Mapping) or not block:
        shown = "an empty object" if isinstance(block, Mapping) else describe(block)
        problems.append(
            f"{where}: {operator_name}: must be a non-empty object of condition key → value(s), got {shown}"
        )
        return None
    normalised_block: dict[str, tuple[Any, ...]] = {}
    seen: dict[str, str] = {}
    for raw_key, raw_values in block.items():
        location = f"{where}: {operator_name} {raw_key}"
        canonical = canonical_key(raw_key) if isinstance(raw_key, str) else None
        if canonical is None:
            problems.append(_unknown_key(location, str(raw_key)))
        elif canonical.lower() in seen:
            problems.append(
                f"{location}: repeats key {seen[canonical.lower()]!r} under the same operator (keys are "
                "case-insensitive); put all its values in one list"
            )
            continue
        else:
            seen[canonical.lower()] = str(raw_key)
            location = f"{where}: {operator_name} {canonical}"
            type_problem = check_key_type(operator, key_info(canonical).type, canonical)
            if type_problem is not None:
                problems.append(f"{location}: {type_problem}")
        values = _check_values(location, operator, raw_values, parameter_types, problems)
        if canonical is not None and values:
            normalised_block[canonical] = values
    return normalised_block


def _check_values(
    location: str,
    operator: Operator,
    raw_values: object,
    parameter_types: Mapping[str, ParamType],
    problems: list[str],
) -> tuple[Any, ...]:
    values = tuple(raw_values) if isinstance(raw_values, list | tuple) else (raw_values,)
    if not values:
        problems.append(f"{location}: has an empty value list; give at least one value")
    for value in values:  # checked even under an unknown key, so one edit fixes everything
        problems.extend(f"{location}: {p}" for p in _check_value(operator, value, parameter_types))
    return values


def _unknown_key(location: str, key: str) -> str:
    if key.lower().startswith(LABEL_PREFIX.lower()):
        label = key[len(LABEL_PREFIX) :]
        return f"{location}: {label!r} is not a label key: 1-128 letters, digits or _ . : / = + - @"
    choices = [name for name in CONDITION_KEYS if not name.endswith("<key>")]
    hint = suggest(key, choices) or "."
    return f"{location}: unknown condition key{hint} Known keys: {', '.join(CONDITION_KEYS)}"


_WHOLE_REFERENCE_TYPES: Final[Mapping[Family, tuple[frozenset[str], frozenset[KeyType]]]] = {
    Family.NUMERIC: (frozenset({"Number"}), frozenset({KeyType.NUMBER, KeyType.LABEL})),
    Family.DATE: (frozenset({"Date", "Number"}), frozenset({KeyType.DATE, KeyType.LABEL})),
    Family.BOOL: (frozenset({"Boolean"}), frozenset({KeyType.BOOL, KeyType.LABEL})),
    Family.NULL: (frozenset({"Boolean"}), frozenset({KeyType.BOOL, KeyType.LABEL})),
}


def _check_value(operator: Operator, value: object, parameter_types: Mapping[str, ParamType]) -> list[str]:
    if not isinstance(value, str | int | float | bool):
        return [f"value {describe(value)} must be a string, number or boolean (or a list of them)"]
    try:
        template = parse_value(value)
    except ValueError as exc:
        return [f"value {exc}"]
    problems: list[str] = []
    whole = template.whole_reference
    for reference in template.references:
        shown = f"${{{reference.name}}}"
        if not reference.is_context:
            param_type = parameter_types.get(reference.name)
            if param_type is None:
                declared = ", ".join(parameter_types) or "none"
                problems.append(
                    f"value {describe(value)} references unknown parameter {reference.name!r} "
                    f"(declared parameters: {declared}){suggest(reference.name, list(parameter_types))}"
                )
                continue
            multi = param_type == "StringList"
            kind = f"{param_type} parameter"
        else:
            key = key_info(reference.name)
            multi = key.multi_valued
            kind = f"{key.type} key"
        if reference is not whole and multi:
            problems.append(
                f"value {describe(value)} embeds {shown}, a {kind} with several values; only a whole value "
                f'"{shown}" expands to a list'
            )
        elif reference is whole and operator.family in _WHOLE_REFERENCE_TYPES:
            param_ok, key_ok = _WHOLE_REFERENCE_TYPES[operator.family]
            fits = (
                key_info(reference.name).type in key_ok
                if reference.is_context
                else parameter_types[reference.name] in param_ok
            )
            if not fits:
                problems.append(f"value {shown} is a {kind}, which {operator.base} cannot compare")
    if template.is_literal:
        (literal,) = substitute(template, _no_parameters, _no_context)
        try:
            type_condition_value(operator, literal)
        except ValueError as exc:
            problems.append(f"value {exc}")
    return problems


def _no_parameters(name: str) -> object:  # pragma: no cover - literals have no references
    raise AssertionError(name)


def _no_context(name: str) -> None:  # pragma: no cover - literals have no references
    raise AssertionError(name)
