"""Read commands make the fewest AWS calls: the stack is described once per invocation, and what
they read per tenant, template or service does not grow with the connections they list."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from gatekeeper_ops.cli import context
from gatekeeper_ops.sandbox.account import ProducerAccount
from tests.integration.conftest import tenant

from .conftest import ACME
from .test_connections import held_request

INITECH = "333344445555"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every AWS call the CLI makes, as `service.Operation` (cleared by the test between commands)."""
    counted: Counter[str] = Counter()
    hooked: list[Any] = []
    real_client = context.Gatekeeper.client

    def count(model: Any, **_: Any) -> None:
        counted[f"{model.service_model.service_name}.{model.name}"] += 1

    def client(self: context.Gatekeeper, service: str) -> Any:
        made = real_client(self, service)
        if not any(made is seen for seen in hooked):
            made.meta.events.register("before-call", count)
            hooked.append(made)
        return made

    monkeypatch.setattr(context.Gatekeeper, "client", client)
    return counted


def _calls(calls: Counter[str], cli: Any, *args: str) -> Counter[str]:
    calls.clear()
    cli.ok(*args)
    return Counter(calls)


def test_connection_reads_do_not_grow_with_the_connections_of_a_tenant(
    seeded: ProducerAccount, cli: Any, calls: Counter[str]
) -> None:
    held_request(seeded)
    one = _calls(calls, cli, "pending", "--json")
    held_request(seeded)
    two = _calls(calls, cli, "pending", "--json")
    # One Describe for every managed service, one batch of recorded states, and the tenant, its
    # template and its quota counter read once for all of its connections.
    assert two == one
    assert one["cloudformation.DescribeStacks"] == 1
    assert one["ec2.DescribeVpcEndpointConnections"] == 1
    assert one["dynamodb.BatchGetItem"] == 1
    assert (one["dynamodb.GetItem"], one["dynamodb.Query"]) == (3, 1)  # claim, tenant, quota; template
    assert not {op for op in one if op.startswith(("sns.", "events."))}  # assessing publishes nothing

    simulate = _calls(calls, cli, "simulate", "--principal", ACME, "--service", seeded.service.service_id)
    assert simulate["dynamodb.GetItem"] == 3  # the quota it prints is the one the assessment read

    services = _calls(calls, cli, "services", "list", "--json")
    ec2 = {op: n for op, n in services.items() if op.startswith("ec2.")}
    assert ec2 == {
        "ec2.DescribeVpcEndpointServiceConfigurations": 1,
        "ec2.DescribeVpcEndpointConnectionNotifications": 1,  # one call for every service
        "ec2.DescribeVpcEndpointConnections": 1,
        "ec2.DescribeVpcEndpointServicePermissions": 1,  # per service: the API takes one
    }


def test_tenants_list_reads_every_template_in_one_scan(
    seeded: ProducerAccount, cli: Any, calls: Counter[str]
) -> None:
    seeded.add_tenant(tenant("initech", INITECH, seeded.service.service_id, template="trial"))
    listed = _calls(calls, cli, "tenants", "list", "--json")
    assert listed == {"cloudformation.DescribeStacks": 1, "dynamodb.Scan": 2}  # tenants, templates
