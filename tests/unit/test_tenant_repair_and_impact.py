"""The pure parts of issue 19: repairing a stored record (attribute values in, fixes out), the quota
rule when the record leaves it to the template, and what a tenant write does to open connections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from gatekeeper.dal.codec import encode
from gatekeeper.dal.tenant_repair import plan_repair
from gatekeeper.dal.tenant_stream import TenantChange, TenantImage
from gatekeeper.dal.tenants import tenant_from_item, tenant_to_item
from gatekeeper.logic.tenant_impact import tenant_change_impact
from gatekeeper.models.connection import VpcEndpointConnection
from gatekeeper.models.errors import TenantInvalid
from gatekeeper.models.tenant import Tenant, quota_limit

SERVICE = "vpce-svc-0123456789abcdef0"
ACCOUNT = "111122223333"
AT = datetime(2026, 12, 1, tzinfo=UTC)


def _tenant(**changes: object) -> Tenant:
    fields: dict[str, object] = {
        "tenant_id": "acme",
        "display_name": "Acme",
        "principals": (ACCOUNT,),
        "services": (SERVICE,),
        "template": "standard",
        "max_endpoints": 3,
        "version": 4,
    }
    return Tenant.model_validate({**fields, **changes})


def _item(tenant: Tenant) -> dict[str, dict[str, object]]:
    return encode(tenant_to_item(tenant))


def _connection(endpoint: str, state: str = "available", owner: str = ACCOUNT) -> VpcEndpointConnection:
    return VpcEndpointConnection.model_validate(
        {
            "ServiceId": SERVICE,
            "VpcEndpointId": endpoint,
            "VpcEndpointOwner": owner,
            "VpcEndpointState": state,
        }
    )


# -- numbers and the quota ------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["3", 3.0, True])
def test_numbers_are_never_guessed_from_other_types(value):
    with pytest.raises(ValidationError, match="valid integer"):
        _tenant(max_endpoints=value)


@pytest.mark.parametrize(
    ("record", "template", "expected"),
    [(5, 3, 3), (2, 3, 2), (None, 3, 3), (4, None, 4), (None, None, 0)],
)
def test_quota_is_the_smaller_of_record_and_template_and_closed_when_neither_sets_one(
    record, template, expected
):
    parameters = {} if template is None else {"MaxEndpoints": template}
    assert quota_limit(_tenant(max_endpoints=record), parameters) == expected


def test_a_record_without_max_endpoints_is_valid_when_stored():
    tenant = _tenant(max_endpoints=None)
    assert "max_endpoints" not in _item(tenant)
    assert tenant_from_item(_item(tenant)).max_endpoints is None


# -- repair ---------------------------------------------------------------------------------------
def test_invalid_record_messages_name_the_repair_command():
    item = _item(_tenant()) | {"max_endpoints": {"S": "3"}}
    with pytest.raises(TenantInvalid) as caught:
        tenant_from_item(item)
    assert "fix it with `gatekeeper tenants repair acme`" in str(caught.value)
    assert caught.value.tenant_id == "acme"


def test_repair_keeps_the_meaning_and_fixes_only_how_it_is_written():
    tenant = _tenant(principals=(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:role/app"))
    item = _item(tenant) | {
        "max_endpoints": {"S": "3"},
        "status": {"S": " Active"},
        "principals": {"SS": list(tenant.principals)},
        "version": {"S": "4"},
        "notes": {"S": "call Bob"},
    }
    repair = plan_repair("acme", item)
    assert not repair.valid
    assert repair.manual == []
    assert {fix.field for fix in repair.fixes} == {
        "max_endpoints",
        "status",
        "principals",
        "version",
        "notes",
    }
    assert repair.tenant is not None
    assert repair.tenant.model_dump(exclude={"principals"}) == tenant.model_dump(exclude={"principals"})
    assert set(repair.tenant.principals) == set(tenant.principals)
    assert repair.stored_version == {"S": "4"}  # the write is conditional on what was read


@pytest.mark.parametrize(
    ("change", "manual"),
    [
        ({"status": {"S": "paused"}}, "status: 'paused' is neither active nor suspended"),
        ({"max_endpoints": {"S": "many"}}, "max_endpoints: many is not a whole number"),
        ({"principals": {"L": [{"S": f"arn:aws:iam::{ACCOUNT}:role/a/b"}]}}, "has a path"),
        ({"max_endpoints": {"N": "-1"}}, "max_endpoints: Input should be greater than or equal to 0"),
    ],
)
def test_repair_does_not_guess_what_only_a_person_knows(change, manual):
    repair = plan_repair("acme", _item(_tenant()) | change)
    assert repair.tenant is None
    assert any(manual in problem for problem in repair.manual), repair.manual


def test_a_missing_template_is_a_manual_fix():
    item = {k: v for k, v in _item(_tenant()).items() if k != "template"}
    repair = plan_repair("acme", item)
    assert repair.manual == ["template: missing; only you know it — set it in the console, then repair again"]


def test_a_valid_record_needs_no_repair():
    assert plan_repair("acme", _item(_tenant())).valid


# -- impact of tenant writes ---------------------------------------------------------------------
def _change(before: Tenant | None, after: Tenant | None) -> TenantChange:
    return TenantChange(
        "acme", TenantImage.of(before) if before else None, TenantImage.of(after) if after else None
    )


def test_suspension_revokes_accepted_and_rejects_waiting_connections():
    before = _tenant()
    after = _tenant(status="suspended")
    connections = [
        _connection("vpce-0aaaaaaaaaaaaaaaa"),
        _connection("vpce-0bbbbbbbbbbbbbbbb", "pendingAcceptance"),
    ]
    impacts = tenant_change_impact([_change(before, after)], connections, held=(), at=AT)
    assert [(i.vpc_endpoint_id, i.action) for i in impacts] == [
        ("vpce-0aaaaaaaaaaaaaaaa", "revoke"),
        ("vpce-0bbbbbbbbbbbbbbbb", "reject"),
    ]


def test_moving_an_account_between_tenants_in_one_import_revokes_nothing():
    acme, other = _tenant(), _tenant(tenant_id="other", principals=("999988887777",))
    moved = [
        _change(acme, _tenant(principals=("999988887777",))),
        TenantChange("other", TenantImage.of(other), TenantImage.of(_tenant(tenant_id="other"))),
    ]
    impacts = tenant_change_impact(moved, [_connection("vpce-0aaaaaaaaaaaaaaaa")], held=(), at=AT)
    assert impacts == []


def test_removal_and_expiry_revoke_and_a_held_request_now_allowed_is_re_decided():
    removed = tenant_change_impact(
        [_change(_tenant(), None)], [_connection("vpce-0aaaaaaaaaaaaaaaa")], (), AT
    )
    assert [i.action for i in removed] == ["revoke"]
    expired = _tenant(expires_at=AT - timedelta(days=1))
    impacts = tenant_change_impact(
        [_change(_tenant(), expired)], [_connection("vpce-0aaaaaaaaaaaaaaaa")], (), AT
    )
    assert impacts[0].why.startswith("tenant acme expired")
    waiting = _connection("vpce-0cccccccccccccccc", "pendingAcceptance")
    resumed = [_change(_tenant(status="suspended"), _tenant())]
    assert [i.action for i in tenant_change_impact(resumed, [waiting], {waiting.vpc_endpoint_id}, AT)] == [
        "re-decide"
    ]
    assert tenant_change_impact(resumed, [waiting], (), AT) == []  # undecided: its notification decides it
