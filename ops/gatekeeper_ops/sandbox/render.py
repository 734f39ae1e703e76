"""What the demo shows a person: the live table of requests, the notifications subscribers got,
the summary, the load report and the environment that points tools at the emulated account."""

from __future__ import annotations

import json
import math
import shlex
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from gatekeeper_ops.local_lambda import Invocation
from gatekeeper_ops.sandbox.load import LoadReport
from gatekeeper_ops.sandbox.scenario import ScenarioOutcome, StepResult, SubscriberResult, why

DECISION_STYLE = {
    "accepted": "bold green",
    "rejected": "bold red",
    "held": "bold yellow",
    "revoked": "bold magenta",
}
DECISION_MARK = {"accepted": "✔", "rejected": "✘", "held": "⏸", "revoked": "⊘"}


def _function(logical_id: str) -> str:
    return logical_id.removesuffix("Function")


def decision_text(decision: str) -> Text:
    return Text(f"{DECISION_MARK.get(decision, '?')} {decision}", style=DECISION_STYLE.get(decision, "bold"))


def seconds(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def header(rows: Mapping[str, str], title: str = "vpce-gatekeeper sandbox") -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    for name, value in rows.items():
        grid.add_row(name, value)
    return Panel(grid, title=f"[bold]{title}[/]", title_align="left", border_style="cyan")


# ------------------------------------------------------------------------ the scenario table
def _request_cells(row: StepResult, service_names: Mapping[str, str]) -> tuple[str, str]:
    step = row.step
    service = f"{service_names.get(row.service_key or '', '?')}\n[dim]from {row.region}[/]"
    if step.is_request:
        return f"{row.tenant_id or '[italic]no tenant[/]'}\n[dim]{step.account}[/]", service
    return f"{row.tenant_id}\n[dim]tenant record[/]", service


def scenario_table(rows: Iterable[StepResult], service_names: Mapping[str, str]) -> Table:
    table = Table(title="Endpoint connection requests", title_justify="left", title_style="bold")
    table.add_column("#", justify="right", style="dim")
    table.add_column("Request", max_width=24)
    table.add_column("Tenant")
    table.add_column("Service")
    table.add_column("Decision", no_wrap=True)
    table.add_column("Reason", min_width=20, ratio=1)
    table.add_column("Latency", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for number, row in enumerate(rows, start=1):
        tenant, service = _request_cells(row, service_names)
        decision: RenderableType
        reason: RenderableType = ""
        latency, mark = "", ""
        if row.status == "waiting":
            decision = Text("·", style="dim")
        elif row.status == "requested":
            decision = Spinner("dots", text=Text(" deciding", style="dim"))
        elif row.refused is not None:
            decision = Text("⛔ refused", style="bold")
            reason = Text.assemble(
                (row.refused, "bold"),
                "\n",
                ("EC2 refused CreateVpcEndpoint: not an allowed principal", "dim"),
            )
        elif row.decision is None:
            decision = Text("none", style="bold red")
        else:
            decision = decision_text(row.decision.outcome)
            reason = Text.assemble(
                (", ".join(row.decision.reasons), "bold"), "\n", (why(row.decision), "dim")
            )
            latency = seconds(row.latency)
        if row.status == "decided":
            mark = "[green]✓[/]" if row.ok else "[bold red]✗[/]"
        table.add_row(str(number), row.step.title, tenant, service, decision, reason, latency, mark)
    return table


def problems_panel(problems: list[str]) -> Panel:
    body = "\n".join(f"[red]✗[/] {p}" for p in problems)
    return Panel(body, title="[bold red]Outcomes that differ from demo-seed.yaml[/]", border_style="red")


# ------------------------------------------------------------------------ notifications
def subscriber_table(result: SubscriberResult) -> Table:
    policy = json.dumps(result.subscriber.filter_policy, separators=(", ", ": "))
    table = Table(
        title=f"{result.subscriber.title}  [dim]SNS → SQS, filter policy {policy}[/]",
        title_justify="left",
        title_style="bold",
    )
    table.add_column("Endpoint", no_wrap=True)
    table.add_column("Tenant", no_wrap=True)
    table.add_column("Decision", no_wrap=True)
    table.add_column("Reasons", no_wrap=True)
    table.add_column("Template", no_wrap=True)
    table.add_column("Region", no_wrap=True)
    for document in result.received:
        template = document.get("template")
        version = document.get("template_version")
        table.add_row(
            str(document.get("vpc_endpoint_id")),
            str(document.get("tenant_id") or "—"),
            decision_text(str(document.get("decision"))),
            ", ".join(document.get("reasons") or []),
            f"{template} v{version}" if template else "—",
            str(document.get("vpc_endpoint_region") or "—"),
        )
    if not result.received:
        table.add_row("[dim]nothing received[/]", "", "", "", "", "")
    if result.problems:
        table.caption = "[red]" + "; ".join(result.problems) + "[/]"
    else:
        table.caption = (
            f"[green]✓ {len(result.received)} received, exactly the ones its filter lets through[/]"
        )
    table.caption_justify = "left"
    return table


def notifications(results: Iterable[SubscriberResult]) -> Group:
    return Group(*(subscriber_table(r) for r in results))


# ------------------------------------------------------------------------ summary
# Raised on purpose so that Lambda retries: EC2 not listing a notified endpoint yet (eventual
# consistency), or another invocation deciding the same endpoint. Not failures.
_RETRIED_BY_DESIGN = ("ConnectionNotVisible", "DecisionInProgress")


def _failures(errors: Sequence[str]) -> str:
    retried = sum(1 for e in errors if e.startswith(_RETRIED_BY_DESIGN))
    failed = len(errors) - retried
    said = f" · [red]{failed} failed[/]" if failed else " · none failed"
    if retried:
        why = "EC2 did not list the endpoint yet, or it was being decided"
        said += f" · [yellow]{retried} retried[/] [dim]({why})[/]"
    return said


def _rereads(count: int, *, slept: bool = True) -> str:
    """The decider's re-reads of a new endpoint EC2 did not list at the first read, in the same
    invocation (no retry)."""
    if not count:
        return ""
    why = "EC2 did not list the endpoint at once" + ("" if slept else "; pauses not slept here")
    return f" · [cyan]{count} re-read[/] [dim]({why})[/]"


def summary(
    outcome: ScenarioOutcome,
    *,
    invocations: Mapping[str, int],
    failed_invocations: Sequence[str],
    rereads: int = 0,
    dead_letters: Mapping[str, int],
    log_path: str,
    total_seconds: float,
) -> Panel:
    decided = [r for r in outcome.steps if r.decision is not None]
    counts = Counter(r.decision.outcome for r in decided if r.decision)
    latencies = [r.latency for r in decided if r.latency is not None]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    parts = [f"{len(decided)} decided"] + [
        f"[{DECISION_STYLE[d]}]{counts[d]} {d}[/]"
        for d in ("accepted", "rejected", "held", "revoked")
        if counts[d]
    ]
    refused = sum(1 for r in outcome.steps if r.refused is not None)
    if refused:
        parts.append(f"{refused} refused by EC2 (not an allowed principal)")
    grid.add_row("Requests", " · ".join(parts))
    if latencies:
        grid.add_row(
            "Latency",
            f"median {seconds(statistics.median(latencies))}, max {seconds(max(latencies))}  "
            "[dim](consumer's CreateVpcEndpoint → decision recorded and announced)[/]",
        )
    grid.add_row(
        "Handlers",
        " · ".join(f"{_function(name)} {count}" for name, count in sorted(invocations.items()))
        + _failures(failed_invocations)
        + _rereads(rereads),
    )
    grid.add_row(
        "Dead-letter queues",
        ", ".join(f"{name} {depth}" for name, depth in dead_letters.items())
        + (" [green](empty)[/]" if not any(dead_letters.values()) else " [red](not empty)[/]"),
    )
    grid.add_row("Handler logs", f"{log_path} [dim](Powertools JSON logs + EMF metrics)[/]")
    grid.add_row("Took", f"{total_seconds:.1f} s")
    problems = outcome.problems + [f"{name} holds {depth}" for name, depth in dead_letters.items() if depth]
    verdict = (
        "[bold green]✓ Every outcome is the one demo-seed.yaml expects[/]"
        if not problems
        else f"[bold red]✗ {len(problems)} outcome(s) differ from demo-seed.yaml[/]"
    )
    return Panel(
        Group(grid, Text(""), Text.from_markup(verdict)), title="[bold]Summary[/]", title_align="left"
    )


# ------------------------------------------------------------------------ load
def load_report(report: LoadReport, dead_letters: Mapping[str, int], log_path: str) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    outcomes = report.outcomes
    grid.add_row(
        "Requests",
        f"{len(report.requests)} from {len({r.consumer.account_id for r in report.requests})} "
        f"consumer accounts, ≤ {report.in_flight} in flight · "
        + " · ".join(f"[{DECISION_STYLE.get(d, 'bold red')}]{n} {d}[/]" for d, n in sorted(outcomes.items())),
    )
    grid.add_row(
        "Throughput",
        f"[bold]{report.per_second:.1f} decisions/s[/] ({len(report.decided)} in {report.seconds:.1f} s)",
    )
    grid.add_row(
        "Decision latency",
        f"p50 [bold]{seconds(report.percentile(50))}[/] · p90 {seconds(report.percentile(90))} · "
        f"p99 [bold]{seconds(report.percentile(99))}[/] · max {seconds(report.percentile(100))}",
    )
    per_call = [
        f"{_function(name)} {len(spent)} calls, {seconds(statistics.fmean(spent))} each"
        for name, spent in sorted(report.durations.items())
    ]
    grid.add_row(
        "Handlers",
        " · ".join(per_call) + _failures(report.invocation_errors) + _rereads(report.rereads, slept=False),
    )
    if report.durations:
        busiest = max(report.durations, key=lambda name: sum(report.durations[name]))
        first, last = report.work_trend(busiest)
        growing = last > 1.5 * first
        grid.add_row(
            "Work per call",
            f"{_function(busiest)}: {seconds(first)} in the first tenth → {seconds(last)} in the last"
            + (
                " [dim](moto copies whole DynamoDB tables on every transaction, so this grows with "
                "their size; see docs/quickstart.md)[/]"
                if growing
                else ""
            ),
        )
    grid.add_row(
        "Dead-letter queues",
        ", ".join(f"{name} {depth}" for name, depth in dead_letters.items())
        + (" [green](empty)[/]" if not any(dead_letters.values()) else " [red](not empty)[/]"),
    )
    grid.add_row("Setup", f"{report.setup_seconds:.1f} s (tenants, consumer accounts and their VPCs)")
    grid.add_row("Handler logs", log_path)
    problems = report.problems + [
        f"{name} holds {depth} message(s)" for name, depth in dead_letters.items() if depth
    ]
    verdict = (
        "[bold green]✓ Every request got the decision its account implies[/]"
        if not problems
        else "[bold red]✗ " + "; ".join(problems) + "[/]"
    )
    note = (
        "[dim]One local Lambda invocation at a time against moto in this process: a measure of the "
        "handlers' work per decision, not of AWS.[/]"
    )
    return Panel(
        Group(grid, Text(""), Text.from_markup(verdict), Text.from_markup(note)),
        title="[bold]Load[/]",
        title_align="left",
    )


# ------------------------------------------------------------------------ keep running
def environment_lines(environment: Mapping[str, str], examples: Iterable[str], bin_dir: str) -> Group:
    """Plain lines, no box around them, so that they copy and paste into a shell as they are: the
    first puts `bin_dir` (the venv's bin, where `gatekeeper` is) on the PATH of that shell."""
    exports = "\n".join(
        [
            f'export PATH={shlex.quote(bin_dir)}:"$PATH"',
            *(f"export {name}={shlex.quote(value)}" for name, value in environment.items()),
        ]
    )
    return Group(
        Rule("[bold green]The emulated account stays up[/]", style="green"),
        Text.from_markup("[bold]Point boto3, the AWS CLI and the gatekeeper CLI at it, in another shell:[/]"),
        Text(exports, style="green", no_wrap=True, overflow="ignore"),  # wrapped, it would not paste
        Text(""),
        Text.from_markup("[bold]Then, for example:[/]"),
        Text("\n".join(examples), style="cyan", no_wrap=True, overflow="ignore"),
        Text(""),
        Text.from_markup(
            "New requests and operator decisions are decided as they arrive and show up below. "
            "[bold]Ctrl-C[/] stops it."
        ),
        Rule(style="green"),
    )


def sweep_line(sweep: Invocation) -> Text:
    """One line per reconcile sweep of the kept-running sandbox."""
    stamp = (datetime.now().strftime("%H:%M:%S "), "dim")
    if not sweep.ok:
        return Text.assemble(stamp, ("reconcile sweep failed: ", "bold red"), (sweep.error or "", "red"))
    report = sweep.result if isinstance(sweep.result, dict) else {}
    return Text.assemble(
        stamp,
        ("reconcile sweep ", "bold"),
        (
            f"{report.get('connections', 0)} connections · {report.get('announced', 0)} announced · "
            f"{report.get('revocations_requested', 0)} revocations · {report.get('repairs', 0)} repairs · "
            f"{report.get('stale_claims', 0)} stale claims",
            "dim",
        ),
    )
