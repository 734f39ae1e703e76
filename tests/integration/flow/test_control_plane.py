"""Tenant changes from the SaaS control plane, on the emulated account: every change kind applied and
answered on the bus; a stale version, a claimed account, a malformed event and a forged source
refused with nothing written; a request id applied once however often it comes; SBT's onboarding
and offboarding events mapped both ways; revocations a change causes go through the decision path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gatekeeper.dal.tenants import claimed_elsewhere
from gatekeeper_ops.control_plane import AnswerTimeout, ChangeInvalid, ChangeRefusedError
from gatekeeper_ops.sandbox.account import ProducerAccount

from .conftest import ACME
from .test_forged_events import put as put_on_bus

EVENTS = Path(__file__).resolve().parents[3] / "events"
WAYNE = "777788889999"


def wayne(service: str, **changes: Any) -> dict[str, Any]:
    return {
        "display_name": "Wayne Enterprises",
        "principals": [WAYNE],
        "services": [service],
        "template": "standard",
        "max_endpoints": 3,
        **changes,
    }


@pytest.fixture
def answers(tenants: ProducerAccount) -> str:
    """What the control plane hears: the stack's answers on the bus."""
    return tenants.listen(
        "answers", {"source": ["vpce.gatekeeper"], "detail-type": ["Tenant Changed", "Tenant Change Refused"]}
    )


def put(
    producer: ProducerAccount,
    detail: dict[str, Any],
    source: str = "vpce.gatekeeper.control-plane",
    detail_type: str = "Tenant Change Requested",
) -> None:
    """Put one event as the control plane (or a forger) would, and deliver what follows."""
    put_on_bus(producer, detail_type, detail, source)
    producer.settle()


def table_items(producer: ProducerAccount, output: str = "TenantsTableName") -> list[dict[str, Any]]:
    return producer.client("dynamodb").scan(TableName=producer.stack.outputs[output])["Items"]


def test_each_change_kind_is_applied_and_answered(tenants, answers):
    client = tenants.control_plane()
    service = tenants.service.service_id
    created = client.create("wayne", wayne(service), request_id="wayne-1", requested_by="signup")
    assert (created.version, created.tenant["principals"]) == (1, [WAYNE])
    assert tenants.tenants.get("wayne").updated_by == "control-plane:wayne-1"
    updated = client.update("wayne", 1, {"max_endpoints": 5, "labels": {"plan": "pro"}})
    suspended = client.suspend("wayne", updated.version)
    assert tenants.tenants.get("wayne").status == "suspended"
    resumed = client.resume("wayne", suspended.version)
    offboarded = client.offboard("wayne", resumed.version)
    assert offboarded.version is None
    assert tenants.tenants.owner_of(WAYNE) is None  # its account claim went with it
    heard = tenants.heard(answers)
    assert [(e["detail-type"], e["detail"]["action"], e["detail"]["version"]) for e in heard] == [
        ("Tenant Changed", "create", 1),
        ("Tenant Changed", "update", 2),
        ("Tenant Changed", "suspend", 3),
        ("Tenant Changed", "resume", 4),
        ("Tenant Changed", "offboard", None),
    ]
    assert heard[0]["detail"]["request_id"] == "wayne-1"
    assert heard[1]["detail"]["tenant"]["labels"] == {"plan": "pro"}


def test_a_repeated_request_is_applied_once_and_answered_again(tenants, answers):
    detail = {
        "request_id": "wayne-1",
        "action": "create",
        "tenant_id": "wayne",
        "tenant": wayne(tenants.service.service_id),
    }
    put(tenants, detail)
    put(tenants, detail)  # EventBridge delivers at least once; the control plane may retry
    assert tenants.tenants.get("wayne").version == 1
    heard = tenants.heard(answers)
    assert [e["detail-type"] for e in heard] == ["Tenant Changed", "Tenant Changed"]
    assert heard[0]["detail"] == heard[1]["detail"]
    # The same request id for another change is refused, not answered with the first one's outcome.
    put(tenants, {**detail, "tenant": wayne(tenants.service.service_id, max_endpoints=9)})
    [reused] = tenants.heard(answers)
    assert reused["detail-type"] == "Tenant Change Refused"
    assert "was used for another change" in reused["detail"]["reasons"][0]


def test_a_stale_version_is_refused_and_nothing_is_written(tenants, answers):
    before = table_items(tenants)
    client = tenants.control_plane()
    with pytest.raises(ChangeRefusedError) as refused:
        client.suspend("acme", expected_version=7)
    assert refused.value.reasons == (
        "tenant acme is at version 1, not the expected 7: changed by someone else since you read it; "
        "nothing was written — read it again and retry",
    )
    assert table_items(tenants) == before
    [answer] = tenants.heard(answers)
    assert answer["detail"]["reasons"] == list(refused.value.reasons)


def test_an_account_another_tenant_claims_is_refused_and_nothing_is_written(tenants):
    before = table_items(tenants)
    with pytest.raises(ChangeRefusedError) as refused:
        tenants.control_plane().create("wayne", wayne(tenants.service.service_id, principals=[ACME]))
    assert refused.value.reasons == (claimed_elsewhere(ACME, "acme"),)
    assert table_items(tenants) == before


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        # an unknown field
        (
            {"request_id": "r1", "action": "create", "tenant_id": "wayne", "colour": "red"},
            "colour: Extra inputs",
        ),
        # a wrong type: a number as a string
        ({"max_endpoints": "3"}, "max_endpoints: Input should be a valid integer"),
        # a field the store owns
        ({"version": 4}, "unknown or read-only field(s) version"),
        # an invalid principal (the CLI's own rule)
        ({"principals": ["arn:aws:iam::777788889999:role/a/b"]}, "has a path"),
        # a template that does not exist (the CLI's own rule)
        ({"template": "platinum"}, "no template 'platinum'"),
        # a parameter that does not fit the template
        ({"parameters": {"MaxEndpoints": "many"}}, "parameters:"),
        # too many registered endpoints
        ({"registered_endpoints": [f"vpce-{i:017x}" for i in range(101)]}, "at most 100"),
    ],
)
def test_a_malformed_change_is_refused_with_a_clear_reason_and_nothing_is_written(
    tenants, answers, detail, reason
):
    before = table_items(tenants)
    if "request_id" not in detail:
        detail = {
            "request_id": "r1",
            "action": "create",
            "tenant_id": "wayne",
            "tenant": wayne(tenants.service.service_id, **detail),
        }
    put(tenants, detail)
    [answer] = tenants.heard(answers)
    assert answer["detail-type"] == "Tenant Change Refused"
    assert any(reason in r for r in answer["detail"]["reasons"]), answer["detail"]["reasons"]
    assert table_items(tenants) == before
    # The client refuses to put what the model refuses (the same model), before it reaches the bus.
    if "colour" in detail:
        with pytest.raises(ChangeInvalid):
            tenants.control_plane().put(detail)


def test_a_forged_source_reaches_no_function_and_writes_nothing(tenants, answers):
    before = table_items(tenants)
    detail = {"request_id": "r1", "action": "suspend", "tenant_id": "acme", "expected_version": 1}
    for source in ("vpce.gatekeeper", "vpce.gatekeeper.operator", "com.example.control-plane"):
        put(tenants, detail, source=source)  # the bus policy keeps the real source to the control plane
    assert table_items(tenants) == before
    assert tenants.heard(answers) == []
    assert tenants.queue_depth("TenantChangeDeadLetterQueueUrl") == 0


def test_the_client_times_out_on_a_request_nobody_answered(tenants):
    with pytest.raises(AnswerTimeout, match=r"no answer to never-put within 0\.5 s; wait again"):
        tenants.control_plane().wait("never-put", timeout=0.5)


def test_a_suspension_revokes_through_the_decision_path(tenants):
    endpoint = tenants.consumer(ACME).request_endpoint(tenants.service)
    tenants.settle()
    assert tenants.decisions.active_endpoints("acme") == 1
    tenants.control_plane().suspend("acme", expected_version=1)
    tenants.settle()
    decisions = tenants.decisions.decisions_for_endpoint(endpoint)
    assert [(d.outcome, d.trigger) for d in decisions][-1] == ("revoked", "tenant-change")
    assert tenants.connection_state(endpoint) == "rejected"


# ---------------------------------------------------------------------------------------------
# SBT
# ---------------------------------------------------------------------------------------------
def test_sbt_onboarding_and_offboarding_round_trip_with_sbt_event_shapes(tenants):
    sbt = tenants.listen(
        "sbt",
        {
            "source": ["applicationPlaneEventSource"],
            "detail-type": [{"suffix": "rovisionSuccess"}, {"suffix": "rovisionFailure"}],
        },
    )
    onboarding = json.loads((EVENTS / "apply_tenant_change_sbt.json").read_text())
    detail = onboarding["detail"]
    detail["privateLink"]["services"] = [tenants.service.service_id]
    put(tenants, detail, source="controlPlaneEventSource", detail_type="onboardingRequest")
    tenant = tenants.tenants.get(detail["tenantId"])
    assert (tenant.display_name, tenant.max_endpoints, tenant.principals) == (
        "Stark Industries",
        5,
        ("888899990000",),
    )
    [provisioned] = tenants.heard(sbt)
    assert provisioned["detail-type"] == "provisionSuccess"
    assert provisioned["detail"] == {
        "tenantRegistrationId": detail["tenantRegistrationId"],
        "jobOutput": {
            "tenantData": {},
            "tenantRegistrationData": {"gatekeeperTenantId": detail["tenantId"], "gatekeeperVersion": "1"},
        },
    }
    # What SBT's tenant-registrations function puts on offboarding: the tenant and its registration.
    offboarding = {
        "tenantId": detail["tenantId"],
        "tenantRegistrationId": detail["tenantRegistrationId"],
        "sbtaws_active": False,
        "tenantName": "Stark Industries",
    }
    put(tenants, offboarding, source="controlPlaneEventSource", detail_type="offboardingRequest")
    put(tenants, offboarding, source="controlPlaneEventSource", detail_type="offboardingRequest")  # again
    assert [e["detail-type"] for e in tenants.heard(sbt)] == ["deprovisionSuccess", "deprovisionSuccess"]
    assert tenants.tenants.owner_of("888899990000") is None


def test_sbt_onboarding_without_privatelink_fields_fails_as_sbt_expects(tenants):
    sbt = tenants.listen("sbt", {"source": ["applicationPlaneEventSource"]})
    detail = {"tenantRegistrationId": "reg-1", "tenantId": "umbrella-2", "tenantName": "U2", "tier": "basic"}
    put(tenants, detail, source="controlPlaneEventSource", detail_type="onboardingRequest")
    [failed] = tenants.heard(sbt)
    assert failed["detail-type"] == "provisionFailure"
    assert failed["detail"]["tenantRegistrationId"] == "reg-1"
    assert failed["detail"]["jobOutput"]["tenantStatus"] == "Failed to provision tenant."
    assert "privateLink" in failed["detail"]["jobOutput"]["tenantRegistrationData"]["gatekeeperRefusal"]
