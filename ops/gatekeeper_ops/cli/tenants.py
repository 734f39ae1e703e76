"""`gatekeeper tenants …`: the tenant allow-list, validated before every write.

Every write goes through TenantStore: a principal's account is claimed by one tenant in the same
transaction as the record, and updates are conditional on the version that was read, so a
concurrent edit or a principal owned elsewhere is refused and nothing is written.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gatekeeper_ops.cli.context import CliError, Gatekeeper, describe_error, gatekeeper
from gatekeeper_ops.cli.help import CommandGroup, examples
from gatekeeper_ops.cli.output import (
    JsonOption,
    OutputFormat,
    OutputOption,
    QueryOption,
    Rendering,
    YesOption,
    output_formats,
    rendering,
    say,
    table,
    warn,
)

# The core, the tenant-record helpers (yaml) and rich's progress bar are imported by the commands
# that use them: `gatekeeper --help` loads none of them.
if TYPE_CHECKING:
    from rich.progress import Progress

    from gatekeeper.models.tenant import Tenant
    from gatekeeper_ops.cli.tenant_records import Action, Change, TenantValidator

app = typer.Typer(
    cls=CommandGroup,
    rich_markup_mode=None,
    help="Tenant allow-list records: who may connect, to which services, under which template.",
    no_args_is_help=True,
)

TenantId = Annotated[str, typer.Argument(help="Tenant id (lowercase letters, digits, '-').")]
ExpectedVersion = Annotated[
    int | None,
    typer.Option(
        "--expected-version",
        help="Refuse unless the record is still at this version (optimistic lock; see `tenants show`).",
    ),
]
DryRun = Annotated[
    bool,
    typer.Option("--dry-run", help="Run every check the write runs and show the diff; write nothing."),
]
# Above this many writes an import shows a progress bar (on stderr).
PROGRESS_FROM = 20


def _validator(gk: Gatekeeper, many: bool = False) -> TenantValidator:
    """`many`: for a command that checks many tenants, every template read in one scan."""
    from gatekeeper_ops.cli.tenant_records import TenantValidator

    validator = TenantValidator(gk.templates, gk.stack.managed_services)
    return validator.read_latest_templates() if many else validator


def _check(gk: Gatekeeper, validator: TenantValidator, tenant: Tenant, quota_changed: bool = True) -> Tenant:
    checked = validator.check(tenant)
    unmanaged = validator.unmanaged_services(checked)
    if unmanaged:
        warn(
            f"{', '.join(unmanaged)} not managed by stack {gk.stack.name} (EndpointServiceIds); "
            "connections to it are not decided until it is — see `gatekeeper services attach`"
        )
    quota = validator.quota(checked)
    if quota_changed and quota.template is not None and checked.max_endpoints > quota.template:
        warn(
            f"--max-endpoints {checked.max_endpoints} exceeds template {checked.template}'s MaxEndpoints "
            f"{quota.template}: the effective quota is {quota.effective} (the smaller); to allow more, "
            f"also pass --param MaxEndpoints={checked.max_endpoints}"
        )
    return checked


def _prepare(gk: Gatekeeper, before: Tenant | None, after: Tenant) -> None:
    """Every check of the write, read-only: run for a dry run exactly as for the write."""
    from gatekeeper_ops.cli.tenant_records import write_refusal

    write_refusal(gk.tenants, before, after)


def _record(tenant: Tenant) -> dict[str, Any]:
    return tenant.model_dump(mode="json", exclude_none=True)


def _changed(verb: str, before: Tenant | None, after: Tenant, render: Rendering) -> None:
    from gatekeeper_ops.cli.tenant_records import Change, field_changes

    if not render.human:
        render.emit({"action": verb, "tenant": _record(after)})
        return
    say(f"{verb} tenant {after.tenant_id} (version {after.version}, by {after.updated_by})")
    change = Change(
        "update" if before else "create", after.tenant_id, before, after, field_changes(before, after)
    )
    for line in change.lines()[1:]:
        say(line)


def _preview(before: Tenant | None, after: Tenant, render: Rendering) -> None:
    from gatekeeper_ops.cli.tenant_records import Change, field_changes

    fields = field_changes(before, after)
    action: Action = "create" if before is None else "update" if fields else "unchanged"
    change = Change(action, after.tenant_id, before, after, fields)
    if not render.human:
        render.emit({"dry_run": True, "changes": [change.document()]})
    else:
        for line in change.lines():
            say(line)
        say("dry run: nothing written")


# -- add ----------------------------------------------------------------------------------------
@app.command(
    epilog=examples(
        "gatekeeper tenants add acme --name 'Acme Corp' --principal 111122223333 "
        "--service vpce-svc-0123456789abcdef0 --template standard --max-endpoints 3",
        "gatekeeper tenants add globex --name Globex -p arn:aws:iam::222233334444:role/platform "
        "-s '*' --template enterprise --param Regions=us-east-1,eu-west-1 --label tier=gold "
        "--max-endpoints 10",
    )
)
def add(
    ctx: typer.Context,
    tenant_id: TenantId,
    *,
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    principals: Annotated[
        list[str],
        typer.Option(
            "--principal", "-p", help="Account id or IAM ARN (root, role/x, user/x; no paths). Repeat."
        ),
    ],
    services: Annotated[
        list[str],
        typer.Option("--service", "-s", help="Entitled endpoint service id (vpce-svc-…) or '*'. Repeat."),
    ],
    template: Annotated[str, typer.Option("--template", "-t", help="Policy template name.")],
    max_endpoints: Annotated[int, typer.Option("--max-endpoints", help="Endpoints connected at once.")],
    template_version: Annotated[
        int | None, typer.Option("--template-version", help="Pin a template version (default: the latest).")
    ] = None,
    params: Annotated[
        list[str] | None, typer.Option("--param", help="Template parameter override KEY=VALUE. Repeat.")
    ] = None,
    labels: Annotated[list[str] | None, typer.Option("--label", help="Label KEY=VALUE. Repeat.")] = None,
    expires_at: Annotated[
        datetime | None, typer.Option("--expires-at", help="Access ends at (ISO date/time, UTC).")
    ] = None,
    contact: Annotated[str | None, typer.Option("--contact", help="Who to call about this tenant.")] = None,
    suspended: Annotated[bool, typer.Option("--suspended", help="Create it suspended.")] = False,
    dry_run: DryRun = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add a tenant. Validated first: account ids, principal ARNs, service ids, the template and the
    parameter types; a principal already claimed by another tenant is refused, naming it."""
    from gatekeeper.models.tenant import Tenant
    from gatekeeper_ops.cli.tenant_records import parse_assignments

    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    tenant = Tenant.model_validate(
        {
            "tenant_id": tenant_id,
            "display_name": name,
            "status": "suspended" if suspended else "active",
            "principals": principals,
            "services": services,
            "template": template,
            "template_version": template_version,
            "parameters": parse_assignments(params or [], "--param"),
            "max_endpoints": max_endpoints,
            "expires_at": expires_at,
            "contact": contact,
            "labels": parse_assignments(labels or [], "--label"),
        }
    )
    tenant = _check(gk, _validator(gk), tenant)
    _prepare(gk, None, tenant)
    if dry_run:
        _preview(None, tenant, render)
        return
    stored = gk.tenants.create(tenant, gk.actor)
    _changed("created", None, stored, render)


# -- show / list ------------------------------------------------------------------------------------
@app.command(
    epilog=examples(
        "gatekeeper tenants show acme",
        "gatekeeper tenants show acme --output json",
        "gatekeeper tenants show acme --query quota.effective --output text",
    )
)
def show(
    ctx: typer.Context,
    tenant_id: TenantId,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one tenant record, with its version, its effective endpoint quota (the smaller of
    max_endpoints and its template's MaxEndpoints, with the tenant's overrides) and how many
    endpoints it has connected."""
    from gatekeeper.models.tenant import Tenant

    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    tenant = gk.tenants.get(tenant_id)
    active = gk.decisions.active_endpoints(tenant_id)
    quota = _validator(gk).quota(tenant)
    if not render.human:
        render.emit({**_record(tenant), "quota": quota.document(), "active_endpoints": active})
        return
    record = tenant.model_dump()
    rows: list[tuple[str, Any]] = [(name, record[name]) for name in Tenant.model_fields]
    at = [name for name, _ in rows].index("max_endpoints") + 1
    rows[at:at] = [
        ("template MaxEndpoints", quota.template if quota.template is not None else "(unknown)"),
        ("effective quota", quota.effective),
        ("active_endpoints", active),
    ]
    table(f"tenant {tenant.tenant_id}", ("field", "value"), rows, wrap=("value",))


@app.command(
    name="list",
    epilog=examples(
        "gatekeeper tenants list",
        "gatekeeper tenants list --status suspended --output json",
        "gatekeeper tenants list --query 'tenants[?quota.effective < `3`].tenant_id' --output text",
    ),
)
def list_tenants(
    ctx: typer.Context,
    *,
    status: Annotated[str | None, typer.Option("--status", help="Only active or suspended tenants.")] = None,
    template: Annotated[str | None, typer.Option("--template", help="Only tenants on this template.")] = None,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """List tenants with their effective endpoint quota. Records that no longer validate (e.g.
    edited in the console) are named on stderr as invalid, with why, whatever the --output: the
    decision path holds their requests until they are fixed."""
    from gatekeeper.models.errors import GatekeeperError
    from gatekeeper_ops.cli.tenant_records import export_document

    render = rendering(output, query, json_output)
    if status not in (None, "active", "suspended"):
        raise CliError(f"--status {status!r} is not one of active, suspended")
    gk = gatekeeper(ctx)
    tenants: list[Tenant] = []
    invalid: list[str] = []
    for found in gk.tenants.list():
        if isinstance(found, GatekeeperError):
            invalid.append(str(found))
        elif (status is None or found.status == status) and (template is None or found.template == template):
            tenants.append(found)
    tenants.sort(key=lambda t: t.tenant_id)
    validator = _validator(gk, many=len({(t.template, t.template_version) for t in tenants}) > 1)
    quotas = {t.tenant_id: validator.quota(t) for t in tenants}
    for problem in invalid:
        warn(f"INVALID: {problem}")
    if not render.human:
        records = export_document(tenants)
        for record in records:
            record["quota"] = quotas[record["tenant_id"]].document()
        render.emit(records)
        return
    table(
        None,
        ("tenant", "name", "status", "principals", "services", "template", "quota", "expires", "v"),
        [
            (
                t.tenant_id,
                t.display_name,
                t.status,
                t.principals,
                t.services,
                t.template + (f" v{t.template_version}" if t.template_version else ""),
                quotas[t.tenant_id].describe(),
                t.expires_at.date() if t.expires_at else None,
                t.version,
            )
            for t in tenants
        ],
        wrap=("name",),
    )


# -- update / suspend / resume --------------------------------------------------------------------
def _read(gk: Gatekeeper, tenant_id: str, expected_version: int | None) -> Tenant:
    """The current record, carrying the version the write will be conditional on."""
    current = gk.tenants.get(tenant_id)
    if expected_version is not None:
        # The store's conditional write refuses it if it is not the current version: nothing is written.
        return current.model_copy(update={"version": expected_version})
    return current


def _write(
    gk: Gatekeeper, before: Tenant, after: Tenant, *, dry_run: bool, render: Rendering, verb: str
) -> None:
    from gatekeeper_ops.cli.tenant_records import field_changes

    if field_changes(before, after):
        _prepare(gk, before, after)
    if dry_run:
        _preview(before, after, render)
        return
    if not field_changes(before, after):
        if not render.human:
            render.emit({"action": "unchanged", "tenant": _record(before)})
        else:
            say(f"tenant {before.tenant_id} unchanged (version {before.version})")
        return
    stored = gk.tenants.update(after, gk.actor)
    _changed(verb, before, stored, render)


@app.command(
    epilog=examples(
        "gatekeeper tenants update acme --add-principal arn:aws:iam::111122223333:role/ci --max-endpoints 5",
        "gatekeeper tenants update acme --param HomeRegions=us-east-1,eu-west-1 --expected-version 4 "
        "--dry-run",
        "gatekeeper tenants update acme --remove-service vpce-svc-0123456789abcdef0 --no-expiry",
    )
)
def update(
    ctx: typer.Context,
    tenant_id: TenantId,
    *,
    name: Annotated[str | None, typer.Option("--name", help="New display name.")] = None,
    add_principals: Annotated[list[str] | None, typer.Option("--add-principal", help="Repeat.")] = None,
    remove_principals: Annotated[list[str] | None, typer.Option("--remove-principal", help="Repeat.")] = None,
    add_services: Annotated[list[str] | None, typer.Option("--add-service", help="Repeat.")] = None,
    remove_services: Annotated[list[str] | None, typer.Option("--remove-service", help="Repeat.")] = None,
    template: Annotated[str | None, typer.Option("--template", "-t", help="Switch template.")] = None,
    template_version: Annotated[
        int | None, typer.Option("--template-version", help="Pin this version (0 = follow the latest).")
    ] = None,
    params: Annotated[
        list[str] | None, typer.Option("--param", help="Set override KEY=VALUE. Repeat.")
    ] = None,
    unset_params: Annotated[list[str] | None, typer.Option("--unset-param", help="Drop an override.")] = None,
    labels: Annotated[list[str] | None, typer.Option("--label", help="Set label KEY=VALUE. Repeat.")] = None,
    unset_labels: Annotated[list[str] | None, typer.Option("--unset-label", help="Drop a label.")] = None,
    max_endpoints: Annotated[int | None, typer.Option("--max-endpoints")] = None,
    expires_at: Annotated[datetime | None, typer.Option("--expires-at", help="ISO date/time, UTC.")] = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="Remove the expiry.")] = False,
    contact: Annotated[str | None, typer.Option("--contact")] = None,
    expected_version: ExpectedVersion = None,
    dry_run: DryRun = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change a tenant. The write is conditional on the version read (or --expected-version): a
    concurrent edit is refused and nothing is written."""
    from gatekeeper.models.tenant import Tenant
    from gatekeeper_ops.cli.tenant_records import parse_assignments

    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    before = _read(gk, tenant_id, expected_version)
    record = before.model_dump()
    if name is not None:
        record["display_name"] = name
    record["principals"] = _edit_list(record["principals"], add_principals, remove_principals, "principal")
    record["services"] = _edit_list(record["services"], add_services, remove_services, "service")
    if template is not None:
        record["template"] = template
    if template_version is not None:
        record["template_version"] = template_version or None
    record["parameters"] = _edit_map(
        record["parameters"], parse_assignments(params or [], "--param"), unset_params
    )
    record["labels"] = _edit_map(record["labels"], parse_assignments(labels or [], "--label"), unset_labels)
    if max_endpoints is not None:
        record["max_endpoints"] = max_endpoints
    if no_expiry:
        record["expires_at"] = None
    elif expires_at is not None:
        record["expires_at"] = expires_at
    if contact is not None:
        record["contact"] = contact or None
    quota_changed = max_endpoints is not None or template is not None or bool(params or unset_params)
    after = _check(gk, _validator(gk), Tenant.model_validate(record), quota_changed)
    _write(gk, before, after, dry_run=dry_run, render=render, verb="updated")


def _edit_list(
    values: tuple[str, ...], add: list[str] | None, remove: list[str] | None, what: str
) -> list[str]:
    result = list(values)
    for value in remove or []:
        if value not in result:
            raise CliError(f"{what} {value} is not on the record ({', '.join(result)})")
        result.remove(value)
    result += [v for v in add or [] if v not in result]
    return result


def _edit_map(values: dict[str, Any], set_: dict[str, str], unset: list[str] | None) -> dict[str, Any]:
    result = {**values, **set_}
    for key in unset or []:
        if key not in result:
            raise CliError(f"{key} is not set on the record ({', '.join(result) or 'nothing is'})")
        result.pop(key)
    return result


def _set_status(
    ctx: typer.Context, tenant_id: str, status: str, expected: int | None, render: Rendering
) -> None:
    gk = gatekeeper(ctx)
    before = _read(gk, tenant_id, expected)
    if before.status == status:
        raise CliError(f"tenant {tenant_id} is already {status}")
    after = before.model_copy(update={"status": status})
    verb = "suspended" if status == "suspended" else "resumed"
    _write(gk, before, after, dry_run=False, render=render, verb=verb)


@app.command(
    epilog=examples(
        "gatekeeper tenants suspend globex", "gatekeeper tenants suspend globex --expected-version 7"
    )
)
def suspend(
    ctx: typer.Context,
    tenant_id: TenantId,
    *,
    expected_version: ExpectedVersion = None,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Suspend a tenant: its new requests are rejected (TenantSuspended) and the stack's tenant
    sync puts its open connections to the decision path for revocation; follow it with
    `gatekeeper decisions --tenant <id>`."""
    _set_status(ctx, tenant_id, "suspended", expected_version, rendering(output, query, json_output))


@app.command(epilog=examples("gatekeeper tenants resume globex"))
def resume(
    ctx: typer.Context,
    tenant_id: TenantId,
    *,
    expected_version: ExpectedVersion = None,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Resume a suspended tenant: new requests are decided by its template again, and the tenant
    sync re-requests the ones held while it was suspended."""
    _set_status(ctx, tenant_id, "active", expected_version, rendering(output, query, json_output))


# -- remove -------------------------------------------------------------------------------------
@app.command(
    epilog=examples("gatekeeper tenants remove initech", "gatekeeper tenants remove initech --yes --json")
)
def remove(
    ctx: typer.Context,
    tenant_id: TenantId,
    *,
    expected_version: ExpectedVersion = None,
    yes: YesOption = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Remove a tenant and release its accounts' claims: new requests from its accounts are
    unknown principals, and the tenant sync puts its open connections up for revocation. A record
    that no longer validates can be removed too, given --expected-version (then add it again)."""
    from gatekeeper.models.errors import TenantInvalid

    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    try:
        current = _read(gk, tenant_id, expected_version)
        version, name = current.version, current.display_name
    except TenantInvalid:
        if expected_version is None:
            raise
        # Its claims stay with this tenant id: adding it again under the same id takes them back.
        version, name = expected_version, "invalid record"
    active = gk.decisions.active_endpoints(tenant_id)
    if not yes:
        typer.confirm(
            f"Remove tenant {tenant_id} ({name}, {active} connected endpoint(s))?",
            abort=True,
            err=True,
        )
    gk.tenants.remove(tenant_id, version)
    if not render.human:
        render.emit(
            {
                "action": "removed",
                "tenant_id": tenant_id,
                "version": version,
                "active_endpoints": active,
            }
        )
        return
    if name == "invalid record":
        say(
            f"removed the invalid record of {tenant_id}; "
            f"its accounts stay claimed for {tenant_id}: add it again"
        )
    else:
        say(f"removed tenant {tenant_id} (was version {version}); its accounts are unclaimed")
    if active:
        warn(
            f"{tenant_id} had {active} connected endpoint(s): the tenant sync revokes them; check with "
            f"`gatekeeper decisions --tenant {tenant_id}` "
            "(revoke by hand: `gatekeeper reject <vpce-id> --reason …`)"
        )


# -- import / export ------------------------------------------------------------------------------
@app.command(
    name="import",
    epilog=examples(
        "gatekeeper tenants import tenants.yaml --dry-run",
        "gatekeeper tenants import tenants.csv",
        "gatekeeper tenants export > t.yaml && $EDITOR t.yaml && gatekeeper tenants import t.yaml",
        "gatekeeper tenants import tenants.yaml --prune --yes",
        "gatekeeper tenants import tenants.yaml --prune --confirm-removals 7 --yes",
    ),
)
def import_tenants(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="YAML, JSON or CSV file ('-' for stdin).")],
    *,
    file_format: Annotated[
        str | None, typer.Option("--format", "-f", help="yaml, json or csv (default: from the extension).")
    ] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove tenants that are not in the file.")] = False,
    confirm_removals: Annotated[
        int | None,
        typer.Option(
            "--confirm-removals",
            metavar="COUNT",
            help="With --prune: the number of tenants you expect it to remove. Needed when it removes "
            "more than 10% of them, or all; an empty file is always refused.",
        ),
    ] = None,
    dry_run: DryRun = False,
    yes: YesOption = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create and update tenants from a file (as `tenants export` writes it). Every record is
    validated before anything is written; a record that carries `version` is refused if the tenant
    changed since it was exported. Files are capped at 5 MiB."""
    from gatekeeper_ops.cli.tenant_records import (
        MAX_IMPORT_BYTES,
        apply_change,
        detect_format,
        load,
        plan_import,
        read_import_text,
    )

    render = rendering(output, query, json_output)
    if confirm_removals is not None and not prune:
        raise CliError("--confirm-removals only means something with --prune")
    fmt = detect_format(path, file_format)
    source = "stdin" if path == "-" else path
    data = sys.stdin.buffer.read(MAX_IMPORT_BYTES + 1) if path == "-" else _read_bytes(Path(path))
    records = load(read_import_text(data, source), fmt, source)
    gk = gatekeeper(ctx)
    with _progress(len(records) >= PROGRESS_FROM and render.human) as progress:
        checking = progress.add_task(f"Checking {len(records)} records", total=len(records))
        plan = plan_import(
            records,
            gk.tenants,
            _validator(gk, many=len({(r.get("template"), r.get("template_version")) for r in records}) > 1),
            prune=prune,
            confirm_removals=confirm_removals,
            progress=lambda done: progress.update(checking, completed=done),
        )
    for problem in plan.skipped_invalid:
        warn(f"skipped invalid record in the table: {problem}")
    if not dry_run and plan.removals and not yes:
        removed = ", ".join(c.tenant_id for c in plan.removals)
        typer.confirm(f"--prune removes {removed}. Continue?", abort=True, err=True)
    applied: list[Change] = []
    if not dry_run:
        with _progress(len(plan.writes) >= PROGRESS_FROM and render.human) as progress:
            writing = progress.add_task(f"Writing {len(plan.writes)} changes", total=len(plan.writes))
            for change in plan.writes:
                try:
                    apply_change(change, gk.tenants, gk.actor)
                except Exception as exc:
                    message = describe_error(exc)
                    if message is None:
                        raise
                    done = ", ".join(f"{c.action} {c.tenant_id}" for c in applied) or "none"
                    raise CliError(
                        f"import stopped at {change.action} {change.tenant_id}: {message} — "
                        f"applied before it: {done}; "
                        "fix the file and import again (applied records then show as unchanged)"
                    ) from None
                applied.append(change)
                progress.advance(writing)
    _report_import(plan.changes, dry_run, render)


def _read_bytes(path: Path) -> bytes:
    from gatekeeper_ops.cli.tenant_records import MAX_IMPORT_BYTES, too_big

    size = path.stat().st_size
    if size > MAX_IMPORT_BYTES:  # refused before reading it
        raise CliError(too_big(str(path), size))
    return path.read_bytes()


@contextmanager
def _progress(visible: bool) -> Iterator[Progress]:
    """A progress bar on stderr for big imports; an invisible one otherwise (same calls)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True, highlight=False),
        transient=False,
        disable=not visible,
    )
    with progress:
        yield progress


def _report_import(changes: list[Change], dry_run: bool, render: Rendering) -> None:
    counts = {
        a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "remove", "unchanged")
    }
    if not render.human:
        render.emit({"dry_run": dry_run, "summary": counts, "changes": [c.document() for c in changes]})
        return
    for change in changes:
        if change.action != "unchanged":
            for line in change.lines():
                say(line)
    summary = ", ".join(f"{n} {a}" for a, n in counts.items())
    say(f"dry run: {summary}; nothing written" if dry_run else f"imported: {summary}")


@app.command(
    epilog=examples(
        "gatekeeper tenants export > tenants.yaml",
        "gatekeeper tenants export --output csv --file tenants.csv",
        "gatekeeper tenants export --query '[].tenant_id' --output text",
    )
)
def export(
    ctx: typer.Context,
    *,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", dir_okay=False, help="Write to this file, not stdout (format from its extension)."
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FORMAT",
            autocompletion=output_formats,
            help="yaml (the default: the import file), json, csv (the import columns), text or table.",
        ),
    ] = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
    file_format: Annotated[str | None, typer.Option("--format", hidden=True)] = None,
) -> None:
    """Export every tenant (with its version, so a re-import refuses edits made meanwhile)."""
    from gatekeeper.models.errors import GatekeeperError
    from gatekeeper_ops.cli.tenant_records import detect_format, dump

    if file_format is not None:  # the option of older releases: say what replaced it
        raise CliError(
            f"--format is now --output {file_format}, as on every command (--file PATH writes a file)"
        )
    if output is None and file is not None and not json_output:
        output = detect_format(str(file), None)
    render = rendering(output, query, json_output, default=OutputFormat.yaml, file_option="--file")
    if file is not None and render.format is OutputFormat.table:
        raise CliError(f"a table is for the terminal: write {file} as yaml, json, csv or text")
    gk = gatekeeper(ctx)
    tenants: list[Tenant] = []
    for found in gk.tenants.list():
        if isinstance(found, GatekeeperError):
            warn(f"not exported, invalid record: {found}")
        else:
            tenants.append(found)
    if render.format is OutputFormat.table:
        from gatekeeper_ops.cli.tenant_records import export_document

        render.emit(export_document(tenants))
        return
    text = dump(tenants, render)
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text)
        typer.echo(f"exported {len(tenants)} tenant(s) to {file}", err=True)
