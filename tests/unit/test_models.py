from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from gatekeeper.models.connection import VpcEndpointConnection, normalise_state
from gatekeeper.models.decision import Decision
from gatekeeper.models.errors import InvalidPrincipal
from gatekeeper.models.identifiers import account_of, principal_arn
from gatekeeper.models.tenant import Tenant


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


def test_tenant_eligibility():
    now = datetime.now(UTC)
    record = tenant(expires_at=(now + timedelta(days=1)).replace(tzinfo=None))
    assert record.expires_at.tzinfo is not None
    assert record.is_eligible("vpce-svc-0123456789abcdef0", now)
    assert not record.is_eligible("vpce-svc-0123456789abcdef0", now + timedelta(days=2))
    assert not record.is_eligible("vpce-svc-0fffffffffffffff0", now)
    assert not tenant(status="suspended").is_eligible("vpce-svc-0123456789abcdef0", now)
    assert tenant(services=("*",)).is_entitled("vpce-svc-0fffffffffffffff0")
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
