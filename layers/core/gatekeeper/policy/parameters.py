"""Template parameters: declarations (type, default, constraints) and their resolution with a
tenant's overrides.

Types: ``String``, ``Number`` (int or float; numeric strings and DynamoDB Decimals accepted),
``StringList`` (a list of strings, or one comma-separated string), ``Boolean`` (true/false,
strings accepted) and ``Date`` (ISO 8601 or epoch seconds; naive = UTC).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from .conditions import not_one_of, suggest
from .errors import ParameterInvalid
from .values import describe, render, to_bool, to_datetime, to_number

if TYPE_CHECKING:
    from .template import PolicyTemplate

ParamType = Literal["String", "Number", "StringList", "Boolean", "Date"]
PARAMETER_TYPES: Final[tuple[str, ...]] = get_args(ParamType)
ParamValue = str | int | float | bool | datetime | tuple[str, ...]
"""A resolved parameter value (StringList resolves to a tuple of strings)."""

_SPEC_FIELDS: Final = ("Type", "Default", "Description", "AllowedValues", "MinValue", "MaxValue")


class ParameterSpec(BaseModel):
    """One entry of a template's ``Parameters``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ParamType = Field(alias="Type")
    default: ParamValue | None = Field(default=None, alias="Default")
    description: str = Field(default="", alias="Description")
    allowed_values: tuple[str | int | float, ...] | None = Field(default=None, alias="AllowedValues")
    min_value: int | float | None = Field(default=None, alias="MinValue")
    max_value: int | float | None = Field(default=None, alias="MaxValue")

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"Type": self.type}
        if self.default is not None:
            document["Default"] = _to_json(self.default)
        if self.description:
            document["Description"] = self.description
        if self.allowed_values is not None:
            document["AllowedValues"] = list(self.allowed_values)
        if self.min_value is not None:
            document["MinValue"] = self.min_value
        if self.max_value is not None:
            document["MaxValue"] = self.max_value
        return document


def _to_json(value: ParamValue) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, datetime):
        return render(value)
    return value


def coerce_parameter(param_type: ParamType, value: object) -> ParamValue:
    """Read a value as the parameter type; ``ValueError`` with a short phrase if it cannot be."""
    if param_type == "String":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return render(to_number(value))
        raise ValueError(f"{describe(value)} is not a string")
    if param_type == "Number":
        return to_number(value)
    if param_type == "Boolean":
        return to_bool(value)
    if param_type == "Date":
        return to_datetime(value)
    return _coerce_string_list(value)


def _coerce_string_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        # A comma-separated string, as CloudFormation's CommaDelimitedList and CLI flags give it.
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, set | frozenset):
        items: Sequence[object] = sorted(value, key=str)
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ValueError(f"{describe(value)} is not a list of strings")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise ValueError(f"item [{index}] {describe(item)} is not a string")
    return tuple(str(item) for item in items)


def constraint_problems(spec: ParameterSpec, value: ParamValue) -> list[str]:
    """Phrases naming each AllowedValues / MinValue / MaxValue the value breaks."""
    problems: list[str] = []
    if spec.allowed_values is not None:
        allowed = spec.allowed_values
        shown = ", ".join(describe(item) for item in allowed)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if item not in allowed:
                problems.append(f"{describe(item)} is not one of the AllowedValues ({shown})")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if spec.min_value is not None and value < spec.min_value:
            problems.append(f"{value} is below MinValue {spec.min_value}")
        if spec.max_value is not None and value > spec.max_value:
            problems.append(f"{value} is above MaxValue {spec.max_value}")
    return problems


def check_parameter_spec(name: str, raw: object) -> tuple[dict[str, Any] | None, list[str]]:
    """Validate one raw ``Parameters`` entry; returns the normalised entry (or None) and problems,
    each problem starting with ``Parameters.<name>``."""
    where = f"Parameters.{name}"
    if not isinstance(raw, Mapping):
        return None, [f"{where}: must be an object with Type (and optionally Default), got {describe(raw)}"]
    problems: list[str] = []
    for field in raw:
        if field not in _SPEC_FIELDS:
            problems.append(
                f"{where}: unknown field {field!r}; a parameter has {', '.join(_SPEC_FIELDS)}"
                + suggest(str(field), _SPEC_FIELDS)
            )
    param_type = raw.get("Type")
    if param_type not in PARAMETER_TYPES:
        problems.append(f"{where}: Type {not_one_of(param_type, PARAMETER_TYPES)}")
        return None, problems
    normalised: dict[str, Any] = {"Type": param_type}
    description = raw.get("Description", "")
    if not isinstance(description, str):
        problems.append(f"{where}: Description must be a string, got {describe(description)}")
    elif description:
        normalised["Description"] = description

    _check_allowed_values(where, param_type, raw.get("AllowedValues"), normalised, problems)
    _check_bounds(where, param_type, raw, normalised, problems)
    default = raw.get("Default")
    if default is not None:
        try:
            normalised["Default"] = coerce_parameter(param_type, default)
        except ValueError as exc:
            problems.append(f"{where}: Default {exc} (Type {param_type})")
    if problems:
        return None, problems
    spec = ParameterSpec.model_validate(normalised)
    if spec.default is not None:
        problems.extend(f"{where}: Default {problem}" for problem in constraint_problems(spec, spec.default))
    return normalised, problems


def _check_allowed_values(
    where: str, param_type: ParamType, allowed: object, normalised: dict[str, Any], problems: list[str]
) -> None:
    if allowed is None:
        return
    if param_type in ("Boolean", "Date"):
        problems.append(f"{where}: AllowedValues is not supported for Type {param_type}")
        return
    if not isinstance(allowed, list) or not allowed:
        problems.append(f"{where}: AllowedValues must be a non-empty list, got {describe(allowed)}")
        return
    element_type: ParamType = "Number" if param_type == "Number" else "String"
    typed: list[str | int | float] = []
    for index, item in enumerate(allowed):
        try:
            value = coerce_parameter(element_type, item)
        except ValueError as exc:
            problems.append(f"{where}: AllowedValues[{index}]: {exc} (Type {param_type})")
        else:
            assert isinstance(value, str | int | float)
            typed.append(value)
    normalised["AllowedValues"] = typed


def _check_bounds(
    where: str, param_type: ParamType, raw: Mapping[str, Any], normalised: dict[str, Any], problems: list[str]
) -> None:
    for bound in ("MinValue", "MaxValue"):
        limit = raw.get(bound)
        if limit is None:
            continue
        if param_type != "Number":
            problems.append(f"{where}: {bound} applies only to Type Number, not {param_type}")
            continue
        try:
            normalised[bound] = to_number(limit)
        except ValueError as exc:
            problems.append(f"{where}: {bound}: {exc}")
    low, high = normalised.get("MinValue"), normalised.get("MaxValue")
    if low is not None and high is not None and low > high:
        problems.append(f"{where}: MinValue {low} is above MaxValue {high}")


def resolve_parameters(template: "PolicyTemplate", overrides: Mapping[str, Any]) -> dict[str, ParamValue]:
    """The template's parameter values for one tenant: defaults, replaced by the tenant's overrides.

    Overrides are type-checked and coerced like defaults ("5" is a fine Number; a StringList takes a
    list or a comma-separated string) and must satisfy AllowedValues/MinValue/MaxValue. An override
    of ``None`` means "use the default". Raises :class:`ParameterInvalid` listing every unknown
    override name, bad value and required parameter left without a value.
    """
    declared = template.parameters
    problems: list[str] = []
    for name in overrides:
        if name not in declared:
            known = ", ".join(declared) or "none"
            problems.append(
                f"override {name!r}: template {template.name!r} declares no such parameter "
                f"(declared: {known})" + suggest(str(name), list(declared))
            )
    resolved: dict[str, ParamValue] = {}
    for name, spec in declared.items():
        override = overrides.get(name)
        if override is None:
            if spec.default is None:
                problems.append(
                    f"parameter {name!r} ({spec.type}) has no Default in template {template.name!r} "
                    "and the tenant gives no override; set one in the tenant's parameter overrides"
                )
            else:
                resolved[name] = spec.default
            continue
        try:
            value = coerce_parameter(spec.type, override)
        except ValueError as exc:
            problems.append(f"override {name!r}: {exc} (Type {spec.type})")
            continue
        broken = constraint_problems(spec, value)
        problems.extend(f"override {name!r}: {problem}" for problem in broken)
        if not broken:
            resolved[name] = value
    if problems:
        raise ParameterInvalid(problems, template=template.name)
    return resolved
