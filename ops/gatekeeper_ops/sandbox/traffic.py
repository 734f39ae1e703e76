"""CloudWatch traffic for the sandbox's endpoints: the `AWS/PrivateLinkServices` datapoints AWS
would publish for an endpoint service, so `gatekeeper report usage|orphans` and the dashboard
have something to show on an emulated account (moto stores PutMetricData, answers GetMetricData).

Realistic and repeatable: per accepted endpoint, a business-hours curve of bytes and connections
derived from its id, at one datapoint per hour for `days` days, under the dimension sets AWS uses
(`Service Id`; `Service Id` + `VPC Endpoint Id`). Endpoints listed as `idle` get no datapoints:
AWS publishes none for an endpoint without traffic. Cross-Region consumers get none either: AWS
publishes no metrics for them.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gatekeeper.models.connection import VpcEndpointConnection
from gatekeeper.models.identifiers import now_utc

NAMESPACE = "AWS/PrivateLinkServices"
_PER_CALL = 1000  # PutMetricData's limit on datums per request


@dataclass(frozen=True)
class TrafficSeed:
    endpoints: int  # endpoints given traffic
    datapoints: int


def _profile(vpc_endpoint_id: str) -> random.Random:
    # Demo traffic, not secrets: a plain PRNG, seeded by the id so every run looks the same.
    return random.Random(int(hashlib.sha256(vpc_endpoint_id.encode()).hexdigest()[:12], 16))  # noqa: S311


def _hourly(
    connection: VpcEndpointConnection, start: datetime, hours: int
) -> Iterator[tuple[datetime, dict[str, float]]]:
    rng = _profile(connection.vpc_endpoint_id)
    scale = rng.choice((0.2, 1.0, 4.0, 12.0))  # small to big tenants, in MiB per busy hour
    for hour in range(hours):
        at = start + timedelta(hours=hour)
        # Busiest around 14:00 UTC, quiet at night; some noise.
        daylight = max(
            0.05, math.sin(math.pi * ((at.hour - 6) % 24) / 16) if (at.hour - 6) % 24 < 16 else 0.05
        )
        load = daylight * rng.uniform(0.7, 1.3)
        new = max(1, round(40 * scale * load))
        yield (
            at,
            {
                "BytesProcessed": round(scale * 1024 * 1024 * load * rng.uniform(20, 60)),
                "NewConnections": new,
                "ActiveConnections": max(1, round(new * rng.uniform(0.1, 0.4))),
                "RstPacketsSent": rng.choice((0, 0, 0, 0, 1, 2)) * (1 if load > 0.5 else 0),
            },
        )


def seed_traffic(
    cloudwatch: Any,
    connections: Iterable[VpcEndpointConnection],
    *,
    service_region: str,
    idle: Collection[str] = (),
    days: int = 3,
    now: datetime | None = None,
) -> TrafficSeed:
    """Put hourly AWS/PrivateLinkServices datapoints for every available connection of the last
    `days` days, except the `idle` endpoints and cross-Region consumers."""
    end = (now or now_utc()).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    datums: list[dict[str, Any]] = []
    per_service: dict[tuple[str, datetime, str], float] = {}
    seeded = 0
    for connection in connections:
        if connection.vpc_endpoint_state != "available" or connection.vpc_endpoint_id in idle:
            continue
        if connection.region(service_region) != service_region:
            continue
        seeded += 1
        for at, values in _hourly(connection, start, days * 24):
            for metric, value in values.items():
                datums.append(_datum(metric, value, at, connection.service_id, connection.vpc_endpoint_id))
                slot = (connection.service_id, at, metric)
                per_service[slot] = per_service.get(slot, 0.0) + value
    datums += [_datum(metric, value, at, service) for (service, at, metric), value in per_service.items()]
    for offset in range(0, len(datums), _PER_CALL):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=datums[offset : offset + _PER_CALL])
    return TrafficSeed(seeded, len(datums))


def _datum(
    metric: str, value: float, at: datetime, service_id: str, vpc_endpoint_id: str | None = None
) -> dict[str, Any]:
    dimensions = [{"Name": "Service Id", "Value": service_id}]
    if vpc_endpoint_id is not None:
        dimensions.append({"Name": "VPC Endpoint Id", "Value": vpc_endpoint_id})
    return {
        "MetricName": metric,
        "Dimensions": dimensions,
        "Timestamp": at,
        "Value": float(value),
        "Unit": "Bytes" if metric == "BytesProcessed" else "Count",
    }
