"""The reconcile sweep's rules: what is announced, what is put up for revocation, how quota slots and
allow-lists are repaired — with the real stores (moto tables from the template) and a fake EC2."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from gatekeeper.dal.decisions import EndpointState
from gatekeeper.dal.tenants import TenantDirectory
from gatekeeper.logic.reconciler import Reconciler, desired_principals, revocation_reason
from gatekeeper.models.connection import VpcEndpointConnection
from gatekeeper.models.decision import Decision
from gatekeeper.models.tenant import Tenant
from tests.builders import tenant

SERVICE = "vpce-svc-0123456789abcdef0"
OTHER = "vpce-svc-0fffffffffffffff0"
ACME, NEWCO, STRANGER = "111111111111", "222222222222", "999999999999"
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def endpoint_id(n: int) -> str:
    return f"vpce-{n:017x}"


def connection(n: int, state: str = "pendingAcceptance", owner: str = ACME, age_s: int = 60, service=SERVICE):
    return VpcEndpointConnection(
        ServiceId=service,
        VpcEndpointId=endpoint_id(n),
        VpcEndpointOwner=owner,
        VpcEndpointState=state,
        CreationTimestamp=NOW - timedelta(seconds=age_s),
    )


def acme(**changes: object) -> Tenant:
    return Tenant.model_validate({**dict(tenant("acme", ACME, SERVICE)), **changes})


def state(n: int, status: str, tenant_id: str | None = "acme", owner: str = ACME) -> EndpointState:
    decision = Decision(
        vpc_endpoint_id=endpoint_id(n),
        service_id=SERVICE,
        vpc_endpoint_owner=owner,
        tenant_id=tenant_id,
        outcome="held" if status == "held" else "accepted",
    )
    return EndpointState(endpoint_id(n), status, 1, decision, True, NOW, None)  # type: ignore[arg-type]


@dataclass
class FakeEc2:
    listed: dict[str, list[VpcEndpointConnection]] = field(default_factory=dict)
    principals: dict[str, set[str]] = field(default_factory=dict)
    changes: list[tuple[str, frozenset[str], frozenset[str]]] = field(default_factory=list)

    def connections(self, service_id: str, states=None, owners=None):
        return iter(self.listed.get(service_id, []))

    def allowed_principals(self, service_id: str) -> frozenset[str]:
        return frozenset(self.principals.get(service_id, set()))

    def change_allowed_principals(self, service_id, add=frozenset(), remove=frozenset()):
        self.changes.append((service_id, add, remove))
        self.principals.setdefault(service_id, set()).update(add)


@dataclass
class FakeAnnouncer:
    requested_ids: list[str] = field(default_factory=list)
    revoked: list[tuple[str, str]] = field(default_factory=list)

    def requested(self, connections, trigger, actor="auto") -> int:
        assert trigger == "reconcile"
        self.requested_ids += [c.vpc_endpoint_id for c in connections]
        return len(connections)

    def requested_again(self, endpoints, trigger) -> int:
        assert trigger == "reconcile"
        self.again = getattr(self, "again", []) + [e for e, _ in endpoints]
        return len(endpoints)

    def revocations(self, items, trigger) -> int:
        assert trigger == "reconcile"
        self.revoked += [(c.vpc_endpoint_id, reason) for c, reason in items]
        return len(items)


@pytest.fixture
def world(tables):
    ec2, announcer = FakeEc2(), FakeAnnouncer()
    reconciler = Reconciler(
        endpoint_service=ec2,  # type: ignore[arg-type]
        decisions=tables.decisions,
        tenants=tables.tenants,
        announcer=announcer,  # type: ignore[arg-type]
        managed_services=(SERVICE,),
        clock=lambda: NOW,
    )
    return type("World", (), {"reconciler": reconciler, "ec2": ec2, "announcer": announcer, "tables": tables})


def put_state(tables, n: int, status: str, tenant_id: str | None = "acme", owner: str = ACME) -> None:
    """A decision state as the decision path leaves it (claimed, then finalised)."""
    base = state(n, status, tenant_id, owner)
    if status in ("accepting", "held"):
        tables.decisions.claim(base.decision, status, None, at=NOW)
        return
    claimed = tables.decisions.claim(base.decision, "accepting", None, at=NOW)
    tables.decisions.finalise(claimed, base.decision, at=NOW)


# -- pure rules ------------------------------------------------------------------------------------
def test_a_connection_of_an_eligible_tenant_is_never_put_up_for_revocation():
    directory = TenantDirectory(tenants={"acme": acme()}, claims={ACME: "acme"})
    assert revocation_reason(connection(1, "available"), state(1, "accepted"), directory, NOW) is None


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"status": "suspended"}, "tenant acme is suspended"),
        ({"expires_at": NOW - timedelta(seconds=1)}, "tenant acme expired at"),
        ({"services": (OTHER,)}, f"tenant acme is not entitled to {SERVICE}"),
    ],
    ids=["suspended", "expired", "not-entitled"],
)
def test_the_record_decides_what_is_put_up_for_revocation(changes, why):
    directory = TenantDirectory(tenants={"acme": acme(**changes)}, claims={ACME: "acme"})
    assert why in (revocation_reason(connection(1, "available"), None, directory, NOW) or "")


def test_an_account_accepted_for_a_tenant_that_no_tenant_claims_any_more_is_put_up_for_revocation():
    nobody = TenantDirectory()
    reason = revocation_reason(connection(1, "available"), state(1, "accepted"), nobody, NOW)
    assert reason == f"account {ACME} was accepted for tenant acme and no tenant claims it now"
    # Accepted for no tenant (an operator's call, or before the gatekeeper): not the sweep's to undo.
    assert (
        revocation_reason(connection(1, "available"), state(1, "accepted", tenant_id=None), nobody, NOW)
        is None
    )
    assert revocation_reason(connection(1, "available"), None, nobody, NOW) is None


def test_a_claim_whose_record_does_not_validate_is_left_to_the_tenant_sync():
    directory = TenantDirectory(invalid={"acme": "max_endpoints: not a number"}, claims={ACME: "acme"})
    assert revocation_reason(connection(1, "available"), state(1, "accepted"), directory, NOW) is None


def test_a_claim_without_its_record_counts_as_nobody():
    directory = TenantDirectory(claims={ACME: "acme"})  # record deleted by hand, claims left behind
    assert revocation_reason(connection(1, "available"), state(1, "accepted"), directory, NOW)


def test_desired_principals_are_the_entitled_tenants_principals_as_arns():
    directory = TenantDirectory(
        tenants={
            "acme": acme(principals=(ACME, f"arn:aws:iam::{NEWCO}:role/app")),
            "other": acme(tenant_id="other", principals=(STRANGER,), services=(OTHER,)),
            "star": acme(tenant_id="star", principals=("333333333333",), services=("*",)),
        }
    )
    assert desired_principals(directory, SERVICE) == {
        f"arn:aws:iam::{ACME}:root",
        f"arn:aws:iam::{NEWCO}:role/app",
        "arn:aws:iam::333333333333:root",
    }


# -- the sweep -------------------------------------------------------------------------------------
def test_claims_and_announcements_a_dead_invocation_left_are_put_back_on_the_decision_path(world):
    world.tables.tenants.create(acme(), "op")
    old = NOW - timedelta(seconds=46)
    stuck = state(1, "accepting").decision
    world.tables.decisions.claim(stuck, "accepting", None, at=old)  # its invocation died
    claimed = world.tables.decisions.claim(state(2, "accepting").decision, "accepting", None, at=old)
    world.tables.decisions.finalise(claimed, state(2, "accepted").decision, at=old)  # never announced
    fresh = state(3, "accepting").decision
    world.tables.decisions.claim(fresh, "accepting", None, at=NOW - timedelta(seconds=10))  # alive
    world.ec2.listed[SERVICE] = [connection(1), connection(2, "available"), connection(3)]
    report = world.reconciler.sweep()
    assert sorted(world.announcer.again) == [endpoint_id(1), endpoint_id(2)]
    assert (report.stale_claims, report.unannounced, report.in_flight) == (1, 1, 2)


def test_only_undecided_pending_connections_are_announced(world):
    world.tables.tenants.create(acme(), "op")
    world.ec2.listed[SERVICE] = [
        connection(1, age_s=30),  # undecided
        connection(2, age_s=900),  # held for review
        connection(3, age_s=10),  # being decided right now
        connection(4, "available"),
        connection(5, "rejected"),
    ]
    put_state(world.tables, 2, "held")
    put_state(world.tables, 3, "accepting")
    report = world.reconciler.sweep()
    assert world.announcer.requested_ids == [endpoint_id(1)]
    assert (report.pending, report.held, report.in_flight, report.announced) == (3, 1, 1, 1)
    assert report.oldest_pending_age == 30  # the held one (900 s) counts as held, not as undecided
    assert world.announcer.revoked == []


def test_open_and_held_connections_of_a_suspended_tenant_are_put_up_for_revocation(world):
    world.tables.tenants.create(acme(status="suspended"), "op")
    world.ec2.listed[SERVICE] = [
        connection(1, "available"),
        connection(2, "pending"),
        connection(3),  # held
        connection(4),  # undecided: announced, the decider rejects it on the record
        connection(5, "rejected"),
    ]
    put_state(world.tables, 1, "accepted")
    put_state(world.tables, 3, "held")
    report = world.reconciler.sweep()
    assert sorted(e for e, _ in world.announcer.revoked) == [endpoint_id(1), endpoint_id(2), endpoint_id(3)]
    assert {why for _, why in world.announcer.revoked} == {"tenant acme is suspended"}
    assert world.announcer.requested_ids == [endpoint_id(4)]
    assert report.revocations_requested == 3


def test_quota_slots_follow_what_ec2_reports(world):
    world.reconciler.manage_allowed_principals = False  # quota repairs only
    world.tables.tenants.create(acme(), "op")
    world.tables.tenants.create(acme(tenant_id="newco", principals=(NEWCO,)), "op")
    decisions = world.tables.decisions
    for n in (1, 2, 3):
        decisions.record_slot("acme", endpoint_id(n))
    decisions.record_slot("newco", endpoint_id(6))  # acme's account now: the slot moves with it
    # A counter from before slots scaled carries a set of its slots, stale here: the slot items count.
    world.tables.client.update_item(
        TableName=world.tables.names["DecisionsTableName"],
        Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": "QUOTA"}},
        UpdateExpression="SET endpoints = :e",
        ExpressionAttributeValues={":e": {"SS": [endpoint_id(1), endpoint_id(9)]}},
    )
    world.ec2.listed[SERVICE] = [
        connection(1, "available"),  # slot and in use: nothing to do
        connection(2, "deleted"),  # slot, closed: released
        # 3: slot, EC2 does not list it at all: released
        connection(4, "available"),  # in use, no slot: recorded
        connection(5, "available", owner=STRANGER),  # in use by nobody we know: counted, no slot
        connection(6, "pending"),
    ]
    report = world.reconciler.sweep()
    assert sorted(decisions.slots("acme")) == [endpoint_id(1), endpoint_id(4), endpoint_id(6)]
    assert decisions.slots("newco") == []
    assert (decisions.active_endpoints("acme"), decisions.active_endpoints("newco")) == (3, 0)
    assert (report.slots_released, report.slots_recorded, report.unattributed) == (3, 2, 1)
    assert report.repairs == 5
    assert world.reconciler.sweep().repairs == 0


def test_a_slot_of_an_unlisted_endpoint_of_an_unmanaged_service_is_kept(world):
    world.tables.tenants.create(acme(), "op")
    decisions = world.tables.decisions
    decision = state(7, "accepted").decision.model_copy(update={"service_id": OTHER})
    decisions.finalise(decisions.claim(decision, "accepting", None, at=NOW), decision, at=NOW)
    decisions.record_slot("acme", endpoint_id(7))
    assert world.reconciler.sweep().slots_released == 0
    assert decisions.slots("acme") == [endpoint_id(7)]


def test_missing_principals_are_added_and_none_are_removed(world):
    world.tables.tenants.create(acme(principals=(ACME, NEWCO)), "op")
    world.ec2.principals[SERVICE] = {"arn:aws:iam::123456789012:root", f"arn:aws:iam::{ACME}:root"}
    report = world.reconciler.sweep()
    assert world.ec2.changes == [(SERVICE, frozenset({f"arn:aws:iam::{NEWCO}:root"}), frozenset())]
    assert report.principals_added == 1
    world.reconciler.sweep()
    assert len(world.ec2.changes) == 1


def test_allow_lists_are_left_alone_when_the_stack_does_not_manage_them(world):
    world.tables.tenants.create(acme(), "op")
    world.reconciler.manage_allowed_principals = False
    assert world.reconciler.sweep().principals_added == 0
    assert world.ec2.changes == []


def test_invalid_records_are_counted(world):
    world.tables.tenants.create(acme(), "op")
    world.tables.client.update_item(
        TableName=world.tables.names["TenantsTableName"],
        Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": "TENANT"}},
        UpdateExpression="SET max_endpoints = :bad",
        ExpressionAttributeValues={":bad": {"S": "lots"}},
    )
    assert world.reconciler.sweep().invalid_tenants == 1


def test_a_sweep_stops_before_its_deadline_and_leaves_the_rest_to_the_next(world):
    world.tables.tenants.create(acme(), "op")
    world.tables.decisions.record_slot("acme", endpoint_id(99))  # unlisted: would be released
    world.ec2.listed[SERVICE] = [connection(n) for n in range(1, 251)]
    left = iter([100.0, 100.0, 100.0, 5.0])  # seconds left at each look at the clock
    world.reconciler.time_left = lambda: next(left, 5.0)
    report = world.reconciler.sweep()
    assert report.stopped_early
    assert 0 < report.announced < 250
    assert world.announcer.requested_ids == [endpoint_id(n) for n in range(1, report.announced + 1)]
    assert world.tables.decisions.slots("acme") == [endpoint_id(99)]  # the listing was not complete
