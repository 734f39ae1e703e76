"""Switching the emulator on and off, and its state following moto's resets."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from moto import mock_aws
from moto.core.responses import BaseResponse
from moto.ec2.responses import EC2Response
from moto.sns.responses import SNSResponse
from moto.sqs.responses import SQSResponse

from gatekeeper.logic.decision_service import all_at_once
from gatekeeper_ops.emulator import (
    EmulatorSettings,
    install,
    is_installed,
    privatelink_emulator,
    seed_connections,
    uninstall,
)
from gatekeeper_ops.emulator.settings import current_settings
from tests.integration.emulator.conftest import make_producer, producer_session

PATCHED = ("describe_vpc_endpoint_connections", "create_vpc_endpoint", "delete_vpc_endpoints")


@pytest.fixture
def pristine() -> Iterator[None]:
    """Start and end each test here with the emulator off."""
    uninstall()
    yield
    uninstall()


def moto_methods() -> dict[str, object]:
    methods: dict[str, object] = {name: getattr(EC2Response, name, None) for name in PATCHED}
    return {**methods, "sns.publish": SNSResponse.publish}


def test_install_and_uninstall_are_idempotent_and_restore_moto(pristine: None) -> None:
    original = moto_methods()

    install()
    patched = moto_methods()
    install()

    assert is_installed()
    assert moto_methods() == patched
    assert patched["describe_vpc_endpoint_connections"] is not None
    assert patched["create_vpc_endpoint"] is not original["create_vpc_endpoint"]
    assert patched["sns.publish"] is not original["sns.publish"]

    uninstall()
    uninstall()

    assert not is_installed()
    assert moto_methods() == original
    assert "create_vpc_endpoint" not in EC2Response.__dict__


def test_without_the_emulator_moto_does_not_implement_the_connection_api(pristine: None) -> None:
    with mock_aws():
        ec2 = producer_session().client("ec2")
        with pytest.raises(NotImplementedError):
            ec2.describe_vpc_endpoint_connections()


def test_the_context_manager_uninstalls_only_what_it_installed(pristine: None) -> None:
    with privatelink_emulator(EmulatorSettings(pending_reads=2)) as settings:
        assert is_installed()
        assert current_settings() is settings
    assert not is_installed()

    install()
    with privatelink_emulator(EmulatorSettings(pending_reads=5)):
        assert current_settings().pending_reads == 5
    assert is_installed()
    assert current_settings().pending_reads == 1


def test_install_replaces_the_settings_when_already_installed(pristine: None) -> None:
    install()
    install(EmulatorSettings(pending_reads=0))

    assert current_settings().pending_reads == 0


def test_emulator_state_is_reset_with_moto(pristine: None) -> None:
    with mock_aws(), privatelink_emulator():
        producer = make_producer()
        seed_connections(producer.service.service_id, 3)
        assert len(producer.connections()) == 3

    with mock_aws(), privatelink_emulator():
        ec2 = producer_session().client("ec2")
        assert ec2.describe_vpc_endpoint_connections()["VpcEndpointConnections"] == []


@pytest.mark.parametrize(
    "bad", [{"pending_reads": -1}, {"default_page_size": 4}, {"default_page_size": 1001}]
)
def test_settings_are_validated(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        EmulatorSettings(**bad)


def test_the_emulator_clock_reads_time_time_at_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """So a virtual clock that patches time.time (time-machine) moves the emulator's lifecycle."""
    from gatekeeper_ops.emulator import clock

    monkeypatch.setattr(clock.time, "time", lambda: 1_000_000.0)

    assert clock.now() == 1_000_000.0


def test_while_installed_moto_answers_one_request_at_a_time(
    pristine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads calling together (the decider writes a batch at once) meet moto one at a time, so a
    TransactWriteItems is atomic as in AWS; uninstalled, moto's own front door is back."""
    answering: list[int] = []
    most: list[int] = [0]
    list_queues = SQSResponse.list_queues

    def slow_list_queues(self: SQSResponse) -> object:
        answering.append(1)
        most[0] = max(most[0], len(answering))
        time.sleep(0.01)
        answering.pop()
        return list_queues(self)

    monkeypatch.setattr(SQSResponse, "list_queues", slow_list_queues)
    before = BaseResponse._dispatch
    with mock_aws(), privatelink_emulator():
        sqs = producer_session().client("sqs")
        all_at_once([sqs.list_queues for _ in range(6)])

    assert most[0] == 1
    assert BaseResponse._dispatch is before
