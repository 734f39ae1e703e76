"""How commands speak: rich tables for people, `--json` documents for scripts, warnings on stderr.

Consoles are made per call, so they write to whatever stdout/stderr are at that moment (a test
runner swaps them). JSON is printed plainly — never through rich — so it is always parseable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print a JSON document instead of tables (for scripts).")
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=False, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def say(message: str, markup: bool = False) -> None:
    """A line of human output. Plain by default: ARNs look like rich markup (`[arn:…]`)."""
    console().print(message, markup=markup)


def warn(message: str) -> None:
    """A one-line warning on stderr; never mixed into JSON on stdout."""
    typer.echo(f"warning: {' '.join(message.split())}", err=True)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    grid = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        grid.add_column(name, overflow="fold")
    for row in rows:
        grid.add_row(*(value if isinstance(value, Text) else Text(cell(value)) for value in row))
    console().print(grid)


def cell(value: Any) -> str:
    if value is None or value in ((), []):
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z")
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k}={v}" for k, v in value.items())
    return str(value)


DECISION_STYLE = {"accepted": "green", "rejected": "red", "revoked": "red", "held": "yellow"}


def styled_decision(decision: str | None) -> Text:
    if decision is None:
        return Text("-")
    return Text(decision, style=DECISION_STYLE.get(decision, ""))
