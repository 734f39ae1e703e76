"""`gatekeeper templates …`: endpoint-policy templates — versioned, immutable once pushed.

`validate` needs no AWS access: it runs the same parser the decision path uses, and reports every
problem with the statement and condition key at fault.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gatekeeper_ops.cli import impact
from gatekeeper_ops.cli.context import CliError, Gatekeeper, describe_error, gatekeeper
from gatekeeper_ops.cli.help import CommandGroup, examples
from gatekeeper_ops.cli.output import (
    JsonOption,
    OutputOption,
    QueryOption,
    Rendering,
    YesOption,
    console,
    rendering,
    say,
    table,
    timestamp,
)

if TYPE_CHECKING:
    from gatekeeper.dal.templates import StoredTemplate
    from gatekeeper.logic.tenant_impact import EndpointImpact
    from gatekeeper.models.tenant import Tenant
    from gatekeeper.policy import PolicyTemplate

app = typer.Typer(
    cls=CommandGroup,
    rich_markup_mode=None,
    help="Endpoint-policy templates (IAM grammar): list, show, validate, push, diff.",
    no_args_is_help=True,
)

TemplateFile = Annotated[Path, typer.Argument(help="Template document (JSON).", dir_okay=False)]


def read_document(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    if not isinstance(document, dict):
        raise CliError(
            f"{path}: a template is a JSON object with Name, Statement (and Parameters, Description)"
        )
    return document


# The order an IAM policy is read in; other keys (condition operators, keys) alphabetically.
_KEY_ORDER = {
    key: rank
    for rank, key in enumerate(
        ("Name", "Description", "Parameters", "Statement", "Sid", "Effect", "Condition", "Type", "Default")
    )
}


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _ordered(value[k]) for k in sorted(value, key=lambda k: (_KEY_ORDER.get(k, 99), k))}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def _canonical(document: dict[str, Any]) -> str:
    """One text per document, whatever key order it was written in: for show, diff and equality."""
    return json.dumps(_ordered(document), indent=2, ensure_ascii=False) + "\n"


def _summary(template: PolicyTemplate) -> str:
    parameters = ", ".join(
        f"{name} ({spec.type}{'' if spec.default is None else f', default {_plain(spec.default)}'})"
        for name, spec in template.parameters.items()
    )
    return f"{len(template.statements)} statement(s); parameters: {parameters or 'none'}"


def _plain(value: Any) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def _problems(stored: StoredTemplate) -> list[str]:
    from gatekeeper.policy import TemplateInvalid

    try:
        stored.parse()
    except TemplateInvalid as exc:
        return exc.problems
    return []


# -- list / show --------------------------------------------------------------------------------
@app.command(
    name="list",
    epilog=examples("gatekeeper templates list", "gatekeeper templates list standard   # every version"),
)
def list_templates(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="List every version of this template.")] = None,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """List templates (latest version of each, and how many tenants use it), or every version of one."""
    from gatekeeper.models.errors import TemplateNotFound
    from gatekeeper.models.tenant import Tenant

    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    if name is not None:
        stored = sorted(gk.templates.versions(name), key=lambda t: t.version)
        if not stored:
            raise TemplateNotFound(f"no template {name!r}; push it with `gatekeeper templates push`")
    else:
        stored = gk.templates.latest()
    users: dict[str, int] = {}
    for tenant in gk.tenants.list():
        if isinstance(tenant, Tenant):
            users[tenant.template] = users.get(tenant.template, 0) + 1
    documents = [
        {
            "name": t.name,
            "version": t.version,
            "created_by": t.created_by,
            "created_at": t.created_at,
            "description": t.document.get("Description", ""),
            "tenants": users.get(t.name, 0),
            "problems": _problems(t),
        }
        for t in stored
    ]
    if not render.human:
        render.emit(documents)
        return
    table(
        None,
        ("template", "version", "tenants", "valid", "created by", "created at", "description"),
        [
            (
                d["name"],
                d["version"],
                d["tenants"],
                "no" if d["problems"] else "yes",
                d["created_by"],
                timestamp(d["created_at"]),
                d["description"],
            )
            for d in documents
        ],
        wrap=("created by", "description"),
    )


@app.command(
    epilog=examples(
        "gatekeeper templates show standard",
        "gatekeeper templates show standard --version 1 --query document --output json",
    )
)
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Template name.")],
    *,
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="A stored version (default: latest).")
    ] = None,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a stored template version: who pushed it, when, and its document."""
    render = rendering(output, query, json_output)
    stored = gatekeeper(ctx).templates.get(name, version)
    problems = _problems(stored)
    if not render.human:
        render.emit(
            {
                "name": stored.name,
                "version": stored.version,
                "created_by": stored.created_by,
                "created_at": stored.created_at,
                "valid": not problems,
                "problems": problems,
                "document": stored.document,
            }
        )
        return
    pushed = f"pushed by {stored.created_by} at {timestamp(stored.created_at)}"
    say(f"template {stored.name} v{stored.version} — {pushed}")
    for problem in problems:
        say(f"  INVALID: {problem}")
    typer.echo(_canonical(stored.document), nl=False)


# -- validate -----------------------------------------------------------------------------------
@app.command(
    epilog=examples(
        "gatekeeper templates validate policy-templates/standard.json",
        "gatekeeper templates validate *.json --output json",
    )
)
def validate(
    files: Annotated[list[Path], typer.Argument(help="Template documents (JSON).", dir_okay=False)],
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Validate template files offline (no AWS access). Every problem is reported with the
    statement and condition key at fault; the exit status is 1 if any file is invalid."""
    from gatekeeper.policy import TemplateInvalid, parse_template

    render = rendering(output, query, json_output)
    results: list[dict[str, Any]] = []
    for path in files:
        document = read_document(path)
        try:
            template = parse_template(document)
        except TemplateInvalid as exc:
            results.append(
                {"file": str(path), "name": exc.template, "valid": False, "problems": exc.problems}
            )
        else:
            results.append(
                {"file": str(path), "name": template.name, "valid": True, "summary": _summary(template)}
            )
    if not render.human:
        render.emit(results)
    else:
        for result in results:
            if result["valid"]:
                say(f"ok       {result['file']}: template {result['name']} — {result['summary']}")
            else:
                count = len(result["problems"])
                say(f"INVALID  {result['file']}: template {result['name'] or '?'} — {count} problem(s):")
                for problem in result["problems"]:
                    say(f"           - {problem}")
    invalid = [r["file"] for r in results if not r["valid"]]
    if invalid:
        raise CliError(f"{len(invalid)} of {len(results)} template file(s) invalid: {', '.join(invalid)}")


# -- push ---------------------------------------------------------------------------------------
@app.command(
    epilog=examples(
        "gatekeeper templates push policy-templates/*.json",
        "gatekeeper templates diff standard standard.json && gatekeeper templates push standard.json",
    )
)
def push(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Template documents (JSON).", dir_okay=False)],
    *,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Push even if tenants' overrides no longer fit (their requests are held)."
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Run every check; show the open endpoint connections whose decision the new versions "
            "change; push nothing.",
        ),
    ] = False,
    yes: YesOption = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Validate templates and store each as its next version (stored versions never change); a
    document identical to the latest version is skipped. All files are checked before anything is
    pushed. Tenants that do not pin a version use the new one for their next request: a push that
    changes how their open connections would be decided lists them and asks first (--yes)."""
    from gatekeeper.models.errors import TemplateNotFound
    from gatekeeper.models.tenant import Tenant
    from gatekeeper.policy import TemplateInvalid, parse_template

    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    parsed: list[tuple[dict[str, Any], PolicyTemplate]] = []
    for path in paths:
        document = read_document(path)
        try:
            parsed.append((document, parse_template(document)))
        except TemplateInvalid as exc:
            raise CliError(f"{describe_error(exc)} ({path}; nothing pushed)") from None
    names = [template.name for _, template in parsed]
    if len(set(names)) != len(names):
        raise CliError(f"two files hold the same template name ({', '.join(names)}); nothing pushed")
    tenants = [t for t in gk.tenants.list() if isinstance(t, Tenant)]
    results: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], dict[str, Any]]] = []
    refusals: list[str] = []
    for document, template in parsed:
        try:
            latest: StoredTemplate | None = gk.templates.get(template.name)
        except TemplateNotFound:
            latest = None
        if latest is not None and _canonical(latest.document) == _canonical(document):
            results.append({"action": "unchanged", "name": latest.name, "version": latest.version})
            continue
        broken = _broken_tenants(tenants, template)
        if broken and not force:
            refusals.append(
                f"{template.name} would break tenants whose overrides no longer fit: {'; '.join(broken)}"
            )
        result: dict[str, Any] = {"action": "pushed", "name": template.name, "broken_tenants": broken}
        results.append(result)
        pending.append((document, result))
    if refusals:
        raise CliError(
            f"{' | '.join(refusals)} — fix their overrides (`gatekeeper tenants update … --param`), pin them "
            "to the current version, or pass --force (their requests would be held); nothing pushed"
        )
    impacts = _decisions_changed(gk, tenants, [parsed[names.index(r["name"])][1] for _, r in pending])
    if dry_run:
        for _, result in pending:
            result["action"] = "would push"
    else:
        if impacts:
            for line in impact.lines(impacts):
                typer.echo(line, err=True)
            impact.confirm(
                f"The push changes how {len(impacts)} open endpoint connection(s) would be decided "
                "(listed above). Continue?",
                yes,
            )
        for document, result in pending:
            stored = gk.templates.push(document, gk.actor)
            result.update(version=stored.version, created_by=stored.created_by, created_at=stored.created_at)
    _report_push(results, impacts, dry_run=dry_run, render=render)


def _report_push(
    results: list[dict[str, Any]], impacts: list[EndpointImpact], *, dry_run: bool, render: Rendering
) -> None:
    if not render.human:
        render.emit({"dry_run": dry_run, "templates": results, "endpoints": impact.documents(impacts)})
        return
    for result in results:
        if result["action"] == "unchanged":
            say(f"template {result['name']} v{result['version']} is identical; nothing pushed")
        elif dry_run:
            say(f"would push template {result['name']} as its next version")
        else:
            say(f"pushed template {result['name']} v{result['version']} (by {result['created_by']})")
    if impacts or dry_run:
        impact.show(impacts)
    if dry_run:
        say("dry run: nothing pushed")


def _decisions_changed(
    gk: Gatekeeper, tenants: list[Tenant], templates: list[PolicyTemplate]
) -> list[EndpointImpact]:
    """The open connections of the tenants following these templates (no pinned version) whose
    decision differs under the new version from the latest stored one: one Describe for all."""
    from gatekeeper.logic.tenant_impact import template_change_impact
    from gatekeeper.models.connection import OPEN_STATES
    from gatekeeper.models.errors import TemplateNotFound
    from gatekeeper.models.identifiers import now_utc
    from gatekeeper.policy import TemplateInvalid

    followers = {
        t.name: {a: tenant for tenant in tenants if tenant.template == t.name and not tenant.template_version
                 for a in tenant.accounts()}
        for t in templates
    }  # fmt: skip
    if not any(followers.values()) or not gk.stack.managed_services:
        return []
    connections = gk.connections(gk.stack.managed_services, sorted(OPEN_STATES))
    at, impacts = now_utc(), []
    for template in templates:
        try:
            old: PolicyTemplate | None = gk.templates.get(template.name).parse()
        except (TemplateNotFound, TemplateInvalid):
            old = None
        impacts += template_change_impact(
            old,
            template,
            followers[template.name],
            connections,
            at=at,
            service_region=gk.stack.region,
            default_action=gk.stack.default_action,
        )
    return impacts


def _broken_tenants(tenants: list[Tenant], template: PolicyTemplate) -> list[str]:
    from gatekeeper.policy import ParameterInvalid, resolve_parameters

    broken: list[str] = []
    for tenant in tenants:
        if tenant.template != template.name or tenant.template_version:
            continue
        try:
            resolve_parameters(template, tenant.parameters)
        except ParameterInvalid as exc:
            broken.append(f"{tenant.tenant_id} ({', '.join(exc.problems)})")
    return broken


# -- diff ---------------------------------------------------------------------------------------
@app.command(
    epilog=examples(
        "gatekeeper templates diff standard                      # latest vs the version before",
        "gatekeeper templates diff standard --from 1 --to 3",
        "gatekeeper templates diff standard policy-templates/standard.json   # stored latest vs a local file",
    )
)
def diff(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Template name.")],
    path: Annotated[Path | None, typer.Argument(help="Compare with this local file.", dir_okay=False)] = None,
    *,
    from_version: Annotated[
        int | None, typer.Option("--from", help="Older version (default: the one before --to).")
    ] = None,
    to_version: Annotated[int | None, typer.Option("--to", help="Newer version (default: latest).")] = None,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show what changed between two stored versions, or between a stored version and a file."""
    render = rendering(output, query, json_output)
    templates = gatekeeper(ctx).templates
    if path is not None:
        if to_version is not None:
            raise CliError(
                "--to does not apply when comparing with a file; use --from to pick the stored version"
            )
        old = templates.get(name, from_version)
        old_label, old_text = f"{name} v{old.version}", _canonical(old.document)
        new_label, new_text = str(path), _canonical(read_document(path))
    else:
        new = templates.get(name, to_version)
        if from_version is None and new.version == 1:
            raise CliError(
                f"{name} has only version 1; compare with a file: `gatekeeper templates diff {name} FILE`"
            )
        old = templates.get(name, from_version if from_version is not None else new.version - 1)
        old_label, old_text = f"{name} v{old.version}", _canonical(old.document)
        new_label, new_text = f"{name} v{new.version}", _canonical(new.document)
    lines = list(
        difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), old_label, new_label, lineterm="")
    )
    if not render.human:
        render.emit({"from": old_label, "to": new_label, "changed": bool(lines), "diff": lines})
        return
    if not lines:
        say(f"{old_label} and {new_label} are identical")
        return
    from rich.text import Text

    out = console()
    for line in lines:
        style = (
            "green"
            if line.startswith("+")
            else "red"
            if line.startswith("-")
            else "cyan"
            if line.startswith("@")
            else ""
        )
        out.print(Text(line, style=style), soft_wrap=True)
