"""`gatekeeper --help` and `--version` stay fast: they load typer, never the SDK, the core,
pydantic or yaml, and help (or a usage error) is rendered without rich, whose markdown and traceback
renderers (pygments, markdown-it) would take about half of `--help`. Asserted on the modules a fresh
interpreter imported, not on time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "gatekeeper", "pydantic", "yaml", "jmespath", "rich", "pygments", "markdown_it")
# A subcommand runs the root callback first, and typer coerces its option values with pydantic.
TYPER_OWN = ("pydantic",)

# Runs `gatekeeper <argv>` for each argv in a fresh interpreter (`*` = every command's --help),
# then prints the heavy modules it imported, what it printed (stdout and stderr) and the exit codes.
_CHILD = """
import contextlib, io, json, sys
import typer
from gatekeeper_ops.cli.app import app

def commands(group, path):
    for name, command in getattr(group, "commands", {}).items():
        yield [*path, name, "--help"]
        yield from commands(command, [*path, name])

heavy = HEAVY
argvs = ARGVS
if argvs == ["*"]:
    argvs = [["--help"], *commands(typer.main.get_command(app), [])]
out = io.StringIO()
codes = []
for argv in argvs:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            app(argv, prog_name="gatekeeper")
        except SystemExit as exit:
            codes.append(exit.code or 0)
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
print(json.dumps({"loaded": loaded, "runs": len(argvs), "codes": codes, "output": out.getvalue()}))
"""


def _run(argvs: list[list[str]] | list[str], heavy: tuple[str, ...] = HEAVY) -> dict[str, object]:
    code = _CHILD.replace("HEAVY", repr(heavy)).replace("ARGVS", repr(argvs))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'layers/core'}:{ROOT / 'ops'}", "COLUMNS": "120"},
    )
    document: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return document


@pytest.mark.parametrize(
    ("argv", "printed"), [(["--help"], "Usage: gatekeeper"), (["--version"], "gatekeeper ")]
)
def test_help_and_version_load_no_sdk_core_pydantic_yaml_or_rich(argv: list[str], printed: str) -> None:
    run = _run([argv])
    assert run["codes"] == [0]
    assert printed in str(run["output"])
    assert run["loaded"] == []


def test_no_command_help_loads_the_sdk_core_yaml_or_rich() -> None:
    run = _run(["*"], heavy=tuple(h for h in HEAVY if h not in TYPER_OWN))
    assert int(str(run["runs"])) >= 25  # every group and command was asked for its help
    assert run["codes"] == [0] * int(str(run["runs"]))
    assert "gatekeeper tenants import" in str(run["output"])
    assert run["loaded"] == []


@pytest.mark.parametrize(
    ("argv", "usage", "error"),
    [
        (["tenants", "put"], "gatekeeper tenants", "No such command 'put'."),
        (["tenants", "add"], "gatekeeper tenants add", "Missing argument 'tenant_id'."),
        (["--bogus"], "gatekeeper", "No such option: --bogus"),
    ],
)
def test_usage_errors_say_what_is_wrong_without_rich(argv: list[str], usage: str, error: str) -> None:
    run = _run([argv], heavy=tuple(h for h in HEAVY if h not in TYPER_OWN))
    assert run["codes"] == [2]
    assert str(run["output"]).splitlines()[-3:] == [f"Try '{usage} --help' for help.", "", f"Error: {error}"]
    assert run["loaded"] == []
