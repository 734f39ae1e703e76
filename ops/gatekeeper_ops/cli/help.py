"""How `--help` reads: click's plain formatter, not typer's rich one (which imports rich's markdown
and traceback renderers, and markdown-it and pygments with them: close to half of what
`gatekeeper --help` took); every command listed with its whole summary; examples an operator can
paste, one command a line."""

from __future__ import annotations

import inspect
from typing import Any

from typer.core import TyperGroup


def examples(*lines: str) -> str:
    """A command's epilog: click rewraps a paragraph unless it starts with `\\b`, and a rewrapped
    example would no longer be one command a line."""
    body = "\n".join(f"  $ {line}" for line in lines)
    return f"\b\nExamples:\n{body}"


def summary(command: Any) -> str:
    """The first paragraph of a command's help on one line (wrapped by the formatter)."""
    text = inspect.cleandoc(command.short_help or command.help or "")
    return " ".join(text.split("\n\n")[0].split())


class CommandGroup(TyperGroup):
    """A group whose command list gives each command its whole summary: click's would cut it at
    the first full stop or about 45 characters ("Add a tenant.")."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:  # typer's vendored click types
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
