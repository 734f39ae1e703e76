from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from gatekeeper.models.connection import (
    ACCEPTED_STATES,
    CLOSED_STATES,
    OPEN_STATES,
    PENDING_ACCEPTANCE,
    VpcEndpointConnection,
    normalise_state,
)
from gatekeeper.models.decision import Decision
from gatekeeper.models.errors import InvalidPrincipal
from gatekeeper.models.identifiers import account_of, principal_arn
from gatekeeper.models.requests import CARRIED_OUT, operator_verdict
from gatekeeper.models.tenant import Tenant, entitles, record_denial


def tenant(**changes):
    fields = {
        "tenant_id": "acme",
        "display_name": "Acme",
        "principals": ("111111111111",),
        "services": ("vpce-svc-0123456789abcdef0",),
        "template": "standard",
        "max_endpoints": 3,
    }
    return Tenant(**{**fields, **changes})


@pytest.mark.parametrize("raw", ["pendingAcceptance", "PendingAcceptance", "PENDINGACCEPTANCE"])
def test_states_are_normalised(raw):
    assert normalise_state(raw) == "pendingAcceptance"


def test_unknown_state_is_refused():
    with pytest.raises(ValueError, match="unknown VPC endpoint connection state"):
        normalise_state("accepted-ish")


def test_connection_from_ec2_shape():
    connection = VpcEndpointConnection.model_validate(
        {
            "ServiceId": "vpce-svc-0123456789abcdef0",
            "VpcEndpointId": "vpce-0a1b2c3d4e5f60718",
            "VpcEndpointOwner": "111111111111",
            "VpcEndpointState": "PendingAcceptance",
            "DnsEntries": [],
        }
    )
    assert connection.vpc_endpoint_state == "pendingAcceptance"
    assert connection.region("us-east-1") == "us-east-1"
    assert connection.to_event()["VpcEndpointState"] == "pendingAcceptance"


@pytest.mark.parametrize(
    ("principal", "account"),
    [
        ("111111111111", "111111111111"),
        ("arn:aws:iam::222222222222:root", "222222222222"),
        ("arn:aws:iam::333333333333:role/consumer", "333333333333"),
        ("arn:aws:iam::444444444444:user/ci", "444444444444"),
    ],
)
def test_principals_map_to_their_account(principal, account):
    assert account_of(principal) == account


def test_principal_with_a_path_is_refused_with_the_fix():
    with pytest.raises(InvalidPrincipal, match=r"has a path.*role/b"):
        account_of("arn:aws:iam::111111111111:role/a/b")


@pytest.mark.parametrize("bad", ["1234", "arn:aws:iam::1:root", "arn:aws:s3:::bucket", ""])
def test_malformed_principals_are_refused(bad):
    with pytest.raises(InvalidPrincipal):
        account_of(bad)


def test_principal_arn_form():
    assert principal_arn("111111111111") == "arn:aws:iam::111111111111:root"
    assert principal_arn("arn:aws:iam::1:role/x") == "arn:aws:iam::1:role/x"


def test_tenant_validation():
    with pytest.raises(ValidationError, match="path"):
        tenant(principals=("arn:aws:iam::111111111111:role/a/b",))
    with pytest.raises(ValidationError, match="endpoint service id"):
        tenant(services=("svc-1",))
    with pytest.raises(ValidationError, match="more than once"):
        tenant(principals=("111111111111", "111111111111"))
    with pytest.raises(ValidationError):
        tenant(status="deleted")
    with pytest.raises(ValidationError):
        tenant(unexpected="field")


SERVICE = "vpce-svc-0123456789abcdef0"
OTHER_SERVICE = "vpce-svc-0fffffffffffffff0"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_tenant_denial():
    record = tenant(expires_at=(NOW + timedelta(days=1)).replace(tzinfo=None))
    assert record.expires_at.tzinfo is not None
    assert record.denial(SERVICE, NOW) is None
    assert record.denial(SERVICE, NOW + timedelta(days=1)) == (
        "TenantExpired",
        "tenant acme expired at 2026-06-02 00:00:00+00:00",
    )
    assert record.denial(OTHER_SERVICE, NOW) == (
        "ServiceNotEntitled",
        f"tenant acme is not entitled to {OTHER_SERVICE}",
    )
    assert tenant(status="suspended").denial(SERVICE, NOW) == ("TenantSuspended", "tenant acme is suspended")
    assert tenant(services=("*",)).denial(OTHER_SERVICE, NOW) is None
    assert tenant(services=("*",)).is_entitled(OTHER_SERVICE)


def test_tenant_denial_reasons_in_order_suspended_then_expired_then_not_entitled():
    everything_wrong = tenant(status="suspended", expires_at=NOW, services=(OTHER_SERVICE,))
    assert everything_wrong.denial(SERVICE, NOW).reason == "TenantSuspended"
    expired_elsewhere = tenant(expires_at=NOW, services=(OTHER_SERVICE,))
    assert expired_elsewhere.denial(SERVICE, NOW).reason == "TenantExpired"


@pytest.mark.parametrize(
    ("status", "expires_at", "services", "reason"),
    [
        ("active", None, (SERVICE,), None),
        ("Active ", None, (SERVICE,), None),  # hand-written: read as the word it is
        ("Disabled", None, (SERVICE,), "TenantSuspended"),
        (False, None, (SERVICE,), None),  # not a word: says nothing, takes nothing away
        ("active", NOW, None, "TenantExpired"),  # expiry is inclusive
        ("active", NOW + timedelta(seconds=1), None, None),
        ("active", None, None, None),  # an unreadable service list takes nothing away
        ("active", None, (), "ServiceNotEntitled"),
        ("active", None, (OTHER_SERVICE,), "ServiceNotEntitled"),
        ("active", None, ("*",), None),
    ],
)
def test_record_denial_reads_what_a_record_says_clearly(status, expires_at, services, reason):
    record = SimpleNamespace(tenant_id="acme", status=status, expires_at=expires_at, services=services)
    denial = record_denial(record, SERVICE, NOW)
    assert (denial.reason if denial else None) == reason


def test_entitles():
    assert entitles((SERVICE,), SERVICE)
    assert entitles(("*",), SERVICE)
    assert not entitles((OTHER_SERVICE,), SERVICE)
    assert tenant(principals=("111111111111", "arn:aws:iam::111111111111:role/x")).accounts() == {
        "111111111111"
    }


def test_decision_actor_is_constrained():
    base = {
        "vpc_endpoint_id": "vpce-1",
        "service_id": "vpce-svc-1",
        "vpc_endpoint_owner": "1",
        "decision": "held",
    }
    assert Decision(**base, actor="operator:arn:aws:iam::1:user/x").actor.startswith("operator:")
    with pytest.raises(ValidationError, match="actor"):
        Decision(**base, actor="somebody")


@pytest.mark.parametrize(
    ("requested", "state", "recorded", "verdict"),
    [
        ("accepted", "pendingAcceptance", None, "approve"),
        ("accepted", "pendingAcceptance", "held", "approve"),
        ("accepted", "pendingAcceptance", "rejected", "drift"),
        ("accepted", "pending", "accepted", "already"),
        ("accepted", "available", None, "already"),
        ("accepted", "available", "revoked", "not-pending"),
        ("accepted", "rejected", "rejected", "not-pending"),
        ("rejected", "pendingAcceptance", None, "reject"),
        ("rejected", "pendingAcceptance", "held", "reject"),
        ("rejected", "pendingAcceptance", "accepted", "drift"),
        ("rejected", "available", "accepted", "revoke"),
        ("rejected", "pending", "accepted", "revoke"),
        ("rejected", "available", None, "never-accepted"),
        ("rejected", "available", "held", "never-accepted"),
        ("rejected", "deleted", "accepted", "already"),
        ("rejected", "rejected", "revoked", "already"),
        ("rejected", "partial", None, "not-open"),
    ],
)
def test_operator_verdict(requested, state, recorded, verdict):
    assert operator_verdict(requested, state, recorded) == verdict
    assert (verdict in CARRIED_OUT) is (verdict in ("approve", "reject", "revoke"))


def test_connection_state_groups():
    assert ACCEPTED_STATES | {PENDING_ACCEPTANCE} == OPEN_STATES
    assert not OPEN_STATES & CLOSED_STATES
    assert {normalise_state(s) for s in (*OPEN_STATES, *CLOSED_STATES)} == OPEN_STATES | CLOSED_STATES
    assert "partial" not in OPEN_STATES | CLOSED_STATES  # neither: left to an operator
