"""`gatekeeper verify` against an emulated producer account running the real stack, with the bus
policy enforced as on AWS: it passes, it fails with a clear line when the topic policy, the bus
policy or the notification body is broken, and it leaves nothing behind however it ends."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gatekeeper_ops.cli import verify
from gatekeeper_ops.emulator import lifecycle
from gatekeeper_ops.sandbox.account import ProducerAccount

from .conftest import verify_served


@pytest.fixture
def stack(producer_factory, monkeypatch, tmp_path) -> Iterator[ProducerAccount]:
    """A producer whose service allows no one yet (verify adds its own principal)."""
    producer = producer_factory()(allowed_principals=())
    monkeypatch.chdir(tmp_path)  # where the first run saves the notification body
    with verify_served(producer, monkeypatch):
        yield producer


def leftovers(producer: ProducerAccount) -> dict[str, Any]:
    """What a verify run could have left: its queues, rules, subscriptions, endpoints, principals."""
    sqs, events, sns, ec2 = (producer.client(s) for s in ("sqs", "events", "sns", "ec2"))
    bus = producer.stack.outputs["EventBusName"]
    service = producer.service.service_id
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "tag-key", "Values": ["gatekeeper:verify"]}])
    return {
        "queues": [u for u in sqs.list_queues().get("QueueUrls", []) if "gatekeeper-verify" in u],
        "rules": [r["Name"] for r in events.list_rules(EventBusName=bus)["Rules"] if "verify" in r["Name"]],
        "subscriptions": [
            s["Endpoint"]
            for s in sns.list_subscriptions()["Subscriptions"]
            if "gatekeeper-verify" in s["Endpoint"]
        ],
        "endpoints": [
            e["VpcEndpointId"]
            for e in endpoints["VpcEndpoints"]
            if e["State"].lower() not in ("deleted", "deleting")
        ],
        "principals": [
            p["Principal"]
            for p in ec2.describe_vpc_endpoint_service_permissions(ServiceId=service)["AllowedPrincipals"]
        ],
    }


NOTHING = {"queues": [], "rules": [], "subscriptions": [], "endpoints": [], "principals": []}


def lines(output: str, verdict: str) -> dict[str, str]:
    return {line.split()[1]: line for line in output.splitlines() if line.startswith(f"{verdict}  ")}


def test_verify_passes_and_removes_its_canary(cli, stack, tmp_path):
    result = cli.run("verify", "--wait", "30")
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.stdout
    passed = [line for line in result.stdout.splitlines() if line.startswith("PASS  ")]
    # 5 per canary, 2 forged sources, a line per bus policy statement, 3 of the stack
    assert len(passed) == 5 + 2 + len(verify.BUS_POLICY_SIDS) + 3, result.stdout
    assert "rejected (UnknownPrincipal)" in result.stdout  # the producer account is no tenant
    # The first run printed the body and saved it; the second only refers to it.
    saved = (tmp_path / "connection-notification-us-east-1.json").read_text()
    assert json.loads(saved)["EventType"] == "Connect"
    assert saved.strip() in result.stdout
    assert leftovers(stack) == NOTHING
    again = cli.run("verify", "--wait", "30", "--output", "json")
    assert again.exit_code == 0, again.output
    # In this process the handlers' own log lines share stdout: the document is the indented one.
    document, _ = json.JSONDecoder().raw_decode(again.stdout[again.stdout.index('{\n  "stack"') :])
    assert document["passed"] is True
    assert document["left_behind"] == []
    assert {c["check"] for c in document["checks"]} >= {"notification", "parsed by primary", "bus policy"}
    assert saved.strip() not in again.stdout


def test_a_topic_policy_that_refuses_vpce_fails_the_notification_check(cli, stack):
    topic = stack.stack.outputs["ConnectionNotificationTopicArn"]
    sns = stack.client("sns")
    policy = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    # The service's ARN as the template names it, but AWS publishing with another aws:SourceArn.
    policy["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"] = ["arn:aws:ec2:*:*:vpc-endpoint/*"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(policy))
    result = cli.run("verify", "--wait", "3")
    assert result.exit_code == 1
    failed = lines(result.stdout, "FAIL")
    assert "no Connect notification" in failed["notification"]
    assert "topic policy" in failed["notification"]
    assert "aws:SourceArn" in failed["notification"]
    # What fails only because nothing was notified points at the first failure, not at its own role.
    assert "follows from the failed 'notification' check" in failed["decision"]
    assert "sns:Publish" not in failed["announced"]
    assert "follows from the failed 'decision recorded' check" in failed["announced"]
    assert leftovers(stack) == NOTHING


def test_a_bus_policy_without_its_statements_fails_the_forged_event_checks(cli, stack):
    events = stack.client("events")
    bus = stack.stack.outputs["EventBusName"]
    for sid in verify.BUS_POLICY_SIDS:
        events.remove_permission(EventBusName=bus, StatementId=sid)
    result = cli.run("verify", "--wait", "30")
    assert result.exit_code == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL  ")]
    assert any("forged vpce.gatekeeper " in line and "ACCEPTED" in line for line in failed), result.stdout
    assert any("forged vpce.gatekeeper.operator" in line and "ACCEPTED" in line for line in failed)
    assert sum("bus policy" in line and "missing" in line for line in failed) == len(verify.BUS_POLICY_SIDS)
    assert all("redeploy" in line for line in failed)


def test_a_body_the_parser_does_not_know_fails_the_parser_check(cli, stack, monkeypatch):
    # As if AWS's real body were prose: the fallback still finds the endpoint, and verify says so.
    def prose(event, connection, notification, **_: object) -> str:
        return f"{event.value}: {connection.vpc_endpoint_id} to {connection.service_id}"

    monkeypatch.setattr(lifecycle, "message_body", prose)
    result = cli.run("verify", "--wait", "30")
    assert result.exit_code == 1
    failed = lines(result.stdout, "FAIL")
    assert list(failed) == ["parsed"], result.stdout
    assert "fallback" in failed["parsed"]
    assert "connection-notification-us-east-1.json" in failed["parsed"]
    assert "decision recorded" in result.stdout  # the path itself still works


@pytest.mark.parametrize(("failure", "status"), [("ctrl-c", 130), ("sigterm", 130), ("bug", 1)])
def test_a_run_that_fails_midway_leaves_nothing_behind(cli, stack, monkeypatch, failure, status):
    if failure == "sigterm" and threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers belong to the main thread")

    def follow(gk, service_id, endpoint, subscribers, options):
        assert leftovers(stack)["endpoints"] == [endpoint]  # the canary exists, then the run dies
        if failure == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this
        raise KeyboardInterrupt if failure == "ctrl-c" else RuntimeError("stopped in the middle")

    monkeypatch.setattr(verify, "_follow", follow)
    result = cli.run("verify", "--wait", "30")
    assert result.exit_code == status
    assert leftovers(stack) == NOTHING
