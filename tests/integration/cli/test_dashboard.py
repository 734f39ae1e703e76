"""The stack's CloudWatch dashboard and resets alarms, as the emulated stack provisions them from
template.yaml: the body is valid JSON once `!Sub` has run, and every widget names its metrics."""

from __future__ import annotations

import json
import re
from typing import Any

from gatekeeper_ops.stack import load_template

DECISIONS = {"ConnectionsAccepted", "ConnectionsRejected", "ConnectionsHeld", "ConnectionsRevoked"}
PRIVATELINK = {"NewConnections", "ActiveConnections", "BytesProcessed", "RstPacketsSent"}


def _dashboard(producer) -> dict[str, Any]:
    cloudwatch = producer.client("cloudwatch")
    [entry] = cloudwatch.list_dashboards()["DashboardEntries"]
    assert entry["DashboardName"] == "vpce-gatekeeper-us-east-1-operations"
    body = cloudwatch.get_dashboard(DashboardName=entry["DashboardName"])["DashboardBody"]
    assert "${" not in body  # every substitution resolved
    return json.loads(body)


def _metrics(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of a widget, from metric arrays and SEARCH expressions."""
    found = []
    for line in widget["properties"].get("metrics", []):
        if isinstance(line[0], dict):  # an expression
            expression = line[0]["expression"]
            namespace = re.search(r"\{([^,]+),", expression).group(1)
            metric = re.search(r'MetricName="([^"]+)"', expression).group(1)
            services = re.findall(r'"Service Id"="([^"]+)"', expression)
            found.append((namespace, metric, {"Service Id": ",".join(services)}))
        else:
            names = [part for part in line if isinstance(part, str)]
            dimensions = dict(zip(names[2::2], names[3::2], strict=True))
            found.append((names[0], names[1], dimensions))
    return found


def test_dashboard_body_is_json_and_every_widget_names_its_metrics(producer):
    dashboard = _dashboard(producer)
    widgets = [w for w in dashboard["widgets"] if w["type"] == "metric"]
    titles = [w["properties"]["title"] for w in widgets]
    assert titles == [
        "Decisions by outcome",
        "Held for review: how many, and the oldest (s)",
        "Pending acceptance: how many, and the oldest (s)",
        "Dead-letter queues (messages waiting)",
        "Reconcile: lag (oldest pending, s) and failed sweeps",
        "PrivateLink: new connections per managed service",
        "PrivateLink: active connections per managed service",
        "PrivateLink: bytes processed per managed service",
        "PrivateLink: resets sent per managed service (alarm: 100/min for 5 min)",
    ]
    by_title = {w["properties"]["title"]: _metrics(w) for w in widgets}
    for title, metrics in by_title.items():
        assert metrics, title
    for widget in widgets:
        assert widget["properties"]["region"] == "us-east-1"
    decisions = by_title["Decisions by outcome"]
    assert {m for _, m, _ in decisions} == DECISIONS
    assert {(ns, str(d)) for ns, _, d in decisions} == {("VpceGatekeeper", "{'service': 'vpce-gatekeeper'}")}
    held = {m for _, m, _ in by_title["Held for review: how many, and the oldest (s)"]}
    assert held == {"HeldConnections", "OldestHeldAgeSeconds"}
    pending = {m for _, m, _ in by_title["Pending acceptance: how many, and the oldest (s)"]}
    assert pending == {"PendingConnections", "OldestPendingAgeSeconds"}
    queues = [d["QueueName"] for _, _, d in by_title["Dead-letter queues (messages waiting)"]]
    outputs = producer.stack.outputs
    expected_queues = [
        outputs[name].rsplit("/", 1)[-1]
        for name in (
            "NotificationDeadLetterQueueUrl",
            "DecisionDeadLetterQueueUrl",
            "DecisionQueueDeadLetterQueueUrl",
            "TenantSyncDeadLetterQueueUrl",
        )
    ]
    assert queues == expected_queues
    reconcile = by_title["Reconcile: lag (oldest pending, s) and failed sweeps"]
    assert ("AWS/Lambda", "Errors") in {(ns, m) for ns, m, _ in reconcile}
    assert "OldestPendingAgeSeconds" in {m for _, m, _ in reconcile}
    privatelink = [m for t, ms in by_title.items() if t.startswith("PrivateLink") for m in ms]
    assert {m for _, m, _ in privatelink} == PRIVATELINK
    for namespace, _, dimensions in privatelink:
        assert namespace == "AWS/PrivateLinkServices"
        assert dimensions == {"Service Id": producer.service.service_id}


def test_search_expressions_filter_every_managed_service():
    # Several managed services: one `"Service Id"="…"` term each, OR-ed, inside valid JSON.
    template = load_template()
    body, variables = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    separator = variables["ServiceFilter"]["Fn::Join"][0]
    services = ["vpce-svc-0123456789abcdef0", "vpce-svc-0fedcba9876543210"]
    values = {"ServiceFilter": separator.join(services), "ServiceList": ", ".join(services)}
    text = re.sub(r"\$\{([^}]+)\}", lambda m: values.get(m.group(1), "x"), body)
    widgets = json.loads(text)["widgets"]
    expressions = [
        line[0]["expression"]
        for w in widgets
        for line in w.get("properties", {}).get("metrics", [])
        if isinstance(line[0], dict)
    ]
    assert len(expressions) == 4
    for expression in expressions:
        assert re.findall(r'"Service Id"="([^"]+)"', expression) == services
        assert '("Service Id"="vpce-svc-0123456789abcdef0" OR "Service Id"="vpce-svc-0fedcba9876543210")' in (
            expression
        )


def test_resets_alarm_per_managed_service_with_thresholds_from_parameters(producer_factory):
    producer = producer_factory()(parameters={"ResetsAlarmThreshold": 40, "ResetsAlarmMinutes": 3})
    alarms = producer.client("cloudwatch").describe_alarms(AlarmNamePrefix="vpce-gatekeeper-ResetsSent")
    [alarm] = alarms["MetricAlarms"]  # one managed service: one alarm (one per service: Fn::ForEach)
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/PrivateLinkServices", "RstPacketsSent", "Sum"
    )  # fmt: skip
    assert alarm["Dimensions"] == [{"Name": "Service Id", "Value": producer.service.service_id}]
    assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (40, 3, 3)
    assert alarm["Period"] == 60
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [producer.stack.outputs["AlarmTopicArn"]]
    body = json.loads(
        producer.client("cloudwatch").get_dashboard(DashboardName="vpce-gatekeeper-us-east-1-operations")[
            "DashboardBody"
        ]
    )
    assert any("alarm: 40/min for 3 min" in w["properties"].get("title", "") for w in body["widgets"])
