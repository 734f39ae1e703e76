import json

import pytest

from gatekeeper.models.connection_notification import parse_notification
from gatekeeper.models.errors import NotificationUnparseable

ENDPOINT = "vpce-0a1b2c3d4e5f60718"
SERVICE = "vpce-svc-0123456789abcdef0"


def envelope(message: object) -> str:
    body = message if isinstance(message, str) else json.dumps(message)
    return json.dumps({"Type": "Notification", "MessageId": "m-1", "Message": body})


@pytest.mark.parametrize(
    "message",
    [
        {"VpcEndpointId": ENDPOINT, "ServiceId": SERVICE, "EventType": "Connect"},
        {"vpcEndpointId": ENDPOINT, "serviceId": SERVICE},
        {"vpc_endpoint_id": ENDPOINT, "service_id": SERVICE},
        {"detail": {"resources": [{"VPCENDPOINTID": ENDPOINT}], "ServiceId": SERVICE}},
    ],
)
def test_known_keys_in_any_case_and_nesting(message):
    parsed = parse_notification(envelope(message))
    assert (parsed.vpc_endpoint_id, parsed.service_id, parsed.message_id) == (ENDPOINT, SERVICE, "m-1")
    assert parsed.by_known_key


def test_ids_found_in_free_text_when_keys_are_unknown():
    parsed = parse_notification(envelope(f"Endpoint {ENDPOINT} of service {SERVICE} was created"))
    assert parsed.vpc_endpoint_id == ENDPOINT
    assert parsed.service_id == SERVICE
    assert not parsed.by_known_key  # the fallback: `gatekeeper verify` reports it


def test_raw_delivery_without_sns_envelope():
    parsed = parse_notification(json.dumps({"endpointId": ENDPOINT}))
    assert parsed.vpc_endpoint_id == ENDPOINT
    assert parsed.service_id is None


def test_service_id_is_not_mistaken_for_an_endpoint_id():
    with pytest.raises(NotificationUnparseable, match="no VPC endpoint ids"):
        parse_notification(envelope({"ServiceId": SERVICE}))


@pytest.mark.parametrize("body", ["", "not json at all", "{}", json.dumps({"Message": "{}"}), "null"])
def test_unparseable_bodies_raise(body):
    with pytest.raises(NotificationUnparseable):
        parse_notification(body)


def test_two_different_endpoints_are_ambiguous():
    with pytest.raises(NotificationUnparseable, match="2 different"):
        parse_notification(envelope(f"{ENDPOINT} and vpce-0ffffffffffffffff"))


@pytest.mark.parametrize(
    ("message", "event"),
    [
        ({"VpcEndpointId": ENDPOINT, "EventType": "Delete"}, "Delete"),
        ({"vpcEndpointId": ENDPOINT, "connectionEvent": "reject"}, "Reject"),
        ({"vpcEndpointId": ENDPOINT, "event": "Something"}, None),
        ({"vpcEndpointId": ENDPOINT}, None),
    ],
)
def test_the_event_is_read_as_a_hint_when_the_body_seems_to_say_it(message, event):
    assert parse_notification(envelope(message)).event == event


class _Ec2:
    def __init__(self, state):
        self.state = state

    def connection(self, vpc_endpoint_id, service_id=None):
        from gatekeeper.models.connection import VpcEndpointConnection

        return VpcEndpointConnection(
            ServiceId=SERVICE,
            VpcEndpointId=ENDPOINT,
            VpcEndpointOwner="111111111111",
            VpcEndpointState=self.state,
        )


class _Bus:
    """The bus as ingest uses it: `put` answers, in order, None (taken) or why an event was refused."""

    def __init__(self, refuse=(), down=False):
        self.sent, self.calls, self.refuse, self.down = [], [], set(refuse), down

    def put(self, events):
        self.calls.append([detail for _, detail in events])
        if self.down:
            raise RuntimeError("EventBridge unavailable")
        self.sent += [detail_type for detail_type, _ in events]
        return [
            "InternalFailure: try again" if detail["connection"]["VpcEndpointId"] in self.refuse else None
            for _, detail in events
        ]


def test_a_delete_notification_that_ec2_does_not_reflect_yet_is_read_again_later():
    from gatekeeper.logic.announcer import NOT_VISIBLE_ATTEMPTS, Announcer
    from gatekeeper.models.errors import ConnectionNotVisible

    bus = _Bus()
    announcer = Announcer(_Ec2("available"), bus, frozenset({SERVICE}))
    body = envelope({"VpcEndpointId": ENDPOINT, "ServiceId": SERVICE, "EventType": "Delete"})
    with pytest.raises(ConnectionNotVisible, match="still shows the old state"):
        announcer.ingest(body, attempt=1)
    assert bus.sent == []
    # Past the retries it routes by what EC2 says (here: nothing to do for an available one).
    assert announcer.ingest(body, attempt=NOT_VISIBLE_ATTEMPTS) == "ignored"
    announcer.endpoint_service.state = "deleted"
    assert announcer.ingest(body, attempt=2) == "closed"
    assert bus.sent == ["Endpoint Connection Closed"]


class _NoEc2:
    def connection(self, vpc_endpoint_id, service_id=None):
        raise AssertionError("EC2 read: the decider reads it, ingest must not")


def test_a_connect_is_put_on_the_bus_by_its_ids_without_reading_ec2():
    from gatekeeper.logic.announcer import Announcer

    bus = _Bus()
    announcer = Announcer(_NoEc2(), bus, frozenset({SERVICE}))
    body = envelope({"VpcEndpointId": ENDPOINT, "ServiceId": SERVICE, "EventType": "Connect"})
    assert announcer.ingest(body) == "requested"
    assert bus.sent == ["Endpoint Connection Requested"]
    assert bus.calls == [
        [{"connection": {"VpcEndpointId": ENDPOINT, "ServiceId": SERVICE}, "trigger": "notification"}]
    ]
    other = envelope(
        {"VpcEndpointId": ENDPOINT, "ServiceId": "vpce-svc-0fffffffffffffff0", "EventType": "Connect"}
    )
    assert announcer.ingest(other) == "ignored"
    assert bus.sent == ["Endpoint Connection Requested"]


@pytest.mark.parametrize("event", ["Accept", "Reject"])
def test_ec2s_notice_of_the_gatekeepers_own_decision_costs_no_call(event):
    from gatekeeper.logic.announcer import Announcer

    bus = _Bus()
    announcer = Announcer(_NoEc2(), bus, frozenset({SERVICE}))
    body = envelope({"VpcEndpointId": ENDPOINT, "ServiceId": SERVICE, "EventType": event})
    assert announcer.ingest(body) == "ignored"
    assert bus.sent == []


def test_a_notification_that_does_not_say_its_event_is_read_from_ec2():
    from gatekeeper.logic.announcer import Announcer

    bus = _Bus()
    announcer = Announcer(_Ec2("pendingAcceptance"), bus, frozenset({SERVICE}))
    assert announcer.ingest(envelope({"VpcEndpointId": ENDPOINT, "ServiceId": SERVICE})) == "requested"
    assert bus.sent == ["Endpoint Connection Requested"]


def connect(endpoint: str) -> str:
    return envelope({"VpcEndpointId": endpoint, "ServiceId": SERVICE, "EventType": "Connect"})


def test_a_batch_of_notifications_goes_on_the_bus_in_one_call_and_each_message_fails_alone():
    from gatekeeper.logic.announcer import Announcer
    from gatekeeper.models.errors import PublishFailed

    refused = "vpce-0a1b2c3d4e5f60712"
    bus = _Bus(refuse={refused})
    announcer = Announcer(_NoEc2(), bus, frozenset({SERVICE}))
    batch = [
        (connect("vpce-0a1b2c3d4e5f60711"), 1),
        ("not a notification", 1),
        (envelope({"VpcEndpointId": ENDPOINT, "ServiceId": SERVICE, "EventType": "Accept"}), 1),
        (connect(refused), 2),
        (connect("vpce-0a1b2c3d4e5f60713"), 1),
    ]
    outcomes = announcer.ingest_batch(batch)
    assert [o if isinstance(o, str) else type(o) for o in outcomes] == [
        "requested",
        NotificationUnparseable,
        "ignored",
        PublishFailed,
        "requested",
    ]
    assert "InternalFailure: try again" in str(outcomes[3])
    # One call for the three Connects, in the order of their messages.
    [call] = bus.calls
    assert [d["connection"]["VpcEndpointId"] for d in call] == [
        "vpce-0a1b2c3d4e5f60711",
        refused,
        "vpce-0a1b2c3d4e5f60713",
    ]


def test_when_the_bus_call_fails_every_message_with_an_event_comes_back_and_the_others_do_not():
    from gatekeeper.logic.announcer import Announcer

    bus = _Bus(down=True)
    announcer = Announcer(_Ec2("deleted"), bus, frozenset({SERVICE}))
    batch = [
        (connect("vpce-0a1b2c3d4e5f60711"), 1),
        (envelope({"VpcEndpointId": ENDPOINT, "ServiceId": SERVICE, "EventType": "Reject"}), 1),
        (envelope({"VpcEndpointId": ENDPOINT, "ServiceId": SERVICE, "EventType": "Delete"}), 1),
    ]
    outcomes = announcer.ingest_batch(batch)
    assert outcomes[1] == "ignored"
    assert [str(outcomes[0]), str(outcomes[2])] == ["EventBridge unavailable"] * 2
    with pytest.raises(RuntimeError, match="EventBridge unavailable"):  # one message: raised as it was
        announcer.ingest(batch[0][0])
    assert announcer.ingest_batch([]) == []
    assert len(bus.calls) == 2  # nothing to put, no call
