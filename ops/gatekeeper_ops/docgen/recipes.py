"""The operator guide's task recipes, run against the sandbox: each recipe is a few `gatekeeper`
commands, run as an operator runs them (the installed CLI, in a shell pointed at the emulated
account by the environment `make demo ARGS=--keep-running` prints), and the page shows what they
printed. `make docs` writes docs/operator-guide.md; tests/integration/test_recipes.py runs every
recipe and fails when a command no longer exits as the recipe says."""

from __future__ import annotations

import io
import os
import queue
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from gatekeeper_ops.sandbox.demo import DemoOptions, DemoResult, run
from gatekeeper_ops.sandbox.embedded import DemoProducer
from gatekeeper_ops.sandbox.seed import load_seed

PAGE = Path("docs/operator-guide.md")
# Long enough for a fresh sandbox on a loaded 2-core machine (provisioning, the scripted scenario).
SANDBOX_START_SECONDS = 240
# What a command may take: the CLI answers in a second; `--wait` commands wait for the decider.
COMMAND_SECONDS = 90


@dataclass(frozen=True)
class Step:
    """One command as typed (`{name}` is filled from the sandbox's facts), the exit status it must
    have, and how long to let the stack work after it (the decider runs asynchronously). A step with
    an `action` is a change made outside the CLI (a console edit, a file edited by hand): the page
    shows `command` as a comment and the action runs in-process against the sandbox."""

    command: str
    exit_code: int = 0
    settle: float = 0.0
    shown: bool = True
    action: Callable[[Mapping[str, str]], None] | None = None


@dataclass(frozen=True)
class Recipe:
    title: str
    purpose: str
    steps: tuple[Step, ...]
    note: str = ""


@dataclass
class Transcript:
    step: Step
    command: str
    exit_code: int
    output: str


@dataclass
class RecipeRun:
    recipe: Recipe
    transcripts: list[Transcript] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [
            f"{self.recipe.title}: `{t.command}` exited {t.exit_code}, the recipe expects "
            f"{t.step.exit_code}:\n{t.output}"
            for t in self.transcripts
            if t.exit_code != t.step.exit_code
        ]


def _s(command: str, **kwargs: object) -> Step:
    return Step(command, **kwargs)  # type: ignore[arg-type]


def _break_record(facts: Mapping[str, str]) -> None:
    """A console edit nothing validated: umbrella's quota stored as a string, its status capitalised."""
    import boto3

    from gatekeeper.dal.tenants import TENANT_SK, tenant_pk

    boto3.client("dynamodb").update_item(
        TableName=facts["tenants_table"],
        Key={"pk": {"S": tenant_pk("umbrella")}, "sk": {"S": TENANT_SK}},
        UpdateExpression="SET max_endpoints = :quota, #status = :status",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":quota": {"S": "3"}, ":status": {"S": "Active"}},
    )


def _drop_from_export(facts: Mapping[str, str]) -> None:
    """The export edited by hand: initech's record deleted from the file."""
    import yaml

    path = Path(facts["workdir"]) / "tenants.yaml"
    records = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump([r for r in records if r["tenant_id"] != "initech"], sort_keys=False))


WONKA = "--name 'Wonka Industries' --principal 888899990000 --service {api} --template standard"

RECIPES: tuple[Recipe, ...] = (
    Recipe(
        "Look around",
        "What the stack manages, who may connect, and under which templates.",
        (
            _s("gatekeeper services list"),
            _s("gatekeeper tenants list"),
            _s("gatekeeper templates list"),
        ),
    ),
    Recipe(
        "Onboard a tenant",
        "Ask the policy first, check the record without writing it, then add it. A principal "
        "another tenant already claims is refused, naming that tenant; nothing is written.",
        (
            _s("gatekeeper simulate --principal 888899990000 --service {api}"),
            _s(f"gatekeeper tenants add wonka {WONKA} --max-endpoints 3 --dry-run"),
            _s(f"gatekeeper tenants add wonka {WONKA} --max-endpoints 3", settle=2.0),
            _s(
                "gatekeeper tenants add stark --name Stark --principal 111122223333 "
                "--service {api} --template standard",
                exit_code=1,
            ),
            _s("gatekeeper simulate --principal 888899990000 --service {api}"),
        ),
    ),
    Recipe(
        "Change a tenant safely",
        "Every write is conditional on the record's version: a change made on a stale view is "
        "refused, not merged.",
        (
            _s("gatekeeper tenants show wonka"),
            _s("gatekeeper tenants update wonka --label tier=gold --expected-version 1"),
            _s(
                "gatekeeper tenants update wonka --contact ops@wonka.example --expected-version 1",
                exit_code=1,
            ),
        ),
    ),
    Recipe(
        "Pre-register an endpoint",
        "Under a template that tests `endpoint:Registered` (the built-in `registered`), only the "
        "endpoint ids a tenant registered are accepted; registering one that is held decides it again.",
        (
            _s("gatekeeper tenants register-endpoint wonka vpce-0a1b2c3d4e5f60718"),
            _s("gatekeeper tenants show wonka --query registered_endpoints --output text"),
        ),
    ),
    Recipe(
        "Review held requests",
        "A held request waits for an operator; `pending` says why and what the policy says now. "
        "The approval goes through the decision path and is recorded as you.",
        (
            _s("gatekeeper pending"),
            _s("gatekeeper approve {held} --reason 'customer confirmed the region' --yes --wait 60"),
            _s("gatekeeper decisions --endpoint {held}"),
        ),
    ),
    Recipe(
        "Revoke an endpoint",
        "Rejecting an accepted connection revokes it: its endpoint stops working. The tenant is "
        "told on the decision topic.",
        (
            _s("gatekeeper reject {held} --reason 'contract ended' --yes --wait 60"),
            _s("gatekeeper decisions --endpoint {held} --explain"),
        ),
    ),
    Recipe(
        "Suspend a tenant, looking first",
        "Any change that takes access away shows the endpoints it would revoke, then asks (or takes "
        "`--yes`); `--dry-run` only shows. The tenant sync carries the revocation out.",
        (
            _s("gatekeeper tenants suspend soylent --dry-run"),
            _s("gatekeeper tenants suspend soylent --yes", settle=3.0),
            _s("gatekeeper decisions --tenant soylent --limit 2"),
        ),
    ),
    Recipe(
        "Fix a broken record",
        "A record edited by hand into something invalid holds its requests and is refused by the "
        "commands that read it. `tenants repair` shows each problem with its fix, keeps the record's "
        "claims and quota, and never revokes.",
        (
            _s('(console edit) umbrella: max_endpoints = "3", status = "Active"', action=_break_record),
            _s("gatekeeper tenants show umbrella", exit_code=1),
            _s("gatekeeper tenants repair umbrella --dry-run"),
            _s("gatekeeper tenants repair umbrella --yes", settle=2.0),
            _s("gatekeeper tenants show umbrella --query '[status, max_endpoints, version]' --output text"),
        ),
    ),
    Recipe(
        "Audit",
        "Every decision, with its reasons, template version and actor, newest first.",
        (
            _s("gatekeeper decisions --since 1d --limit 8"),
            _s("gatekeeper decisions --tenant acme --explain --limit 2"),
            _s("gatekeeper decisions --decision rejected --output text --limit 5"),
        ),
    ),
    Recipe(
        "Back up and bulk-edit tenants",
        "An export is a backup that carries versions: re-importing it refuses any record someone "
        "changed since. An import that removes tenants (`--prune`) shows what it would revoke first.",
        (
            _s("gatekeeper tenants export --file {workdir}/tenants.yaml"),
            _s("(edit) tenants.yaml: initech's record deleted", action=_drop_from_export),
            _s("gatekeeper tenants import {workdir}/tenants.yaml --prune --confirm-removals 1 --dry-run"),
        ),
    ),
    Recipe(
        "Report",
        "Usage per tenant from the services' CloudWatch metrics, and accepted endpoints that look "
        "orphaned (no tenant, no decision, or no traffic).",
        (
            _s("gatekeeper report usage --since 1d"),
            _s("gatekeeper report orphans --idle-days 1"),
        ),
    ),
    Recipe(
        "Verify a deployment",
        "A canary endpoint per managed service through the real path, one line per check, and "
        "everything it made removed after ([deploy guide](deploy.md#verify-a-deployment)).",
        (_s("gatekeeper verify --wait 30 --body-file {workdir}/notification-body.json"),),
    ),
)

HEADER = """# Operator guide: recipes

<!-- Generated by `make docs` (gatekeeper_ops.docgen.recipes): every command below ran against the
     sandbox and its output is pasted as printed; do not edit. Add or change a recipe in
     ops/gatekeeper_ops/docgen/recipes.py. tests/integration/test_recipes.py runs them all. -->

Task recipes for the `gatekeeper` CLI, each run against the sandbox (`make demo
ARGS=--keep-running`, then the `export` lines it prints; ids differ on every run). Against AWS the
commands are the same: see [operator access](operator-access.md) for credentials, the stack, the
operator role's permissions and exit statuses, and the [CLI reference](cli-reference.md) for every
option.
"""


# ------------------------------------------------------------------------ the sandbox
@dataclass(frozen=True)
class Sandbox:
    environment: Mapping[str, str]
    facts: Mapping[str, str]


def _facts(producer: DemoProducer, result: DemoResult) -> dict[str, str]:
    facts = dict(producer.service_ids)
    steps = result.scenario.steps if result.scenario else []
    held = [
        r.endpoint for r in steps if r.endpoint and r.decision is not None and r.decision.outcome == "held"
    ]
    if held:
        facts["held"] = held[0]
    return facts


@contextmanager
def sandbox() -> Iterator[Sandbox]:
    """The demo's emulated account with its scripted scenario played, kept running (deciding and
    sweeping) for the block; yields the environment that points a shell at it."""
    console = Console(file=io.StringIO(), width=160, force_terminal=False)
    stop = threading.Event()
    ready: queue.Queue[Sandbox | BaseException] = queue.Queue()
    seed = load_seed()

    def on_ready(producer: DemoProducer, result: DemoResult, environment: dict[str, str]) -> None:
        facts = {
            **_facts(producer, result),
            "tenants_table": producer.account.stack.outputs["TenantsTableName"],
        }
        ready.put(Sandbox(environment, facts))

    def serve() -> None:
        try:
            with tempfile.TemporaryDirectory() as logs:
                options = DemoOptions(keep_running=True, log_file=Path(logs) / "handlers.log")
                run(options, console, seed, stop, on_ready=on_ready)
        except BaseException as exc:  # surfaced to the caller, not lost in the thread
            ready.put(exc)

    worker = threading.Thread(target=serve, name="sandbox", daemon=True)
    worker.start()
    try:
        started = ready.get(timeout=SANDBOX_START_SECONDS)
        if isinstance(started, BaseException):
            raise RuntimeError(f"the sandbox did not start: {started}") from started
        yield started
    finally:
        stop.set()
        worker.join(timeout=30)


# ------------------------------------------------------------------------ running recipes
def _cli() -> str:
    """The installed `gatekeeper` beside this interpreter, as an operator's shell finds it."""
    return str(Path(sys.executable).with_name("gatekeeper"))


def run_step(step: Step, environment: Mapping[str, str], facts: Mapping[str, str]) -> Transcript:
    command = step.command.format(**facts)
    if step.action is not None:
        step.action(facts)
        return Transcript(step, f"# {command}", 0, "")
    argv = shlex.split(command)
    assert argv[0] == "gatekeeper", f"a recipe runs gatekeeper commands only: {command}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    completed = subprocess.run(  # noqa: S603 - the project's own CLI, arguments from RECIPES
        [_cli(), *argv[1:]],
        env={**clean, **environment, "COLUMNS": "110", "NO_COLOR": "1", "TERM": "dumb"},
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        check=False,
    )
    # rich pads table rows to the terminal width: trailing blanks are noise on a page.
    lines = (completed.stdout + completed.stderr).splitlines()
    output = "\n".join(line.rstrip() for line in lines).strip("\n")
    if step.settle:
        time.sleep(step.settle)
    return Transcript(step, command, completed.returncode, output)


def run_recipes(
    recipes: tuple[Recipe, ...] = RECIPES, on_step: Callable[[Transcript], None] | None = None
) -> list[RecipeRun]:
    runs = []
    with sandbox() as box, tempfile.TemporaryDirectory() as workdir:
        facts = {**box.facts, "workdir": workdir}
        for recipe in recipes:
            recipe_run = RecipeRun(recipe)
            for step in recipe.steps:
                transcript = run_step(step, box.environment, facts)
                transcript.command = transcript.command.replace(workdir, ".")
                transcript.output = transcript.output.replace(workdir, ".")
                recipe_run.transcripts.append(transcript)
                if on_step:
                    on_step(transcript)
            runs.append(recipe_run)
    return runs


def render(runs: list[RecipeRun]) -> str:
    contents = "\n".join(f"- [{r.recipe.title}](#{_anchor(r.recipe.title)})" for r in runs)
    sections = [HEADER, contents + "\n"]
    for recipe_run in runs:
        recipe = recipe_run.recipe
        lines = [f"## {recipe.title}", "", recipe.purpose, "", "```console"]
        for transcript in recipe_run.transcripts:
            if not transcript.step.shown:
                continue
            prompt = "" if transcript.command.startswith("# ") else "$ "
            lines.append(f"{prompt}{transcript.command}")
            if transcript.output:
                lines.append(transcript.output)
            if transcript.exit_code:
                lines.append(f"(exit status {transcript.exit_code})")
        lines.append("```")
        if recipe.note:
            lines += ["", recipe.note]
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def _anchor(title: str) -> str:
    return "-".join("".join(c for c in title.lower() if c.isalnum() or c == " ").split())


def write(root: Path = Path()) -> tuple[Path, list[str]]:
    runs = run_recipes()
    target = root / PAGE
    target.write_text(render(runs), encoding="utf-8")
    return target, [p for r in runs for p in r.problems]
