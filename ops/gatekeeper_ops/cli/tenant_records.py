"""Tenant records as operators edit them: validation against the live templates, diffs, the YAML
and CSV file formats, and the plan of an import.

Nothing here writes: commands decide, after a plan validated completely, whether to apply it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import yaml

from gatekeeper.dal.templates import StoredTemplate, TemplateStore
from gatekeeper.dal.tenants import TenantStore, changed_since_read, claimed_elsewhere
from gatekeeper.models.errors import GatekeeperError, TenantConflict, TenantInvalid, TenantNotFound
from gatekeeper.models.identifiers import ACCOUNT_ID
from gatekeeper.models.tenant import Tenant, quota_limit  # the decision path's own rule
from gatekeeper.policy import PolicyTemplate, TemplateInvalid, resolve_parameters
from gatekeeper.policy.parameters import ParamValue, coerce_parameter
from gatekeeper_ops.cli.context import CliError, describe_error
from gatekeeper_ops.cli.output import OutputFormat, Rendering

# The fields an operator owns; version/updated_by/updated_at are the store's.
CONTENT_FIELDS: tuple[str, ...] = tuple(
    name for name in Tenant.model_fields if name not in ("version", "updated_by", "updated_at")
)
_SET_FIELDS = frozenset({"principals", "services"})  # order carries no meaning
_NUMBER_COLUMNS = frozenset({"max_endpoints", "template_version", "version"})
CSV_COLUMNS: tuple[str, ...] = (*CONTENT_FIELDS, "version", "updated_by", "updated_at")
Format = Literal["yaml", "csv", "json"]
YAML_HEADER = (
    "# gatekeeper tenants export. Edit, then `gatekeeper tenants import <file> --dry-run` and import.\n"
    "# Keep `version`: the import refuses a record someone else changed since this export.\n"
)


# -- validation ---------------------------------------------------------------------------------
class TenantValidator:
    """Checks what the model alone cannot: the template (and pinned version) exists and parses,
    and the parameter overrides fit its declarations. Overrides come back coerced to their types."""

    def __init__(self, templates: TemplateStore, managed_services: Iterable[str] = ()) -> None:
        self._templates = templates
        self._managed = frozenset(managed_services)
        self._read: dict[tuple[str, int | None], StoredTemplate] = {}
        self._cache: dict[tuple[str, int | None], PolicyTemplate] = {}

    def read_latest_templates(self) -> TenantValidator:
        """Every template's latest version in one scan, instead of one query per template: for the
        commands that check many tenants. A pinned older version is still read on its own."""
        for stored in self._templates.latest():
            self._read[(stored.name, None)] = self._read[(stored.name, stored.version)] = stored
        return self

    def template(self, name: str, version: int | None) -> PolicyTemplate:
        if (name, version) not in self._cache:
            stored = self._read.get((name, version)) or self._templates.get(name, version)
            try:
                self._cache[(name, version)] = stored.parse()
            except TemplateInvalid as exc:
                raise CliError(
                    f"template {name} v{stored.version} is invalid ({'; '.join(exc.problems)}); "
                    "push a fixed version with `gatekeeper templates push` first"
                ) from None
        return self._cache[(name, version)]

    def check(self, tenant: Tenant) -> Tenant:
        template = self.template(tenant.template, tenant.template_version)
        if tenant.max_endpoints is None and "MaxEndpoints" not in template.parameters:
            raise CliError(
                f"template {tenant.template} declares no MaxEndpoints parameter, so it sets no quota: "
                "give max_endpoints (--max-endpoints N)"
            )
        return tenant.model_copy(update={"parameters": normalise_parameters(template, tenant.parameters)})

    def unmanaged_services(self, tenant: Tenant) -> list[str]:
        if not self._managed:
            return []
        return [s for s in tenant.services if s != "*" and s not in self._managed]

    def quota(self, tenant: Tenant) -> Quota:
        """The tenant's endpoint quota as the decision path computes it; the template's part is
        None when its template cannot be read (the decision path then holds its requests)."""
        try:
            template = self.template(tenant.template, tenant.template_version)
            parameters = resolve_parameters(template, tenant.parameters)
        except (CliError, GatekeeperError, ValueError):
            return Quota(tenant.max_endpoints, None, quota_limit(tenant, {}))
        value = parameters.get("MaxEndpoints")
        template_max = int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        return Quota(tenant.max_endpoints, template_max, quota_limit(tenant, parameters))


@dataclass(frozen=True)
class Quota:
    """record: the tenant's max_endpoints; template: its template's MaxEndpoints (with the
    tenant's overrides); effective: the smaller — what evaluate_connection enforces."""

    record: int | None  # None: the record sets none, the template's MaxEndpoints decides
    template: int | None
    effective: int

    def document(self) -> dict[str, Any]:
        return {
            "max_endpoints": self.record,
            "template_max_endpoints": self.template,
            "effective": self.effective,
        }

    def describe(self) -> str:
        if self.record is None or self.template is None or self.template >= self.record:
            return str(self.effective)
        return f"{self.effective} (record {self.record}, template {self.template})"


def write_refusal(tenants: TenantStore, before: Tenant | None, after: Tenant) -> None:
    """What the store's conditional write would refuse, found by reading first, with the store's
    own message: the same checks for a dry run and for the write (which still relies on its
    conditions for a race between this read and the write)."""
    if before is None:
        try:
            tenants.get(after.tenant_id)
        except TenantNotFound:
            pass
        except TenantInvalid:
            raise TenantConflict(
                f"tenant {after.tenant_id} already exists, and its stored record does not validate: "
                f"fix it with `gatekeeper tenants repair {after.tenant_id}`"
            ) from None
        else:
            raise TenantConflict(f"tenant {after.tenant_id} already exists")
    else:
        try:
            current_version = tenants.get(before.tenant_id).version
        except TenantInvalid:
            current_version = None
        if current_version != before.version:
            raise TenantConflict(changed_since_read(before.tenant_id))
    released = before.accounts() if before else frozenset()
    for account in sorted(after.accounts() - released):
        owner = tenants.owner_of(account)
        if owner is not None and owner != after.tenant_id:
            raise TenantConflict(claimed_elsewhere(account, owner))


def normalise_parameters(template: PolicyTemplate, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides validated against the template (ParameterInvalid lists every problem) and stored
    as their JSON type: "5" for a Number becomes 5, "a,b" for a StringList becomes ["a", "b"]."""
    resolve_parameters(template, overrides)
    return {
        name: _jsonable(coerce_parameter(template.parameters[name].type, value))
        for name, value in overrides.items()
        if value is not None
    }


def _jsonable(value: ParamValue) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def parse_assignments(items: Iterable[str], what: str) -> dict[str, str]:
    """`KEY=VALUE` options (`--param`, `--label`)."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CliError(f"{what} {item!r} is not KEY=VALUE (e.g. HomeRegions=us-east-1,eu-west-1)")
        pairs[name.strip()] = value.strip()
    return pairs


# -- diffs --------------------------------------------------------------------------------------
def comparable(tenant: Tenant, name: str) -> Any:
    value = tenant.model_dump(mode="json")[name]
    return sorted(value) if name in _SET_FIELDS else value


def field_changes(current: Tenant | None, desired: Tenant | None) -> dict[str, tuple[Any, Any]]:
    """field → (before, after) for every operator-owned field that differs."""
    changes: dict[str, tuple[Any, Any]] = {}
    for name in CONTENT_FIELDS:
        before = comparable(current, name) if current else None
        after = comparable(desired, name) if desired else None
        if before != after and not (before in (None, {}, []) and after in (None, {}, [])):
            changes[name] = (before, after)
    return changes


Action = Literal["create", "update", "remove", "unchanged"]


@dataclass
class Change:
    action: Action
    tenant_id: str
    current: Tenant | None
    desired: Tenant | None
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "action": self.action,
            "version": self.current.version if self.current else None,
            "changes": {name: {"from": before, "to": after} for name, (before, after) in self.fields.items()},
        }

    def lines(self) -> list[str]:
        sign = {"create": "+", "update": "~", "remove": "-", "unchanged": "="}[self.action]
        version = f" (v{self.current.version})" if self.current else ""
        header = f"{sign} {self.action} {self.tenant_id}{version}"
        if self.action == "create":
            return [header, *(f"    {name}: {_show(after)}" for name, (_, after) in self.fields.items())]
        if self.action == "update":
            return [
                header,
                *(
                    f"    {name}: {_show(before)} → {_show(after)}"
                    for name, (before, after) in self.fields.items()
                ),
            ]
        return [header]


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    return str(value)


# -- files --------------------------------------------------------------------------------------
_EXTENSIONS: dict[str, Format] = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".csv": "csv"}


def detect_format(path: str, given: str | None) -> Format:
    """--format, else the file's extension; stdin ('-') is YAML (which reads JSON too)."""
    if given:
        if given not in ("yaml", "csv", "json"):
            raise CliError(f"format {given!r} is not one of yaml, csv, json")
        return given  # type: ignore[return-value]
    if path in ("", "-"):
        return "yaml"
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if suffix not in _EXTENSIONS:
        shown = f"extension {suffix}" if suffix else "no extension"
        raise CliError(
            f"unknown format of {path} ({shown}): name it .yaml, .yml, .json or .csv, or give "
            "--format yaml|json|csv"
        )
    return _EXTENSIONS[suffix]


# An allow-list is hundreds, maybe thousands of records: far below this. A bigger file is a
# mistake (a log, a dump) and would be validated record by record against DynamoDB.
MAX_IMPORT_BYTES = 5 * 1024 * 1024


def too_big(source: str, size: int) -> str:
    shown = f"{size / 1024 / 1024:.1f} MiB" if size <= 1024 * MAX_IMPORT_BYTES else "larger"
    return (
        f"{source} is {shown}; tenant imports are capped at {MAX_IMPORT_BYTES // 1024 // 1024} MiB — "
        "split the file and import the parts (without --prune)"
    )


def read_import_text(data: bytes, source: str) -> str:
    """An import file's bytes as text: refused when too big or not text at all."""
    if len(data) > MAX_IMPORT_BYTES:
        raise CliError(too_big(source, len(data)))
    if b"\x00" in data[:8192]:
        raise CliError(f"{source} is not a text file (binary data); give a YAML, JSON or CSV file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CliError(
            f"{source} is not a text file (not UTF-8 at byte {exc.start}); give a YAML, JSON or CSV file"
        ) from None


def export_document(tenants: list[Tenant]) -> list[dict[str, Any]]:
    records = [
        t.model_dump(mode="json", exclude_none=True) for t in sorted(tenants, key=lambda t: t.tenant_id)
    ]
    return [{k: v for k, v in record.items() if v != {}} for record in records]


def dump(tenants: list[Tenant], render: Rendering) -> str:
    """The records as `--output` asks (YAML by default); as an import file, YAML carries its header
    and CSV every import column."""
    records = export_document(tenants)
    if render.query is None and render.format is OutputFormat.csv:
        return _dump_csv(records)
    text = render.text(records)
    return YAML_HEADER + text if render.query is None and render.format is OutputFormat.yaml else text


def _dump_csv(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = dict(record)
        for name in ("principals", "services"):
            row[name] = ";".join(record.get(name, []))
        for name in ("parameters", "labels"):
            row[name] = ";".join(
                f"{k}={','.join(v) if isinstance(v, list) else _csv_scalar(v)}"
                for k, v in record.get(name, {}).items()
            )
        writer.writerow(row)
    return buffer.getvalue()


def _csv_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load(text: str, fmt: Format, source: str = "the file") -> list[dict[str, Any]]:
    """The raw records of an import file (any of YAML, JSON — a list or {tenants: [...]} — or CSV)."""
    if fmt == "csv":
        return _load_csv(text)
    if fmt == "json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(
                f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
    else:
        document = yaml.safe_load(text)  # JSON is YAML too (stdin without --format)
    if isinstance(document, Mapping) and "tenants" in document:
        document = document["tenants"]
    if document is None:
        return []
    if not isinstance(document, list) or not all(isinstance(r, Mapping) for r in document):
        raise CliError("an import file holds a list of tenant records (or `tenants:` followed by one)")
    return [dict(record) for record in document]


def _load_csv(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    unknown = [c for c in (reader.fieldnames or []) if c not in CSV_COLUMNS]
    if unknown:
        raise CliError(
            f"CSV has unknown column(s) {', '.join(unknown)}; columns are {', '.join(CSV_COLUMNS)}"
        )
    records: list[dict[str, Any]] = []
    for row in reader:
        record: dict[str, Any] = {}
        for name, raw in row.items():
            value = (raw or "").strip()
            if not value or name in ("updated_by", "updated_at"):
                continue
            if name in ("principals", "services"):
                record[name] = [v.strip() for v in value.split(";") if v.strip()]
            elif name in ("parameters", "labels"):
                record[name] = parse_assignments([v for v in value.split(";") if v.strip()], f"CSV {name}")
            elif name in _NUMBER_COLUMNS and value.isdigit():
                record[name] = int(value)  # a CSV cell is text: a whole number is meant as one
            else:
                record[name] = value
        records.append(record)
    return records


def to_tenant(raw: Mapping[str, Any]) -> Tenant:
    """A record from a file → Tenant (pydantic ValidationError on anything the model refuses)."""
    record = {k: v for k, v in raw.items() if k not in ("updated_by", "updated_at")}
    for name in ("principals", "services"):
        if isinstance(record.get(name), str):
            record[name] = [record[name]]
    if isinstance(record.get("principals"), list):
        record["principals"] = [_principal(p) for p in record["principals"]]
    expires = record.get("expires_at")
    if isinstance(expires, date) and not isinstance(expires, datetime):
        record["expires_at"] = datetime(expires.year, expires.month, expires.day, tzinfo=UTC)
    return Tenant.model_validate(record)


def _principal(value: Any) -> Any:
    # YAML reads an unquoted account id as a number: exact only if it still has its 12 digits.
    if isinstance(value, int) and not isinstance(value, bool):
        if ACCOUNT_ID.match(str(value)):
            return str(value)
        raise CliError(
            f"principal {value} was read as a number and lost digits (leading zeros or octal); "
            "quote account ids in YAML, e.g. '012345678901'"
        )
    return value


# -- import plan --------------------------------------------------------------------------------
@dataclass
class ImportPlan:
    changes: list[Change]
    skipped_invalid: list[str]

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]

    @property
    def removals(self) -> list[Change]:
        return [c for c in self.changes if c.action == "remove"]


# --prune removes at most this share of the tenants (and never all of them) unless the operator
# names the count: a truncated or wrong file must not empty the allow-list.
PRUNE_SHARE = 0.10


def prune_refusal(records: int, current: int, removals: list[str], confirmed: int | None) -> str | None:
    """Why a --prune plan needs `--confirm-removals <count>` (or cannot run at all); None if fine."""
    count = len(removals)
    if records == 0 and count:
        return (
            f"the file holds no tenant records: --prune would remove all {count} tenant(s); refused — "
            "an empty or truncated file never wipes the allow-list (check the file)"
        )
    if confirmed is not None:
        if confirmed != count:
            return f"--confirm-removals {confirmed} does not match the plan: it removes {count} tenant(s)"
        return None
    allowed = max(1, math.floor(PRUNE_SHARE * current))
    if count and (count > allowed or count == current):
        named = ", ".join(removals[:5]) + (f", … ({count - 5} more)" if count > 5 else "")
        share = "every tenant" if count == current else f"more than {PRUNE_SHARE:.0%} of {current} tenants"
        return (
            f"--prune would remove {count} tenant(s) ({named}): {share}. If the file is complete, "
            f"repeat with --confirm-removals {count}"
        )
    return None


def plan_import(
    records: list[dict[str, Any]],
    tenants: TenantStore,
    validator: TenantValidator,
    *,
    prune: bool = False,
    confirm_removals: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportPlan:
    """Validate every record and order the writes so that an account moving between tenants is
    released before it is claimed. Raises CliError listing every problem; nothing is written."""
    problems: list[str] = []
    desired, expected_versions = _desired_tenants(records, validator, problems, progress)
    current, skipped, invalid = _current_tenants(tenants)
    problems += [
        f"{tenant_id}: its stored record does not validate; an import does not overwrite it — fix it "
        f"with `gatekeeper tenants repair {tenant_id}`, then import again"
        for tenant_id in sorted(desired.keys() & invalid)
    ]
    changes = _changes(
        {k: v for k, v in desired.items() if k not in invalid}, current, expected_versions, problems
    )
    if prune:
        removed = [
            Change("remove", tenant_id, tenant, None)
            for tenant_id, tenant in sorted(current.items())
            if tenant_id not in desired
        ]
        refusal = prune_refusal(
            len(records), len(current) + len(skipped), [c.tenant_id for c in removed], confirm_removals
        )
        if refusal:
            problems.append(refusal)
        changes += removed
    ordered = _order_by_claims(changes, current, tenants, problems)
    if problems:
        raise CliError("import refused, nothing written: " + "; ".join(problems))
    return ImportPlan(ordered, skipped)


def _desired_tenants(
    records: list[dict[str, Any]],
    validator: TenantValidator,
    problems: list[str],
    progress: Callable[[int], None] | None,
) -> tuple[dict[str, Tenant], dict[str, int]]:
    """The file's valid records by tenant id, and the versions the records that carry one expect.
    Every problem of every record is added to `problems`, so they are reported together."""
    desired: dict[str, Tenant] = {}
    expected_versions: dict[str, int] = {}
    for index, raw in enumerate(records):
        label = str(raw.get("tenant_id") or f"record {index + 1}")
        try:
            tenant = validator.check(to_tenant(raw))
        except Exception as exc:
            message = describe_error(exc)
            if message is None:
                raise
            problems.append(f"{label}: {message}")
            continue
        finally:
            if progress is not None:
                progress(index + 1)
        if tenant.tenant_id in desired:
            problems.append(f"{label}: listed more than once")
            continue
        desired[tenant.tenant_id] = tenant
        if "version" in raw:
            expected_versions[tenant.tenant_id] = tenant.version
    return desired, expected_versions


def _current_tenants(tenants: TenantStore) -> tuple[dict[str, Tenant], list[str], set[str]]:
    """The table's valid records by tenant id, why the invalid ones are skipped, and their ids."""
    current: dict[str, Tenant] = {}
    skipped: list[str] = []
    invalid: set[str] = set()
    for found in tenants.list():
        if isinstance(found, TenantInvalid):
            skipped.append(str(found))
            if found.tenant_id:
                invalid.add(found.tenant_id)
        else:
            current[found.tenant_id] = found
    return current, skipped, invalid


def _changes(
    desired: dict[str, Tenant],
    current: dict[str, Tenant],
    expected_versions: dict[str, int],
    problems: list[str],
) -> list[Change]:
    """A create, update or unchanged per record of the file; a record whose expected version is
    not the table's is a problem instead."""
    changes: list[Change] = []
    for tenant_id, tenant in desired.items():
        existing = current.get(tenant_id)
        fields = field_changes(existing, tenant)
        if existing is not None and not fields:
            # Already as the file says (e.g. a re-run after a partial import): no write, no conflict.
            changes.append(Change("unchanged", tenant_id, existing, tenant))
            continue
        expected = expected_versions.get(tenant_id)
        if expected and (existing is None or existing.version != expected):
            now = f"is at version {existing.version}" if existing else "was removed"
            problems.append(
                f"{tenant_id}: the file has version {expected} but the tenant {now}: changed by someone "
                "else since the export — export again and redo the edit"
            )
            continue
        changes.append(Change("update" if existing else "create", tenant_id, existing, tenant, fields))
    return changes


def _order_by_claims(
    changes: list[Change], current: dict[str, Tenant], tenants: TenantStore, problems: list[str]
) -> list[Change]:
    """Removals first, then every create/update whose accounts are free by then, repeatedly, so an
    account moving between tenants is released before it is claimed. What can never be ordered
    (an account another tenant keeps) is added to `problems`."""
    ordered = [c for c in changes if c.action in ("remove", "unchanged")]
    owners = _owners_after(ordered, current)
    waiting = [c for c in changes if c.action in ("create", "update")]
    _add_unexplained_claims(owners, waiting, current, tenants)
    ordered += _in_claim_order(waiting, owners)
    problems += [problem for change in waiting for problem in _claim_problems(change, owners)]
    return ordered


def _in_claim_order(waiting: list[Change], owners: dict[str, str]) -> list[Change]:
    """The changes of `waiting` that can be written, each once the accounts it claims are free
    (`owners` updated as each is claimed); the rest stay in `waiting`."""
    done: list[Change] = []
    progressed = True
    while waiting and progressed:
        progressed = False
        for change in list(waiting):
            if _claimable(change, owners):
                _claim(change, owners)
                done.append(change)
                waiting.remove(change)
                progressed = True
    return done


def _owners_after(removals: list[Change], current: dict[str, Tenant]) -> dict[str, str]:
    """account → tenant id, as the table's valid records claim them once `removals` are done."""
    owners = {account: t.tenant_id for t in current.values() for account in t.accounts()}
    for change in removals:
        if change.action == "remove" and change.current:
            for account in change.current.accounts():
                owners.pop(account, None)
    return owners


def _add_unexplained_claims(
    owners: dict[str, str], waiting: list[Change], current: dict[str, Tenant], tenants: TenantStore
) -> None:
    """A claim no valid record explains (e.g. of an invalid record) still holds its account. An
    account no valid record claims is read once, however many records of the file name it."""
    unexplained = sorted({a for change in waiting for a in _desired(change).accounts()} - owners.keys())
    for account in unexplained:
        owner = tenants.owner_of(account)
        if owner is not None and owner not in current:
            owners[account] = owner


def _desired(change: Change) -> Tenant:
    assert change.desired is not None  # creates and updates have one
    return change.desired


def _claimable(change: Change, owners: dict[str, str]) -> bool:
    return all(owners.get(a, change.tenant_id) == change.tenant_id for a in _desired(change).accounts())


def _claim(change: Change, owners: dict[str, str]) -> None:
    """The owners once `change` is written: the accounts it drops released, its accounts claimed."""
    claimed = _desired(change).accounts()
    released = (change.current.accounts() if change.current else frozenset()) - claimed
    for account in released:
        owners.pop(account, None)
    owners.update(dict.fromkeys(claimed, change.tenant_id))


def _claim_problems(change: Change, owners: dict[str, str]) -> list[str]:
    return [
        f"{change.tenant_id}: {claimed_elsewhere(account, owner)}"
        for account in sorted(_desired(change).accounts())
        if (owner := owners.get(account, change.tenant_id)) != change.tenant_id
    ]


def apply_change(change: Change, tenants: TenantStore, actor: str) -> Tenant | None:
    if change.action == "create":
        assert change.desired is not None
        return tenants.create(change.desired, actor)
    if change.action == "update":
        assert change.desired is not None
        assert change.current is not None
        return tenants.update(change.desired.model_copy(update={"version": change.current.version}), actor)
    if change.action == "remove":
        assert change.current is not None
        tenants.remove(change.tenant_id, change.current.version)
    return None
