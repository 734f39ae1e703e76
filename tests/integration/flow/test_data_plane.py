"""Issue 12: the data plane before an accept, and what an accepted tenant is told.

The built-in templates hold (`NoHealthyTargets`) a request to a service whose NLB has no healthy
target, instead of accepting it into connection resets; a load balancer that cannot be read never
accepts (`DataPlaneUnknown`). The accepted notice carries the service name, listener ports and the
zones with healthy targets. All on moto's elbv2 (a stopped instance target is reported `unused`).
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto.elbv2.exceptions import ELBClientError
from moto.elbv2.models import ELBv2Backend

from gatekeeper_ops.sandbox.account import ProducerAccount
from gatekeeper_ops.stack import load_template

from .conftest import ACME

ZONES = ["us-east-1a", "us-east-1b"]


def request(producer: ProducerAccount, account: str) -> str:
    endpoint = producer.consumer(account).request_endpoint(producer.service)
    producer.settle()
    return endpoint


def test_healthy_targets_are_accepted_and_the_notice_says_how_to_connect(tenants):
    queue = tenants.subscribe_decisions("acme", {"tenant_id": ["acme"]})
    endpoint = request(tenants, ACME)
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert (decision.decision, decision.reasons) == ("accepted", ("Accept",))
    assert any("healthy targets serve us-east-1a, us-east-1b" in line for line in decision.explanation)
    [notice] = tenants.received(queue)
    assert notice["service_access"] == {
        "service_name": tenants.service.service_name,
        "ports": [443],
        "private_dns_name": None,
        "private_dns_name_state": None,
        "healthy_zones": ZONES,
    }
    assert tenants.consumer(ACME).endpoint_state(endpoint) in ("pending", "available")


def test_no_healthy_targets_holds_with_the_zones_named(tenants):
    queue = tenants.subscribe_decisions("acme", {"tenant_id": ["acme"]})
    tenants.set_targets_healthy(False)
    endpoint = request(tenants, ACME)
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert (decision.decision, decision.reasons) == ("held", ("NoHealthyTargets",))
    assert (
        "the load balancer of "
        f"{tenants.service.service_id} has no healthy target serving us-east-1a, us-east-1b "
        "(0 of 2 registered targets healthy; cross-zone load balancing off)"
    ) in decision.explanation
    assert tenants.connection_state(endpoint) == "pendingAcceptance"
    assert tenants.decisions.active_endpoints("acme") == 0
    [notice] = tenants.received(queue)
    assert (notice["decision"], notice["service_access"]) == ("held", None)


@pytest.mark.filterwarnings("ignore:Exception\\(ELBClientError\\) with code AccessDenied")
def test_an_unreadable_load_balancer_holds_and_never_accepts(tenants, monkeypatch):
    def denied(*args: object, **kwargs: object) -> None:
        raise ELBClientError(
            "AccessDenied", "User is not authorized to perform: elasticloadbalancing:DescribeTargetHealth"
        )

    monkeypatch.setattr(ELBv2Backend, "describe_target_health", denied)
    endpoint = request(tenants, ACME)
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert (decision.decision, decision.reasons) == ("held", ("DataPlaneUnknown",))
    assert any("could not be read" in line and "AccessDenied" in line for line in decision.explanation)
    assert tenants.connection_state(endpoint) == "pendingAcceptance"


@pytest.mark.parametrize("template", ["trial", "enterprise"])
def test_every_built_in_template_holds_without_healthy_targets(tenants, template):
    tenant = tenants.tenants.get("acme")
    tenants.tenants.update(tenant.model_copy(update={"template": template}), "test")
    tenants.set_targets_healthy(False)
    endpoint = request(tenants, ACME)
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert (decision.decision, decision.reasons) == ("held", ("NoHealthyTargets",))


def test_the_deciders_role_allows_every_data_plane_call(tenants):
    """Every elbv2 call (and the EC2 reads added with it) the handlers make through the default
    session — where the Lambda runtime builds its clients — is in EvaluateConnectionFunction's role."""
    calls: set[str] = set()

    def record(model: Any, **kwargs: Any) -> None:
        calls.add(f"{model.service_model.signing_name}:{model.name}")

    events = boto3._get_default_session().events
    events.register("before-call", record)
    try:
        request(tenants, ACME)
    finally:
        events.unregister("before-call", record)
    data_plane = {
        c
        for c in calls
        if c.startswith("elasticloadbalancing:")
        or c in ("ec2:DescribeVpcEndpointServiceConfigurations", "ec2:DescribeInstances")
    }
    assert "elasticloadbalancing:DescribeTargetHealth" in data_plane
    assert "elasticloadbalancing:DescribeListeners" in data_plane
    function = load_template()["Resources"]["EvaluateConnectionFunction"]["Properties"]
    allowed = {
        action
        for policy in function["Policies"]
        for statement in policy["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert data_plane <= allowed, data_plane - allowed
