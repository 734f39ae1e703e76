"""`gatekeeper report usage|orphans`: who uses the managed endpoint services and how much, and
which open endpoints nobody owns or uses — with the tenant id on every row (for tag-based
billing and chargeback). Reads EC2, the stack's tables and CloudWatch; writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from gatekeeper_ops.cli.context import CliError, Gatekeeper, gatekeeper
from gatekeeper_ops.cli.decisions import parse_since
from gatekeeper_ops.cli.help import CommandGroup, examples
from gatekeeper_ops.cli.output import (
    JsonOption,
    OutputOption,
    QueryOption,
    Rendering,
    age,
    rendering,
    say,
    table,
)
from gatekeeper_ops.cli.usage import (
    Endpoint,
    endpoint_usage,
    fetch,
    idle_queries,
    inventory,
    orphans,
    tenant_usage,
    usage_queries,
)

app = typer.Typer(
    cls=CommandGroup,
    rich_markup_mode=None,
    help="Reports: usage per tenant from the AWS/PrivateLinkServices metrics, and orphaned endpoints.",
    no_args_is_help=True,
)


ServiceOption = Annotated[
    str | None, typer.Option("--service", "-s", help="Only this managed service (default: all of them).")
]


def _open_endpoints(gk: Gatekeeper, service: str | None) -> list[Endpoint]:
    from gatekeeper.models.connection import ACCEPTED_STATES

    services = gk.stack.managed_services
    if service is not None:
        if service not in services:
            raise CliError(f"stack {gk.stack.name} does not manage {service}; managed: {', '.join(services)}")
        services = (service,)
    connections = gk.connections(services, sorted(ACCEPTED_STATES))
    ids = [c.vpc_endpoint_id for c in connections]
    states = gk.decisions.states(ids) if ids else {}
    return inventory(connections, gk.tenants.directory(), states)


def _emit(
    rows: list[dict[str, Any]],
    render: Rendering,
    *,
    columns: dict[str, str],
    empty: str,
    wrap: tuple[str, ...] = (),
) -> None:
    """The report's rows: a table of `columns` for people, else the rows themselves (a list)."""
    if not render.human:
        render.emit(rows)
        return
    if not rows:
        say(empty)
        return
    table(
        None,
        list(columns.values()),
        [[_human(key, row.get(key)) for key in columns] for row in rows],
        wrap=wrap,
    )


def _human(key: str, value: Any) -> Any:
    if key == "tenant_id" and value is None:
        return "(none)"
    if key == "bytes_processed" and isinstance(value, int):
        return _bytes(value)
    if key in ("created_at", "last_traffic") and isinstance(value, datetime):
        return f"{age(value)} ago"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)  # pragma: no cover - the loop always returns


# -- usage --------------------------------------------------------------------------------------
@app.command(
    epilog=examples(
        "gatekeeper report usage --since 30d",
        "gatekeeper report usage --since 2026-11-01 --until 2026-12-01 --output csv > november.csv",
        "gatekeeper report usage --by endpoint --tenant acme",
        "gatekeeper report usage --query '[?bytes_processed > `0`].tenant_id'",
    )
)
def usage(
    ctx: typer.Context,
    *,
    since: Annotated[
        str, typer.Option("--since", help="Start: a duration (24h, 7d) or ISO date/time.")
    ] = "7d",
    until: Annotated[str | None, typer.Option("--until", help="End: ISO date/time (default: now).")] = None,
    by: Annotated[
        str, typer.Option("--by", help="tenant (one row per tenant) or endpoint (one row per endpoint).")
    ] = "tenant",
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Only this tenant.")] = None,
    service: ServiceOption = None,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Per tenant (or per endpoint): open endpoints, bytes processed, new connections, peak active
    connections and resets sent over the period, from the AWS/PrivateLinkServices metrics
    (dimensions Service Id + VPC Endpoint Id). Endpoints that no tenant claims are listed under
    tenant (none). Cross-Region consumers have no metrics: AWS publishes none for them."""
    from gatekeeper.models.identifiers import now_utc

    render = rendering(output, query, json_output)
    if by not in ("tenant", "endpoint"):
        raise CliError(f"--by {by!r} is not one of tenant, endpoint")
    end = parse_since(until) if until else now_utc()
    start = parse_since(since, now=end)
    if start >= end:
        raise CliError(f"--since {since} is not before --until {until or 'now'}")
    gk = gatekeeper(ctx)
    endpoints = [e for e in _open_endpoints(gk, service) if tenant is None or e.tenant_id == tenant]
    if not endpoints and tenant is not None:
        gk.require_tenant(tenant)
    queries = usage_queries(endpoints, start, end)
    series = fetch(gk.client("cloudwatch"), queries, start, end)
    rows = endpoint_usage(endpoints, series, gk.stack.region)
    if by == "endpoint":
        columns = {
            "tenant_id": "tenant",
            "vpc_endpoint_id": "endpoint",
            "service_id": "service",
            "owner": "owner",
            "region": "region",
            "state": "state",
            "bytes_processed": "bytes",
            "new_connections": "new conns",
            "peak_active_connections": "peak active",
            "resets_sent": "resets",
        }
        _emit(rows, render, columns=columns, empty="no open endpoints")
        return
    tenants = tenant_usage(rows)
    columns = {
        "tenant_id": "tenant",
        "endpoints": "endpoints",
        "services": "services",
        "bytes_processed": "bytes",
        "new_connections": "new conns",
        "peak_active_connections": "peak active",
        "resets_sent": "resets",
    }
    _emit(tenants, render, columns=columns, empty="no open endpoints")
    if render.human and tenants:
        say(f"{start:%Y-%m-%d %H:%M}Z to {end:%Y-%m-%d %H:%M}Z; peak active: the sum of endpoint peaks")


# -- orphans ------------------------------------------------------------------------------------
@app.command(
    name="orphans",
    epilog=examples(
        "gatekeeper report orphans",
        "gatekeeper report orphans --idle-days 30 --output csv",
        "gatekeeper report orphans --query \"[?contains(reasons, 'no-tenant')].vpc_endpoint_id\"",
    ),
)
def orphans_report(
    ctx: typer.Context,
    *,
    idle_days: Annotated[
        int, typer.Option("--idle-days", min=1, max=455, help="No traffic for this many days is idle.")
    ] = 14,
    service: ServiceOption = None,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Accepted endpoints that look abandoned or unexplained: no tenant claims their account
    (no-tenant), the gatekeeper has no decision for them (no-decision — accepted outside it), or
    they carried no traffic for --idle-days (idle; since creation if younger — see its age).
    Revoke with `gatekeeper reject <vpce-id> --reason …` after talking to the tenant."""
    from gatekeeper.models.identifiers import now_utc

    render = rendering(output, query, json_output)
    now = now_utc()
    start = now - timedelta(days=idle_days)
    gk = gatekeeper(ctx)
    endpoints = _open_endpoints(gk, service)
    traffic = fetch(gk.client("cloudwatch"), idle_queries(endpoints, start, now), start, now)
    rows = orphans(endpoints, traffic, idle_days=idle_days, now=now, service_region=gk.stack.region)
    columns = {
        "tenant_id": "tenant",
        "vpc_endpoint_id": "endpoint",
        "service_id": "service",
        "owner": "owner",
        "state": "state",
        "created_at": "age",
        "reasons": "reasons",
        "detail": "detail",
    }
    _emit(
        rows,
        render,
        columns=columns,
        empty=f"no orphans among {len(endpoints)} open endpoint(s)",
        wrap=("detail",),
    )
