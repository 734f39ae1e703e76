"""What every command promises: `--help` with an example, one output contract (`--output
table|json|csv|text|yaml`, `--query`, `--json`; a list for what lists, an object for what shows or
changes one thing), shell completion, and failures as one actionable line on stderr with a
non-zero status — never a traceback."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
import yaml
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from botocore.parsers import ResponseParserError
from pydantic import ValidationError

from gatekeeper.models.tenant import Tenant
from gatekeeper.policy import ParameterInvalid, TemplateInvalid
from gatekeeper_ops.cli.app import app
from gatekeeper_ops.cli.context import StackResources, describe_error
from gatekeeper_ops.emulator import emulated_moto_server
from gatekeeper_ops.sandbox.account import ProducerAccount
from gatekeeper_ops.sandbox.invoke_bridge import InvokeBridge

from .conftest import ACME, verify_served
from .test_connections import held_request

ROOT = Path(__file__).resolve().parents[3]


def leaf_commands() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, ...]] = []

    def walk(command, path: tuple[str, ...]) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, (*path, name))
        else:
            found.append(path)

    walk(root, ())
    return found


LEAVES = leaf_commands()


def test_every_command_of_the_issue_exists():
    tenants = ("add", "show", "list", "update", "suspend", "resume", "remove", "repair", "import", "export")
    tenants += ("register-endpoint", "unregister-endpoint")  # issue 21
    templates = ("list", "show", "validate", "push", "diff")
    top = {
        ("simulate",),
        ("pending",),
        ("approve",),
        ("reject",),
        ("decisions",),
        ("reconcile",),
        ("verify",),
    }
    services = {("services", "list"), ("services", "attach")}
    reports = {("report", "usage"), ("report", "orphans")}
    expected = {("tenants", c) for c in tenants} | {("templates", c) for c in templates} | top | services
    expected |= reports
    assert set(LEAVES) == expected


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_every_command_has_help_with_an_example_and_the_output_options(cli, path):
    out = cli.ok(*path, "--help").stdout
    assert "Examples" in out
    assert f"$ gatekeeper {' '.join(path)}" in out
    for option in ("--output FORMAT", "--query JMESPATH", "--json"):
        assert option in out


# -- one output contract, as in the AWS CLI: --output table|json|csv|text|yaml and --query ------
def _options(path: tuple[str, ...]) -> dict[str, Any]:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {option: param for param in command.params for option in param.opts}


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_every_command_declares_output_and_query_the_same_way(path):
    options = _options(path)
    assert options["--output"] is options["-o"]
    assert options["--output"].metavar == "FORMAT"
    assert options["--query"].metavar == "JMESPATH"
    assert "--json" in options


HELD = "<held>"  # replaced by a connection held for review, made for the command that needs one
# Every command, run in the seeded account, and what its JSON document is: a list for a command
# that lists things, an object for one that shows or changes one thing. A new command is missing
# here until it is added, and test_every_command_is_run_against_the_contract fails.
RUNS: dict[tuple[str, ...], tuple[tuple[str, ...], str]] = {
    ("tenants", "add"): (("newco", "--name", "New", "-p", "555566667777", "-s", "<service>", "-t", "standard",
                          "--max-endpoints", "3", "--dry-run"), "object"),
    ("tenants", "show"): (("acme",), "object"),
    ("tenants", "list"): ((), "array"),
    ("tenants", "update"): (("acme", "--contact", "ops@acme.example"), "object"),
    ("tenants", "suspend"): (("acme",), "object"),
    ("tenants", "resume"): (("globex",), "object"),
    ("tenants", "remove"): (("globex", "--yes"), "object"),
    ("tenants", "repair"): (("acme",), "object"),
    ("tenants", "import"): (("-", "--dry-run"), "object"),
    ("tenants", "export"): ((), "array"),
    ("tenants", "register-endpoint"): (("acme", "vpce-0a1b2c3d4e5f60718"), "object"),
    ("tenants", "unregister-endpoint"): (("acme", "vpce-0a1b2c3d4e5f60718"), "object"),
    ("templates", "list"): ((), "array"),
    ("templates", "show"): (("standard",), "object"),
    ("templates", "validate"): (("policy-templates/standard.json", "policy-templates/trial.json"), "array"),
    ("templates", "push"): (("policy-templates/standard.json",), "object"),
    ("templates", "diff"): (("standard", "policy-templates/standard.json"), "object"),
    ("services", "list"): ((), "array"),
    ("services", "attach"): (("<service>", "--yes"), "object"),
    ("simulate",): (("--principal", ACME, "--service", "<service>"), "object"),
    ("pending",): ((), "array"),
    ("approve",): ((HELD, "--yes"), "object"),
    ("reject",): ((HELD, "--reason", "not a customer", "--yes"), "object"),
    ("decisions",): ((), "array"),
    ("reconcile",): ((), "object"),
    ("verify",): (("--wait", "30", "--body-file", "<tmp>/body.json"), "object"),
    ("report", "usage"): ((), "array"),
    ("report", "orphans"): ((), "array"),
}  # fmt: skip
# Commands that only read: every format is printed from the same document.
READ_ONLY = [path for path, (argv, _) in RUNS.items() if path[-1] in (
    "show", "list", "export", "validate", "diff", "simulate", "pending", "decisions", "usage", "orphans"
)]  # fmt: skip
IMPORT_FILE = "- tenant_id: newco\n  display_name: New\n  principals: ['555566667777']\n  services: ['*']\n" \
    "  template: standard\n  max_endpoints: 3\n"  # fmt: skip


def test_every_command_is_run_against_the_contract():
    assert set(RUNS) == set(LEAVES)


@contextlib.contextmanager
def lambda_invoke_served(producer: ProducerAccount) -> Iterator[None]:
    """Lambda Invoke of the stack's functions answered by their handlers, as the kept-running
    sandbox does (`gatekeeper reconcile` invokes the reconciler)."""
    bridge = InvokeBridge(producer.lambdas)
    stop = threading.Event()

    def deliver() -> None:
        while not stop.is_set():
            if not bridge.serve():
                stop.wait(0.05)

    worker = threading.Thread(target=deliver, daemon=True)
    with bridge.installed():
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join(timeout=30)


def _argv(seeded: ProducerAccount, path: tuple[str, ...]) -> list[str]:
    argv, _ = RUNS[path]
    held = held_request(seeded) if HELD in argv else None
    service = seeded.service.service_id
    return [*path, *(held if a == HELD else service if a == "<service>" else a for a in argv)]


@pytest.mark.parametrize("path", list(RUNS), ids=[" ".join(p) for p in RUNS])
def test_query_narrows_the_document_of_every_command(seeded, cli, path, monkeypatch, tmp_path):
    """`--query` is applied to the command's JSON document, whose root is a list or an object."""
    monkeypatch.chdir(ROOT)
    argv = _argv(seeded, path)
    served = {("reconcile",): lambda_invoke_served(seeded), ("verify",): verify_served(seeded, monkeypatch)}
    argv = [a.replace("<tmp>", str(tmp_path)) for a in argv]
    with served.get(path, contextlib.nullcontext()):
        result = cli.run(*argv, "--output", "text", "--query", "type(@)", input=IMPORT_FILE)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == RUNS[path][1]


@pytest.mark.parametrize("path", READ_ONLY, ids=[" ".join(p) for p in READ_ONLY])
def test_every_format_prints_the_same_document(seeded, cli, path, monkeypatch):
    monkeypatch.chdir(ROOT)
    argv = _argv(seeded, path)
    document = _stable(json.loads(cli.ok(*argv, "--output", "json").stdout))
    assert _stable(cli.json(*argv)) == document  # --json is --output json
    assert _stable(yaml.safe_load(cli.ok(*argv, "--output", "yaml").stdout)) == document
    records = document if isinstance(document, list) else [document]
    rows = list(csv.DictReader(io.StringIO(cli.ok(*argv, "--output", "csv").stdout)))
    assert len(rows) == len(records)
    if rows:  # a column per key (`tenants export`: every column an import reads, set or not)
        assert {k for r in records for k in r} <= set(rows[0])
    text = cli.ok(*argv, "--output", "text").stdout
    assert bool(text.strip()) == bool(records)
    cli.ok(*argv, "--output", "table")


def _stable(value: Any) -> Any:
    """Without the times a command reads from the clock (simulate's connection is created now)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k != "CreationTimestamp"}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def test_output_is_a_format_never_a_file(seeded, cli, tmp_path):
    path = tmp_path / "tenants.csv"
    assert cli.fails("tenants", "export", "--output", str(path)) == (
        f"error: --output '{path}' is not a format: it takes table, json, csv, text, yaml, as in the AWS "
        f"CLI; to write a file, pass --file {path}"
    )
    assert "to write a file, redirect the output: > x.json" in cli.fails("tenants", "list", "-o", "x.json")
    assert "--format is now --output csv" in cli.fails("tenants", "export", "--format", "csv")
    cli.ok("tenants", "export", "--file", path)  # the format from the extension, as --output FILE did
    assert [r["tenant_id"] for r in csv.DictReader(io.StringIO(path.read_text()))] == ["acme", "globex"]
    assert "--query 'keys(@)' failed on this command's document" in cli.fails(
        "tenants", "list", "--query", "keys(@)"
    )


def test_root_help_and_version(cli):
    assert "$ gatekeeper" in cli.ok("--help").stdout
    assert cli.ok("--version").stdout.startswith("gatekeeper ")


def test_shell_completion_script(cli):
    script = cli.ok("--show-completion", "bash").stdout
    assert "complete" in script
    assert "_GATEKEEPER_COMPLETE" in script.upper()


def test_unexpected_errors_are_one_line_unless_debugging(producer, cli, monkeypatch):
    def boom(self):
        raise RuntimeError("disk\non fire")

    monkeypatch.setattr("gatekeeper.dal.tenants.TenantStore.list", boom)
    assert cli.fails("tenants", "list") == (
        "error: unexpected RuntimeError: disk on fire (run with --debug for the traceback)"
    )
    with pytest.raises(RuntimeError):
        cli.run("--debug", "tenants", "list")


def test_no_credentials_is_one_actionable_line(cli, tmp_path):
    missing = str(tmp_path / "missing")
    env = {
        "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
        "AWS_SECURITY_TOKEN": None, "AWS_SHARED_CREDENTIALS_FILE": missing, "AWS_CONFIG_FILE": missing,
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    }  # fmt: skip
    error = cli.fails("tenants", "list", env=env)
    assert error.startswith("error: no AWS credentials found: pass --profile or set AWS_PROFILE")


def test_unknown_profile_is_one_line(cli, tmp_path):
    error = cli.fails("--profile", "nope", "tenants", "list", env={"AWS_CONFIG_FILE": str(tmp_path / "none")})
    assert "nope" in error
    assert "aws configure list-profiles" in error


def test_a_region_that_cannot_exist_is_one_line_before_any_call(cli, monkeypatch):
    monkeypatch.setattr("boto3.session.Session.client", lambda *_, **__: pytest.fail("called AWS"))
    assert cli.fails("--region", "mars-1", "tenants", "list") == (
        "error: --region 'mars-1' is not an AWS Region name (like us-east-1 or eu-west-1)"
    )
    assert cli.fails("tenants", "list", env={"AWS_DEFAULT_REGION": "mars-1", "AWS_REGION": "mars-1"}) == (
        "error: the region 'mars-1' (from the profile or AWS_REGION) is not an AWS Region name "
        "(like us-east-1 or eu-west-1)"
    )
    # The sandbox serves the Regions the SDK knows; AWS itself may have newer ones.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert cli.fails("--region", "xx-mars-1", "pending") == (
        "error: --region 'xx-mars-1' is not a Region the endpoint http://127.0.0.1:4566 "
        "(AWS_ENDPOINT_URL) serves"
    )


def test_usage_errors_keep_click_exit_status(cli):
    result = cli.run("tenants", "add", "acme")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_stack_without_gatekeeper_outputs_is_refused():
    with pytest.raises(Exception, match="has no output TenantsTableName"):
        StackResources.from_description({"StackName": "other", "Outputs": []}, "us-east-1")


def test_stack_parameters_set_the_actions_used_by_simulate():
    names = (
        "TenantsTableName",
        "TemplatesTableName",
        "DecisionsTableName",
        "EventBusName",
        "DecisionTopicArn",
    )
    outputs = [{"OutputKey": key, "OutputValue": "x"} for key in (*names, "ConnectionNotificationTopicArn")]
    outputs.append(
        {"OutputKey": "ManagedEndpointServiceIds", "OutputValue": "vpce-svc-0123456789abcdef0,junk"}
    )
    stack = StackResources.from_description(
        {"StackName": "s", "Outputs": outputs,
         "Parameters": [{"ParameterKey": "UnknownPrincipalAction", "ParameterValue": "hold"}]},
        "eu-west-1",
    )  # fmt: skip
    assert (stack.unknown_principal_action, stack.default_action) == ("hold", "reject")
    assert stack.managed_services == ("vpce-svc-0123456789abcdef0",)


def _validation_error() -> ValidationError:
    try:
        Tenant.model_validate({"tenant_id": "Bad Id"})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NoCredentialsError(), "no AWS credentials found"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/"), "cannot reach http://127.0.0.1:4566/"),
        (
            ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Scan"),
            "Scan failed: AccessDeniedException: no (the caller lacks this permission",
        ),
        (
            ClientError({"Error": {"Code": "ExpiredToken", "Message": "old"}}, "GetCallerIdentity"),
            "the credentials expired",
        ),
        (TemplateInvalid(["a", "b"], template="t"), "template 't' is invalid: a; b"),
        (ParameterInvalid(["override 'X': bad"], template="t"), "parameter overrides do not fit"),
        (_validation_error(), "invalid Tenant: tenant_id: String should match pattern"),
        (FileNotFoundError(2, "No such file or directory", "x.yaml"), "No such file or directory: x.yaml"),
        (ResponseParserError("invalid XML received"), "the endpoint's answer is not an AWS response"),
        (KeyError("surprise"), None),
    ],
    ids=["no-credentials", "unreachable", "access-denied", "expired", "template", "parameters", "pydantic",
         "file", "unparseable", "unforeseen"],
)  # fmt: skip
def test_error_messages_are_single_lines(error, expected):
    message = describe_error(error)
    if expected is None:
        assert message is None
    else:
        assert expected in message
        assert "\n" not in message


# -- the installed entry point against the sandbox, through AWS_ENDPOINT_URL ---------------------
@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ProducerAccount, dict[str, str]]]:
    with emulated_moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
        monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        account = ProducerAccount.create(boto3.Session(region_name="us-east-1"))
        account.push_builtin_templates()
        env = {
            "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "COLUMNS": "200",
            "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "GATEKEEPER_STACK": "vpce-gatekeeper",
        }  # fmt: skip
        yield account, env


@pytest.mark.server
def test_installed_command_works_against_the_sandbox_over_http(sandbox):
    account, env = sandbox
    gatekeeper = Path(sys.executable).parent / "gatekeeper"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(gatekeeper), *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    service = account.service.service_id
    added = run("tenants", "add", "acme", "--name", "Acme", "-p", ACME, "-s", service, "-t", "standard",
                "--max-endpoints", "3", "--json")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert account.tenants.get("acme").updated_by.startswith("operator:arn:aws:sts::")
    simulated = run("simulate", "--principal", ACME, "--service", service, "--json")
    assert json.loads(simulated.stdout)["decision"] == "accepted"
    refused = run("tenants", "add", "acme2", "--name", "Acme", "-p", ACME, "-s", service, "-t", "standard",
                  "--max-endpoints", "3")  # fmt: skip
    assert refused.returncode == 1
    nowhere = run("--region", "mars-1", "tenants", "list")
    assert (nowhere.returncode, nowhere.stderr.splitlines()) == (
        1, ["error: --region 'mars-1' is not an AWS Region name (like us-east-1 or eu-west-1)"]
    )  # fmt: skip
    assert refused.stderr.splitlines() == [
        "error: account 111122223333 is already claimed by tenant acme; a principal belongs to at most one "
        "tenant — to move it, take it off acme first (`gatekeeper tenants update acme --remove-principal "
        "<principal> --dry-run` lists the endpoints that revokes)"
    ]
