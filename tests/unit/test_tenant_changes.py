"""Tenant change requests and SBT's events, without AWS: what a request may say, how SBT's
onboarding/offboarding map to changes and back, and the handler's wiring."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gatekeeper.models.tenant_change import (
    CHANGE_REFUSED,
    CHANGED,
    ChangeAnswer,
    ChangeRefused,
    SbtOrigin,
    TenantChangeRequest,
    problems,
    sbt_answer,
    sbt_change,
)
from tests.unit.test_handlers import Context

EVENTS = Path(__file__).resolve().parents[2] / "events"


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def refusal(detail: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        TenantChangeRequest.model_validate(detail)
    return problems(raised.value)


def test_the_sample_is_a_valid_create():
    request = TenantChangeRequest.model_validate(sample("apply_tenant_change")["detail"])
    assert (request.action, request.tenant_id, request.expected_version) == ("create", "wayne", None)


@pytest.mark.parametrize(
    ("detail", "problem"),
    [
        ({"action": "create"}, "create needs `tenant`"),
        ({"action": "update", "tenant": {"max_endpoints": 2}}, "update needs expected_version"),
        (
            {"action": "suspend", "expected_version": 1, "tenant": {"status": "x"}},
            "suspend takes no `tenant`",
        ),
        (
            {"action": "create", "expected_version": 1, "tenant": {"max_endpoints": 2}},
            "a create has no expected_version",
        ),
        ({"action": "create", "tenant": {"updated_by": "me"}}, "unknown or read-only field(s) updated_by"),
        ({"action": "delete", "expected_version": 1}, "action: Input should be"),
        (
            {"action": "suspend", "expected_version": 0},
            "expected_version: Input should be greater than or equal to 1",
        ),
        (
            {"action": "suspend", "expected_version": 1, "extra": True},
            "extra: Extra inputs are not permitted",
        ),
    ],
)
def test_a_request_must_say_exactly_what_its_kind_needs(detail, problem):
    found = refusal({"request_id": "r1", "tenant_id": "acme", **detail})
    assert any(problem in p for p in found), found


def test_the_digest_tells_two_changes_apart_but_not_two_callers():
    one = TenantChangeRequest(request_id="r", action="suspend", tenant_id="acme", expected_version=2)
    assert one.digest == one.model_copy(update={"requested_by": "someone"}).digest
    assert one.digest != one.model_copy(update={"expected_version": 3}).digest


# ---------------------------------------------------------------------------------------------
# SBT (event shapes from sbt-aws 0.5.25: tenant-registrations function, ProvisioningScriptJob)
# ---------------------------------------------------------------------------------------------
def test_sbt_onboarding_maps_to_a_create_keyed_by_the_registration():
    detail = sample("apply_tenant_change_sbt")["detail"]
    request, origin = sbt_change("onboardingRequest", detail, lambda _: pytest.fail("no version read"))
    assert origin == SbtOrigin(tenant_registration_id=detail["tenantRegistrationId"])
    assert (request.action, request.tenant_id) == ("create", detail["tenantId"])
    assert request.request_id == f"sbt-create-{detail['tenantRegistrationId']}"
    assert request.tenant == {"display_name": "Stark Industries", **detail["privateLink"]}


def test_sbt_offboarding_maps_to_an_offboard_of_the_current_version():
    detail = {"tenantId": "ACME", "tenantRegistrationId": "reg-1", "sbtaws_active": False}
    request, _ = sbt_change("offboardingRequest", detail, {"acme": 4}.__getitem__)
    assert (request.action, request.tenant_id, request.expected_version) == ("offboard", "acme", 4)


@pytest.mark.parametrize(
    ("detail_type", "detail", "reason"),
    [
        ("onboardingRequest", {"tenantId": "a"}, "no tenantRegistrationId"),
        ("onboardingRequest", {"tenantRegistrationId": "r", "tenantId": "not valid!"}, "is not a tenant id"),
        ("onboardingRequest", {"tenantRegistrationId": "r", "tenantId": "a"}, "no `privateLink` object"),
        (
            "onboardingRequest",
            {"tenantRegistrationId": "r", "tenantId": "a", "privateLink": {"colour": 1}},
            "unknown or read-only field(s) colour",
        ),
        ("activateRequest", {"tenantRegistrationId": "r", "tenantId": "a"}, "not mapped"),
    ],
)
def test_sbt_events_that_do_not_map_are_refused_naming_what_is_missing(detail_type, detail, reason):
    with pytest.raises(ChangeRefused) as refused:
        sbt_change(detail_type, detail, lambda _: 1)
    assert any(reason in r for r in refused.value.reasons), refused.value.reasons


def test_sbt_is_answered_as_its_provisioning_jobs_answer():
    origin = SbtOrigin(tenant_registration_id="reg-1")
    done = ChangeAnswer(
        detail_type=CHANGED, request_id="x", action="create", tenant_id="t", version=1, sbt=origin
    )
    assert sbt_answer(done) == (
        "provisionSuccess",
        {
            "tenantRegistrationId": "reg-1",
            "jobOutput": {
                "tenantData": {},
                "tenantRegistrationData": {"gatekeeperTenantId": "t", "gatekeeperVersion": "1"},
            },
        },
    )
    failed = ChangeAnswer(
        detail_type=CHANGE_REFUSED,
        request_id="x",
        action="offboard",
        tenant_id="t",
        reasons=("a", "b"),
        sbt=origin,
    )
    assert sbt_answer(failed) == (
        "deprovisionFailure",
        {
            "tenantRegistrationId": "reg-1",
            "jobOutput": {
                "tenantStatus": "Failed to deprovision tenant.",
                "tenantRegistrationData": {"gatekeeperRefusal": "a; b"},
            },
        },
    )


# ---------------------------------------------------------------------------------------------
# The handler
# ---------------------------------------------------------------------------------------------
def test_the_handler_hands_source_detail_type_and_detail_to_the_use_case(monkeypatch):
    from gatekeeper.wiring import services, settings

    seen: list[tuple[str, str, dict[str, Any]]] = []

    class Changes:
        def handle(self, source: str, detail_type: str, detail: dict[str, Any]) -> ChangeAnswer:
            seen.append((source, detail_type, detail))
            return ChangeAnswer(
                detail_type=CHANGED, request_id="r", action="create", tenant_id="t", version=1
            )

    monkeypatch.setattr(services, "tenant_changes", Changes)
    settings.settings.cache_clear()
    app = importlib.reload(importlib.import_module("functions.apply_tenant_change.app"))
    event = sample("apply_tenant_change")
    result = app.lambda_handler(event, Context())
    assert seen == [(event["source"], event["detail-type"], event["detail"])]
    assert result["answer"] == "Tenant Changed"
