"""Repairing a stored tenant record that does not validate (typically edited by hand in the console).

A repair keeps what the record means and changes only how it is written: a number stored as a
string becomes the number, a string set becomes a list, a status in other letter case is
lowercased, an attribute no tenant record has is dropped (its value is shown). Anything whose
meaning is not clear — an unknown status, a principal ARN with a path, a negative quota, a missing
template — is not guessed: it is reported with the manual fix, and nothing is written.

Pure: raw attribute values in, the repaired Tenant and the list of fixes out. The caller adds what
needs other reads (the template, the claims, the open connections) and writes with
`TenantStore.repair`, conditional on the version as it was read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from gatekeeper.dal.codec import decode
from gatekeeper.dal.tenants import tenant_from_item, tenant_pk
from gatekeeper.models.errors import TenantInvalid
from gatekeeper.models.tenant import Tenant

# Attributes the store writes itself on every write (the repair's own write included).
_STORE_FIELDS = frozenset({"pk", "sk", "item_type", "updated_by", "updated_at"})
_INTEGER = re.compile(r"^\s*\d+\s*$")
_LIST_FIELDS = ("principals", "services")
_NUMBER_FIELDS = ("max_endpoints", "template_version", "version")
_TEXT_FIELDS = ("tenant_id", "display_name", "status", "template", "expires_at", "contact")


@dataclass(frozen=True)
class Fix:
    """One problem of the stored record and what the repair writes instead."""

    field: str
    problem: str
    fix: str

    def document(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem, "fix": self.fix}


@dataclass
class RecordRepair:
    """What repairing one stored record takes. `tenant` is the repaired record (at the version that
    was read) when every problem has an automatic fix; `manual` lists the ones that do not."""

    tenant_id: str
    problems: list[str]  # as the decision path reports them (empty: the record is valid)
    fixes: list[Fix] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)
    tenant: Tenant | None = None
    stored_version: Mapping[str, Any] | None = None  # the `version` attribute as read: the write's condition

    @property
    def valid(self) -> bool:
        return not self.problems


def plan_repair(tenant_id: str, raw: Mapping[str, Any]) -> RecordRepair:
    """The fixes that make this stored record valid without changing what it means."""
    repair = RecordRepair(tenant_id, _problems(raw), stored_version=raw.get("version"))
    fields: dict[str, Any] = {}
    for name, value in raw.items():
        if name in _STORE_FIELDS:
            continue
        if name not in Tenant.model_fields:
            shown = _show(decode({name: value})[name]) if isinstance(value, Mapping) else repr(value)
            repair.fixes.append(Fix(name, "not an attribute of a tenant record", f"dropped (was {shown})"))
            continue
        fixed = _repaired(name, value, repair)
        if fixed is not None:
            fields[name] = fixed
    _fix_identity(tenant_id, raw, fields, repair)
    if repair.manual:
        return repair
    try:
        repair.tenant = Tenant.model_validate(fields)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "record"
            message = str(error["msg"]).removeprefix("Value error, ")
            repair.manual.append(
                _missing(where)
                if error["type"] == "missing"
                else f"{where}: {message}; fix it in the console"
            )
    return repair


def _problems(raw: Mapping[str, Any]) -> list[str]:
    try:
        tenant_from_item(raw)
    except TenantInvalid as exc:
        return [str(exc)]
    return []


def _fix_identity(
    tenant_id: str, raw: Mapping[str, Any], fields: dict[str, Any], repair: RecordRepair
) -> None:
    """tenant_id is the key's, version a whole number (0 when unreadable: the write makes it 1)."""
    if fields.get("tenant_id") != tenant_id:
        was = "missing" if "tenant_id" not in raw else f"{fields.get('tenant_id')!r}"
        repair.fixes.append(
            Fix("tenant_id", f"{was}, but the record's key is {tenant_pk(tenant_id)}", repr(tenant_id))
        )
        fields["tenant_id"] = tenant_id
    if "version" not in fields:
        problem = "missing" if "version" not in raw else "not a whole number"
        repair.fixes.append(Fix("version", problem, "1 (this write), conditional on the record as read"))
        fields["version"] = 0
    if "display_name" not in fields and "display_name" not in raw:
        repair.fixes.append(Fix("display_name", "missing", f"{tenant_id!r} (the tenant id)"))
        fields["display_name"] = tenant_id


def _repaired(name: str, value: Any, repair: RecordRepair) -> Any:
    """The attribute's value as the model takes it, recording a Fix when it changes; None to drop it."""
    if not isinstance(value, Mapping) or len(value) != 1:
        repair.manual.append(f"{name}: not a DynamoDB attribute value; rewrite it in the console")
        return None
    kind = next(iter(value))
    if kind == "NULL":
        if name in ("tenant_id", "principals", "services", "template", "version"):
            repair.manual.append(_missing(name))
        else:
            repair.fixes.append(Fix(name, "is null", "dropped (the same as not set)"))
        return None
    plain = decode({name: value})[name]
    if name in _NUMBER_FIELDS:
        return _number(name, kind, plain, repair)
    if name in _LIST_FIELDS:
        return _string_list(name, kind, plain, repair)
    if name in _TEXT_FIELDS:
        return _text(name, kind, plain, repair)
    if name == "labels":
        return _labels(kind, plain, repair)
    if kind != "M":  # parameters
        repair.manual.append(
            f"{name}: is {_kind(kind)}, must be a map of overrides; rewrite it in the console"
        )
        return None
    return plain


def _number(name: str, kind: str, plain: Any, repair: RecordRepair) -> Any:
    if kind == "N" and isinstance(plain, int):
        return plain
    if kind == "S" and _INTEGER.match(plain):
        number = int(plain)
        repair.fixes.append(Fix(name, f"is a string ({plain!r})", f"{number} (a number)"))
        return number
    if name == "version":
        return None  # _fix_identity: rewritten by this write
    repair.manual.append(
        f"{name}: {_show(plain)} is not a whole number; set a number in the console "
        + ("(or remove it: the template's MaxEndpoints then decides)" if name == "max_endpoints" else "")
    )
    return None


def _string_list(name: str, kind: str, plain: Any, repair: RecordRepair) -> Any:
    if kind in ("S", "N"):
        values, problem = [str(plain)], f"is a single {_kind(kind)}"
    elif kind in ("SS", "NS"):
        values, problem = sorted(str(v) for v in plain), f"is {_kind(kind)}"
    elif kind == "L":
        values, problem = [str(v).strip() if isinstance(v, str | int) else v for v in plain], ""
        if not all(isinstance(v, str) for v in values):
            repair.manual.append(f"{name}: holds something other than strings; rewrite it in the console")
            return None
        if values != plain:
            problem = "holds numbers or blanks around values"
    else:
        repair.manual.append(
            f"{name}: is {_kind(kind)}, must be a list of strings; rewrite it in the console"
        )
        return None
    unique = list(dict.fromkeys(v.strip() for v in values))
    if len(unique) != len(values):
        problem = f"{problem}; lists a value twice".lstrip("; ")
    if problem:
        repair.fixes.append(Fix(name, problem, f"[{', '.join(unique)}] (a list of strings)"))
    return unique


def _text(name: str, kind: str, plain: Any, repair: RecordRepair) -> Any:
    if kind not in ("S", "N"):
        repair.manual.append(f"{name}: is {_kind(kind)}, must be a string; rewrite it in the console")
        return None
    text = str(plain)
    if kind == "N":
        repair.fixes.append(Fix(name, f"is a number ({text})", f"{text!r} (a string)"))
    if name == "status":
        status = text.strip().lower()
        if status not in ("active", "suspended"):
            repair.manual.append(
                f"status: {text!r} is neither active nor suspended; set the one you mean in the console"
            )
            return None
        if status != text:
            repair.fixes.append(Fix(name, f"is {text!r}", f"{status!r}"))
        return status
    if name == "expires_at":
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            repair.manual.append(
                f"expires_at: {text!r} is not an ISO date/time (e.g. 2027-01-31T00:00:00+00:00); "
                "set it in the console"
            )
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return text


def _labels(kind: str, plain: Any, repair: RecordRepair) -> Any:
    if kind != "M":
        repair.manual.append(f"labels: is {_kind(kind)}, must be a map of strings; rewrite it in the console")
        return None
    labels = {str(k): v if isinstance(v, str) else _show(v) for k, v in plain.items()}
    if labels != plain:
        repair.fixes.append(Fix("labels", "has values that are not strings", _show(labels)))
    return labels


def _missing(name: str) -> str:
    return f"{name}: missing; only you know it — set it in the console, then repair again"


_KINDS = {
    "S": "a string",
    "N": "a number",
    "L": "a list",
    "M": "a map",
    "SS": "a string set",
    "NS": "a number set",
    "BOOL": "a boolean",
    "B": "binary",
}


def _kind(kind: str) -> str:
    return _KINDS.get(kind, kind)


def _show(value: Any) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    return str(value)
