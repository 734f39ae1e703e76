"""The account copies behind `producer_factory` (tests/integration/snapshots.py): a later test's
account is the provisioned one, and nothing one test writes reaches the next."""

from __future__ import annotations

import copy
import threading

import boto3
import pytest
from moto import mock_aws

from gatekeeper_ops.emulator import EmulatorSettings, privatelink_emulator
from gatekeeper_ops.sandbox.account import ProducerAccount
from tests.builders import tenant
from tests.integration.snapshots import AccountSnapshots

ACME = "111122223333"


@pytest.fixture
def provisioned(monkeypatch: pytest.MonkeyPatch) -> list[ProducerAccount]:
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    return []


def test_a_copied_account_is_the_provisioned_one_and_shares_nothing_with_it(provisioned):
    snapshots = AccountSnapshots()

    def provision(session: boto3.Session) -> ProducerAccount:
        account = ProducerAccount.create(session)
        account.push_builtin_templates()
        provisioned.append(account)
        return account

    with mock_aws(), privatelink_emulator(EmulatorSettings()):
        first = snapshots.account("one service", provision)
        first.add_tenant(tenant("acme", ACME, first.service.service_id))
        first.stack.outputs["Written"] = "by the first test"
        templates = sorted(t.name for t in first.templates.latest())

    with mock_aws(), privatelink_emulator(EmulatorSettings()):
        second = snapshots.account("one service", provision)
        assert len(provisioned) == 1  # copied, not provisioned again
        assert list(second.tenants.list()) == []
        assert "Written" not in second.stack.outputs
        assert sorted(t.name for t in second.templates.latest()) == templates
        assert second.service == first.service
        # The copy is a working account: its endpoint service is there, and takes a tenant.
        ec2 = second.client("ec2")
        configurations = ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]
        assert [c["ServiceId"] for c in configurations] == [first.service.service_id]
        second.add_tenant(tenant("acme", ACME, second.service.service_id))

    with mock_aws(), privatelink_emulator(EmulatorSettings()):
        third = snapshots.account("one service", provision)
        assert list(third.tenants.list()) == []  # the second test's tenant did not reach it either
        assert len(provisioned) == 1

    with pytest.raises(TypeError):  # only a snapshot's copy makes locks copyable
        copy.deepcopy(threading.Lock())


def test_a_world_already_in_use_is_provisioned_as_before(provisioned):
    snapshots = AccountSnapshots()

    def provision(session: boto3.Session) -> ProducerAccount:
        account = ProducerAccount.create(session, stack_name=f"stack-{len(provisioned)}")
        provisioned.append(account)
        return account

    with mock_aws(), privatelink_emulator(EmulatorSettings()):
        snapshots.account("one service", provision)
    with mock_aws(), privatelink_emulator(EmulatorSettings()):
        boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="made-first")
        snapshots.account("one service", provision)
        assert len(provisioned) == 2  # a copy would have wiped the queue
        assert boto3.client("sqs", region_name="us-east-1").list_queues()["QueueUrls"]
