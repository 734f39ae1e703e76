"""The `gatekeeper` CLI, in-process (typer's CliRunner), against an emulated producer account
running the real stack: moto + the PrivateLink emulator, the stack registered in CloudFormation
under its default name so the CLI finds it exactly as it would in a real account."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws
from typer.testing import CliRunner, Result

from gatekeeper.models import Tenant
from gatekeeper_ops import stack
from gatekeeper_ops.cli.app import app
from gatekeeper_ops.emulator import privatelink_emulator
from gatekeeper_ops.sandbox.account import ProducerAccount

ACME = "111122223333"  # active, standard template
GLOBEX = "222233334444"  # suspended
STRANGER = "999988887777"  # no tenant
OPERATOR = "operator:arn:aws:sts::123456789012:user/moto"  # moto's caller identity


@pytest.fixture(scope="module", autouse=True)
def _shared_botocore_loader() -> Iterator[None]:
    """Speed only: every CLI invocation builds a fresh boto3 Session, which re-reads the service
    models from disk (EC2's is megabytes of JSON). A test module shares one loader; the data is static."""
    shared = cache(botocore.loaders.create_loader)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared)
        yield


_load_template = stack.load_template


@cache
def _parsed_template() -> dict[str, Any]:
    return _load_template()


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProducerAccount]:
    # Speed only: template.yaml is parsed once per session (pure-Python YAML is slow), every
    # account still gets its own copy, provisioned as before.
    monkeypatch.setattr(stack, "load_template", lambda path=stack.TEMPLATE: copy.deepcopy(_parsed_template()))
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    monkeypatch.delenv("GATEKEEPER_STACK", raising=False)
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # ~1 s per test of AMIs nobody uses
    with mock_aws(), privatelink_emulator():
        account = ProducerAccount.create(boto3.Session(region_name="us-east-1"))
        account.push_builtin_templates()
        yield account


def tenant(tenant_id: str, account: str, service: str, **changes: object) -> Tenant:
    fields: dict[str, object] = {
        "tenant_id": tenant_id,
        "display_name": tenant_id.title(),
        "principals": (account,),
        "services": (service,),
        "template": "standard",
        "max_endpoints": 3,
    }
    return Tenant.model_validate({**fields, **changes})


@pytest.fixture
def seeded(producer: ProducerAccount) -> ProducerAccount:
    service = producer.service.service_id
    producer.add_tenant(tenant("acme", ACME, service, labels={"tier": "gold"}))
    producer.add_tenant(tenant("globex", GLOBEX, service, status="suspended"))
    return producer


@dataclass
class Cli:
    """Runs `gatekeeper …` and checks the contract: success exits 0; failure is one line on stderr."""

    runner: CliRunner

    def run(self, *args: object, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return self.runner.invoke(
            app,
            [str(a) for a in args],
            input=input,
            env={"COLUMNS": "200", **(env or {})},
            catch_exceptions=False,
        )

    def ok(self, *args: object, input: str | None = None) -> Result:
        result = self.run(*args, input=input)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: object, input: str | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", input=input).stdout)

    def fails(self, *args: object, input: str | None = None, env: dict[str, str] | None = None) -> str:
        """The single error line of a refused command."""
        result = self.run(*args, input=input, env=env)
        assert result.exit_code != 0, result.output
        assert "Traceback" not in result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, result.stderr
        return errors[0]


@pytest.fixture
def cli() -> Cli:
    return Cli(CliRunner())


def table_snapshot(producer: ProducerAccount, output: str = "TenantsTableName") -> str:
    """Every item of a stack table, raw attribute values, in key order: for byte-for-byte comparisons."""
    client = producer.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=producer.stack.outputs[output]):
        items += page["Items"]
    items.sort(key=lambda item: (item["pk"]["S"], item["sk"]["S"]))
    return json.dumps(items, sort_keys=True)
