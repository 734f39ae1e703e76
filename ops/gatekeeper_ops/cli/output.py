"""How commands speak: rich tables for people, `--json` documents for scripts, warnings on stderr.

Consoles are made per call, so they write to whatever stdout/stderr are at that moment (a test
runner swaps them). JSON is printed plainly — never through rich — so it is always parseable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich import box
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
    """A line of human output. Plain by default: ARNs look like rich markup (`[arn:…]`). Never
    hard-wrapped, so a long line stays one line when copied or grepped."""
    console().print(message, markup=markup, soft_wrap=True)


def warn(message: str) -> None:
    """A one-line warning on stderr; never mixed into JSON on stdout."""
    typer.echo(f"warning: {' '.join(message.split())}", err=True)


def table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], wrap: Iterable[str] = ()
) -> None:
    """Identifiers stay whole on one line (copy-paste); only the `wrap` columns (prose) give way.
    A table wider than the terminal is printed at its natural width: the terminal wraps lines,
    nothing is cut short."""
    prose = set(wrap)
    cells = [[value if isinstance(value, Text) else Text(cell(value)) for value in row] for row in rows]
    grid = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    needed = 0
    for index, name in enumerate(columns):
        if name in prose:
            width = max(16, len(name))
            grid.add_column(name, overflow="fold", min_width=width)
        else:
            lines = [len(line) for row in cells for line in row[index].plain.splitlines() or [""]]
            width = max([len(name), *lines])
            grid.add_column(name, no_wrap=True, min_width=width)
        needed += width + 3  # padding and the column separator
    for row in cells:
        grid.add_row(*row)
    out = console()
    if needed > out.width:
        out = Console(highlight=False, width=needed)
    out.print(grid)


def timestamp(value: datetime | str) -> str:
    """UTC, to the second: `2026-05-01 12:00:00Z`."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, compactly: `40s`, `12m`, `5h`, `3d`."""
    if moment is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cell(value: Any) -> str:
    if value is None or value in ((), [], {}):
        return "-"
    if isinstance(value, datetime):
        return timestamp(value)
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
