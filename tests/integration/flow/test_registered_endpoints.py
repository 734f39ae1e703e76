"""Endpoint pre-registration under the built-in `registered` template: a registered endpoint is
accepted; an unregistered one is held (NotRegistered) and accepted as soon as the tenant registers
it, through the usual path (record change → tenant sync → decision request)."""

from __future__ import annotations

from gatekeeper_ops.sandbox.account import ProducerAccount
from tests.integration.conftest import tenant

WAYNE = "777788889999"


def onboard(producer: ProducerAccount) -> None:
    producer.add_tenant(tenant("wayne", WAYNE, producer.service.service_id, template="registered"))
    producer.settle()


def outcomes(producer: ProducerAccount, endpoint: str) -> list[tuple[str, tuple[str, ...], str]]:
    return [(d.outcome, d.reasons, d.trigger) for d in producer.decisions.decisions_for_endpoint(endpoint)]


def test_a_registered_endpoint_is_accepted(producer):
    onboard(producer)
    endpoint = producer.consumer(WAYNE).request_endpoint(producer.service)
    # The tenant registers the id its console showed, before the request is decided.
    producer.control_plane().update("wayne", 1, {"registered_endpoints": [endpoint]})
    producer.settle()
    assert outcomes(producer, endpoint)[-1][:2] == ("accepted", ("Accept",))
    assert producer.connection_state(endpoint) in ("pending", "available")


def test_an_unregistered_endpoint_is_held_then_accepted_on_registration(producer):
    onboard(producer)
    endpoint = producer.consumer(WAYNE).request_endpoint(producer.service)
    producer.settle()
    assert outcomes(producer, endpoint) == [("held", ("NotRegistered",), "notification")]
    assert producer.connection_state(endpoint) == "pendingAcceptance"
    producer.control_plane().update("wayne", 1, {"registered_endpoints": [endpoint]})
    producer.settle()
    assert outcomes(producer, endpoint)[-1] == ("accepted", ("Accept",), "tenant-change")
    assert producer.connection_state(endpoint) in ("pending", "available")
