from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gatekeeper.dal.decisions import DecisionStore
from gatekeeper.dal.templates import TemplateStore
from gatekeeper.dal.tenants import TenantStore
from gatekeeper_ops.emulator.activation import one_request_at_a_time
from gatekeeper_ops.stack import load_template, provision


@cache
def _tables_template() -> dict[str, Any]:
    """template.yaml's tables and their outputs, parsed once a session (each test gets a copy)."""
    template = load_template()
    template["Resources"] = {
        k: v
        for k, v in template["Resources"].items()
        if isinstance(v, dict) and v["Type"] == "AWS::DynamoDB::Table"  # not an Fn::ForEach loop
    }
    template["Outputs"] = {k: v for k, v in template["Outputs"].items() if k.endswith("TableName")}
    return template


@pytest.fixture
def tables() -> Iterator[SimpleNamespace]:
    """The stack's DynamoDB tables, created from template.yaml's own definitions."""
    template = copy.deepcopy(_tables_template())
    # One request at a time, as the emulator answers: the decider writes a batch from threads.
    with mock_aws(), one_request_at_a_time():
        session = boto3.Session(region_name="us-east-1")
        stack = provision(session, {"EndpointServiceIds": "vpce-svc-0123456789abcdef0"}, template=template)
        client = session.client("dynamodb")
        yield SimpleNamespace(
            client=client,
            tenants=TenantStore(client, stack.outputs["TenantsTableName"]),
            templates=TemplateStore(client, stack.outputs["TemplatesTableName"]),
            decisions=DecisionStore(client, stack.outputs["DecisionsTableName"]),
            names=stack.outputs,
        )
