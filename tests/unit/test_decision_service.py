"""The decision service's paths, with real stores (moto tables from the template) and fake edges."""

from __future__ import annotations

import contextvars
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ReadTimeoutError

from gatekeeper.adapters.load_balancers import DataPlane
from gatekeeper.dal.decisions import Slot
from gatekeeper.logic.decision_service import DECISION_WRITERS, DecisionService, all_at_once
from gatekeeper.models.connection import ConnectionRef, VpcEndpointConnection
from gatekeeper.models.decision import Decision, ServiceAccess
from gatekeeper.models.errors import (
    ConnectionActionFailed,
    ConnectionNotVisible,
    DataPlaneUnreadable,
    DecisionInProgress,
    OutcomeUnknown,
)
from gatekeeper.models.requests import ConnectionClosed, EvaluationRequest, OperatorRequest, RevocationRequest
from gatekeeper.models.tenant import Tenant

SERVICE = "vpce-svc-0123456789abcdef0"
ENDPOINT = "vpce-0a1b2c3d4e5f60718"
ACCOUNT = "111111111111"
OPERATOR = "operator:arn:aws:iam::123456789012:role/gatekeeper-operator"
STANDARD = json.loads(Path("policy-templates/standard.json").read_text())
REF = ConnectionRef(vpc_endpoint_id=ENDPOINT, service_id=SERVICE)


@dataclass
class FakeEndpoints:
    """EC2 as the decider sees it: one connection, and failures to inject into the next actions.

    `fail` items are either an Unsuccessful error code (nothing applied) or an exception; an
    exception in `lost` is raised *after* the action was applied (the response was lost)."""

    current: VpcEndpointConnection | None = None
    fail: list[object] = field(default_factory=list)
    lost: list[Exception] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    # Eventual consistency: the next `unlisted` reads do not list the connection; `read_fail` items
    # are raised by the next reads instead of answering.
    unlisted: int = 0
    read_fail: list[Exception] = field(default_factory=list)
    reads: int = 0

    def _act(self, action: str, new_state: str) -> None:
        self.calls.append(action)
        if self.fail:
            failure = self.fail.pop(0)
            if isinstance(failure, Exception):
                raise failure
            raise ConnectionActionFailed(action, ENDPOINT, str(failure), "refused")
        assert self.current is not None
        self.current = self.current.model_copy(update={"vpc_endpoint_state": new_state})
        if self.lost:
            raise self.lost.pop(0)

    def accept(self, service_id: str, vpc_endpoint_id: str) -> None:
        self._act("Accept", "pending")

    def reject(self, service_id: str, vpc_endpoint_id: str) -> None:
        self._act("Reject", "rejected")

    # The decider's batch calls, for its one endpoint: through accept/reject, which tests replace.
    def accept_all(self, service_id: str, vpc_endpoint_ids: list[str]) -> dict[str, ConnectionActionFailed]:
        return self._one(self.accept, service_id, vpc_endpoint_ids)

    def reject_all(self, service_id: str, vpc_endpoint_ids: list[str]) -> dict[str, ConnectionActionFailed]:
        return self._one(self.reject, service_id, vpc_endpoint_ids)

    @staticmethod
    def _one(action, service_id: str, ids: list[str]) -> dict[str, ConnectionActionFailed]:
        assert ids == [ENDPOINT]
        try:
            action(service_id, ENDPOINT)
        except ConnectionActionFailed as unsuccessful:  # an `Unsuccessful` item, as EC2 answers it
            return {ENDPOINT: unsuccessful}
        return {}

    def connections_by_id(self, vpc_endpoint_ids: list[str]) -> dict[str, VpcEndpointConnection]:
        found = self.connection(ENDPOINT)
        return {ENDPOINT: found} if found is not None and ENDPOINT in vpc_endpoint_ids else {}

    def connection(self, vpc_endpoint_id: str, service_id: str | None = None) -> VpcEndpointConnection | None:
        self.reads += 1
        if self.read_fail:
            raise self.read_fail.pop(0)
        if self.unlisted:
            self.unlisted -= 1
            return None
        return self.current

    @property
    def state(self) -> str:
        assert self.current is not None
        return self.current.vpc_endpoint_state

    @state.setter
    def state(self, value: str) -> None:
        assert self.current is not None
        self.current = self.current.model_copy(update={"vpc_endpoint_state": value})


@dataclass
class FakeLoadBalancers:
    """The service's NLB: healthy in both zones unless a test says otherwise; `fail` makes reads raise."""

    healthy_zones: tuple[str, ...] = ("us-east-1a", "us-east-1b")
    fail: bool = False
    fail_access: bool = False
    reads: list[str] = field(default_factory=list)

    def data_plane(self, service_id: str, load_balancer_arns: object = ()) -> DataPlane:
        self.reads.append("data_plane")
        if self.fail:
            raise DataPlaneUnreadable("elbv2: AccessDenied")
        return DataPlane(
            service_id=service_id,
            load_balancer_arns=("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/n/1",),
            zones=("us-east-1a", "us-east-1b"),
            healthy_zones=self.healthy_zones,
            registered_targets=2,
            healthy_targets=len(self.healthy_zones),
            cross_zone=False,
        )

    def service_access(self, service_id: str, load_balancer_arns: object = ()) -> ServiceAccess:
        self.reads.append("service_access")
        if self.fail_access:
            raise RuntimeError("boom")
        return ServiceAccess(
            service_name=f"com.amazonaws.vpce.us-east-1.{service_id}",
            ports=(443,),
            private_dns_name="api.example.com",
            private_dns_name_state="verified",
            healthy_zones=self.healthy_zones,
        )


@dataclass
class Recorder:
    """SNS (publish_batch: decisions) or the bus (put: (detail type, detail) pairs); `sent` holds
    what each accepted, one entry each, as the single-entry calls did: (decision,) or (type, [detail])."""

    sent: list[object] = field(default_factory=list)

    def publish_batch(self, decisions: list[object]) -> list[None]:
        self.sent += [(d,) for d in decisions]
        return [None] * len(decisions)

    def put(self, events: list[tuple[str, object]]) -> list[None]:
        self.sent += [(detail_type, [detail]) for detail_type, detail in events]
        return [None] * len(events)


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


def requested(trigger="notification") -> EvaluationRequest:
    return EvaluationRequest(connection=REF, trigger=trigger)


def operator(decision: str, reason: str = "asked", requested_by: str | None = None) -> OperatorRequest:
    return OperatorRequest(connection=REF, decision=decision, reason=reason, requested_by=requested_by)


def timeout() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="https://ec2.us-east-1.amazonaws.com")


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
    endpoints, notifier, bus, clock = FakeEndpoints(connection()), Recorder(), Recorder(), Clock()
    load_balancers = FakeLoadBalancers()
    waits: list[float] = []  # the pauses the decider asked for; nothing here really sleeps
    service = DecisionService(
        tenants=tables.tenants,
        templates=tables.templates,
        decisions=tables.decisions,
        endpoint_service=endpoints,
        notifier=notifier,
        bus=bus,
        managed_services=frozenset({SERVICE}),
        service_region="us-east-1",
        operator_actor=OPERATOR,
        clock=clock,
        load_balancers=load_balancers,
        sleep=waits.append,
    )
    return type(
        "World",
        (),
        {
            "service": service,
            "ec2": endpoints,
            "waits": waits,
            "notifier": notifier,
            "bus": bus,
            "clock": clock,
            "tables": tables,
            "load_balancers": load_balancers,
        },
    )


def counted() -> dict[str, list[float]]:
    """The metrics the decision service added (Powertools' module state, reset after each test)."""
    from gatekeeper.observability import metrics

    return {name: list(metric["Value"]) for name, metric in metrics.metric_set.items()}


def outcomes(world) -> list[str]:
    return [d.outcome for d in world.tables.decisions.decisions_for_endpoint(ENDPOINT)]


def test_accept_records_notifies_and_takes_a_slot(world):
    decision = world.service.handle(requested())
    assert decision.outcome == "accepted"
    assert world.ec2.calls == ["Accept"]
    assert outcomes(world) == ["accepted"]
    assert len(world.notifier.sent) == len(world.bus.sent) == 1
    state = world.tables.decisions.state(ENDPOINT)
    assert (state.notified, state.slot_tenant) == (True, "acme")


def test_duplicate_delivery_does_nothing_visible(world):
    world.service.handle(requested())
    assert world.service.handle(requested()) is None
    assert world.service.handle(requested(trigger="reconcile")) is None
    assert world.ec2.calls == ["Accept"]
    assert len(world.notifier.sent) == 1


def test_unmanaged_service_and_non_pending_connections_are_ignored(world):
    other = EvaluationRequest(
        connection=ConnectionRef(vpc_endpoint_id=ENDPOINT, service_id="vpce-svc-0ffffffffffffffff")
    )
    assert world.service.handle(other) is None
    world.ec2.state = "available"
    assert world.service.handle(requested()) is None
    assert world.ec2.calls == []


def test_unsuccessful_accept_keeps_the_claim_for_a_retry_and_raises(world):
    # EC2 still shows it waiting: the error is transient or EC2's read is behind. Nothing is
    # recorded or announced, the slot stays reserved, and the retry (or the sweep) finishes it.
    world.ec2.fail = ["InternalError"]
    with pytest.raises(ConnectionActionFailed):
        world.service.handle(requested())
    assert outcomes(world) == []
    assert world.tables.decisions.state(ENDPOINT).status == "accepting"
    assert world.tables.decisions.active_endpoints("acme") == 1
    assert world.notifier.sent == []


def test_accept_of_a_connection_deleted_meanwhile_is_dropped_without_retry(world):
    def deleted_during_the_claim(service_id, vpc_endpoint_id):
        world.ec2.state = "deleted"
        raise ConnectionActionFailed("Accept", ENDPOINT, "InvalidState", "deleted")

    world.ec2.accept = deleted_during_the_claim
    assert world.service.handle(requested()) is None
    assert outcomes(world) == []
    assert world.tables.decisions.state(ENDPOINT) is None
    assert world.tables.decisions.active_endpoints("acme") == 0


def test_rollback_after_close_connection_released_the_slot_does_not_get_stuck(world):
    # The consumer deletes its endpoint during the claim; close_connection frees the slot first.
    def deleted_and_released(service_id, vpc_endpoint_id):
        world.ec2.state = "deleted"
        assert world.service.release(ConnectionClosed(connection=REF)) is True
        raise ConnectionActionFailed("Accept", ENDPOINT, "InvalidState", "deleted")

    world.ec2.accept = deleted_and_released
    assert world.service.handle(requested()) is None
    assert world.tables.decisions.state(ENDPOINT) is None
    assert world.tables.decisions.active_endpoints("acme") == 0
    assert world.tables.decisions.slots("acme") == []


def test_revocation_finalised_after_the_slot_was_released_meanwhile(world):
    world.service.handle(requested())
    world.ec2.state = "available"
    world.tables.decisions.release_slot("acme", ENDPOINT)  # e.g. a reconciler repair raced us
    world.tables.tenants.update(
        world.tables.tenants.get("acme").model_copy(update={"status": "suspended"}), "op"
    )
    revocation = RevocationRequest(connection=REF, trigger="tenant-change", reason="suspended")
    assert world.service.handle(revocation).outcome == "revoked"
    assert world.tables.decisions.state(ENDPOINT).status == "revoked"
    assert world.tables.decisions.active_endpoints("acme") == 0


def test_reject_refused_while_still_pending_is_resumed_by_the_retry(world):
    world.ec2.current = connection(owner="999999999999")
    world.ec2.fail = ["Throttled"]
    with pytest.raises(ConnectionActionFailed):
        world.service.handle(requested())
    world.clock.now += timedelta(seconds=60)  # Lambda's first async retry
    assert world.service.handle(requested()) is None  # resumed: the claim is finished, not re-decided
    assert world.tables.decisions.state(ENDPOINT).status == "rejected"
    assert outcomes(world) == ["rejected"]
    assert len(world.notifier.sent) == 1


def test_unsuccessful_because_an_earlier_attempt_already_accepted_is_completed(world):
    def already_accepted(service_id, vpc_endpoint_id):
        world.ec2.state = "available"
        raise ConnectionActionFailed("Accept", ENDPOINT, "InvalidState", "already accepted")

    world.ec2.accept = already_accepted
    assert world.service.handle(requested()).outcome == "accepted"
    assert outcomes(world) == ["accepted"]


def test_an_accept_applied_but_whose_answer_was_lost_is_recorded(world):
    world.ec2.lost = [timeout()]
    assert world.service.handle(requested()).outcome == "accepted"
    assert outcomes(world) == ["accepted"]
    assert world.tables.decisions.active_endpoints("acme") == 1
    assert len(world.notifier.sent) == 1


def test_an_unanswered_accept_is_never_rolled_back_on_a_guess(world):
    world.ec2.fail = [timeout()]
    with pytest.raises(OutcomeUnknown):
        world.service.handle(requested())
    state = world.tables.decisions.state(ENDPOINT)
    assert (state.status, world.tables.decisions.active_endpoints("acme")) == ("accepting", 1)
    # Meanwhile EC2 turns out to have applied it after all: the resume records it, no second Accept.
    world.ec2.state = "available"
    world.clock.now += timedelta(seconds=60)
    world.service.handle(requested())
    assert outcomes(world) == ["accepted"]
    assert world.ec2.calls == ["Accept"]  # the resume reads EC2 first: done, so not sent again


def test_a_connection_listed_on_a_re_read_is_decided_in_the_same_invocation(world):
    world.ec2.unlisted = 1  # EC2 has not caught up with the notification at the first read
    decision = world.service.handle(requested())
    assert decision is not None
    assert decision.outcome == "accepted"
    assert world.waits == [0.2]  # one pause, then the second read lists it
    assert world.ec2.reads == 2
    assert world.ec2.calls == ["Accept"]
    assert outcomes(world) == ["accepted"]
    assert world.tables.decisions.active_endpoints("acme") == 1  # the tenant was read once listed
    assert counted() == {"ConnectionsReRead": [1.0]}


def test_the_re_reads_follow_the_schedule_until_ec2_lists_the_connection(world):
    world.ec2.unlisted = 3
    assert world.service.handle(requested()).outcome == "accepted"
    assert world.waits == [0.2, 0.5, 1.0]
    assert world.ec2.reads == 4


def test_a_connection_ec2_does_not_list_after_the_re_reads_is_retried_not_decided(world):
    world.ec2.current = None
    with pytest.raises(ConnectionNotVisible, match="does not list"):
        world.service.handle(requested())
    assert world.waits == [0.2, 0.5, 1.0]  # well under the function's 30 s timeout
    assert world.ec2.reads == 4
    assert counted() == {"ConnectionsReRead": [1.0], "ConnectionsNotYetVisible": [1.0]}
    assert world.tables.decisions.state(ENDPOINT) is None
    assert world.ec2.calls == []


def test_an_error_while_re_reading_is_raised_at_once(world):
    world.ec2.unlisted = 1

    def pause_then_ec2_times_out(seconds: float) -> None:
        world.waits.append(seconds)
        world.ec2.read_fail.append(timeout())

    world.service.sleep = pause_then_ec2_times_out
    with pytest.raises(ReadTimeoutError):
        world.service.handle(requested())
    assert world.waits == [0.2]  # no further pause: only "not listed" is waited for
    assert world.ec2.reads == 2
    assert world.tables.decisions.state(ENDPOINT) is None


def test_a_request_another_delivery_decided_during_the_pause_is_not_decided_again(world):
    world.ec2.unlisted = 1

    def another_delivery_decides(seconds: float) -> None:
        world.waits.append(seconds)
        assert world.service.handle(requested()).outcome == "accepted"  # EC2 lists it by then

    world.service.sleep = another_delivery_decides
    assert world.service.handle(requested()) is None
    assert world.waits == [0.2]
    assert world.ec2.calls == ["Accept"]
    assert outcomes(world) == ["accepted"]
    assert len(world.notifier.sent) == 1


def test_a_decided_connection_ec2_no_longer_lists_is_not_waited_for(world):
    world.service.handle(requested())
    world.ec2.current = None  # deleted and aged out; a late duplicate of its notification arrives
    assert world.service.handle(requested()) is None
    assert world.waits == []


def test_an_operator_request_for_a_connection_ec2_does_not_list_is_not_waited_for(world):
    # The CLI reads the connection from EC2 before it sends the request: not listed now is no lag.
    world.ec2.current = None
    with pytest.raises(ConnectionNotVisible):
        world.service.handle(operator("accepted"))
    assert world.waits == []


def test_a_connection_ec2_never_lists_is_left_to_the_sweep_after_two_redeliveries(world):
    # The ingester does not read EC2 for a Connect: the decider's read is the one that waits for
    # EC2 to list it, through the decision queue's redeliveries (every 180 s), then stops failing (no DLQ).
    world.ec2.current = None
    sent = world.clock.now
    asked = EvaluationRequest(connection=REF, trigger="notification", requested_at=sent)
    world.clock.now = sent + timedelta(seconds=190)
    with pytest.raises(ConnectionNotVisible):
        world.service.handle(asked)
    assert world.waits == [0.2, 0.5, 1.0]
    world.clock.now = sent + timedelta(seconds=370)
    assert world.service.handle(asked) is None
    assert world.waits == [0.2, 0.5, 1.0]  # past the give-up time: no more re-reads either
    assert world.tables.decisions.state(ENDPOINT) is None
    assert world.ec2.calls == []


def test_the_request_time_comes_from_the_envelope_never_the_detail():
    from gatekeeper.models.events import decision_request

    event = {
        "source": "vpce.gatekeeper",
        "detail-type": "Endpoint Connection Requested",
        "time": "2026-11-27T12:00:00Z",
        "detail": {
            "connection": {"VpcEndpointId": ENDPOINT, "ServiceId": SERVICE},
            "requested_at": "2000-01-01T00:00:00Z",
        },
    }
    assert decision_request(event).requested_at == datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_an_unfinished_claim_is_left_alone_while_fresh_and_resumed_when_stale(world):
    claimed_decision = world.service.assess(connection()).decision
    world.tables.decisions.claim(
        claimed_decision, "accepting", None, Slot("acme", ENDPOINT, 2), world.clock()
    )
    with pytest.raises(DecisionInProgress):
        world.service.handle(requested())
    world.clock.now += timedelta(seconds=60)  # Lambda's first async retry comes after ~1 minute
    world.service.handle(requested())
    assert outcomes(world) == ["accepted"]
    assert world.ec2.calls == ["Accept"]
    assert world.tables.decisions.active_endpoints("acme") == 1


def test_an_accept_is_recorded_before_it_is_announced_and_a_lost_announcement_is_sent_later(world):
    # Recorded first: once the consumer deletes the endpoint, EC2 cannot tell whether an accept was
    # made, so an accept announced before its record could be rolled back by a resume.
    world.notifier.publish_batch = lambda *a: (_ for _ in ()).throw(RuntimeError("SNS down"))
    with pytest.raises(RuntimeError):
        world.service.handle(requested())
    assert outcomes(world) == ["accepted"]
    state = world.tables.decisions.state(ENDPOINT)
    assert (state.status, state.notified) == ("accepted", False)
    assert world.tables.decisions.unsettled(world.clock.now + timedelta(days=1)) == [state]
    sent = Recorder()
    world.notifier.publish_batch = sent.publish_batch
    assert world.service.handle(requested()) is None  # the first sender may still be working
    assert sent.sent == []
    world.clock.now += timedelta(seconds=60)
    assert world.service.handle(requested()) is None
    assert len(sent.sent) == 1
    world.service.handle(requested())
    assert len(sent.sent) == 1
    assert outcomes(world) == ["accepted"]
    assert world.ec2.calls == ["Accept"]
    assert world.tables.decisions.unsettled(world.clock.now + timedelta(days=1)) == []


def test_an_announced_accept_stays_recorded_when_the_consumer_deletes_the_endpoint(world):
    """The chaos case: the decider accepted, announced and died; the consumer deleted the endpoint
    before anyone resumed. The decision is on record, and nothing rolls it back."""
    mark_notified = world.tables.decisions.mark_notified
    world.tables.decisions.mark_notified = lambda state: (_ for _ in ()).throw(RuntimeError("died"))
    with pytest.raises(RuntimeError):
        world.service.handle(requested())
    assert len(world.notifier.sent) == 1
    world.tables.decisions.mark_notified = mark_notified
    world.ec2.current = connection(state="deleted")
    world.clock.now += timedelta(seconds=600)
    world.service.handle(requested())
    assert outcomes(world) == ["accepted"]
    assert world.tables.decisions.state(ENDPOINT).status == "accepted"


def test_a_lost_reject_announcement_is_sent_when_its_claim_is_resumed(world):
    # A refusal is announced before it is recorded: a decider that dies announcing leaves its claim
    # in flight (Unsettled), and whoever resumes it reads EC2, records the effect and announces it.
    world.ec2.current = connection(owner="999999999999")
    world.notifier.publish_batch = lambda *a: (_ for _ in ()).throw(RuntimeError("SNS down"))
    with pytest.raises(RuntimeError):
        world.service.handle(requested())
    assert outcomes(world) == []
    assert world.tables.decisions.state(ENDPOINT).status == "rejecting"
    assert world.tables.decisions.unsettled(world.clock.now + timedelta(days=1)) != []
    sent = Recorder()
    world.notifier.publish_batch = sent.publish_batch
    with pytest.raises(DecisionInProgress):  # the first sender may still be working
        world.service.handle(requested())
    assert sent.sent == []
    world.clock.now += timedelta(seconds=60)
    assert world.service.handle(requested()) is None
    assert len(sent.sent) == 1
    assert outcomes(world) == ["rejected"]
    world.service.handle(requested())
    assert len(sent.sent) == 1
    assert world.ec2.calls == ["Reject"]  # EC2 showed it done: not asked again
    assert world.tables.decisions.unsettled(world.clock.now + timedelta(days=1)) == []


def test_unknown_principal_follows_the_stack_parameter(world):
    world.service.unknown_principal_action = "hold"
    world.ec2.current = connection(owner="999999999999")
    decision = world.service.handle(requested())
    assert (decision.outcome, decision.reasons) == ("held", ("UnknownPrincipal",))
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
    decision = world.service.handle(requested())
    assert (decision.outcome, decision.reasons) == ("rejected", ("NoStatementMatched",))
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
    decision = world.service.handle(requested())
    assert (decision.outcome, decision.reasons) == ("held", ("TemplateInvalid",))
    assert "StringEqulas" in decision.explanation[0]
    assert world.ec2.calls == []
    assert len(world.notifier.sent) == 1  # operators are told


def test_a_missing_template_holds(world):
    world.tables.tenants.update(
        world.tables.tenants.get("acme").model_copy(update={"template_version": 9}), "op"
    )
    assert world.service.handle(requested()).reasons == ("TemplateInvalid",)


def test_held_is_reevaluated_only_by_tenant_change_or_operator(world):
    world.ec2.current = connection(region="eu-west-1")
    held = world.service.handle(requested())
    assert held.outcome == "held"
    assert world.service.handle(requested(trigger="reconcile")) is None
    # A tenant change re-evaluates it; the same hold for the same reasons says nothing new.
    assert world.service.handle(requested(trigger="tenant-change")) is None
    assert len(world.notifier.sent) == 1
    world.clock.now += timedelta(seconds=1)
    approved = world.service.handle(
        operator("accepted", "customer confirmed", requested_by="arn:aws:iam::1:user/op")
    )
    # The actor is the principal the bus lets put operator events, never what the payload says.
    assert (approved.outcome, approved.actor, approved.reasons) == (
        "accepted",
        OPERATOR,
        ("OperatorDecision",),
    )
    assert "requested by arn:aws:iam::1:user/op, as stated by the caller" in approved.explanation[0]
    assert outcomes(world) == ["held", "accepted"]


def test_the_connection_is_read_from_ec2_never_from_the_event(world):
    # A forged event naming a stranger's endpoint as acme's: EC2 says whose it is.
    world.ec2.current = connection(owner="999999999999")
    forged = EvaluationRequest.model_validate(
        {
            "connection": {
                "VpcEndpointId": ENDPOINT,
                "ServiceId": SERVICE,
                "VpcEndpointOwner": ACCOUNT,
                "VpcEndpointState": "pendingAcceptance",
            },
            "trigger": "notification",
        }
    )
    decision = world.service.handle(forged)
    assert (decision.outcome, decision.reasons, decision.vpc_endpoint_owner) == (
        "rejected",
        ("UnknownPrincipal",),
        "999999999999",
    )


def test_a_revocation_request_revokes_only_what_the_record_forbids(world):
    world.service.handle(requested())
    world.ec2.state = "available"
    stale = RevocationRequest(connection=REF, trigger="reconcile", reason="believed suspended")
    assert world.service.handle(stale) is None  # acme is active: nothing is taken away
    assert world.ec2.calls == ["Accept"]


def test_operator_reject_of_an_accepted_connection_revokes_it(world):
    world.service.handle(requested())
    world.ec2.state = "available"
    revoked = world.service.handle(operator("rejected", "contract ended"))
    assert (revoked.outcome, revoked.actor) == ("revoked", OPERATOR)
    assert world.ec2.calls == ["Accept", "Reject"]
    assert world.tables.decisions.active_endpoints("acme") == 0
    assert world.service.handle(operator("rejected", "again")) is None


def test_an_operator_revoke_that_meets_a_stale_read_of_the_accept_comes_back(world):
    # EC2's read lag right after an accept: Describe still shows pendingAcceptance. The request is
    # retried (its message comes back), never dropped as drift.
    world.service.handle(requested())
    world.ec2.state = "pendingAcceptance"
    with pytest.raises(ConnectionNotVisible):
        world.service.handle(operator("rejected", "contract ended"))
    world.ec2.state = "available"
    assert world.service.handle(operator("rejected", "contract ended")).outcome == "revoked"


def test_operator_requests_follow_the_operator_rule(world):
    # Accepted by hand, outside the decision path: not the decider's to revoke (operator_verdict).
    world.ec2.current = connection("available")
    assert world.service.handle(operator("rejected", "who let you in")) is None
    assert world.service.handle(operator("accepted", "already in")) is None
    world.ec2.current = connection("partial")
    assert world.service.handle(operator("rejected", "odd")) is None
    assert world.ec2.calls == []
    assert outcomes(world) == []


def test_quota_taken_by_a_concurrent_request_turns_accept_into_reject(world):
    world.tables.decisions.record_slot("acme", "vpce-00000000000000001")
    assessment = world.service.assess(connection())
    assert assessment.decision.outcome == "accepted"
    world.tables.decisions.record_slot("acme", "vpce-00000000000000002")  # the race
    world.service.assess = lambda *args, **kwargs: assessment  # as assessed before the race
    decision = world.service.handle(requested())
    assert (decision.outcome, decision.reasons) == ("rejected", ("QuotaExceeded",))
    assert world.ec2.calls == ["Reject"]


def test_release_frees_the_slot_once(world):
    world.service.handle(requested())
    world.ec2.state = "deleted"
    closed = ConnectionClosed(connection=REF)
    assert world.service.release(closed) is True
    assert world.service.release(closed) is False


def test_release_after_a_reject_that_took_no_slot_writes_nothing(world):
    world.tables.tenants.update(
        world.tables.tenants.get("acme").model_copy(update={"status": "suspended"}), "op"
    )
    assert world.service.handle(requested()).reasons == ("TenantSuspended",)
    world.ec2.state = "rejected"
    calls = []
    world.tables.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    assert world.service.release(ConnectionClosed(connection=REF)) is False
    assert calls == ["GetItem"]  # the state: rejected, no slot; no claim lookup, no transaction


def test_a_decider_that_dies_before_recording_an_accept_is_resumed_and_announces_it_once(world):
    finalise = world.tables.decisions.finalise
    world.tables.decisions.finalise = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("crash"))
    with pytest.raises(RuntimeError):
        world.service.handle(requested())
    assert world.notifier.sent == world.bus.sent == []  # an accept is recorded before it is announced
    assert outcomes(world) == []
    state = world.tables.decisions.state(ENDPOINT)
    assert (state.status, state.notified) == ("accepting", False)
    assert world.tables.decisions.unsettled(world.clock.now + timedelta(days=1)) == [state]
    world.tables.decisions.finalise = finalise
    world.clock.now += timedelta(seconds=60)  # the async retry (or the sweep) resumes the claim
    assert world.service.handle(requested()) is None
    assert outcomes(world) == ["accepted"]
    assert [d.outcome for (d,) in world.notifier.sent] == ["accepted"]
    assert len(world.bus.sent) == 1
    assert world.ec2.calls == ["Accept"]  # EC2 showed it done: not sent again
    assert world.tables.decisions.state(ENDPOINT).settled
    assert world.tables.decisions.active_endpoints("acme") == 1


def test_a_reject_announced_before_its_decider_died_is_recorded_even_if_the_consumer_deleted_it(world):
    world.tables.tenants.update(
        world.tables.tenants.get("acme").model_copy(update={"status": "suspended"}), "op"
    )
    finalise = world.tables.decisions.finalise
    world.tables.decisions.finalise = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("crash"))
    with pytest.raises(RuntimeError):
        world.service.handle(requested())
    assert [d.outcome for (d,) in world.notifier.sent] == ["rejected"]  # announced, not recorded
    world.tables.decisions.finalise = finalise
    world.ec2.state = "deleted"  # the consumer deletes its rejected endpoint meanwhile
    world.clock.now += timedelta(seconds=60)  # the async retry (or the sweep) resumes the claim
    assert world.service.handle(requested()) is None
    # What was announced is recorded (a closed connection is a reject that holds), not rolled back.
    assert outcomes(world) == ["rejected"]
    assert world.tables.decisions.state(ENDPOINT).status == "rejected"
    assert world.ec2.calls == ["Reject"]


def test_a_forged_closed_event_frees_no_slot_of_a_live_endpoint(world):
    world.service.handle(requested())
    world.ec2.state = "available"
    with pytest.raises(ConnectionNotVisible, match="still shows"):
        world.service.release(ConnectionClosed(connection=REF))
    assert world.tables.decisions.active_endpoints("acme") == 1
    assert world.waits == []  # a release is not re-read in the invocation: the retry reads again


def test_invalid_tenant_record_holds(world):
    world.tables.client.update_item(
        TableName=world.tables.names["TenantsTableName"],
        Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": "TENANT"}},
        UpdateExpression="SET max_endpoints = :m",
        ExpressionAttributeValues={":m": {"S": "lots"}},
    )
    decision = world.service.handle(requested())
    assert (decision.outcome, decision.reasons) == ("held", ("TenantInvalid",))
    # Announced to the tenant the account is claimed by (its subscribers filter on tenant_id).
    assert decision.tenant_id == "acme"
    [(announced,)] = world.notifier.sent
    assert announced.tenant_id == "acme"
    assert world.ec2.calls == []


def test_decision_documents_name_template_and_version(world):
    decision = world.service.handle(requested())
    assert isinstance(decision, Decision)
    assert (decision.template, decision.template_version, decision.actor) == ("standard", 1, "auto")


# -- the data plane (issue 12) -----------------------------------------------------------------
def test_no_healthy_targets_holds_with_the_zones_named(world):
    world.load_balancers.healthy_zones = ()
    decision = world.service.handle(requested())
    assert (decision.outcome, decision.reasons) == ("held", ("NoHealthyTargets",))
    assert world.ec2.calls == []
    assert any("no healthy target serving us-east-1a, us-east-1b" in line for line in decision.explanation)
    assert world.tables.decisions.active_endpoints("acme") == 0


def test_an_unreadable_load_balancer_never_accepts(world):
    world.load_balancers.fail = True
    decision = world.service.handle(requested())
    assert (decision.outcome, decision.reasons) == ("held", ("DataPlaneUnknown",))
    assert world.ec2.calls == []
    assert any("could not be read: elbv2: AccessDenied" in line for line in decision.explanation)


def test_a_decider_without_a_load_balancer_reader_holds_templates_that_test_it(world):
    world.service.load_balancers = None
    decision = world.service.handle(requested())
    assert (decision.outcome, decision.reasons) == ("held", ("DataPlaneUnknown",))


def test_a_template_handling_the_absent_key_decides_itself(world):
    template = {
        **STANDARD,
        "Name": "strict",
        "Statement": [
            {
                "Sid": "HealthUnknown",
                "Effect": "Deny",
                "Condition": {"Null": {"endpoint:HealthyTargets": "true"}},
            },
            *STANDARD["Statement"],
        ],
    }
    world.tables.templates.push(template, "op")
    tenant = world.tables.tenants.get("acme")
    world.tables.tenants.update(tenant.model_copy(update={"template": "strict"}), "op")
    world.load_balancers.fail = True
    decision = world.service.handle(requested())
    assert (decision.outcome, decision.reasons) == ("rejected", ("HealthUnknown",))


def test_a_template_that_does_not_test_the_data_plane_costs_no_load_balancer_read(world):
    template = {
        **STANDARD,
        "Name": "plain",
        "Statement": [s for s in STANDARD["Statement"] if s["Sid"] != "NoHealthyTargets"],
    }
    world.tables.templates.push(template, "op")
    tenant = world.tables.tenants.get("acme")
    world.tables.tenants.update(tenant.model_copy(update={"template": "plain"}), "op")
    world.load_balancers.healthy_zones = ()
    assessment = world.service.assess(connection())
    assert assessment.decision.outcome == "accepted"
    assert world.load_balancers.reads == []


def test_an_accepted_notice_carries_service_access(world):
    decision = world.service.handle(requested())
    assert decision.outcome == "accepted"
    assert decision.service_access == ServiceAccess(
        service_name=f"com.amazonaws.vpce.us-east-1.{SERVICE}",
        ports=(443,),
        private_dns_name="api.example.com",
        private_dns_name_state="verified",
        healthy_zones=("us-east-1a", "us-east-1b"),
    )
    [(published,)] = world.notifier.sent
    assert published.service_access == decision.service_access
    [(_, [detail])] = world.bus.sent
    assert detail["service_access"]["ports"] == [443]
    [recorded] = world.tables.decisions.decisions_for_endpoint(ENDPOINT)
    assert recorded.service_access == decision.service_access


def test_a_notice_that_cannot_be_read_never_fails_the_accept(world):
    world.load_balancers.fail_access = True
    decision = world.service.handle(requested())
    assert decision.outcome == "accepted"
    assert decision.service_access is None
    assert len(world.notifier.sent) == 1
    assert world.tables.decisions.state(ENDPOINT).notified


def test_only_accepted_decisions_read_service_access(world):
    world.load_balancers.healthy_zones = ()
    world.service.handle(requested())
    assert "service_access" not in world.load_balancers.reads


def test_an_unannounced_accept_is_announced_before_a_revocation_supersedes_it(world):
    # The decider recorded the accept and died before announcing it; the tenant is suspended and the
    # revocation comes first (found by `make chaos`): both decisions are heard, in order.
    world.tables.decisions.mark_notified = lambda state: (_ for _ in ()).throw(RuntimeError("died"))
    world.notifier.publish_batch = lambda *a: (_ for _ in ()).throw(RuntimeError("died"))
    with pytest.raises(RuntimeError):
        world.service.handle(requested())
    del world.tables.decisions.mark_notified
    sent = Recorder()
    world.notifier.publish_batch = sent.publish_batch
    world.tables.tenants.update(
        world.tables.tenants.get("acme").model_copy(update={"status": "suspended"}), "op"
    )
    revocation = RevocationRequest(connection=REF, trigger="tenant-change", reason="suspended")
    assert world.service.handle(revocation).outcome == "revoked"
    assert [d.outcome for (d,) in sent.sent] == ["accepted", "revoked"]
    assert world.tables.decisions.state(ENDPOINT).settled


def test_all_at_once_runs_the_tasks_together_each_in_the_callers_context():
    role: contextvars.ContextVar[str] = contextvars.ContextVar("role", default="none")
    role.set("the invocation's")
    # Each task waits for all the others to have started: run one after another, it would not
    # get past the barrier (the timeout only ends such a failing run).
    together = threading.Barrier(DECISION_WRITERS, timeout=30)
    seen: list[str] = []

    def task() -> None:
        together.wait()
        seen.append(role.get())

    all_at_once([task] * DECISION_WRITERS)

    assert seen == ["the invocation's"] * DECISION_WRITERS
