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

from gatekeeper_ops.cli import impact
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

    from gatekeeper.dal.tenant_repair import Fix, RecordRepair
    from gatekeeper.dal.tenant_stream import TenantChange, TenantImage
    from gatekeeper.logic.tenant_impact import EndpointImpact
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
    typer.Option(
        "--dry-run",
        help="Run every check the write runs; show the diff and the endpoints it would revoke or "
        "re-decide; write nothing.",
    ),
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
    if (
        quota_changed
        and quota.template is not None
        and checked.max_endpoints is not None
        and checked.max_endpoints > quota.template
    ):
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


def _changed(
    verb: str, before: Tenant | None, after: Tenant, render: Rendering, impacts: list[EndpointImpact]
) -> None:
    from gatekeeper_ops.cli.tenant_records import Change, field_changes

    if not render.human:
        render.emit({"action": verb, "tenant": _record(after), "endpoints": impact.documents(impacts)})
        return
    say(f"{verb} tenant {after.tenant_id} (version {after.version}, by {after.updated_by})")
    change = Change(
        "update" if before else "create", after.tenant_id, before, after, field_changes(before, after)
    )
    for line in change.lines()[1:]:
        say(line)
    _followed(after.tenant_id, impacts)


def _followed(tenant_id: str, impacts: list[EndpointImpact]) -> None:
    """After a write: what the tenant sync now does to its endpoints, and where to watch it."""
    if impacts:
        impact.show(impacts)
        say(f"the tenant sync carries this out; follow it with `gatekeeper decisions --tenant {tenant_id}`")


def _preview(before: Tenant | None, after: Tenant, render: Rendering, impacts: list[EndpointImpact]) -> None:
    from gatekeeper_ops.cli.tenant_records import Change, field_changes

    fields = field_changes(before, after)
    action: Action = "create" if before is None else "update" if fields else "unchanged"
    change = Change(action, after.tenant_id, before, after, fields)
    if not render.human:
        render.emit({"dry_run": True, "changes": [change.document()], "endpoints": impact.documents(impacts)})
    else:
        for line in change.lines():
            say(line)
        impact.show(impacts)
        say("dry run: nothing written")


def _image(tenant: Tenant | None) -> TenantImage | None:
    from gatekeeper.dal.tenant_stream import TenantImage

    return TenantImage.of(tenant) if tenant is not None else None


def _tenant_change(tenant_id: str, before: TenantImage | None, after: TenantImage | None) -> TenantChange:
    from gatekeeper.dal.tenant_stream import TenantChange

    return TenantChange(tenant_id, before, after)


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
    max_endpoints: Annotated[
        int | None,
        typer.Option(
            "--max-endpoints",
            help="Endpoints connected at once (default: the template's MaxEndpoints decides; the "
            "smaller of the two counts).",
        ),
    ] = None,
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
        _preview(None, tenant, render, [])
        return
    stored = gk.tenants.create(tenant, gk.actor)
    _changed("created", None, stored, render, [])


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
    gk: Gatekeeper, before: Tenant, after: Tenant, *, dry_run: bool, yes: bool, render: Rendering, verb: str
) -> None:
    """One plan for the dry run and the write: the same checks, the same endpoints, and for the
    write the confirmation of what it revokes — before anything is written."""
    from gatekeeper_ops.cli.tenant_records import field_changes

    changed = bool(field_changes(before, after))
    impacts: list[EndpointImpact] = []
    if changed:
        _prepare(gk, before, after)
        impacts = impact.tenant_impact(gk, [_tenant_change(before.tenant_id, _image(before), _image(after))])
    if dry_run:
        _preview(before, after, render, impacts)
        return
    if not changed:
        if not render.human:
            render.emit({"action": "unchanged", "tenant": _record(before), "endpoints": []})
        else:
            say(f"tenant {before.tenant_id} unchanged (version {before.version})")
        return
    action = {"updated": "Update", "suspended": "Suspend", "resumed": "Resume"}[verb]
    impact.confirm_revocations(impacts, f"{action} tenant {before.tenant_id}:", yes)
    stored = gk.tenants.update(after, gk.actor)
    _changed(verb, before, stored, render, impacts)


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
    yes: YesOption = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change a tenant. The write is conditional on the version read (or --expected-version): a
    concurrent edit is refused and nothing is written. A change that takes access away (services,
    principals, status, expiry) lists the endpoints it revokes and asks first (--yes for scripts)."""
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
    _write(gk, before, after, dry_run=dry_run, yes=yes, render=render, verb="updated")


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
    ctx: typer.Context,
    tenant_id: str,
    status: str,
    expected: int | None,
    *,
    dry_run: bool,
    yes: bool,
    render: Rendering,
) -> None:
    gk = gatekeeper(ctx)
    before = _read(gk, tenant_id, expected)
    if before.status == status:
        raise CliError(f"tenant {tenant_id} is already {status}")
    after = before.model_copy(update={"status": status})
    verb = "suspended" if status == "suspended" else "resumed"
    _write(gk, before, after, dry_run=dry_run, yes=yes, render=render, verb=verb)


@app.command(
    epilog=examples(
        "gatekeeper tenants suspend globex --dry-run   # the endpoints it would revoke",
        "gatekeeper tenants suspend globex --expected-version 7 --yes",
    )
)
def suspend(
    ctx: typer.Context,
    tenant_id: TenantId,
    *,
    expected_version: ExpectedVersion = None,
    dry_run: DryRun = False,
    yes: YesOption = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Suspend a tenant: its new requests are rejected (TenantSuspended) and the stack's tenant
    sync revokes its open connections. Lists them and asks first (--dry-run to only look, --yes
    for scripts); follow it with `gatekeeper decisions --tenant <id>`."""
    render = rendering(output, query, json_output)
    _set_status(ctx, tenant_id, "suspended", expected_version, dry_run=dry_run, yes=yes, render=render)


@app.command(
    epilog=examples("gatekeeper tenants resume globex", "gatekeeper tenants resume globex --dry-run")
)
def resume(
    ctx: typer.Context,
    tenant_id: TenantId,
    *,
    expected_version: ExpectedVersion = None,
    dry_run: DryRun = False,
    yes: YesOption = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Resume a suspended tenant: new requests are decided by its template again, and the tenant
    sync re-requests the ones held while it was suspended."""
    render = rendering(output, query, json_output)
    _set_status(ctx, tenant_id, "active", expected_version, dry_run=dry_run, yes=yes, render=render)


# -- repair -------------------------------------------------------------------------------------
@app.command(
    epilog=examples(
        "gatekeeper tenants repair umbrella --dry-run   # each problem and its fix; writes nothing",
        "gatekeeper tenants repair umbrella --yes",
    )
)
def repair(
    ctx: typer.Context,
    tenant_id: TenantId,
    *,
    dry_run: DryRun = False,
    yes: YesOption = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Fix a stored record that no longer validates (e.g. edited in the DynamoDB console), keeping
    what it means: its principals and their claims, services, status and quota. Shows each problem
    with the fix it writes, then asks (--yes for scripts); the write is conditional on the record as
    read. It never revokes: a repair that would take access away, or a problem only you can decide
    (a principal claimed by another tenant, an unknown status…), is reported with the manual fix,
    and nothing is written (exit 1)."""
    from gatekeeper.dal.tenant_repair import plan_repair

    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    raw = gk.tenants.raw(tenant_id)
    plan = plan_repair(tenant_id, raw)
    if plan.valid:
        if not render.human:
            render.emit({"tenant_id": tenant_id, "valid": True, "fixes": [], "endpoints": []})
        else:
            say(f"tenant {tenant_id} is valid; nothing to repair")
        return
    tenant, impacts = _repaired(gk, plan, raw)
    document: dict[str, Any] = {
        "tenant_id": tenant_id,
        "valid": False,
        "problems": plan.problems,
        "fixes": [fix.document() for fix in plan.fixes],
        "manual": plan.manual,
        "endpoints": impact.documents(impacts),
        "record": _record(tenant) if tenant is not None and not plan.manual else None,
    }
    if not render.human and (dry_run or plan.manual):
        render.emit({"dry_run": dry_run, **document})
    elif render.human:
        _show_repair(plan, impacts)
    if plan.manual:
        raise CliError(
            f"tenant {tenant_id} needs {len(plan.manual)} manual fix(es) (listed above); nothing written — "
            f"then run `gatekeeper tenants repair {tenant_id}` again"
        )
    assert tenant is not None
    if dry_run:
        if render.human:
            say("dry run: nothing written")
        return
    impact.confirm(
        f"Repair tenant {tenant_id}: writes {len(plan.fixes)} fix(es), revokes nothing. Continue?",
        yes,
    )
    stored = gk.tenants.repair(tenant, gk.actor, plan.stored_version)
    if not render.human:
        render.emit({"action": "repaired", **document, "record": _record(stored)})
        return
    say(f"repaired tenant {tenant_id} (version {stored.version}, by {stored.updated_by})")
    _followed(tenant_id, impacts)


def _repaired(
    gk: Gatekeeper, plan: RecordRepair, raw: dict[str, Any]
) -> tuple[Tenant | None, list[EndpointImpact]]:
    """The repaired record once every check passed (else None, the problems in `plan.manual`), and
    what writing it does to open connections: a repair that would revoke is a manual problem."""
    from gatekeeper.dal.tenant_stream import TenantImage

    tenant = plan.tenant
    if tenant is not None:
        tenant = _repair_checks(gk, tenant, plan.fixes, plan.manual)
    if tenant is None or plan.manual:
        return tenant, []
    change = _tenant_change(plan.tenant_id, TenantImage.read(plan.tenant_id, raw), _image(tenant))
    impacts = impact.tenant_impact(gk, [change])
    closing = impact.revoked(impacts)
    if closing:
        plan.manual.append(
            f"the repaired record would revoke or reject {len(closing)} open endpoint connection(s) "
            f"({', '.join(i.vpc_endpoint_id for i in closing)}): a repair never takes access away — "
            "correct the record in the DynamoDB console so it says what it allowed"
        )
    return tenant, impacts


def _show_repair(plan: RecordRepair, impacts: list[EndpointImpact]) -> None:
    say(f"tenant {plan.tenant_id}: the stored record does not validate")
    for fix in plan.fixes:
        say(f"  fix     {fix.field}: {fix.problem} → {fix.fix}")
    for problem in plan.manual:
        say(f"  manual  {problem}")
    if not plan.manual:
        impact.show(impacts)


def _repair_checks(gk: Gatekeeper, tenant: Tenant, fixes: list[Fix], manual: list[str]) -> Tenant | None:
    """What the stored record alone cannot tell: its template and overrides (normalised as `add`
    stores them), and that no other tenant claims its accounts."""
    from gatekeeper.dal.tenant_repair import Fix

    try:
        checked = _validator(gk).check(tenant)
    except Exception as exc:
        message = describe_error(exc)
        if message is None:
            raise
        manual.append(message)
        return None
    if checked.parameters != tenant.parameters:
        fixes.append(Fix("parameters", "overrides not stored as their types", str(checked.parameters)))
    for account in sorted(checked.accounts()):
        owner = gk.tenants.owner_of(account)
        if owner is not None and owner != checked.tenant_id:
            manual.append(
                f"account {account} is claimed by tenant {owner}: a principal belongs to one tenant — if it "
                f"is {owner}'s, take it off this record's principals in the DynamoDB console"
            )
    return checked


# -- remove -------------------------------------------------------------------------------------
@app.command(
    epilog=examples(
        "gatekeeper tenants remove initech --dry-run   # the endpoints it would revoke",
        "gatekeeper tenants remove initech --yes --json",
    )
)
def remove(
    ctx: typer.Context,
    tenant_id: TenantId,
    *,
    expected_version: ExpectedVersion = None,
    dry_run: DryRun = False,
    yes: YesOption = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Remove a tenant and release its accounts' claims: new requests from its accounts are
    unknown principals, and the tenant sync revokes its open connections. Lists them and asks first
    (--dry-run to only look, --yes for scripts). A record that no longer validates is fixed with
    `gatekeeper tenants repair`, which revokes nothing; removing it (given --expected-version)
    revokes like any removal."""
    from gatekeeper.dal.tenant_stream import TenantImage
    from gatekeeper.models.errors import TenantInvalid

    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    try:
        current = _read(gk, tenant_id, expected_version)
        version, name, before = current.version, current.display_name, _image(current)
    except TenantInvalid:
        if expected_version is None:
            raise
        version, name = expected_version, "invalid record"
        before = TenantImage.read(tenant_id, gk.tenants.raw(tenant_id))
    if not dry_run:
        _prepare_removal(gk, tenant_id, version)
    impacts = impact.tenant_impact(gk, [_tenant_change(tenant_id, before, None)])
    document = {"tenant_id": tenant_id, "version": version, "endpoints": impact.documents(impacts)}
    if dry_run:
        if not render.human:
            render.emit({"dry_run": True, "action": "remove", **document})
        else:
            say(f"- remove {tenant_id} (v{version}, {name})")
            impact.show(impacts)
            say("dry run: nothing written")
        return
    closing = impact.revoked(impacts)
    if not yes:
        for line in impact.lines(impacts):
            typer.echo(line, err=True)
    impact.confirm(
        f"Remove tenant {tenant_id} ({name}): revokes or rejects {len(closing)} open endpoint "
        "connection(s). Continue?",
        yes,
    )
    gk.tenants.remove(tenant_id, version)
    if not render.human:
        render.emit({"action": "removed", **document})
        return
    if name == "invalid record":
        say(f"removed the invalid record of {tenant_id}; its accounts stay claimed for {tenant_id}")
    else:
        say(f"removed tenant {tenant_id} (was version {version}); its accounts are unclaimed")
    _followed(tenant_id, impacts)


def _prepare_removal(gk: Gatekeeper, tenant_id: str, version: int) -> None:
    """The version check of the removal, before the prompt: a stale version is refused first."""
    from gatekeeper.dal.tenants import changed_since_read
    from gatekeeper.models.errors import TenantConflict, TenantInvalid

    try:
        current: int | None = gk.tenants.get(tenant_id).version
    except TenantInvalid:
        return  # its version cannot be read: the store's condition decides
    if current != version:
        raise TenantConflict(changed_since_read(tenant_id))


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
    impacts = impact.tenant_impact(
        gk, [_tenant_change(c.tenant_id, _image(c.current), _image(c.desired)) for c in plan.writes]
    )
    if not dry_run:
        _confirm_import(plan.removals, impacts, yes)
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
    _report_import(plan.changes, impacts, dry_run, render)


def _confirm_import(removals: list[Change], impacts: list[EndpointImpact], yes: bool) -> None:
    """An import that removes tenants or revokes endpoints asks first, listing them (or --yes)."""
    if not (removals or impact.revoked(impacts)) or yes:
        return
    for line in impact.lines(impacts):
        typer.echo(line, err=True)
    removed = ", ".join(c.tenant_id for c in removals)
    pruned = f"--prune removes {removed}; " if removed else ""
    impact.confirm(
        f"{pruned}the import revokes or rejects {len(impact.revoked(impacts))} open endpoint "
        "connection(s). Continue?",
        yes,
    )


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


def _report_import(
    changes: list[Change], impacts: list[EndpointImpact], dry_run: bool, render: Rendering
) -> None:
    counts = {
        a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "remove", "unchanged")
    }
    if not render.human:
        render.emit(
            {
                "dry_run": dry_run,
                "summary": counts,
                "changes": [c.document() for c in changes],
                "endpoints": impact.documents(impacts),
            }
        )
        return
    for change in changes:
        if change.action != "unchanged":
            for line in change.lines():
                say(line)
    if impacts or dry_run:
        impact.show(impacts)
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
