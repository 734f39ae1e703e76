"""Forged events on the bus change nothing: the decider trusts only the ids in an event, reads the
connection from EC2 and the tenant from the table; an operator's decision is only taken from the
operator source (which the bus policy keeps to the operator principals on AWS)."""

from __future__ import annotations

import json

from gatekeeper_ops.sandbox.account import ProducerAccount

from .conftest import ACME, HOOLI, STRANGER


def put(producer: ProducerAccount, detail_type: str, detail: dict, source: str = "vpce.gatekeeper") -> None:
    producer.client("events").put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "EventBusName": producer.stack.outputs["EventBusName"],
            }
        ]
    )


def connection_as_sent(endpoint: str, service: str, owner: str, state: str = "pendingAcceptance") -> dict:
    return {
        "VpcEndpointId": endpoint,
        "ServiceId": service,
        "VpcEndpointOwner": owner,
        "VpcEndpointState": state,
    }


def test_a_strangers_endpoint_forged_as_a_tenants_is_decided_as_the_strangers(tenants):
    endpoint = tenants.consumer(STRANGER).request_endpoint(tenants.service)
    service = tenants.service.service_id
    put(tenants, "Endpoint Connection Requested", {"connection": connection_as_sent(endpoint, service, ACME)})
    tenants.settle()
    [decision] = tenants.decisions.decisions_for_endpoint(endpoint)
    assert (decision.outcome, decision.reasons, decision.vpc_endpoint_owner) == (
        "rejected",
        ("UnknownPrincipal",),
        STRANGER,
    )
    assert tenants.decisions.active_endpoints("acme") == 0


def test_an_operator_decision_forged_on_the_gatekeeper_source_is_not_delivered(tenants):
    endpoint = tenants.consumer(STRANGER).request_endpoint(tenants.service)
    service = tenants.service.service_id
    forged = {
        "connection": {"VpcEndpointId": endpoint, "ServiceId": service},
        "decision": "accepted",
        "requested_by": "operator:arn:aws:iam::123456789012:user/made-up",
    }
    put(tenants, "Endpoint Connection Operator Decision", forged)  # source vpce.gatekeeper: no rule
    # and the old flag-style request: its extra fields are ignored, the request is evaluated by policy
    put(
        tenants,
        "Endpoint Connection Requested",
        {
            "connection": connection_as_sent(endpoint, service, STRANGER),
            "requested_decision": "accepted",
            "actor": "operator:arn:aws:iam::123456789012:user/made-up",
            "trigger": "notification",
        },
    )
    tenants.settle()
    assert [d.outcome for d in tenants.decisions.decisions_for_endpoint(endpoint)] == ["rejected"]
    assert tenants.connection_state(endpoint) == "rejected"


def test_a_forged_closed_event_frees_no_slot_of_a_live_endpoint(tenants):
    endpoint = tenants.consumer(HOOLI).request_endpoint(tenants.service)
    tenants.settle()
    assert tenants.decisions.active_endpoints("hooli") == 1
    put(
        tenants,
        "Endpoint Connection Closed",
        {"connection": connection_as_sent(endpoint, tenants.service.service_id, HOOLI, "deleted")},
    )
    tenants.settle()
    assert tenants.decisions.active_endpoints("hooli") == 1
    assert tenants.decisions.slots("hooli") == [endpoint]
    assert tenants.queue_depth("DecisionDeadLetterQueueUrl") == 1  # retried, then parked for a person
