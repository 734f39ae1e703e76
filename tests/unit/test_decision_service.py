"""The decision service's paths, with real stores (moto tables from the template) and fake edges."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gatekeeper.dal.decisions import Slot
from gatekeeper.decision_service import DecisionService
from gatekeeper.errors import ConnectionActionFailed, DecisionInProgress
from gatekeeper.models import ConnectionClosed, ConnectionRequested, Decision, Tenant, VpcEndpointConnection

SERVICE = "vpce-svc-0123456789abcdef0"
ENDPOINT = "vpce-0a1b2c3d4e5f60718"
ACCOUNT = "111111111111"
STANDARD = json.loads(Path("policy-templates/standard.json").read_text())


@dataclass
class FakeEndpoints:
    state: str = "pendingAcceptance"
    fail: list[str] = field(default_factory=list)  # error codes for the next calls
    calls: list[str] = field(default_factory=list)

    def _act(self, action: str, new_state: str) -> None:
        self.calls.append(action)
        if self.fail:
            raise ConnectionActionFailed(action, ENDPOINT, self.fail.pop(0), "refused")
        self.state = new_state

    def accept(self, service_id: str, vpc_endpoint_id: str) -> None:
        self._act("Accept", "pending")

    def reject(self, service_id: str, vpc_endpoint_id: str) -> None:
        self._act("Reject", "rejected")

    def connection(self, vpc_endpoint_id: str, service_id: str | None = None) -> VpcEndpointConnection:
        return connection(self.state)


@dataclass
class Recorder:
    sent: list[object] = field(default_factory=list)

    def publish(self, *args: object) -> str:
        self.sent.append(args)
        return "id"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def connection(
    state: str = "pendingAcceptance", owner: str = ACCOUNT, region: str | None = None
) -> VpcEndpointConnection:
    return VpcEndpointConnection(
        ServiceId=SERVICE,
        VpcEndpointId=ENDPOINT,
        VpcEndpointOwner=owner,
        VpcEndpointState=state,
        VpcEndpointRegion=region,
    )


def requested(trigger="notification", **changes) -> ConnectionRequested:
    return ConnectionRequested(connection=changes.pop("conn", connection()), trigger=trigger, **changes)


@pytest.fixture
def world(tables):
    tables.templates.push(STANDARD, "op")
    tables.tenants.create(
        Tenant(
            tenant_id="acme",
            display_name="Acme",
            principals=(ACCOUNT,),
            services=(SERVICE,),
            template="standard",
            max_endpoints=2,
        ),
        "op",
    )
    endpoints, notifier, bus, clock = FakeEndpoints(), Recorder(), Recorder(), Clock()
    service = DecisionService(
        tenants=tables.tenants,
        templates=tables.templates,
        decisions=tables.decisions,
        endpoints=endpoints,
        notifier=notifier,
        bus=bus,
        managed_services=frozenset({SERVICE}),
        service_region="us-east-1",
        clock=clock,
    )
    return type(
        "World",
        (),
        {
            "service": service,
            "ec2": endpoints,
            "notifier": notifier,
            "bus": bus,
            "clock": clock,
            "tables": tables,
        },
    )


def outcomes(world) -> list[str]:
    return [d.decision for d in world.tables.decisions.decisions_for_endpoint(ENDPOINT)]


def test_accept_records_notifies_and_takes_a_slot(world):
    decision = world.service.decide(requested())
    assert decision.decision == "accepted"
    assert world.ec2.calls == ["Accept"]
    assert outcomes(world) == ["accepted"]
    assert len(world.notifier.sent) == len(world.bus.sent) == 1
    state = world.tables.decisions.state(ENDPOINT)
    assert (state.notified, state.slot_tenant) == (True, "acme")


def test_duplicate_delivery_does_nothing_visible(world):
    world.service.decide(requested())
    assert world.service.decide(requested()) is None
    assert world.service.decide(requested(trigger="reconcile")) is None
    assert world.ec2.calls == ["Accept"]
    assert len(world.notifier.sent) == 1


def test_unmanaged_service_and_non_pending_connections_are_ignored(world):
    other = VpcEndpointConnection(
        ServiceId="vpce-svc-0ffffffffffffffff",
        VpcEndpointId=ENDPOINT,
        VpcEndpointOwner=ACCOUNT,
        VpcEndpointState="pendingAcceptance",
    )
    assert world.service.decide(requested(conn=other)) is None
    assert world.service.decide(requested(conn=connection("available"))) is None
    assert world.ec2.calls == []


def test_unsuccessful_accept_rolls_back_and_raises(world):
    world.ec2.fail = ["InvalidState"]
    with pytest.raises(ConnectionActionFailed):
        world.service.decide(requested())
    assert outcomes(world) == []
    assert world.tables.decisions.state(ENDPOINT) is None
    assert world.tables.decisions.active_endpoints("acme") == 0
    assert world.notifier.sent == []


def test_accept_of_a_connection_deleted_meanwhile_is_dropped_without_retry(world):
    world.ec2.fail = ["InvalidState"]
    world.ec2.state = "deleted"
    assert world.service.decide(requested()) is None
    assert outcomes(world) == []
    assert world.tables.decisions.state(ENDPOINT) is None
    assert world.tables.decisions.active_endpoints("acme") == 0


def test_reject_refused_while_still_pending_is_retried(world):
    world.ec2.fail = ["Throttled"]
    with pytest.raises(ConnectionActionFailed):
        world.service.decide(requested(conn=connection(owner="999999999999")))
    assert world.service.decide(requested(conn=connection(owner="999999999999"))).decision == "rejected"


def test_unsuccessful_because_an_earlier_attempt_already_accepted_is_completed(world):
    world.ec2.fail = ["InvalidState"]
    world.ec2.state = "available"
    assert world.service.decide(requested()).decision == "accepted"
    assert outcomes(world) == ["accepted"]


def test_retry_after_rollback_succeeds(world):
    world.ec2.fail = ["Throttled"]
    with pytest.raises(ConnectionActionFailed):
        world.service.decide(requested())
    assert world.service.decide(requested()).decision == "accepted"
    assert outcomes(world) == ["accepted"]
    assert world.tables.decisions.active_endpoints("acme") == 1


def test_an_unfinished_claim_is_left_alone_while_fresh_and_resumed_when_stale(world):
    claimed_decision = world.service.assess(connection()).decision
    world.tables.decisions.claim(
        claimed_decision, "accepting", None, Slot("acme", ENDPOINT, 2), world.clock()
    )
    with pytest.raises(DecisionInProgress):
        world.service.decide(requested())
    world.clock.now += timedelta(minutes=5)
    assert world.service.decide(requested()).decision == "accepted"
    assert world.ec2.calls == ["Accept"]
    assert world.tables.decisions.active_endpoints("acme") == 1


def test_a_lost_notification_is_sent_by_a_later_duplicate_once_stale(world):
    world.notifier.publish = lambda *a: (_ for _ in ()).throw(RuntimeError("SNS down"))
    with pytest.raises(RuntimeError):
        world.service.decide(requested())
    assert outcomes(world) == ["accepted"]
    world.notifier.publish = Recorder().publish
    sent = Recorder()
    world.notifier.publish = sent.publish
    assert world.service.decide(requested()) is None
    assert sent.sent == []  # the first sender may still be working
    world.clock.now += timedelta(minutes=5)
    world.service.decide(requested())
    assert len(sent.sent) == 1
    world.service.decide(requested())
    assert len(sent.sent) == 1


def test_unknown_principal_follows_the_stack_parameter(world):
    world.service.unknown_principal_action = "hold"
    decision = world.service.decide(requested(conn=connection(owner="999999999999")))
    assert (decision.decision, decision.reasons) == ("held", ("UnknownPrincipal",))
    assert world.ec2.calls == []


def test_no_statement_matched_follows_the_default_action(world):
    world.tables.templates.push(
        {
            "Name": "standard",
            "Statement": [
                {
                    "Sid": "OnlyEu",
                    "Effect": "Allow",
                    "Condition": {"StringEquals": {"endpoint:Region": "eu-west-1"}},
                }
            ],
        },
        "op",
    )
    decision = world.service.decide(requested())
    assert (decision.decision, decision.reasons) == ("rejected", ("NoStatementMatched",))
    assert any("OnlyEu did not match" in line for line in decision.explanation)


def test_a_template_that_fails_validation_holds_and_never_accepts(world):
    world.tables.client.update_item(
        TableName=world.tables.names["TemplatesTableName"],
        Key={"pk": {"S": "TEMPLATE#standard"}, "sk": {"S": "V#000001"}},
        UpdateExpression="SET document = :d",
        ExpressionAttributeValues={
            ":d": {
                "S": json.dumps(
                    {
                        "Name": "standard",
                        "Statement": [
                            {
                                "Sid": "Accept",
                                "Effect": "Allow",
                                "Condition": {"StringEqulas": {"tenant:Status": "active"}},
                            }
                        ],
                    }
                )
            }
        },
    )
    decision = world.service.decide(requested())
    assert (decision.decision, decision.reasons) == ("held", ("TemplateInvalid",))
    assert "StringEqulas" in decision.explanation[0]
    assert world.ec2.calls == []
    assert len(world.notifier.sent) == 1  # operators are told


def test_a_missing_template_holds(world):
    world.tables.tenants.update(
        world.tables.tenants.get("acme").model_copy(update={"template_version": 9}), "op"
    )
    assert world.service.decide(requested()).reasons == ("TemplateInvalid",)


def test_held_is_reevaluated_only_by_tenant_change_or_operator(world):
    held = world.service.decide(requested(conn=connection(region="eu-west-1")))
    assert held.decision == "held"
    assert world.service.decide(requested(conn=connection(region="eu-west-1"), trigger="reconcile")) is None
    # A tenant change re-evaluates it; the same hold for the same reasons says nothing new.
    assert (
        world.service.decide(requested(conn=connection(region="eu-west-1"), trigger="tenant-change")) is None
    )
    assert len(world.notifier.sent) == 1
    world.clock.now += timedelta(seconds=1)
    approved = world.service.decide(
        requested(
            conn=connection(region="eu-west-1"),
            trigger="operator",
            actor="operator:arn:aws:iam::1:user/op",
            requested_decision="accepted",
            reason="customer confirmed",
        )
    )
    assert (approved.decision, approved.actor, approved.reasons) == (
        "accepted",
        "operator:arn:aws:iam::1:user/op",
        ("OperatorDecision",),
    )
    assert outcomes(world) == ["held", "accepted"]


def test_operator_reject_of_an_accepted_connection_revokes_it(world):
    world.service.decide(requested())
    world.ec2.state = "available"
    revoked = world.service.decide(
        requested(
            conn=connection("available"),
            trigger="operator",
            actor="operator:arn:aws:iam::1:user/op",
            requested_decision="rejected",
            reason="contract ended",
        )
    )
    assert revoked.decision == "revoked"
    assert world.ec2.calls == ["Accept", "Reject"]
    assert world.tables.decisions.active_endpoints("acme") == 0
    assert world.service.revoke(connection("rejected"), "again", "auto", "tenant-change") is None


def test_quota_taken_by_a_concurrent_request_turns_accept_into_reject(world):
    world.tables.decisions.record_slot("acme", "vpce-00000000000000001")
    assessment = world.service.assess(connection())
    assert assessment.decision.decision == "accepted"
    world.tables.decisions.record_slot("acme", "vpce-00000000000000002")  # the race
    decision = world.service._carry_out(assessment, None)
    assert (decision.decision, decision.reasons) == ("rejected", ("QuotaExceeded",))
    assert world.ec2.calls == ["Reject"]


def test_release_frees_the_slot_once(world):
    world.service.decide(requested())
    closed = ConnectionClosed(connection=connection("deleted"))
    assert world.service.release(closed) is True
    assert world.service.release(closed) is False
    stranger = ConnectionClosed(connection=connection("deleted", owner="999999999999"))
    assert world.service.release(stranger) is False


def test_invalid_tenant_record_holds(world):
    world.tables.client.update_item(
        TableName=world.tables.names["TenantsTableName"],
        Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": "TENANT"}},
        UpdateExpression="SET max_endpoints = :m",
        ExpressionAttributeValues={":m": {"S": "lots"}},
    )
    decision = world.service.decide(requested())
    assert (decision.decision, decision.reasons) == ("held", ("TenantInvalid",))
    assert world.ec2.calls == []


def test_decision_documents_name_template_and_version(world):
    decision = world.service.decide(requested())
    assert isinstance(decision, Decision)
    assert (decision.template, decision.template_version, decision.actor) == ("standard", 1, "auto")
