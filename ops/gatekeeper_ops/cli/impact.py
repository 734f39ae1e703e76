"""Before a write takes access away: which endpoints it revokes or re-decides, and the confirmation.

One plan serves the dry run and the write (`gatekeeper.logic.tenant_impact`): the connections are
read in one paginated Describe for every managed service, evaluated by the core's pure rules, shown,
and — for a real run that revokes anything — confirmed with their count first, or `--yes`. A
prompt cannot be answered without a terminal: then the command refuses (exit 2) and names `--yes`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

from gatekeeper_ops.cli.context import Gatekeeper
from gatekeeper_ops.cli.output import say

if TYPE_CHECKING:
    from gatekeeper.dal.tenant_stream import TenantChange
    from gatekeeper.logic.tenant_impact import EndpointImpact

EXIT_NEEDS_YES = 2


def tenant_impact(gk: Gatekeeper, changes: Sequence[TenantChange]) -> list[EndpointImpact]:
    """What these tenant writes, applied together, do to the open connections of their accounts."""
    from gatekeeper.logic.tenant_impact import tenant_change_impact, touched_accounts
    from gatekeeper.models.connection import OPEN_STATES, PENDING_ACCEPTANCE
    from gatekeeper.models.identifiers import now_utc

    accounts = touched_accounts(changes)
    if not accounts or not gk.stack.managed_services:
        return []
    connections = [
        c
        for c in gk.connections(gk.stack.managed_services, sorted(OPEN_STATES))
        if c.vpc_endpoint_owner in accounts
    ]
    waiting = [c.vpc_endpoint_id for c in connections if c.vpc_endpoint_state == PENDING_ACCEPTANCE]
    states = gk.decisions.states(waiting) if waiting else {}
    held = {endpoint for endpoint, state in states.items() if state.status == "held"}
    return tenant_change_impact(changes, connections, held, now_utc())


def documents(impacts: Sequence[EndpointImpact]) -> list[dict[str, Any]]:
    return [impact.document() for impact in impacts]


def summary(impacts: Sequence[EndpointImpact]) -> str:
    """`2 revoked, 1 rejected, 1 re-decided` (or `none revoked`)."""
    counts = {
        label: sum(1 for i in impacts if i.action == action)
        for action, label in (
            ("revoke", "revoked"),
            ("reject", "rejected"),
            ("re-decide", "re-decided"),
            ("differs", "decided differently"),
        )
    }
    shown = ", ".join(f"{n} {label}" for label, n in counts.items() if n)
    return shown or "none revoked"


def lines(impacts: Sequence[EndpointImpact]) -> list[str]:
    """The endpoints, one a line: action, id, owner, service, state, tenant, why."""
    if not impacts:
        return ["endpoints: none revoked or re-decided"]
    rows = [f"endpoints: {summary(impacts)}"]
    for i in impacts:
        rows.append(
            f"  {i.action:<10} {i.vpc_endpoint_id}  owner {i.owner}  {i.service_id}  {i.state}  "
            f"tenant {i.tenant_id or '-'}: {i.why}"
        )
    return rows


def show(impacts: Sequence[EndpointImpact]) -> None:
    for line in lines(impacts):
        say(line)


def revoked(impacts: Sequence[EndpointImpact]) -> list[EndpointImpact]:
    return [i for i in impacts if i.revokes]


def confirm_revocations(impacts: Sequence[EndpointImpact], what: str, yes: bool) -> None:
    """Ask before a write that revokes (the endpoints listed on stderr first); nothing to ask when it
    revokes nothing."""
    closing = revoked(impacts)
    if not closing:
        return
    if not yes:
        for line in lines(closing):
            typer.echo(line, err=True)
    confirm(
        f"{what} revokes or rejects {len(closing)} open endpoint connection(s) (listed above). Continue?", yes
    )


def confirm(question: str, yes: bool) -> None:
    """A [y/N] prompt before the write, or `--yes`. Without a terminal to answer it: exit 2, nothing
    written — a script must say --yes (and can preview with --dry-run)."""
    if yes:
        return
    if not interactive():
        plain = question.removesuffix(" Continue?").removesuffix(".")
        typer.echo(
            f"error: {plain} — not confirmed: no terminal to ask on; nothing written. Preview with "
            "--dry-run, then repeat with --yes",
            err=True,
        )
        raise typer.Exit(EXIT_NEEDS_YES)
    typer.confirm(question, abort=True, err=True)


def interactive() -> bool:
    """Whether a person can answer a prompt (tests stand in for one)."""
    return sys.stdin.isatty()
