"""How commands speak: rich tables for people, JSON or tab-separated text for scripts (`--output`,
`--query` as in the AWS CLI), warnings on stderr.

Consoles are made per call, so they write to whatever stdout/stderr are at that moment (a test
runner swaps them). JSON is printed plainly — never through rich — so it is always parseable.
rich and jmespath are imported when something is printed or queried, not when a command module is
loaded: `gatekeeper --help` needs neither.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print a JSON document instead of tables (for scripts).")
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    text = "text"


OutputOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="table (default, for people), json, or text (tab-separated, one line per record).",
    ),
]
QueryOption = Annotated[
    str | None,
    typer.Option(
        "--query",
        metavar="JMESPATH",
        help="A JMESPath expression applied to the JSON document, as with the AWS CLI "
        "(e.g. 'tenants[?status==`active`].tenant_id'); prints JSON unless --output says otherwise.",
    ),
]


@dataclass(frozen=True)
class Rendering:
    """What a read command was asked to print: a table for people, or the (queried) document."""

    format: OutputFormat = OutputFormat.table
    query: str | None = None

    @property
    def human(self) -> bool:
        return self.format is OutputFormat.table and self.query is None

    def emit(self, document: Any) -> None:
        """The command's JSON document, narrowed by --query, as JSON, text, or a generic table."""
        value = _search(self.query, document) if self.query else document
        if self.format is OutputFormat.text:
            for line in text_lines(value):
                typer.echo(line)
        elif self.format is OutputFormat.table:
            generic_table(value)
        else:
            print_json(value)


def rendering(output: OutputFormat | None, query: str | None, json_output: bool = False) -> Rendering:
    """One Rendering from `--output`, `--query` and the older `--json` (kept: `--output json`)."""
    from gatekeeper_ops.cli.context import CliError

    if json_output and output not in (None, OutputFormat.json):
        raise CliError(f"--json and --output {output} disagree; give one of them")
    chosen = OutputFormat.json if json_output else output
    if query is not None:
        import jmespath
        from jmespath.exceptions import JMESPathError

        try:
            jmespath.compile(query)
        except JMESPathError as exc:
            raise CliError(f"--query {query!r} is not a JMESPath expression: {exc}") from None
        # As the AWS CLI does not: a query without --output prints JSON (a table of an arbitrary
        # projection would guess its columns).
        chosen = chosen or OutputFormat.json
    return Rendering(chosen or OutputFormat.table, query)


def _search(query: str, document: Any) -> Any:
    import jmespath

    # Round-trip through JSON so datetimes and sets are plain values JMESPath can compare.
    return jmespath.search(query, json.loads(json.dumps(document, default=_json_default)))


def text_lines(value: Any) -> list[str]:
    """Like the AWS CLI's `--output text`: a record per line, its values tab-separated."""
    if value is None:
        return []
    if isinstance(value, dict):
        nested = [v for v in value.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
        if nested:
            return [line for records in nested for line in text_lines(records)]
        return ["\t".join(_text_cell(v) for v in value.values())]
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return ["\t".join(_text_cell(v) for v in value)] if value else []
        return [line for item in value for line in text_lines(item)]
    return [_text_cell(value)]


def _text_cell(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return ",".join(_text_cell(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={_text_cell(v)}" for k, v in value.items())
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def generic_table(value: Any) -> None:
    """A table of whatever a --query returned (records → columns from their keys)."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(k for v in value for k in v))
        table(None, columns, [[v.get(c) for c in columns] for v in value])
    elif isinstance(value, dict):
        table(None, ("field", "value"), list(value.items()), wrap=("value",))
    else:
        for line in text_lines(value):
            typer.echo(line)


def console() -> Console:
    from rich.console import Console

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
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

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
    from rich.text import Text

    if decision is None:
        return Text("-")
    return Text(decision, style=DECISION_STYLE.get(decision, ""))
