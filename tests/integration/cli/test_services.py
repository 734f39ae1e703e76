"""`gatekeeper services list|attach`: managed services, and preparing another one."""

from __future__ import annotations

import pytest

from gatekeeper_ops import stack
from gatekeeper_ops.cli.services import NOTIFICATION_EVENTS
from gatekeeper_ops.emulator.provisioning import create_endpoint_service

from .conftest import ACME


@pytest.fixture
def second_service(producer):
    """An endpoint service of the same account the stack does not manage, accepting everyone."""
    return create_endpoint_service(
        producer.client("ec2"),
        producer.client("elbv2"),
        name="second",
        acceptance_required=False,
        allowed_principals=["*"],
        cidr="10.1.0.0/16",
    )


def configuration(producer, service_id):
    [config] = producer.client("ec2").describe_vpc_endpoint_service_configurations(ServiceIds=[service_id])[
        "ServiceConfigurations"
    ]
    return config


def notifications(producer, service_id):
    return producer.client("ec2").describe_vpc_endpoint_connection_notifications(
        Filters=[{"Name": "service-id", "Values": [service_id]}]
    )["ConnectionNotificationSet"]


def test_list_shows_the_managed_service_ready_for_the_gatekeeper(seeded, cli):
    seeded.consumer(ACME).request_endpoint(seeded.service)
    seeded.settle()
    [row] = cli.json("services", "list")
    assert row["service_id"] == seeded.service.service_id
    assert (row["managed"], row["acceptance_required"], row["notifies_stack"]) == (True, True, True)
    assert "*" in row["allowed_principals"]
    assert row["supported_regions"] == ["us-west-2", "eu-west-1"]
    assert sum(row["connections"].values()) == 1
    out = cli.ok("services", "list")
    assert "required" in out.stdout
    assert "not fully attached" not in out.stderr


def test_list_all_includes_unmanaged_services_and_flags_them(producer, second_service, cli):
    rows = {r["service_id"]: r for r in cli.json("services", "list", "--all")}
    assert set(rows) == {producer.service.service_id, second_service.service_id}
    unmanaged = rows[second_service.service_id]
    assert (unmanaged["managed"], unmanaged["acceptance_required"], unmanaged["notifies_stack"]) == (
        False, False, False
    )  # fmt: skip


def test_attach_asks_before_requiring_acceptance_and_a_no_changes_nothing(producer, second_service, cli):
    result = cli.run("services", "attach", second_service.service_id, input="n\n")
    assert result.exit_code == 1
    assert "accepts every connection without review. Set AcceptanceRequired=true?" in result.output
    assert configuration(producer, second_service.service_id)["AcceptanceRequired"] is False
    assert notifications(producer, second_service.service_id) == []


def test_attach_requires_acceptance_creates_the_notification_and_reminds_about_the_parameter(
    producer, second_service, cli
):
    service_id = second_service.service_id
    result = cli.run("services", "attach", service_id, input="y\n")
    assert result.exit_code == 0, result.output
    assert "acceptance required set" in result.stdout
    assert f"EndpointServiceIds={producer.service.service_id},{service_id}" in result.stderr
    assert configuration(producer, service_id)["AcceptanceRequired"] is True
    [notification] = notifications(producer, service_id)
    assert (
        notification["ConnectionNotificationArn"] == producer.stack.outputs["ConnectionNotificationTopicArn"]
    )
    assert sorted(notification["ConnectionEvents"]) == ["Connect", "Delete", "Reject"]
    # Attached but not yet in EndpointServiceIds: requests now wait for acceptance, undecided.
    endpoint = producer.consumer(ACME).request_endpoint(second_service)
    producer.settle()
    assert producer.connection_state(endpoint) == "pendingAcceptance"
    assert producer.decisions.state(endpoint) is None
    # Attaching again changes nothing.
    again = cli.json("services", "attach", service_id)
    assert again["steps"] == ["notifications already go to the stack's topic"]
    assert len(notifications(producer, service_id)) == 1


def test_attach_a_managed_service_is_already_done(producer, cli):
    result = cli.json("services", "attach", producer.service.service_id, "--yes")
    assert result == {
        "service_id": producer.service.service_id,
        "steps": ["notifications already go to the stack's topic"],
        "managed": True,
        "reminder": None,
        "samconfig": None,
    }


def test_attach_names_the_samconfig_environment_to_edit(producer, second_service, cli, tmp_path):
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        '[default.global.parameters]\nstack_name = "other"\n\n'
        '[staging.global.parameters]\nstack_name = "vpce-gatekeeper"\n\n'
        "[staging.deploy.parameters]\n"
        'parameter_overrides = "EndpointServiceIds=vpce-svc-0123456789abcdef0 DefaultAction=hold"\n'
    )
    service_id = second_service.service_id
    result = cli.json("services", "attach", service_id, "--yes", "--samconfig", samconfig)
    managed = producer.service.service_id
    assert result["samconfig"] == {
        "file": str(samconfig),
        "env": "staging",  # the environment whose stack_name is this stack's
        "section": "[staging.deploy.parameters]",
        "parameter_overrides": f"EndpointServiceIds={managed},{service_id} DefaultAction=hold",
    }
    assert "sam build && sam deploy --config-env staging" in result["reminder"]
    human = cli.run("services", "attach", service_id, "--samconfig", samconfig, "--config-env", "prod")
    assert (
        f'[prod.deploy.parameters] set parameter_overrides = "EndpointServiceIds={managed},{service_id}"'
        in (human.stderr)
    )
    assert "--config-env prod" in human.stderr


def test_attach_refusals_are_one_line(producer, cli):
    assert "no endpoint service vpce-svc-0123456789abcdef0 owned by this account" in cli.fails(
        "services", "attach", "vpce-svc-0123456789abcdef0", "--yes"
    )
    assert "'svc-1' is not an endpoint service id" in cli.fails("services", "attach", "svc-1")


def test_attach_subscribes_the_same_events_as_the_stacks_own_notifications():
    template = stack.expand_for_each(
        stack.load_template(), {"EndpointServiceIds": "vpce-svc-0123456789abcdef0"}
    )
    events = {
        tuple(resource["Properties"]["ConnectionEvents"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::EC2::VPCEndpointConnectionNotification"
    }
    assert events == {tuple(NOTIFICATION_EVENTS)}
