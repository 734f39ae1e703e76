"""Help text helpers: every command's `--help` ends with examples an operator can paste."""

from __future__ import annotations

import re

# rich's markup escape (rich.markup.escape), without importing rich: every command module builds
# its epilogs at import time, and `gatekeeper --version` renders no help at all.
_MARKUP_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def escape(text: str) -> str:
    """`text` with what rich would read as a markup tag (`[bold]`, `[/]`) escaped."""
    escaped = _MARKUP_TAG.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)
    if escaped.endswith("\\") and not escaped.endswith("\\\\"):
        return escaped + "\\"
    return escaped


def examples(*lines: str) -> str:
    """A typer epilog: one paragraph per example, so rich keeps the line breaks."""
    body = "\n\n".join(f"  $ {escape(line)}" for line in lines)
    return f"[bold]Examples[/bold]\n\n{body}"
