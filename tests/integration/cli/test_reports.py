"""`gatekeeper report usage|orphans`: usage per tenant from the AWS/PrivateLinkServices metrics
the sandbox seeds, and the open endpoints nobody owns, decided or uses — tenant id on every row."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gatekeeper.dal.tenants import TenantDirectory
from gatekeeper.models.connection import VpcEndpointConnection
from gatekeeper_ops.cli import context
from gatekeeper_ops.cli.usage import MetricQuery, Series, fetch, inventory, orphans, usage_queries

from .conftest import ACME, INITECH, STRANGER, UMBRELLA, Traffic, table_snapshot


def _json(cli, *args: str) -> Any:
    return json.loads(cli.ok(*args, "--output", "json").stdout)


def test_usage_per_tenant_sums_its_endpoints_from_cloudwatch(traffic: Traffic, cli):
    per_tenant = _json(cli, "report", "usage", "--since", "3d")
    per_endpoint = _json(cli, "report", "usage", "--since", "3d", "--by", "endpoint")
    tenants = {row["tenant_id"]: row for row in per_tenant}
    endpoints = {row["vpc_endpoint_id"]: row for row in per_endpoint}
    assert set(tenants) == {"acme", "initech", "umbrella", None}  # None: the stranger's endpoint
    assert set(endpoints) == {traffic.busy, traffic.idle, traffic.unclaimed, traffic.undecided}
    busy = endpoints[traffic.busy]
    assert (busy["tenant_id"], busy["owner"], busy["state"]) == ("acme", ACME, "available")
    assert busy["bytes_processed"] > 0
    assert busy["new_connections"] > 0
    assert busy["peak_active_connections"] > 0
    for name in ("bytes_processed", "new_connections", "resets_sent", "peak_active_connections"):
        assert tenants["acme"][name] == busy[name]
    assert tenants["acme"]["endpoints"] == 1
    assert tenants["acme"]["services"] == [traffic.producer.service.service_id]
    # AWS publishes nothing for an endpoint without traffic: zeros, not errors.
    assert tenants["initech"]["bytes_processed"] == 0
    assert endpoints[traffic.undecided]["owner"] == STRANGER
    assert endpoints[traffic.undecided]["tenant_id"] is None


def test_usage_counts_only_the_period_asked_for(traffic: Traffic, cli):
    # The sandbox seeds hourly datapoints for three days: a day holds about a third of them.
    three_days = _json(cli, "report", "usage", "--since", "3d", "--tenant", "acme")[0]
    one_day = _json(cli, "report", "usage", "--since", "1d", "--tenant", "acme")[0]
    assert 0 < one_day["bytes_processed"] < three_days["bytes_processed"]
    before = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    older = _json(cli, "report", "usage", "--since", "20d", "--until", before, "--tenant", "acme")
    assert older[0]["bytes_processed"] == 0


def test_usage_asks_cloudwatch_once_per_batch_not_once_per_endpoint(traffic: Traffic, cli, monkeypatch):
    calls: list[int] = []
    real_client = context.Gatekeeper.client

    def counting_client(self: context.Gatekeeper, service: str) -> Any:
        client = real_client(self, service)
        if service == "cloudwatch":
            original = client.get_metric_data

            def get_metric_data(**kwargs: Any) -> Any:
                calls.append(len(kwargs["MetricDataQueries"]))
                return original(**kwargs)

            client.get_metric_data = get_metric_data
        return client

    monkeypatch.setattr(context.Gatekeeper, "client", counting_client)
    cli.ok("report", "usage", "--since", "3d")
    assert calls == [16]  # 4 endpoints x 4 metrics, one call
    calls.clear()
    cli.ok("report", "orphans")
    assert calls == [4]  # daily BytesProcessed of 4 endpoints, one call


class _RecordingCloudWatch:
    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def get_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        queries = kwargs["MetricDataQueries"]
        self.calls.append(queries)
        return {
            "MetricDataResults": [
                {"Id": q["Id"], "Timestamps": [kwargs["StartTime"]], "Values": [1.0]} for q in queries
            ]
        }


def test_get_metric_data_batches_hold_at_most_500_queries_and_keep_their_order():
    end = datetime(2026, 12, 1, tzinfo=UTC)
    start = end - timedelta(days=7)
    queries = [
        MetricQuery("vpce-svc-0123456789abcdef0", f"vpce-{i:017x}", "BytesProcessed", "Sum", 7 * 86400)
        for i in range(1201)
    ]
    cloudwatch = _RecordingCloudWatch()
    series = fetch(cloudwatch, queries, start, end)
    assert [len(c) for c in cloudwatch.calls] == [500, 500, 201]
    assert [s.total() for s in series] == [1.0] * 1201
    endpoint_ids = [q["MetricStat"]["Metric"]["Dimensions"][1]["Value"] for c in cloudwatch.calls for q in c]
    assert endpoint_ids == [q.vpc_endpoint_id for q in queries]
    # Daily slices over 455 days: 500 queries would exceed 100,800 datapoints, so batches shrink.
    daily = [MetricQuery("vpce-svc-0123456789abcdef0", "vpce-0", "BytesProcessed", "Sum", 86400)] * 500
    cloudwatch = _RecordingCloudWatch()
    fetch(cloudwatch, daily, end - timedelta(days=455), end)
    assert max(len(c) for c in cloudwatch.calls) * 455 <= 100_800


def test_usage_metric_dimensions_are_the_ones_aws_publishes(traffic: Traffic):
    paginator = traffic.producer.client("cloudwatch").get_paginator("list_metrics")
    listed = [m for page in paginator.paginate(Namespace="AWS/PrivateLinkServices") for m in page["Metrics"]]
    dimension_sets = {tuple(sorted(d["Name"] for d in m["Dimensions"])) for m in listed}
    assert dimension_sets == {("Service Id",), ("Service Id", "VPC Endpoint Id")}
    names = {m["MetricName"] for m in listed}
    assert names == {"BytesProcessed", "ActiveConnections", "NewConnections", "RstPacketsSent"}


def test_usage_csv_has_the_tenant_id_on_every_row(traffic: Traffic, cli):
    out = cli.ok("report", "usage", "--since", "3d", "--by", "endpoint", "--output", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 4
    assert list(rows[0])[:2] == ["tenant_id", "vpc_endpoint_id"]
    by_endpoint = {r["vpc_endpoint_id"]: r for r in rows}
    assert by_endpoint[traffic.busy]["tenant_id"] == "acme"
    assert by_endpoint[traffic.idle]["tenant_id"] == "initech"
    assert by_endpoint[traffic.undecided]["tenant_id"] == ""  # nobody: an empty cell, not "None"
    assert int(by_endpoint[traffic.busy]["bytes_processed"]) > 0
    # for people: a table, bytes in binary units, the stranger's endpoint under (none)
    human = cli.ok("report", "usage", "--since", "3d").stdout
    assert "peak active" in human
    assert "(none)" in human
    assert "GiB" in human or "MiB" in human
    # --query narrows the JSON document, as with the AWS CLI
    out = cli.ok("report", "usage", "--query", "[?bytes_processed > `0`].tenant_id").stdout
    assert sorted(json.loads(out)) == ["acme", "umbrella"]


def test_orphans_names_each_endpoint_and_why(traffic: Traffic, cli):
    report = _json(cli, "report", "orphans", "--idle-days", "7")
    rows = {row["vpc_endpoint_id"]: row for row in report}
    assert traffic.busy not in rows  # acme's: claimed, decided, busy
    assert rows[traffic.idle]["reasons"] == ["idle"]
    assert rows[traffic.idle]["tenant_id"] == "initech"
    assert rows[traffic.idle]["owner"] == INITECH
    assert rows[traffic.unclaimed]["reasons"] == ["no-tenant"]
    assert rows[traffic.unclaimed]["tenant_id"] == "umbrella"  # as recorded when it was accepted
    assert rows[traffic.unclaimed]["owner"] == UMBRELLA
    assert rows[traffic.undecided]["reasons"] == ["no-tenant", "no-decision", "idle"]
    assert rows[traffic.undecided]["recorded"] is None
    assert "never decided" in rows[traffic.undecided]["detail"]


def test_orphans_csv_and_table_and_nothing_written(traffic: Traffic, cli):
    tables = ("TenantsTableName", "TemplatesTableName", "DecisionsTableName")
    before = [table_snapshot(traffic.producer, t) for t in tables]
    rows = list(csv.DictReader(io.StringIO(cli.ok("report", "orphans", "--output", "csv").stdout)))
    assert {r["vpc_endpoint_id"] for r in rows} == {traffic.idle, traffic.unclaimed, traffic.undecided}
    assert {r["reasons"] for r in rows} == {"idle", "no-tenant", "no-tenant;no-decision;idle"}
    assert all("tenant_id" in r for r in rows)
    human = cli.ok("report", "orphans").stdout
    assert "no tenant claims account 444455556666" in human
    assert traffic.busy not in human
    cli.ok("report", "usage")
    assert [table_snapshot(traffic.producer, t) for t in tables] == before  # reports only read


def test_reports_without_endpoints_say_so(seeded, cli):
    assert "no open endpoints" in cli.ok("report", "usage").stdout
    assert "no orphans among 0 open endpoint(s)" in cli.ok("report", "orphans").stdout
    assert _json(cli, "report", "usage") == []
    assert cli.json("report", "orphans") == []  # --json
    assert cli.ok("report", "orphans", "--output", "csv").stdout == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("usage", "--by", "account"), "--by 'account' is not one of tenant, endpoint"),
        (("usage", "--since", "2021-01-01", "--until", "2020-01-01"), "is not before --until"),
        (("usage", "--service", "vpce-svc-0000000000000000f"), "does not manage vpce-svc-0000000000000000f"),
        (("usage", "--query", "tenants[?"), "is not a JMESPath expression"),
        (("orphans", "--since", "1d"), "No such option"),
    ],
    ids=["by", "period", "service", "query", "option"],
)
def test_report_refusals_are_one_line(seeded, cli, args, expected):
    result = cli.run("report", *args)
    assert result.exit_code != 0
    assert expected in result.output


def test_cross_region_consumers_are_never_called_idle_nor_counted_as_silent():
    # AWS publishes no AWS/PrivateLinkServices metrics for cross-Region consumers: silence there
    # says nothing about use.
    now = datetime(2026, 12, 1, tzinfo=UTC)
    connection = VpcEndpointConnection.model_validate(
        {
            "ServiceId": "vpce-svc-0123456789abcdef0",
            "VpcEndpointId": "vpce-0123456789abcdef0",
            "VpcEndpointOwner": ACME,
            "VpcEndpointState": "available",
            "CreationTimestamp": now - timedelta(days=40),
            "VpcEndpointRegion": "eu-west-1",
        }
    )
    endpoints = inventory([connection], TenantDirectory(), {})
    rows = orphans(endpoints, [Series()], idle_days=14, now=now, service_region="us-east-1")
    assert [row["reasons"] for row in rows] == [["no-tenant", "no-decision"]]  # not "idle"
    [query, *_] = usage_queries(endpoints, now - timedelta(days=90), now)
    assert query.period_seconds % 3600 == 0  # data older than 63 days comes in hours
