"""Tenant sync: reading stream images (strictly, and leniently when a record does not validate), the
plan a change makes, carrying it out against fake edges, the EC2 permission calls, and the decider's
side of a revocation request."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.dal.codec import encode
from gatekeeper.dal.tenant_stream import TenantChange, TenantImage, change_from_stream
from gatekeeper.dal.tenants import tenant_to_item
from gatekeeper.logic.decision_service import DecisionService
from gatekeeper.logic.tenant_sync import RECENT_HOLDS, TenantSync, plan_change
from gatekeeper.models.connection import ConnectionRef, VpcEndpointConnection
from gatekeeper.models.decision import Decision
from gatekeeper.models.errors import DecisionInProgress, PermissionsNotChanged
from gatekeeper.models.requests import RevocationRequest
from gatekeeper.models.tenant import Tenant
from tests.builders import tenant

SERVICE = "vpce-svc-0123456789abcdef0"
OTHER = "vpce-svc-0fffffffffffffff0"
ACME, NEWCO = "111111111111", "222222222222"
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
SAMPLE = Path(__file__).resolve().parents[2] / "events/sync_tenants.json"


def acme(**changes: object) -> Tenant:
    return Tenant.model_validate({**dict(tenant("acme", ACME, SERVICE)), **changes})


def image(tenant: Tenant | None = None, **raw: Any) -> TenantImage:
    """A valid image from a Tenant, or a hand-written one: the record with `raw` fields written over."""
    item = tenant_to_item(tenant or acme())
    item.update(raw)
    return TenantImage.read("acme", encode(item))


def root(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def plan(old: TenantImage | None, new: TenantImage | None, services=(SERVICE,)):
    result = plan_change(TenantChange("acme", old, new), services, NOW)
    return {p.service_id: p for p in result.services}, result.problem


# -- reading images --------------------------------------------------------------------------------
def test_a_valid_record_is_read_whole():
    read = image(acme(principals=(ACME, f"arn:aws:iam::{NEWCO}:role/app")))
    assert read.valid
    assert read.problem is None
    assert read.accounts() == {ACME, NEWCO}
    assert read.principal_arns(SERVICE) == {root(ACME), f"arn:aws:iam::{NEWCO}:role/app"}
    assert read.principal_arns(OTHER) == frozenset()
    assert read.grants(SERVICE, NOW)
    assert read.denial(SERVICE, NOW) is None


def test_an_invalid_record_keeps_only_what_reads_unambiguously():
    read = image(max_endpoints="lots", principals=[ACME, NEWCO])
    assert not read.valid
    assert "max_endpoints" in (read.problem or "")
    assert read.accounts() == {ACME, NEWCO}
    assert not read.grants(SERVICE, NOW)  # an invalid record never grants
    assert read.denial(SERVICE, NOW) is None  # and takes away only what it says clearly


@pytest.mark.parametrize(
    "principals",
    [[ACME, "arn:aws:iam::1:role/a/b"], "111111111111", [ACME, 7]],
    ids=["one-bad-principal", "not-a-list", "not-a-string"],
)
def test_principals_that_do_not_all_read_say_nothing(principals):
    read = image(principals=principals)
    assert read.principals is None
    assert read.principal_arns(SERVICE) is None
    assert read.accounts() == frozenset()


@pytest.mark.parametrize(
    ("raw", "forbidden"),
    [
        ({"status": "Disabled"}, True),
        ({"status": "SUSPENDED"}, True),
        ({"status": "Active"}, False),
        ({"status": False}, False),  # not a word: unclear, left as it was
        ({"status": "active", "expires_at": "2026-01-01"}, True),
        ({"status": "active", "expires_at": "someday"}, False),
        ({"status": "Active", "services": [OTHER]}, True),
        ({"status": "Active", "services": ["vpce-svc-typo", SERVICE]}, False),
    ],
)
def test_an_invalid_record_takes_access_away_only_where_it_is_clear(raw, forbidden):
    read = image(max_endpoints=-1, **raw)
    assert not read.valid
    assert (read.denial(SERVICE, NOW) is not None) is forbidden


def test_stream_records_of_claims_are_not_tenant_changes():
    claim = {"dynamodb": {"Keys": {"pk": {"S": f"ACCOUNT#{ACME}"}, "sk": {"S": "CLAIM"}}}}
    assert change_from_stream(claim) is None


def test_the_sample_stream_batch_reads_as_four_tenant_changes():
    records = json.loads(SAMPLE.read_text())["Records"]
    changes = [change_from_stream(r) for r in records]
    assert [c.tenant_id for c in changes if c] == ["acme", "hooli", "initech", "globex"]
    suspended, inserted, hand_edit, removed = changes
    assert suspended.old.grants(SERVICE, NOW)
    assert suspended.new.denial(SERVICE, NOW)
    assert inserted.old is None
    assert inserted.new.accounts() == {"555566667777"}
    assert hand_edit.new.problem
    assert hand_edit.new.denial(SERVICE, NOW) == ("TenantSuspended", "tenant initech is Disabled")
    assert removed.new is None
    assert removed.old.accounts() == {"222233334444"}
    plans = {c.tenant_id: plan_change(c, (SERVICE,), NOW) for c in changes}
    assert set(plans["acme"].services[0].revoke) == {"111122223333"}
    assert plans["hooli"].services[0].grant == {"arn:aws:iam::555566667777:role/platform"}
    assert plans["initech"].problem
    assert set(plans["initech"].services[0].revoke) == {"333344445555"}
    assert plans["globex"].services[0].withdraw == {root("222233334444")}


# -- plans -----------------------------------------------------------------------------------------
def test_a_new_tenant_is_allowed_and_its_held_requests_requested_again():
    plans, problem = plan(None, image())
    assert problem is None
    [service] = plans.values()
    assert (service.grant, service.withdraw, dict(service.revoke)) == ({root(ACME)}, frozenset(), {})
    assert service.rerequest == {ACME}


def test_suspension_revokes_and_requests_nothing_again():
    [service] = plan(image(), image(acme(status="suspended")))[0].values()
    assert dict(service.revoke) == {ACME: "tenant acme is suspended"}
    assert service.rerequest == frozenset()
    assert service.withdraw == frozenset()  # still listed: its requests are rejected with a reason


def test_removal_withdraws_the_principals_and_revokes_everything():
    [service] = plan(image(acme(principals=(ACME, NEWCO))), None)[0].values()
    assert service.withdraw == {root(ACME), root(NEWCO)}
    assert dict(service.revoke) == dict.fromkeys((ACME, NEWCO), "tenant acme was removed")


def test_a_principal_taken_off_is_withdrawn_and_its_connections_revoked():
    [service] = plan(image(acme(principals=(ACME, NEWCO))), image())[0].values()
    assert service.withdraw == {root(NEWCO)}
    assert dict(service.revoke) == {NEWCO: f"account {NEWCO} was removed from tenant acme"}
    assert service.rerequest == {ACME}


def test_losing_an_entitlement_affects_that_service_only():
    plans, _ = plan(image(acme(services=(SERVICE, OTHER))), image(acme(services=(OTHER,))), (SERVICE, OTHER))
    assert plans[SERVICE].withdraw == {root(ACME)}
    assert dict(plans[SERVICE].revoke) == {ACME: f"tenant acme is not entitled to {SERVICE}"}
    assert (plans[OTHER].revoke, plans[OTHER].rerequest) == ({}, {ACME})


def test_a_hand_written_record_grants_nothing_and_withdraws_only_what_it_dropped():
    old = image(acme(principals=(ACME, NEWCO)))
    plans, problem = plan(old, image(max_endpoints="lots", principals=[ACME, "333333333333"]))
    [service] = plans.values()
    assert "max_endpoints" in (problem or "")
    assert service.grant == frozenset()
    assert service.withdraw == {root(NEWCO)}
    assert set(service.revoke) == {NEWCO}
    assert service.rerequest == frozenset()


def test_a_hand_written_record_with_unreadable_principals_changes_nothing():
    plans, problem = plan(image(), image(principals="111111111111"))
    assert problem
    assert plans == {}


def test_only_managed_services_are_planned():
    plans, _ = plan(None, image(acme(services=(OTHER,))))
    assert set(plans) == {SERVICE}  # OTHER is not this stack's
    assert dict(plans[SERVICE].revoke) == {ACME: f"tenant acme is not entitled to {SERVICE}"}


# -- carrying a plan out ---------------------------------------------------------------------------
@dataclass
class FakeEdges:
    principals: set[str] = field(default_factory=set)
    listed: list[VpcEndpointConnection] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    decided: list[Any] = field(default_factory=list)  # the tenant's decision records
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    # EndpointService
    def allowed_principals(self, service_id):
        return frozenset(self.principals)

    def change_allowed_principals(self, service_id, add=frozenset(), remove=frozenset()):
        self.calls.append(("permissions", add, remove))

    def connections(self, service_id, states=None, owners=None):
        self.calls.append(("describe", tuple(owners or ())))
        return iter(c for c in self.listed if c.vpc_endpoint_owner in (owners or ()))

    # Announcer
    def requested(self, connections, trigger, actor="auto"):
        self.calls.append(("requested", trigger, [c.vpc_endpoint_id for c in connections]))
        return len(connections)

    def requested_again(self, endpoints, trigger):
        endpoints = list(endpoints)
        self.calls.append(("requested again", trigger, endpoints))
        return len(endpoints)

    def revocations(self, items, trigger):
        self.calls.append(("revocations", trigger, [(c.vpc_endpoint_id, why) for c, why in items]))
        return len(items)

    # DecisionStore
    def states_of(self, ids):
        return {i: type("State", (), {"status": self.states[i]})() for i in ids if i in self.states}

    def decisions_for_tenant(self, tenant_id, since=None):
        self.calls.append(("decisions", tenant_id, since))
        return [d for d in self.decided if since is None or d.decided_at >= since]

    # OperatorAlerts
    def invalid_tenant_record(self, tenant_id, problem, effect):
        self.calls.append(("alert", tenant_id))


def sync(edges: FakeEdges, manage: bool = True) -> TenantSync:
    decisions = type(
        "Decisions",
        (),
        {
            "states": staticmethod(edges.states_of),
            "decisions_for_tenant": staticmethod(edges.decisions_for_tenant),
        },
    )()
    return TenantSync(
        endpoint_service=edges,  # type: ignore[arg-type]
        decisions=decisions,  # type: ignore[arg-type]
        announcer=edges,  # type: ignore[arg-type]
        alerts=edges,  # type: ignore[arg-type]
        managed_services=(SERVICE,),
        manage_allowed_principals=manage,
        clock=lambda: NOW,
    )


def endpoint(n: int, state: str, owner: str = ACME) -> VpcEndpointConnection:
    return VpcEndpointConnection(
        ServiceId=SERVICE, VpcEndpointId=f"vpce-{n:017x}", VpcEndpointOwner=owner, VpcEndpointState=state
    )


def test_permissions_change_only_what_ec2_does_not_already_have():
    edges = FakeEdges(principals={root(ACME), root("333333333333")})
    result = sync(edges).apply(TenantChange("acme", image(acme(principals=(ACME, "333333333333"))), image()))
    [(_, add, remove)] = [c for c in edges.calls if c[0] == "permissions"]
    assert (add, remove) == (frozenset(), {root("333333333333")})
    assert (result.principals_added, result.principals_removed) == (0, 1)


def test_allow_lists_are_not_touched_when_the_stack_does_not_manage_them():
    edges = FakeEdges()
    sync(edges, manage=False).apply(TenantChange("acme", None, image()))
    assert not [c for c in edges.calls if c[0] == "permissions"]


def test_only_held_requests_are_requested_again_and_open_connections_are_revoked():
    held, undecided, accepted = (
        endpoint(1, "pendingAcceptance"),
        endpoint(2, "pendingAcceptance"),
        endpoint(3, "available"),
    )
    edges = FakeEdges(listed=[held, undecided, accepted], states={held.vpc_endpoint_id: "held"})
    result = sync(edges).apply(TenantChange("acme", image(acme(status="suspended")), image()))
    assert ("requested", "tenant-change", [held.vpc_endpoint_id]) in edges.calls
    assert result.rerequested == 1

    edges.calls.clear()
    result = sync(edges).apply(TenantChange("acme", image(), image(acme(status="suspended"))))
    [revocations] = [c for c in edges.calls if c[0] == "revocations"]
    assert [e for e, _ in revocations[2]] == [
        held.vpc_endpoint_id,
        undecided.vpc_endpoint_id,
        accepted.vpc_endpoint_id,
    ]
    assert result.revocations_requested == 3


def held_decision(connection: VpcEndpointConnection, minutes_ago: float) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(
        vpc_endpoint_id=connection.vpc_endpoint_id,
        service_id=connection.service_id,
        vpc_endpoint_owner=connection.vpc_endpoint_owner,
        outcome="held",
        decided_at=NOW - timedelta(minutes=minutes_ago),
    )


def test_a_recent_hold_describe_does_not_list_yet_is_requested_again_by_its_ids():
    # EC2's read lag: the connection was held a moment ago, and this Describe does not list it yet.
    lagging, listed, old = (endpoint(n, "pendingAcceptance") for n in (1, 2, 3))
    edges = FakeEdges(
        listed=[listed],
        states={e.vpc_endpoint_id: "held" for e in (lagging, listed, old)},
        decided=[held_decision(lagging, 1), held_decision(listed, 2), held_decision(old, 60)],
    )
    result = sync(edges).apply(TenantChange("acme", image(acme(status="suspended")), image()))
    assert ("requested", "tenant-change", [listed.vpc_endpoint_id]) in edges.calls
    # Once each: the listed one is not requested twice; an old hold Describe would have listed.
    assert ("requested again", "tenant-change", [(lagging.vpc_endpoint_id, SERVICE)]) in edges.calls
    assert ("decisions", "acme", NOW - RECENT_HOLDS) in edges.calls
    assert result.rerequested == 2


def test_a_recent_decision_no_longer_held_is_not_requested_again():
    decided = endpoint(1, "pendingAcceptance")
    edges = FakeEdges(states={decided.vpc_endpoint_id: "accepted"}, decided=[held_decision(decided, 1)])
    result = sync(edges).apply(TenantChange("acme", image(acme(status="suspended")), image()))
    assert not [c for c in edges.calls if c[0] == "requested again"]
    assert result.rerequested == 0


def test_an_invalid_record_is_reported_to_operators():
    edges = FakeEdges()
    result = sync(edges).apply(TenantChange("acme", image(), image(max_endpoints="lots")))
    assert result.invalid
    assert ("alert", "acme") in edges.calls


# -- EndpointService: the allow-list calls ---------------------------------------------------------
@pytest.fixture
def ec2():
    client = boto3.client("ec2", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def test_allowed_principals_are_read_over_every_page(ec2):
    client, stubber = ec2
    stubber.add_response(
        "describe_vpc_endpoint_service_permissions",
        {"AllowedPrincipals": [{"Principal": root(ACME)}], "NextToken": "t"},
        {"ServiceId": SERVICE, "MaxResults": 1000},
    )
    stubber.add_response(
        "describe_vpc_endpoint_service_permissions",
        {"AllowedPrincipals": [{"Principal": "*"}]},
        {"ServiceId": SERVICE, "MaxResults": 1000, "NextToken": "t"},
    )
    assert EndpointService(client).allowed_principals(SERVICE) == {root(ACME), "*"}


def test_allowed_principals_change_in_one_call_and_nothing_is_sent_for_no_change(ec2):
    client, stubber = ec2
    stubber.add_response(
        "modify_vpc_endpoint_service_permissions",
        {"ReturnValue": True},
        {
            "ServiceId": SERVICE,
            "AddAllowedPrincipals": [root(NEWCO)],
            "RemoveAllowedPrincipals": [root(ACME)],
        },
    )
    service = EndpointService(client)
    service.change_allowed_principals(SERVICE, add=frozenset({root(NEWCO)}), remove=frozenset({root(ACME)}))
    service.change_allowed_principals(SERVICE)
    stubber.assert_no_pending_responses()


def test_a_permissions_change_ec2_did_not_make_is_an_error(ec2):
    client, stubber = ec2
    stubber.add_response("modify_vpc_endpoint_service_permissions", {"ReturnValue": False})
    with pytest.raises(PermissionsNotChanged, match="were not changed"):
        EndpointService(client).change_allowed_principals(SERVICE, add=frozenset({root(NEWCO)}))


def test_connections_can_be_listed_for_some_consumer_accounts(ec2):
    client, stubber = ec2
    stubber.add_response(
        "describe_vpc_endpoint_connections",
        {"VpcEndpointConnections": []},
        {
            "Filters": [
                {"Name": "service-id", "Values": [SERVICE]},
                {"Name": "vpc-endpoint-state", "Values": ["available"]},
                {"Name": "vpc-endpoint-owner", "Values": [ACME]},
            ],
            "MaxResults": 1000,
        },
    )
    assert list(EndpointService(client).connections(SERVICE, ["available"], [ACME])) == []


# -- the decider's side of a revocation request ----------------------------------------------------
@dataclass
class FakeEc2State:
    state: str = "available"
    calls: list[str] = field(default_factory=list)

    def connections_by_id(self, vpc_endpoint_ids):
        connection = endpoint(1, self.state)
        return {connection.vpc_endpoint_id: connection}

    def reject_all(self, service_id, vpc_endpoint_ids):
        self.calls.append("Reject")
        self.state = "rejected"
        return {}


@dataclass
class Sink:
    """SNS's PublishBatch or the bus's put, as the decider calls them: every entry taken."""

    sent: list[Any] = field(default_factory=list)

    def publish_batch(self, entries: list[Any]) -> list[None]:
        self.sent += entries
        return [None] * len(entries)

    put = publish_batch


@pytest.fixture
def decider(tables):
    tables.tenants.create(acme(), "op")
    ec2 = FakeEc2State()
    service = DecisionService(
        tenants=tables.tenants,
        templates=tables.templates,
        decisions=tables.decisions,
        endpoint_service=ec2,  # type: ignore[arg-type]
        notifier=Sink(),  # type: ignore[arg-type]
        bus=Sink(),  # type: ignore[arg-type]
        managed_services=frozenset({SERVICE}),
        service_region="us-east-1",
        clock=lambda: NOW,
    )
    return type("Decider", (), {"service": service, "ec2": ec2, "tables": tables})


def revocation_request(reason: str = "tenant acme is suspended") -> RevocationRequest:
    connection = endpoint(1, "available")
    return RevocationRequest(
        connection=ConnectionRef(vpc_endpoint_id=connection.vpc_endpoint_id, service_id=SERVICE),
        trigger="tenant-change",
        reason=reason,
    )


def set_tenant(tables, **changes: Any) -> None:
    current = tables.tenants.get("acme")
    tables.tenants.update(current.model_copy(update=changes), "op")


def test_a_revocation_request_is_carried_out_when_the_record_still_forbids_it(decider):
    set_tenant(decider.tables, status="suspended")
    decision = decider.service.handle(revocation_request())
    assert decision is not None
    assert (decision.outcome, decision.reasons, decision.tenant_id) == (
        "revoked",
        ("TenantSuspended",),
        "acme",
    )
    assert (decision.trigger, decision.actor) == ("tenant-change", "auto")
    assert decider.ec2.calls == ["Reject"]


def test_a_stale_revocation_request_revokes_nothing(decider):
    assert decider.service.handle(revocation_request()) is None  # acme is active again
    assert decider.ec2.calls == []


def test_an_invalid_record_never_vouches_for_a_connection(decider):
    decider.tables.client.update_item(
        TableName=decider.tables.names["TenantsTableName"],
        Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": "TENANT"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "Disabled"}},
    )
    decision = decider.service.handle(revocation_request())
    assert decision is not None
    assert decision.reasons == ("TenantInvalid",)
    assert decision.tenant_id == "acme"


def test_a_closed_connection_is_not_revoked_again(decider):
    set_tenant(decider.tables, status="suspended")
    decider.ec2.state = "deleted"
    assert decider.service.handle(revocation_request()) is None
    assert decider.ec2.calls == []


def test_a_revocation_request_waits_for_a_decision_in_flight(decider):
    set_tenant(decider.tables, status="suspended")
    pending = Decision(
        vpc_endpoint_id=endpoint(1, "available").vpc_endpoint_id,
        service_id=SERVICE,
        vpc_endpoint_owner=ACME,
        outcome="accepted",
    )
    decider.tables.decisions.claim(pending, "accepting", None, at=NOW)
    with pytest.raises(DecisionInProgress):
        decider.service.handle(revocation_request())
    assert decider.ec2.calls == []


def test_an_expired_record_is_read_at_decision_time(decider):
    set_tenant(decider.tables, expires_at=NOW + timedelta(hours=1))
    assert decider.service.handle(revocation_request("expired")) is None
    decider.service.clock = lambda: NOW + timedelta(hours=2)
    decision = decider.service.handle(revocation_request("expired"))
    assert decision is not None
    assert decision.reasons == ("TenantExpired",)
