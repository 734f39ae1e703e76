"""`gatekeeper decisions`: the audit trail — every decision, who or what made it, and why."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from gatekeeper_ops.cli.context import CliError, gatekeeper
from gatekeeper_ops.cli.help import examples
from gatekeeper_ops.cli.output import (
    JsonOption,
    OutputOption,
    QueryOption,
    rendering,
    say,
    styled_decision,
    table,
    timestamp,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from gatekeeper.dal.decisions import DecisionStore
    from gatekeeper.models.decision import Decision

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
OUTCOMES = ("accepted", "rejected", "held", "revoked")


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`24h`, `7d`, `30m`, `2w` ago, or an ISO date/time (UTC when no zone is given)."""
    from gatekeeper.models.identifiers import now_utc

    match = _DURATION.match(value.strip().lower())
    if match:
        return (now or now_utc()) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"--since {value!r} is neither a duration (30m, 24h, 7d, 2w) nor an ISO date/time"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def register(app: typer.Typer) -> None:
    app.command(
        epilog=examples(
            "gatekeeper decisions --since 24h",
            "gatekeeper decisions --tenant acme --since 2026-01-01",
            "gatekeeper decisions --endpoint vpce-0a1b2c3d4e5f67890 --explain",
            "gatekeeper decisions --decision held --since 7d --output json",
        )
    )(decisions)


def decisions(
    ctx: typer.Context,
    *,
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Only this tenant's decisions.")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", "-e", help="Only this endpoint (vpce-…).")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Duration (24h, 7d) or ISO date/time.")] = None,
    outcome: Annotated[
        str | None, typer.Option("--decision", "-d", help="Only accepted, rejected, held or revoked.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest N decisions (0 = all).")] = 100,
    explain: Annotated[
        bool, typer.Option("--explain", help="After the table, each decision's explanation.")
    ] = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """The audit trail: every decision (accepted, rejected, held, revoked) with tenant, reasons,
    template version and actor (auto, reconcile or operator:<arn>), newest first."""
    render = rendering(output, query, json_output)
    if outcome is not None and outcome not in OUTCOMES:
        raise CliError(f"--decision {outcome!r} is not one of {', '.join(OUTCOMES)}")
    start = parse_since(since) if since else None
    gk = gatekeeper(ctx)
    found = _read(gk.decisions, endpoint=endpoint, tenant=tenant, start=start)
    selected = _newest(_matching(found, tenant=tenant, start=start, outcome=outcome), limit)
    if not selected and tenant is not None:
        gk.require_tenant(tenant)
    if not render.human:
        render.emit([d.model_dump(mode="json") for d in selected])
        return
    if not selected:
        say("no decisions match")
        return
    table(
        None,
        ("decided at", "endpoint", "tenant / owner", "decision", "reasons", "template", "actor"),
        [_row(d) for d in selected],
        wrap=("actor",),
    )
    if explain:
        _explain(selected)


def _read(
    store: DecisionStore, *, endpoint: str | None, tenant: str | None, start: datetime | None
) -> Iterable[Decision]:
    """One query, on the narrowest index the options allow."""
    if endpoint is not None:
        return store.decisions_for_endpoint(endpoint)
    if tenant is not None:
        return store.decisions_for_tenant(tenant, start)
    return store.all_decisions(start)


def _matching(
    found: Iterable[Decision], *, tenant: str | None, start: datetime | None, outcome: str | None
) -> list[Decision]:
    return [
        d
        for d in found
        if (tenant is None or d.tenant_id == tenant)
        and (start is None or d.decided_at >= start)
        and (outcome is None or d.outcome == outcome)
    ]


def _newest(decisions: list[Decision], limit: int) -> list[Decision]:
    """Newest first; the first `limit` of them (0: all)."""
    ordered = sorted(decisions, key=lambda d: d.decided_at, reverse=True)
    return ordered[:limit] if limit > 0 else ordered


def _explain(decisions: list[Decision]) -> None:
    for decision in decisions:
        say(
            f"\n{decision.vpc_endpoint_id} {decision.outcome} at {timestamp(decision.decided_at)} "
            f"({decision.trigger}, {decision.actor})"
        )
        for line in decision.explanation:
            say(f"  {line}")


def _row(decision: Decision) -> tuple[object, ...]:
    from rich.text import Text

    template = f"{decision.template} v{decision.template_version}" if decision.template else None
    return (
        decision.decided_at,
        decision.vpc_endpoint_id,
        decision.tenant_id or decision.vpc_endpoint_owner,
        styled_decision(decision.outcome),
        Text(", ".join(decision.reasons) or "-"),
        template,
        decision.actor,
    )
