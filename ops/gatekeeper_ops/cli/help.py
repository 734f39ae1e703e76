"""Help text helpers: every command's `--help` ends with examples an operator can paste."""

from __future__ import annotations

from rich.markup import escape


def examples(*lines: str) -> str:
    """A typer epilog: one paragraph per example, so rich keeps the line breaks."""
    body = "\n\n".join(f"  $ {escape(line)}" for line in lines)
    return f"[bold]Examples[/bold]\n\n{body}"
