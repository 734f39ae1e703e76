"""A stack that manages twelve endpoint services decides requests on every one of them: each gets its
connection notification (Fn::ForEach), and every Accept/Reject the decider sends is allowed by its role
(the IAM contract fixture checks each call against the transformed template at teardown)."""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.conftest import MakeProducer, tenant

from .conftest import ACME, STRANGER

SERVICES = 12


def test_a_twelve_service_stack_accepts_and_rejects_on_every_service(
    producer_factory: Callable[..., MakeProducer],
) -> None:
    producer = producer_factory()(services=SERVICES)
    services = producer.services
    ids = [s.service_id for s in services]
    assert len(set(ids)) == SERVICES
    assert producer.stack.outputs["ManagedEndpointServiceIds"] == ",".join(ids)
    producer.add_tenant(
        tenant(
            "acme",
            ACME,
            ids[0],
            services=tuple(ids),
            max_endpoints=SERVICES,
            parameters={"MaxEndpoints": SERVICES},
        )
    )
    producer.settle()
    acme, stranger = producer.consumer(ACME), producer.consumer(STRANGER)
    requested = {
        service.service_id: (acme.request_endpoint(service), stranger.request_endpoint(service))
        for service in services
    }
    producer.settle()

    for service_id, (accepted, rejected) in requested.items():
        [decision] = producer.decisions.decisions_for_endpoint(accepted)
        assert (decision.service_id, decision.outcome, decision.tenant_id) == (service_id, "accepted", "acme")
        assert producer.connection_state(accepted) in ("pending", "available")
        [refusal] = producer.decisions.decisions_for_endpoint(rejected)
        assert (refusal.service_id, refusal.outcome, refusal.reasons) == (
            service_id, "rejected", ("UnknownPrincipal",)
        )  # fmt: skip
        assert producer.connection_state(rejected) == "rejected"
    assert producer.decisions.active_endpoints("acme") == SERVICES
    # No sweep ran: every request reached the decider through its own service's notification.
    notifications = producer.client("ec2").describe_vpc_endpoint_connection_notifications()
    topic = producer.stack.outputs["ConnectionNotificationTopicArn"]
    assert sorted(
        n["ServiceId"]
        for n in notifications["ConnectionNotificationSet"]
        if n["ConnectionNotificationArn"] == topic
    ) == sorted(ids)
    assert "ReconcileConnectionsFunction" not in {i.function for i in producer.lambdas.invocations}
