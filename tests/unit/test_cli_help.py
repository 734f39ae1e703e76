"""`gatekeeper … --help` as an operator reads it in an 80-column terminal: every example a line of
its own, as it was written (so it pastes as one command), and every command listed with its whole
summary, not click's first sentence."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gatekeeper_ops.cli.app import app
from gatekeeper_ops.cli.help import summary


def _commands() -> list[tuple[tuple[str, ...], Any]]:
    found: list[tuple[tuple[str, ...], Any]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        found.append((path, command))
        for name, child in getattr(command, "commands", {}).items():
            walk(child, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = _commands()
GROUPS = [(path, command) for path, command in COMMANDS if getattr(command, "commands", None)]
WITH_EXAMPLES = [(path, command) for path, command in COMMANDS if command.epilog]


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    ("path", "command"), WITH_EXAMPLES, ids=[" ".join(p) or "-" for p, _ in WITH_EXAMPLES]
)
def test_every_example_is_printed_on_a_line_of_its_own(path: tuple[str, ...], command: Any) -> None:
    written = [line.strip() for line in command.epilog.splitlines() if line.strip().startswith("$ ")]
    printed = _help(path).splitlines()
    assert "  Examples:" in printed
    assert written
    for example in written:
        assert f"    {example}" in printed  # not rewrapped at 80 columns, whatever its length


@pytest.mark.parametrize(("path", "group"), GROUPS, ids=[" ".join(p) or "-" for p, _ in GROUPS])
def test_command_lists_give_each_command_its_whole_summary(path: tuple[str, ...], group: Any) -> None:
    listing = _help(path).partition("\nCommands:\n")[2].partition("\n\n")[0]
    printed = "".join(listing.split())  # wrapped anywhere by the formatter
    for name, command in group.commands.items():
        assert "".join(f"{name} {summary(command)}".split()) in printed
    assert "..." not in printed


def test_summary_is_the_first_paragraph_on_one_line() -> None:
    command = typer.main.get_command(app).commands["tenants"].commands["add"]
    assert summary(command).startswith("Add a tenant. Validated first: account ids, principal ARNs,")
    assert summary(command).endswith("a principal already claimed by another tenant is refused, naming it.")
