"""How commands speak, one contract for all of them (as in the AWS CLI): `--output
table|json|csv|text|yaml` and `--query JMESPATH` on every command that prints data. Each command
builds one JSON document — a list for a command that lists things, an object for one that shows
or changes one thing — and `--query` narrows that document before it is printed in any format.
`table` is the command's own view for people; the other formats are the document itself, for
scripts. Warnings go to stderr. File destinations are options of their own (`--file`).

Consoles are made per call, so they write to whatever stdout/stderr are at that moment (a test
runner swaps them). JSON is printed plainly — never through rich — so it is always parseable.
rich, yaml and jmespath are imported when something is printed or queried, not when a command
module is loaded: `gatekeeper --help` needs none of them.
"""

from __future__ import annotations

import csv
import io
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

YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    text = "text"
    yaml = "yaml"


FORMATS = ", ".join(OutputFormat)


def output_formats() -> list[str]:
    """--output's shell completion."""
    return list(OutputFormat)


# A plain string, checked by `rendering`: a value that is not a format (a file name, as
# `tenants export --output FILE` once took) is refused with a line that says what to do instead.
OutputOption = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FORMAT",
        autocompletion=output_formats,
        help="table (for people; the default), json, csv, text (tab-separated) or yaml, as in the AWS CLI.",
    ),
]
QueryOption = Annotated[
    str | None,
    typer.Option(
        "--query",
        metavar="JMESPATH",
        help="A JMESPath expression applied to the JSON document before it is printed, as with the AWS "
        "CLI (e.g. '[?status==`active`].tenant_id'); prints JSON unless --output says otherwise.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as --output json.")]


@dataclass(frozen=True)
class Rendering:
    """What a command was asked to print: its own view for people, or its (queried) document."""

    format: OutputFormat = OutputFormat.table
    query: str | None = None

    @property
    def human(self) -> bool:
        return self.format is OutputFormat.table and self.query is None

    def value(self, document: Any) -> Any:
        """The document as plain JSON values (datetimes as ISO strings), narrowed by --query."""
        plain = json.loads(json.dumps(document, default=_json_default))
        return _search(self.query, plain) if self.query else plain

    def text(self, document: Any) -> str:
        """The document printed in a format for scripts (json, csv, text, yaml), as one string."""
        value = self.value(document)
        if self.format is OutputFormat.json:
            return json.dumps(value, indent=2) + "\n"
        if self.format is OutputFormat.yaml:
            import yaml

            return str(yaml.safe_dump(value, sort_keys=False, allow_unicode=True))
        lines = csv_lines(value) if self.format is OutputFormat.csv else text_lines(value)
        return "".join(f"{line}\n" for line in lines)

    def emit(self, document: Any) -> None:
        """The command's JSON document, narrowed by --query, in the format asked for (a table of
        whatever --query returned when the format is table)."""
        if self.format is OutputFormat.table:
            generic_table(self.value(document))
        else:
            typer.echo(self.text(document), nl=False)


def rendering(
    output: str | None,
    query: str | None,
    json_output: bool = False,
    *,
    default: OutputFormat = OutputFormat.table,
    file_option: str | None = None,
) -> Rendering:
    """One Rendering from `--output`, `--query` and `--json` (= `--output json`), checked before
    any AWS call. `file_option`: the command's option that writes a file, named in the refusal of
    an --output that is not a format."""
    from gatekeeper_ops.cli.context import CliError

    chosen: OutputFormat | None = None
    if output is not None:
        try:
            chosen = OutputFormat(output.strip().lower())
        except ValueError:
            where = f"pass {file_option} {output}" if file_option else f"redirect the output: > {output}"
            raise CliError(
                f"--output {output!r} is not a format: it takes {FORMATS}, as in the AWS CLI; "
                f"to write a file, {where}"
            ) from None
    if json_output and chosen not in (None, OutputFormat.json):
        raise CliError(f"--json and --output {chosen} disagree; give one of them")
    if json_output:
        chosen = OutputFormat.json
    if query is not None:
        import jmespath
        from jmespath.exceptions import JMESPathError

        try:
            jmespath.compile(query)
        except JMESPathError as exc:
            raise CliError(f"--query {query!r} is not a JMESPath expression: {exc}") from None
        # Unlike the AWS CLI: a query without --output prints JSON (a table of an arbitrary
        # projection would guess its columns).
        chosen = chosen or OutputFormat.json
    return Rendering(chosen or default, query)


def _search(query: str, document: Any) -> Any:
    import jmespath
    from jmespath.exceptions import JMESPathError

    from gatekeeper_ops.cli.context import CliError

    try:
        return jmespath.search(query, document)
    except JMESPathError as exc:  # e.g. a function given the wrong type of value
        raise CliError(f"--query {query!r} failed on this command's document: {exc}") from None


def csv_lines(value: Any) -> list[str]:
    """CSV: records become a header and a row each (their keys, in order of appearance); a list of
    plain values one value a line; lists inside a cell are `;`-separated, maps `key=value;…`."""
    if value is None:
        return []
    records = value if isinstance(value, list) else [value]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if records and all(isinstance(r, dict) for r in records):
        columns = list(dict.fromkeys(k for r in records for k in r))
        writer.writerow(columns)
        writer.writerows([[_csv_cell(r.get(c)) for c in columns] for r in records])
    else:
        writer.writerows(
            [[_csv_cell(v) for v in r] if isinstance(r, list) else [_csv_cell(r)] for r in records]
        )
    return buffer.getvalue().splitlines()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(_csv_cell(v) for v in value)
    if isinstance(value, dict):
        return ";".join(
            f"{k}={','.join(_csv_cell(x) for x in v) if isinstance(v, list) else _csv_cell(v)}"
            for k, v in value.items()
        )
    return str(value)


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
