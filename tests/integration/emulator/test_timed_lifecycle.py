"""Lifecycle in time: ``pending`` and ``deleting`` last a while, closed connections age out of
Describe. The emulator's clock is moved by hand (``fake_clock``); nothing sleeps."""

from __future__ import annotations

import pytest

from gatekeeper_ops.emulator import EmulatorSettings, seed_connections
from gatekeeper_ops.emulator.provisioning import create_interface_endpoint
from tests.integration.emulator.conftest import Consumer, FakeClock, Producer

TIME_ONLY = EmulatorSettings(pending_reads=None, pending_seconds=5, deleting_reads=None, deleting_seconds=3)


def state(producer: Producer, endpoint_id: str) -> str | None:
    found = producer.connections(Filters=[{"Name": "vpc-endpoint-id", "Values": [endpoint_id]}])
    return str(found[0]["VpcEndpointState"]) if found else None


def accepted(producer: Producer, consumer: Consumer) -> str:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )
    return endpoint_id


@pytest.mark.parametrize("emulator_settings", [TIME_ONLY])
def test_pending_lasts_pending_seconds_however_often_it_is_read(
    producer: Producer, consumer: Consumer, fake_clock: FakeClock
) -> None:
    endpoint_id = accepted(producer, consumer)

    early = [state(producer, endpoint_id) for _ in range(3)] + [consumer.endpoint(endpoint_id)["State"]]
    fake_clock.advance(4.9)
    still = state(producer, endpoint_id)
    fake_clock.advance(0.1)

    assert early == ["pending"] * 4
    assert still == "pending"
    assert state(producer, endpoint_id) == "available"
    assert consumer.endpoint(endpoint_id)["State"] == "available"


def test_by_default_an_unread_pending_connection_is_available_after_a_second(
    producer: Producer, consumer: Consumer, fake_clock: FakeClock
) -> None:
    endpoint_id = accepted(producer, consumer)

    fake_clock.advance(1)

    assert state(producer, endpoint_id) == "available"


def test_by_default_the_first_describe_right_after_accept_sees_pending_once(
    producer: Producer, consumer: Consumer, fake_clock: FakeClock
) -> None:
    endpoint_id = accepted(producer, consumer)

    assert [state(producer, endpoint_id) for _ in range(2)] == ["pending", "available"]


@pytest.mark.parametrize("emulator_settings", [TIME_ONLY])
def test_delete_goes_through_deleting_for_deleting_seconds(
    producer: Producer, consumer: Consumer, fake_clock: FakeClock
) -> None:
    endpoint_id = accepted(producer, consumer)
    fake_clock.advance(5)
    consumer.ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint_id])

    during = (state(producer, endpoint_id), consumer.endpoint(endpoint_id)["State"])
    fake_clock.advance(3)

    assert during == ("deleting", "deleting")
    assert state(producer, endpoint_id) == "deleted"
    assert consumer.endpoint(endpoint_id)["State"] == "deleted"


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(closed_retention_seconds=600)])
def test_rejected_and_deleted_connections_age_out_of_describe(
    producer: Producer, consumer: Consumer, fake_clock: FakeClock
) -> None:
    service_id = producer.service.service_id
    rejected = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    producer.ec2.reject_vpc_endpoint_connections(ServiceId=service_id, VpcEndpointIds=[rejected])
    deleted = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    consumer.ec2.delete_vpc_endpoints(VpcEndpointIds=[deleted])
    fake_clock.advance(1)  # deleting → deleted
    kept = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    before = {c["VpcEndpointId"]: c["VpcEndpointState"] for c in producer.connections()}
    fake_clock.advance(600)
    after = {c["VpcEndpointId"]: c["VpcEndpointState"] for c in producer.connections()}

    assert before == {rejected: "rejected", deleted: "deleted", kept: "pendingAcceptance"}
    assert after == {kept: "pendingAcceptance"}
    late = producer.ec2.reject_vpc_endpoint_connections(ServiceId=service_id, VpcEndpointIds=[rejected])
    assert [item["Error"]["Code"] for item in late["Unsuccessful"]] == ["InvalidVpcEndpointId.NotFound"]


@pytest.mark.parametrize("emulator_settings", [EmulatorSettings(closed_retention_seconds=None)])
def test_closed_connections_can_be_kept_for_ever(producer: Producer, fake_clock: FakeClock) -> None:
    [endpoint_id] = seed_connections(producer.service.service_id, 1, state="rejected")

    fake_clock.advance(10 * 365 * 86400)

    assert state(producer, endpoint_id) == "rejected"


@pytest.mark.parametrize(
    "bad",
    [
        {"pending_seconds": -1},
        {"deleting_seconds": -1},
        {"deleting_reads": -1},
        {"closed_retention_seconds": -1},
    ],
)
def test_timing_settings_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        EmulatorSettings(**bad)  # type: ignore[arg-type]
