"""Each handler on its own: a small Lambda context, the samples from events/, exact return values.
No AWS: the one call a test needs answered is faked at the composition root."""

from __future__ import annotations

import importlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gatekeeper.dal.tenant_stream import change_from_stream
from gatekeeper.models.errors import EventRefused, NotificationUnparseable
from gatekeeper.wiring import services as runtime
from gatekeeper.wiring import settings

EVENTS = Path(__file__).resolve().parents[2] / "events"
ENVIRONMENT = {
    "TENANTS_TABLE": "tenants",
    "TEMPLATES_TABLE": "templates",
    "DECISIONS_TABLE": "decisions",
    "EVENT_BUS_NAME": "bus",
    "DECISION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:decisions",
    "ENDPOINT_SERVICE_IDS": "vpce-svc-0123456789abcdef0",
    "OPERATOR_ROLE_ARN": "arn:aws:iam::123456789012:role/gatekeeper-operator",
}


@dataclass
class Context:
    function_name: str = "test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def handler(monkeypatch):
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)

    def load(function: str) -> Any:
        settings.settings.cache_clear()
        for cached in (
            runtime.decision_service,
            runtime.decision_queue,
            runtime.announcer,
            runtime.reconciler,
            runtime.tenant_sync,
        ):
            cached.cache_clear()
        return importlib.reload(importlib.import_module(f"functions.{function}.app"))

    yield load
    settings.settings.cache_clear()


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def test_a_batch_of_junk_notifications_is_item_failures_not_a_function_error(handler):
    app = handler("ingest_notifications")
    event = sample("ingest_notifications")
    for record in event["Records"]:
        record["body"] = "not a notification"
    result = app.lambda_handler(event, Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}


def test_a_stream_batch_whose_every_record_fails_is_item_failures(handler, monkeypatch):
    app = handler("sync_tenants")
    event = sample("sync_tenants")

    def broken(change):
        raise RuntimeError("EC2 unavailable")

    monkeypatch.setattr(runtime.tenant_sync(), "apply", broken)
    result = app.lambda_handler(event, Context())
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    tenant_records = [r["dynamodb"]["SequenceNumber"] for r in event["Records"] if change_from_stream(r)]
    assert tenant_records
    assert failed == tenant_records


def test_reconcile_takes_the_sam_cli_schedule_sample_without_version(handler, monkeypatch):
    app = handler("reconcile_connections")
    swept = []
    monkeypatch.setattr(type(runtime.reconciler()), "sweep", lambda self: swept.append(self) or _report())
    event = sample("reconcile_connections")
    event.pop("version", None)  # `sam local generate-event cloudwatch scheduled-event` has none
    result = app.lambda_handler(event, Context())
    assert swept
    assert result["stale_claims"] == 0


def with_body(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """An SQS sample whose (one) record's bus event has `changes`."""
    [record] = event["Records"]
    body = {**json.loads(record["body"]), **changes}
    return {"Records": [{**record, "body": json.dumps(body)}]}


def test_operator_decisions_from_another_source_fail_alone_and_are_never_decided(handler, monkeypatch):
    app = handler("evaluate_connection")
    decided = []
    monkeypatch.setattr(type(runtime.decision_service()), "decide", lambda self, rs: decided.extend(rs) or [])
    forged = with_body(sample("evaluate_connection_operator"), source="vpce.gatekeeper")
    [record] = forged["Records"]
    assert app.lambda_handler(forged, Context()) == {
        "batchItemFailures": [{"itemIdentifier": record["messageId"]}]
    }
    assert decided == []


def test_the_decider_takes_each_request_sample_to_the_decision_path_in_one_batch(handler, monkeypatch):
    app = handler("evaluate_connection")
    batches = []
    monkeypatch.setattr(
        type(runtime.decision_service()), "decide", lambda self, rs: batches.append(rs) or [None] * len(rs)
    )
    names = ("evaluate_connection", "evaluate_connection_revocation", "evaluate_connection_operator")
    event = {"Records": [r for name in names for r in sample(name)["Records"]]}
    assert app.lambda_handler(event, Context()) == {"batchItemFailures": []}
    [batch] = batches
    assert [type(r).__name__ for r in batch] == ["EvaluationRequest", "RevocationRequest", "OperatorRequest"]
    assert runtime.decision_service().operator_actor == f"operator:{ENVIRONMENT['OPERATOR_ROLE_ARN']}"


def test_a_request_that_fails_comes_back_alone(handler, monkeypatch):
    app = handler("evaluate_connection")
    failure = RuntimeError("EC2 down")
    monkeypatch.setattr(
        type(runtime.decision_service()), "decide", lambda self, rs: [failure, None][: len(rs)]
    )
    records = [
        sample("evaluate_connection")["Records"][0],
        {**sample("evaluate_connection_revocation")["Records"][0], "messageId": "second"},
    ]
    failed = app.lambda_handler({"Records": records}, Context())
    assert failed == {"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}


def test_a_full_delivery_is_topped_up_and_decided_in_one_call_and_the_done_extras_deleted(
    handler, monkeypatch
):
    app = handler("evaluate_connection")
    record = sample("evaluate_connection")["Records"][0]
    delivered = [{**record, "messageId": f"delivered-{i}"} for i in range(10)]
    extra = [
        {"messageId": name, "receiptHandle": f"r-{name}", "body": record["body"]} for name in ("ok", "fails")
    ]
    malformed = {"messageId": "malformed", "receiptHandle": "r-malformed", "body": "not a bus event"}
    queue, batches, deleted = type(runtime.decision_queue()), [], []
    monkeypatch.setattr(queue, "top_up", lambda self, n: [*extra, malformed] if n == 10 else [])
    monkeypatch.setattr(queue, "delete", lambda self, records: deleted.extend(records))

    def decide(self, requests):
        batches.append(requests)
        return [RuntimeError("EC2 down") if i in (0, 11) else None for i in range(len(requests))]

    monkeypatch.setattr(type(runtime.decision_service()), "decide", decide)
    result = app.lambda_handler({"Records": delivered}, Context())
    assert [len(batch) for batch in batches] == [12]  # the malformed one never reaches the decider
    assert result == {"batchItemFailures": [{"itemIdentifier": "delivered-0"}]}  # the mapping's alone
    assert [r["messageId"] for r in deleted] == ["ok"]  # the failed and the malformed come back


def test_a_delivery_short_of_full_is_decided_with_no_sqs_client_built(handler, monkeypatch):
    monkeypatch.setenv("DECISION_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/decisions")
    built = []
    client = runtime.client
    monkeypatch.setattr(runtime, "client", lambda service, *a: built.append(service) or client(service, *a))
    app = handler("evaluate_connection")
    monkeypatch.setattr(type(runtime.decision_service()), "decide", lambda self, rs: [None] * len(rs))
    record = sample("evaluate_connection")["Records"][0]
    event = {"Records": [{**record, "messageId": str(i)} for i in range(9)]}
    assert app.lambda_handler(event, Context()) == {"batchItemFailures": []}
    assert "sqs" not in built


def _report():
    from gatekeeper.logic.reconciler import SweepReport

    return SweepReport()


def test_log_keys_of_one_function_never_leak_into_anothers_lines(handler, monkeypatch):
    # In the sandbox every function shares one process and one Powertools logger.
    from gatekeeper.observability import logger

    evaluate, ingest = handler("evaluate_connection"), handler("ingest_notifications")
    monkeypatch.setattr(type(runtime.decision_service()), "decide", lambda self, rs: [None] * len(rs))
    evaluate.lambda_handler(sample("evaluate_connection"), Context(function_name="evaluate"))
    event = sample("ingest_notifications")
    event["Records"] = event["Records"][:1]
    event["Records"][0]["body"] = "not a notification"
    written = io.StringIO()
    stream = logger.registered_handler.setStream(written)
    try:
        ingest.lambda_handler(event, Context(function_name="ingest"))
    finally:
        logger.registered_handler.setStream(stream)
    lines = [json.loads(line) for line in written.getvalue().splitlines() if line.startswith('{"level"')]
    assert lines, "ingest logged nothing"
    for line in lines:
        assert line["function_name"] == "ingest"
        assert "request" not in line
        assert "vpc_endpoint_id" not in line


def test_close_connection_releases_through_the_decision_service(handler, monkeypatch):
    app = handler("close_connection")
    released = []
    monkeypatch.setattr(
        type(runtime.decision_service()), "release", lambda self, closed: released.append(closed) or True
    )
    event = sample("close_connection")
    assert app.lambda_handler(event, Context()) == {
        "vpc_endpoint_id": event["detail"]["connection"]["VpcEndpointId"],
        "released": True,
    }
    assert [c.connection.vpc_endpoint_id for c in released] == [
        event["detail"]["connection"]["VpcEndpointId"]
    ]
    with pytest.raises(EventRefused):
        app.lambda_handler({**event, "detail-type": "Endpoint Connection Requested"}, Context())


def test_load_balancer_clients_are_built_at_first_use_not_at_cold_start(handler):
    handler("close_connection")  # shares the decision service, never reads a load balancer
    readers = runtime.decision_service().load_balancers
    assert readers is not None
    assert (readers._elbv2._client, readers._ec2._client) == (None, None)
    readers._elbv2.meta
    assert readers._elbv2._client is not None


def test_the_decider_waits_with_time_sleep_unless_the_wiring_is_given_a_sleeper(handler, monkeypatch):
    handler("evaluate_connection")
    slept: list[float] = []
    monkeypatch.setattr(runtime.time, "sleep", slept.append)
    runtime.decision_service().sleep(0.2)
    assert slept == [0.2]
    waits: list[float] = []
    runtime.build_decision_service(settings.settings(), sleeper=waits.append).sleep(0.5)
    # A harness replaces the wiring's `sleep` (the chaos run's virtual clock): used once rebuilt.
    monkeypatch.setattr(runtime, "sleep", waits.append)
    runtime.decision_service.cache_clear()
    runtime.decision_service().sleep(1.0)
    runtime.decision_service.cache_clear()  # no later test may meet this service
    assert (slept, waits) == ([0.2], [0.5, 1.0])


def test_the_deciders_writes_fan_out_through_the_wiring_which_a_harness_may_replace(handler, monkeypatch):
    handler("evaluate_connection")
    done: list[str] = []
    runtime.decision_service().fan_out([lambda: done.append("on the thread pool")])
    forked: list[int] = []
    monkeypatch.setattr(runtime, "fan_out", lambda tasks: forked.append(len(tasks)))
    runtime.decision_service.cache_clear()
    runtime.decision_service().fan_out([lambda: None] * 3)
    runtime.decision_service.cache_clear()  # no later test may meet this service
    assert (done, forked) == (["on the thread pool"], [3])


def test_only_the_failed_messages_of_an_sqs_batch_come_back_and_an_unexpected_failure_is_logged(
    handler, monkeypatch
):
    from gatekeeper.observability import logger

    app = handler("ingest_notifications")
    event = sample("ingest_notifications")
    first = event["Records"][0]
    event["Records"] = [
        {**first, "messageId": "junk", "body": "not a notification"},
        {**first, "messageId": "fine"},
        {**first, "messageId": "bus-down"},
    ]
    batches = []

    def ingest_batch(self, messages):
        batches.append(messages)
        return [
            NotificationUnparseable("not a notification"),
            "requested",
            RuntimeError("EventBridge unavailable"),
        ]

    monkeypatch.setattr(type(runtime.announcer()), "ingest_batch", ingest_batch)
    written = io.StringIO()
    stream = logger.registered_handler.setStream(written)
    try:
        result = app.lambda_handler(event, Context())
    finally:
        logger.registered_handler.setStream(stream)
    assert result == {"batchItemFailures": [{"itemIdentifier": "junk"}, {"itemIdentifier": "bus-down"}]}
    receive_count = int(first["attributes"]["ApproximateReceiveCount"])
    assert batches == [[(r["body"], receive_count) for r in event["Records"]]]  # the batch in one call
    logged = [json.loads(line) for line in written.getvalue().splitlines() if line.startswith('{"level"')]
    assert [
        (line["message_id"], "EventBridge unavailable" in line.get("exception", "")) for line in logged
    ] == [
        ("junk", False),
        ("bus-down", True),
    ]


def test_a_stream_batch_goes_on_past_a_failed_record_and_reports_that_record_alone(handler, monkeypatch):
    # Powertools' BatchProcessor semantics for DynamoDB streams: every record is tried; Lambda
    # resumes the shard from the first failed sequence number, so the later ones run again.
    from gatekeeper.logic.tenant_sync import SyncResult

    app = handler("sync_tenants")
    event = sample("sync_tenants")
    tenant_records = [r for r in event["Records"] if change_from_stream(r)]
    assert len(tenant_records) >= 2
    applied = []

    def apply(change):
        applied.append(change.tenant_id)
        if len(applied) == 1:
            raise RuntimeError("EC2 unavailable")
        return SyncResult(change.tenant_id)

    monkeypatch.setattr(runtime.tenant_sync(), "apply", apply)
    result = app.lambda_handler(event, Context())
    assert result == {
        "batchItemFailures": [{"itemIdentifier": tenant_records[0]["dynamodb"]["SequenceNumber"]}]
    }
    assert len(applied) == len(tenant_records)
