"""What every command promises: `--help` with an example, `--json`, shell completion, and failures
as one actionable line on stderr with a non-zero status — never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import typer
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from pydantic import ValidationError

from gatekeeper.models.tenant import Tenant
from gatekeeper.policy import ParameterInvalid, TemplateInvalid
from gatekeeper_ops.cli.app import app
from gatekeeper_ops.cli.context import StackResources, describe_error
from gatekeeper_ops.emulator import emulated_moto_server
from gatekeeper_ops.sandbox.account import ProducerAccount

from .conftest import ACME


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
    tenants = ("add", "show", "list", "update", "suspend", "resume", "remove", "import", "export")
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
def test_every_command_has_help_with_an_example_and_a_json_option(cli, path):
    out = cli.ok(*path, "--help").stdout
    assert "Examples" in out
    assert f"$ gatekeeper {' '.join(path)}" in out
    assert "--json" in out


READ_COMMANDS = [
    ("tenants", "show"), ("tenants", "list"), ("templates", "list"), ("templates", "show"),
    ("services", "list"), ("pending",), ("decisions",), ("simulate",), ("report", "usage"),
    ("report", "orphans"),
]  # fmt: skip


@pytest.mark.parametrize("path", READ_COMMANDS, ids=[" ".join(p) for p in READ_COMMANDS])
def test_read_commands_take_output_and_query_like_the_aws_cli(cli, path):
    out = cli.ok(*path, "--help").stdout
    assert "--output" in out
    assert "--query" in out
    assert "JMESPATH" in out


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
        (KeyError("surprise"), None),
    ],
    ids=["no-credentials", "unreachable", "access-denied", "expired", "template", "parameters", "pydantic",
         "file", "unforeseen"],
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
    assert refused.stderr.splitlines() == [
        "error: account 111122223333 is already claimed by tenant acme; a principal belongs to at most one "
        "tenant — remove it there first"
    ]
