"""Issue 12: the data plane before an accept, and what an accepted tenant is told.

The built-in templates hold (`NoHealthyTargets`) a request to a service whose NLB has no healthy
target, instead of accepting it into connection resets; a load balancer that cannot be read never
accepts (`DataPlaneUnknown`). The accepted notice carries the service name, listener ports and the
zones with healthy targets. All on moto's elbv2 (a stopped instance target is reported `unused`).
The IAM contract (tests/integration/conftest.py) checks every elbv2 call against the decider's role.
"""

from __future__ import annotations

import pytest
from moto.elbv2.exceptions import ELBClientError
from moto.elbv2.models import ELBv2Backend

from gatekeeper_ops.sandbox.account import ProducerAccount

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
    assert (decision.outcome, decision.reasons) == ("accepted", ("Accept",))
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
    assert (decision.outcome, decision.reasons) == ("held", ("NoHealthyTargets",))
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
    assert (decision.outcome, decision.reasons) == ("held", ("DataPlaneUnknown",))
    assert any("could not be read" in line and "AccessDenied" in line for line in decision.explanation)
    assert tenants.connection_state(endpoint) == "pendingAcceptance"


@pytest.mark.parametrize("template", ["trial", "enterprise"])
def test_every_built_in_template_holds_without_healthy_targets(tenants, template):
    tenant = tenants.tenants.get("acme")
    tenants.tenants.update(tenant.model_copy(update={"template": template}), "test")
    tenants.set_targets_healthy(False)
    endpoint = request(tenants, ACME)
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert (decision.outcome, decision.reasons) == ("held", ("NoHealthyTargets",))
