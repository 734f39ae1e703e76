"""Usage of the managed endpoint services, per consumer endpoint and per tenant, from the
`AWS/PrivateLinkServices` CloudWatch metrics, and the endpoints nobody owns or uses (orphans).

AWS publishes, every minute an endpoint carries traffic, per endpoint service and per consumer
endpoint (dimensions `Service Id` + `VPC Endpoint Id`): `BytesProcessed`, `ActiveConnections`,
`NewConnections` and `RstPacketsSent` (also per `Load Balancer Arn` and `Az`, not used here).
No datapoint means no traffic. Nothing is published for consumers that use cross-Region access,
so for them silence means nothing.

Reads only: DescribeVpcEndpointConnections, the tenants and decisions tables, and GetMetricData —
one call per batch of up to 500 queries, never one call per endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: `gatekeeper --help` imports this module
    from gatekeeper.dal.decisions import EndpointState
    from gatekeeper.dal.tenants import TenantDirectory
    from gatekeeper.models.connection import VpcEndpointConnection

NAMESPACE = "AWS/PrivateLinkServices"
SERVICE_DIMENSION = "Service Id"
ENDPOINT_DIMENSION = "VPC Endpoint Id"
# metric → the statistic that answers "how much over the period"
STATISTICS: dict[str, str] = {
    "BytesProcessed": "Sum",
    "NewConnections": "Sum",
    "ActiveConnections": "Maximum",
    "RstPacketsSent": "Sum",
}
MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit
MAX_DATAPOINTS_PER_CALL = 100_800  # GetMetricData's limit


@dataclass(frozen=True)
class MetricQuery:
    """One endpoint's metric and statistic over the period, in `period_seconds` slices."""

    service_id: str
    vpc_endpoint_id: str
    metric: str
    statistic: str
    period_seconds: int

    def request(self, query_id: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": self.metric,
                    "Dimensions": [
                        {"Name": SERVICE_DIMENSION, "Value": self.service_id},
                        {"Name": ENDPOINT_DIMENSION, "Value": self.vpc_endpoint_id},
                    ],
                },
                "Period": self.period_seconds,
                "Stat": self.statistic,
            },
            "ReturnData": True,
        }


@dataclass
class Series:
    """What came back for one query: (timestamp, value) pairs."""

    points: list[tuple[datetime, float]] = field(default_factory=list)

    def total(self) -> float:
        return sum(value for _, value in self.points)

    def peak(self) -> float:
        return max((value for _, value in self.points), default=0.0)

    def last_nonzero(self) -> datetime | None:
        return max((at for at, value in self.points if value > 0), default=None)


def _period(start: datetime, end: datetime) -> int:
    """The whole range as one slice. GetMetricData wants a multiple of 60 s, and of 300 s / 3600 s
    once the range reaches back past 15 / 63 days (CloudWatch keeps coarser data there)."""
    seconds = max(60, int((end - start).total_seconds()))
    step = 3600 if seconds > 63 * 86400 else 300 if seconds > 15 * 86400 else 60
    return -(-seconds // step) * step


def batches(
    queries: Sequence[MetricQuery], start: datetime, end: datetime
) -> Iterator[Sequence[MetricQuery]]:
    """Slices of at most 500 queries whose datapoints fit one GetMetricData answer."""
    points = max(1, -(-int((end - start).total_seconds()) // min(q.period_seconds for q in queries)))
    size = max(1, min(MAX_QUERIES_PER_CALL, MAX_DATAPOINTS_PER_CALL // points))
    for at in range(0, len(queries), size):
        yield queries[at : at + size]


def fetch(cloudwatch: Any, queries: Sequence[MetricQuery], start: datetime, end: datetime) -> list[Series]:
    """Every query's series, in order: one GetMetricData call (plus its NextToken pages) per batch."""
    results = [Series() for _ in queries]
    if not queries:
        return results
    offset = 0
    for batch in batches(queries, start, end):
        requests = [q.request(f"q{offset + i}") for i, q in enumerate(batch)]
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"MetricDataQueries": requests, "StartTime": start, "EndTime": end}
            if token:
                kwargs["NextToken"] = token
            response = cloudwatch.get_metric_data(**kwargs)
            for result in response.get("MetricDataResults", []):
                index = int(str(result["Id"])[1:])
                results[index].points += list(
                    zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                )
            token = response.get("NextToken")
            if not token:
                break
        offset += len(batch)
    return results


# -- the inventory: open connections with their tenant and decision --------------------------------
@dataclass(frozen=True)
class Endpoint:
    connection: VpcEndpointConnection
    tenant_id: str | None  # the tenant that claims the owner account now (else the recorded one)
    claimed: bool  # a tenant claims the owner account now
    decided: EndpointState | None  # the gatekeeper's record of it, if any

    @property
    def vpc_endpoint_id(self) -> str:
        return self.connection.vpc_endpoint_id

    def cross_region(self, service_region: str) -> bool:
        return self.connection.region(service_region) != service_region


def inventory(
    connections: Iterable[VpcEndpointConnection],
    directory: TenantDirectory,
    states: dict[str, EndpointState],
) -> list[Endpoint]:
    endpoints: list[Endpoint] = []
    for connection in connections:
        owner = directory.owner(connection.vpc_endpoint_owner)
        state = states.get(connection.vpc_endpoint_id)
        recorded = state.decision.tenant_id if state is not None else None
        endpoints.append(
            Endpoint(
                connection=connection,
                tenant_id=owner.tenant_id if owner is not None else recorded,
                claimed=owner is not None,
                decided=state,
            )
        )
    endpoints.sort(key=lambda e: (e.tenant_id or "~", e.connection.service_id, e.vpc_endpoint_id))
    return endpoints


# -- usage ------------------------------------------------------------------------------------------
def usage_queries(endpoints: Sequence[Endpoint], start: datetime, end: datetime) -> list[MetricQuery]:
    period = _period(start, end)
    return [
        MetricQuery(e.connection.service_id, e.vpc_endpoint_id, metric, statistic, period)
        for e in endpoints
        for metric, statistic in STATISTICS.items()
    ]


def endpoint_usage(
    endpoints: Sequence[Endpoint], series: Sequence[Series], service_region: str
) -> list[dict[str, Any]]:
    """One row per endpoint: its tenant, where it comes from, and its traffic over the period."""
    rows: list[dict[str, Any]] = []
    per_endpoint = len(STATISTICS)
    for index, endpoint in enumerate(endpoints):
        mine = dict(zip(STATISTICS, series[index * per_endpoint : (index + 1) * per_endpoint], strict=True))
        connection = endpoint.connection
        rows.append(
            {
                "tenant_id": endpoint.tenant_id,
                "vpc_endpoint_id": connection.vpc_endpoint_id,
                "service_id": connection.service_id,
                "owner": connection.vpc_endpoint_owner,
                "region": connection.region(service_region),
                "state": connection.vpc_endpoint_state,
                "bytes_processed": int(mine["BytesProcessed"].total()),
                "new_connections": int(mine["NewConnections"].total()),
                "peak_active_connections": int(mine["ActiveConnections"].peak()),
                "resets_sent": int(mine["RstPacketsSent"].total()),
                "metrics": "none published (cross-Region consumer)"
                if endpoint.cross_region(service_region)
                else "AWS/PrivateLinkServices",
            }
        )
    return rows


TOTALS = ("bytes_processed", "new_connections", "resets_sent")


def tenant_usage(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Endpoint rows summed per tenant (endpoints nobody claims are grouped under tenant None)."""
    grouped: dict[str | None, dict[str, Any]] = {}
    for row in rows:
        total = grouped.setdefault(
            row["tenant_id"],
            {
                "tenant_id": row["tenant_id"],
                "endpoints": 0,
                "services": [],
                "bytes_processed": 0,
                "new_connections": 0,
                "peak_active_connections": 0,
                "resets_sent": 0,
            },
        )
        total["endpoints"] += 1
        if row["service_id"] not in total["services"]:
            total["services"].append(row["service_id"])
        for name in TOTALS:
            total[name] += row[name]
        # Peaks of different endpoints need not coincide: their sum is an upper bound.
        total["peak_active_connections"] += row["peak_active_connections"]
    return sorted(grouped.values(), key=lambda t: (t["tenant_id"] is None, t["tenant_id"] or ""))


# -- orphans ----------------------------------------------------------------------------------------
def idle_queries(endpoints: Sequence[Endpoint], start: datetime, end: datetime) -> list[MetricQuery]:
    """Daily BytesProcessed sums: enough to say when an endpoint last carried traffic."""
    day = int(timedelta(days=1).total_seconds())
    period = min(day, _period(start, end))
    return [
        MetricQuery(e.connection.service_id, e.vpc_endpoint_id, "BytesProcessed", "Sum", period)
        for e in endpoints
    ]


def orphans(
    endpoints: Sequence[Endpoint],
    traffic: Sequence[Series],
    *,
    idle_days: int,
    now: datetime,
    service_region: str,
) -> list[dict[str, Any]]:
    """Open endpoints that no tenant claims, that the gatekeeper has no record of, or that carried
    no traffic for `idle_days` (since they were created, if younger). One row per endpoint."""
    rows: list[dict[str, Any]] = []
    for endpoint, series in zip(endpoints, traffic, strict=True):
        connection = endpoint.connection
        reasons: list[str] = []
        if not endpoint.claimed:
            reasons.append("no-tenant")
        if endpoint.decided is None:
            reasons.append("no-decision")
        last = series.last_nonzero()
        silent = connection.vpc_endpoint_state == "available" and last is None
        if silent and not endpoint.cross_region(service_region):
            reasons.append("idle")
        if not reasons:
            continue
        created = connection.creation_timestamp
        rows.append(
            {
                "tenant_id": endpoint.tenant_id,
                "vpc_endpoint_id": connection.vpc_endpoint_id,
                "service_id": connection.service_id,
                "owner": connection.vpc_endpoint_owner,
                "state": connection.vpc_endpoint_state,
                "created_at": created,
                "recorded": endpoint.decided.status if endpoint.decided is not None else None,
                "reasons": reasons,
                "last_traffic": last,
                "detail": _detail(reasons, endpoint, created, idle_days, now),
            }
        )
    return rows


def _detail(
    reasons: list[str], endpoint: Endpoint, created: datetime | None, idle_days: int, now: datetime
) -> str:
    parts: list[str] = []
    if "no-tenant" in reasons:
        parts.append(f"no tenant claims account {endpoint.connection.vpc_endpoint_owner}")
    if "no-decision" in reasons:
        parts.append("the gatekeeper never decided it")
    if "idle" in reasons:
        if created is not None and now - created < timedelta(days=idle_days):
            parts.append(f"no traffic since it was created {_ago(now - created)} ago")
        else:
            parts.append(f"no traffic in {idle_days}d")
    return "; ".join(parts)


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(0, seconds)}s"
