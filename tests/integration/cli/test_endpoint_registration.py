"""`gatekeeper tenants register-endpoint|unregister-endpoint`: validated, version-checked record
updates; registering a held endpoint gets it decided again at once."""

from __future__ import annotations

from tests.integration.conftest import tenant

from .conftest import table_snapshot

WAYNE = "777788889999"


def test_registering_a_held_endpoint_gets_it_accepted(producer, cli):
    producer.add_tenant(tenant("wayne", WAYNE, producer.service.service_id, template="registered"))
    endpoint = producer.consumer(WAYNE).request_endpoint(producer.service)
    producer.settle()
    assert producer.decisions.state(endpoint).status == "held"
    out = cli.ok("tenants", "register-endpoint", "wayne", endpoint).stdout
    assert "updated tenant wayne (version 2" in out
    assert f"{endpoint} was held: the tenant sync requests it again now" in out
    producer.settle()
    assert producer.decisions.state(endpoint).status == "accepted"
    assert producer.tenants.get("wayne").registered_endpoints == (endpoint,)
    result = cli.json("tenants", "unregister-endpoint", "wayne", endpoint, "--expected-version", "2")
    assert result["tenant"].get("registered_endpoints", []) == []


def test_registration_refusals_name_the_problem_and_write_nothing(producer, cli):
    producer.add_tenant(tenant("wayne", WAYNE, producer.service.service_id, template="registered"))
    before = table_snapshot(producer)
    assert "not an interface endpoint id" in cli.fails(
        "tenants", "register-endpoint", "wayne", "vpce-svc-0123456789abcdef0"
    )
    too_many = [f"vpce-{i:017x}" for i in range(101)]
    assert "at most 100" in cli.fails("tenants", "register-endpoint", "wayne", *too_many)
    # Unregistering an id that is not registered changes nothing, and says so.
    assert "unchanged" in cli.ok("tenants", "unregister-endpoint", "wayne", "vpce-0123456789abcdef0").stdout
    assert table_snapshot(producer) == before
