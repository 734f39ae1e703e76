"""The opt-in eventual consistency switch: Describe lags behind changes for a bounded while, never
backwards for one reader, and notifications arrive later and possibly reordered — seeded, so every
run is the same."""

from __future__ import annotations

import pytest

from gatekeeper_ops.emulator import (
    EmulatorSettings,
    EventualConsistency,
    deliver_notifications,
    published_notifications,
)
from gatekeeper_ops.emulator.provisioning import create_interface_endpoint
from tests.integration.emulator.conftest import (
    PRODUCER,
    REGION,
    Consumer,
    FakeClock,
    Producer,
    Subscription,
    producer_session,
)


def lagging(**consistency: float | int | bool | None) -> EmulatorSettings:
    return EmulatorSettings(eventual_consistency=EventualConsistency(**consistency))  # type: ignore[arg-type]


def visible(producer: Producer, endpoint_id: str) -> list[str]:
    found = producer.connections(Filters=[{"Name": "vpc-endpoint-id", "Values": [endpoint_id]}])
    return [c["VpcEndpointState"] for c in found]


def notify_all(producer: Producer, subscription: Subscription) -> None:
    producer.ec2.create_vpc_endpoint_connection_notification(
        ServiceId=producer.service.service_id,
        ConnectionNotificationArn=subscription.topic_arn,
        ConnectionEvents=["Connect", "Accept", "Reject", "Delete"],
    )


def test_off_by_default_a_new_connection_is_visible_at_once(producer: Producer, consumer: Consumer) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    assert visible(producer, endpoint_id) == ["pendingAcceptance"]


@pytest.mark.parametrize("emulator_settings", [lagging(stale_reads=2)])
def test_a_new_connection_is_missing_from_the_first_describes(producer: Producer, consumer: Consumer) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    seen = [visible(producer, endpoint_id) for _ in range(3)]

    assert seen == [[], [], ["pendingAcceptance"]]


@pytest.mark.parametrize("emulator_settings", [lagging(stale_reads=1)])
def test_accept_acts_on_the_truth_while_describe_still_shows_the_old_state(
    producer: Producer, consumer: Consumer
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    assert visible(producer, endpoint_id) == []

    answer = producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )
    seen = [visible(producer, endpoint_id) for _ in range(2)]

    assert answer["Unsuccessful"] == []
    assert seen == [["pendingAcceptance"], ["pending"]]


@pytest.mark.parametrize("emulator_settings", [lagging(stale_reads=None, stale_seconds=5)])
def test_the_lag_can_be_measured_in_time(
    producer: Producer, consumer: Consumer, fake_clock: FakeClock
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    before = [visible(producer, endpoint_id) for _ in range(3)]
    fake_clock.advance(5)

    assert before == [[], [], []]
    assert visible(producer, endpoint_id) == ["pendingAcceptance"]


@pytest.mark.parametrize("emulator_settings", [lagging(stale_reads=1, reorder=False)])
def test_notifications_wait_for_the_next_call_or_an_explicit_delivery(
    producer: Producer, consumer: Consumer, subscription: Subscription
) -> None:
    notify_all(producer, subscription)
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    before = subscription.received(expected=1)
    sent = deliver_notifications()

    assert before == []
    assert sent == 1
    assert [(b["EventType"], b["VpcEndpointId"]) for b in subscription.received(expected=1)] == [
        ("Connect", endpoint_id)
    ]


@pytest.mark.parametrize("emulator_settings", [lagging(max_delivery_delay_seconds=30, reorder=False)])
def test_a_delayed_notification_goes_out_once_it_is_due(
    producer: Producer, consumer: Consumer, subscription: Subscription, fake_clock: FakeClock
) -> None:
    notify_all(producer, subscription)
    create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    early = deliver_notifications()
    fake_clock.advance(30)
    producer.connections()  # any emulated EC2 call delivers what is due

    assert early == 0
    assert [b["EventType"] for b in subscription.received(expected=1)] == ["Connect"]


REORDERED_BY_SEED_0 = ["Accept", "Connect", "Reject"]  # Accept overtakes Connect


def run_three_events(
    producer: Producer, consumer: Consumer, subscription: Subscription, fake_clock: FakeClock
) -> list[str]:
    """Connect, Accept and Reject while all three are still held back, then deliver them."""
    notify_all(producer, subscription)
    service = producer.service
    endpoint_id = create_interface_endpoint(consumer.ec2, service.service_name, consumer.network)
    producer.ec2.accept_vpc_endpoint_connections(ServiceId=service.service_id, VpcEndpointIds=[endpoint_id])
    producer.ec2.reject_vpc_endpoint_connections(ServiceId=service.service_id, VpcEndpointIds=[endpoint_id])
    held = subscription.received(expected=1)
    fake_clock.advance(10)
    deliver_notifications()
    assert held == []
    return [body["EventType"] for body in subscription.received(expected=3)]


@pytest.mark.parametrize(
    "emulator_settings", [lagging(stale_reads=0, max_delivery_delay_seconds=10, reorder=True, seed=0)]
)
def test_reordered_delivery_is_seeded(
    producer: Producer, consumer: Consumer, subscription: Subscription, fake_clock: FakeClock
) -> None:
    events = run_three_events(producer, consumer, subscription, fake_clock)

    assert events == REORDERED_BY_SEED_0  # the same order on every run


@pytest.mark.parametrize(
    "emulator_settings", [lagging(stale_reads=0, max_delivery_delay_seconds=10, reorder=False)]
)
def test_without_reordering_delivery_keeps_the_order(
    producer: Producer, consumer: Consumer, subscription: Subscription, fake_clock: FakeClock
) -> None:
    assert run_three_events(producer, consumer, subscription, fake_clock) == ["Connect", "Accept", "Reject"]


DEFAULT_LAG = EventualConsistency().stale_seconds


def accept(producer: Producer, endpoint_id: str) -> None:
    answer = producer.ec2.accept_vpc_endpoint_connections(
        ServiceId=producer.service.service_id, VpcEndpointIds=[endpoint_id]
    )
    assert answer["Unsuccessful"] == []


def test_the_default_lag_is_a_few_seconds() -> None:
    assert 1 <= DEFAULT_LAG <= 10


@pytest.mark.parametrize("emulator_settings", [lagging()])
def test_a_stale_read_expires_with_the_clock(
    producer: Producer, consumer: Consumer, fake_clock: FakeClock
) -> None:
    # Nobody reads for a while after each change: the old view is gone by the time someone does.
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    fake_clock.advance(DEFAULT_LAG)
    created = visible(producer, endpoint_id)
    accept(producer, endpoint_id)
    fake_clock.advance(DEFAULT_LAG)

    assert created == ["pendingAcceptance"]
    assert visible(producer, endpoint_id) == ["available"]


@pytest.mark.parametrize("emulator_settings", [lagging()])
def test_a_stale_view_lasts_at_most_the_lag_however_few_reads_it_had(
    producer: Producer, consumer: Consumer, fake_clock: FakeClock
) -> None:
    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    fake_clock.advance(DEFAULT_LAG - 0.1)
    within = visible(producer, endpoint_id)
    accept(producer, endpoint_id)
    fake_clock.advance(DEFAULT_LAG - 0.1)
    still = visible(producer, endpoint_id)

    assert (within, still) == ([], ["pendingAcceptance"])


@pytest.mark.parametrize("emulator_settings", [lagging()])
def test_a_state_filter_shows_an_accepted_connection_as_waiting_only_within_the_lag(
    producer: Producer, consumer: Consumer, fake_clock: FakeClock
) -> None:
    # What `gatekeeper pending` asks: an accepted connection may still look pendingAcceptance to
    # a reader once, right after the accept, never later.
    waiting = [{"Name": "vpc-endpoint-state", "Values": ["pendingAcceptance"]}]
    first = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    second = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    fake_clock.advance(DEFAULT_LAG)
    accept(producer, first)
    accept(producer, second)

    right_after = [c["VpcEndpointId"] for c in producer.connections(Filters=waiting)]
    again = [c["VpcEndpointId"] for c in producer.connections(Filters=waiting)]
    fake_clock.advance(DEFAULT_LAG)
    accept_view = producer.connections(Filters=waiting)

    assert (right_after, again, accept_view) == ([first, second], [], [])


ORDER = [None, "pendingAcceptance", "pending", "available", "rejected"]


def never_backwards(seen: list[list[str]]) -> bool:
    ranks = [ORDER.index(states[0] if states else None) for states in seen]
    return ranks == sorted(ranks)


@pytest.mark.parametrize("emulator_settings", [lagging()])
def test_a_reader_never_sees_an_older_state_than_one_it_has_seen(
    producer: Producer, consumer: Consumer
) -> None:
    # Changes in quick succession, each within the lag of the one before. A reader that has caught
    # up with a change sees, at worst, the state the next change replaced; one that has not, the
    # older view. Neither ever steps back to pendingAcceptance (or to not there).
    other = producer_session().client("ec2", aws_access_key_id=f"AKIA{'2' * 16}", aws_secret_access_key="x")
    service_id = producer.service.service_id

    def read_by(ec2: object) -> list[str]:
        found = ec2.describe_vpc_endpoint_connections(  # type: ignore[attr-defined]
            Filters=[{"Name": "vpc-endpoint-id", "Values": [endpoint_id]}]
        )["VpcEndpointConnections"]
        return [c["VpcEndpointState"] for c in found]

    endpoint_id = create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)
    mine = [read_by(producer.ec2), read_by(producer.ec2)]
    accept(producer, endpoint_id)
    mine += [read_by(producer.ec2), read_by(producer.ec2), read_by(producer.ec2)]
    producer.ec2.reject_vpc_endpoint_connections(ServiceId=service_id, VpcEndpointIds=[endpoint_id])
    mine += [read_by(producer.ec2), read_by(producer.ec2)]
    theirs = [read_by(other), read_by(other)]

    assert mine == [
        [],
        ["pendingAcceptance"],
        ["pendingAcceptance"],
        ["pending"],
        ["available"],
        ["available"],
        ["rejected"],
    ]
    # Another caller of the same account: a reader is the account, which has caught up already.
    assert theirs == [["rejected"], ["rejected"]]
    assert never_backwards(mine)
    assert never_backwards(theirs)


@pytest.mark.parametrize("emulator_settings", [lagging(reorder=False)])
def test_a_queued_notification_is_still_checked_against_the_topic_policy(
    producer: Producer, consumer: Consumer
) -> None:
    bare_topic = producer.sns.create_topic(Name="no-vpce")["TopicArn"]
    producer.ec2.create_vpc_endpoint_connection_notification(
        ServiceId=producer.service.service_id,
        ConnectionNotificationArn=bare_topic,
        ConnectionEvents=["Connect"],
    )
    create_interface_endpoint(consumer.ec2, producer.service.service_name, consumer.network)

    deliver_notifications()

    [record] = published_notifications(PRODUCER, REGION)
    assert not record.delivered
    assert record.reason.startswith("topic policy:")


@pytest.mark.parametrize(
    "bad", [{"stale_reads": -1}, {"stale_seconds": -1}, {"max_delivery_delay_seconds": -1}]
)
def test_lags_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        EventualConsistency(**bad)  # type: ignore[arg-type]
