"""A reconcile sweep of 10,000 connections in one invocation: AWS API calls by operation, calls per
connection, and seconds — measured against the PrivateLink emulator (moto, in-process).

Two sweeps of the same 10,000 connections (spread over 100 tenants):
- cold:   every connection `pendingAcceptance` and undecided — a notification outage, the worst
          case: each one is announced (PutEvents, ten a call);
- steady: every connection `available`, accepted, its quota slot in place — a normal sweep.
Only the reconcile handler's own calls are counted (a botocore `before-call` hook on the session its
clients come from); seeding is not. The events it puts on the bus are not delivered to the decider:
deciding 10,000 requests is the decision path's cost, not the sweep's. Seconds are wall time of the
handler in this process, split into time inside the (emulated) AWS calls and time in the handler
itself; the emulator's calls cost nothing like real ones (moto's Query scans its table in memory),
so an estimate at an assumed in-region latency per call is printed too. Nothing here asserts a time.

Seeding is made fast, not the sweep: the steady case's 10,000 quota slots are written in batches
(the items the store's own slot transaction writes), and moto's Query is handed only the partition
it asks for (`tests.perf.harness.partition_scoped_queries`; moto otherwise sorts the whole table on
every Query). Neither changes an answer; the call counts are the handler's own.

Run: `.venv/bin/python -m tests.perf.reconcile_sweep [--connections N] [--tenants T]` (or `make bench`,
which runs 1,000 connections over 10 tenants and 10,000 over 100).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_SERVICE_NAME="vpce-gatekeeper",
    POWERTOOLS_METRICS_NAMESPACE="VpceGatekeeper",
    MOTO_EC2_LOAD_DEFAULT_AMIS="false",
)
for _variable in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_variable, None)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from gatekeeper.dal.decisions import Slot  # noqa: E402
from gatekeeper.models.identifiers import now_utc  # noqa: E402
from gatekeeper.models.tenant import Tenant  # noqa: E402
from gatekeeper.observability import logger  # noqa: E402
from gatekeeper.wiring import services as runtime  # noqa: E402
from gatekeeper_ops.emulator import privatelink_emulator, seed_connections  # noqa: E402
from gatekeeper_ops.fast_moto import faster_moto  # noqa: E402
from gatekeeper_ops.local_lambda import handler_session  # noqa: E402
from gatekeeper_ops.sandbox.account import ProducerAccount  # noqa: E402
from tests.perf.harness import QUIET, partition_scoped_queries  # noqa: E402

FUNCTION = "ReconcileConnectionsFunction"
ASSUMED_CALL_SECONDS = 0.025  # a Describe/BatchGetItem/PutEvents from Lambda, same region (estimate)


def account(n: int) -> str:
    return f"{100000000000 + n:012d}"


def producer_with_tenants(tenants: int, per_tenant: int) -> ProducerAccount:
    producer = ProducerAccount.create(boto3.Session(region_name="us-east-1"), extra_environment=QUIET)
    producer.push_builtin_templates()
    service = producer.service.service_id
    for n in range(tenants):
        producer.add_tenant(
            Tenant(
                tenant_id=f"tenant-{n:03d}",
                display_name=f"Tenant {n}",
                principals=(account(n),),
                services=(service,),
                template="standard",
                max_endpoints=per_tenant,
            )
        )
    producer.settle()  # the tenant sync puts the tenants' principals on the allow-list
    # Announcements are put on the bus but not delivered: the sweep is measured, not the decisions.
    events = producer.client("events")
    bus = producer.stack.outputs["EventBusName"]
    for rule in events.list_rules(EventBusName=bus)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=[t["Id"] for t in targets])
    return producer


def seed_slots(producer: ProducerAccount, tenant_id: str, endpoints: list[str]) -> None:
    """The quota slots and counter `record_slot` would leave for these endpoints, written in batches:
    10,000 slot transactions would be most of the bench's time. The items are the store's own."""
    store = producer.decisions
    client = producer.client("dynamodb")
    puts = []
    update: dict[str, Any] = {}
    for endpoint in endpoints:
        put, update = (
            item
            for entry in store._take_slot(Slot(tenant_id, endpoint, limit=None), now_utc())
            for item in entry.values()
        )
        puts.append({"PutRequest": {"Item": put["Item"]}})
    for first in range(0, len(puts), 25):
        client.batch_write_item(RequestItems={update["TableName"]: puts[first : first + 25]})
    if endpoints:
        update["ExpressionAttributeValues"][":one"] = {"N": str(len(endpoints))}
        client.update_item(**update)
    assert len(store.slots(tenant_id)) == len(endpoints) == store.active_endpoints(tenant_id)


@dataclass
class Measured:
    calls: Counter[str] = field(default_factory=Counter)
    call_seconds: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    in_calls: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)


def counted_sweep(producer: ProducerAccount) -> Measured:
    """Run the handler once with its clients on a session that counts and times every call."""
    measured = Measured()

    def before(model: Any, context: dict[str, Any], **_: Any) -> None:
        name = f"{model.service_model.service_name}:{model.name}"
        measured.calls.update([name])
        context["started"] = (name, time.perf_counter())

    def after(context: dict[str, Any], **_: Any) -> None:
        name, started = context.pop("started", ("?", time.perf_counter()))
        spent = time.perf_counter() - started
        measured.in_calls += spent
        measured.call_seconds[name] += spent

    session = handler_session()
    session.events.register("before-call", before)
    session.events.register("after-call", after)
    runtime.reconciler()  # the container is warm: settings read, clients built (the init phase)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the handler's logs and metrics
        invocation = producer.lambdas.run_schedule(FUNCTION)
    measured.seconds = time.perf_counter() - started
    assert invocation.ok, invocation.error
    measured.result = dict(invocation.result)
    return measured


def report(title: str, connections: int, measured: Measured) -> None:
    total = sum(measured.calls.values())
    handler = measured.seconds - measured.in_calls
    result = measured.result
    print(f"  {title}")
    print(
        f"    {total:,} API calls = {total / connections:.3f} per connection   "
        f"(announced {result['announced']:,}, repairs {result['repairs']:,}, "
        f"stopped early: {result['stopped_early']})"
    )
    print(
        f"    {measured.seconds:.1f} s on the emulator: {measured.in_calls:.1f} s inside emulated calls, "
        f"{handler:.1f} s in the handler; at {ASSUMED_CALL_SECONDS * 1000:.0f} ms a call in AWS "
        f"≈ {handler + total * ASSUMED_CALL_SECONDS:.0f} s"
    )
    for name, count in sorted(measured.calls.items(), key=lambda item: -item[1]):
        print(f"      {name:48} {count:6,}   {measured.call_seconds[name]:6.1f} s on the emulator")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=100)
    args = parser.parse_args()
    per_tenant = args.connections // args.tenants
    connections = per_tenant * args.tenants
    print(
        f"Reconcile sweep of {connections:,} connections ({args.tenants} tenants x {per_tenant}), "
        "one invocation of the real handler on the emulator:"
    )
    logger.setLevel("ERROR")  # the handlers' info logs would drown the numbers
    quiet = contextlib.redirect_stdout(io.StringIO())  # the setup's handler logs and metrics
    # faster_moto: seeding 10,000 quota slots through TransactWriteItems, quickly.
    with faster_moto(), partition_scoped_queries():
        with mock_aws(), privatelink_emulator():
            with quiet:
                producer = producer_with_tenants(args.tenants, per_tenant)
                service, owner = producer.service.service_id, producer.stack.account_id
                for n in range(args.tenants):
                    seed_connections(service, per_tenant, account_id=owner, consumer_account_id=account(n))
            report("cold: all pendingAcceptance, undecided", connections, counted_sweep(producer))

        with mock_aws(), privatelink_emulator():
            with quiet:
                producer = producer_with_tenants(args.tenants, per_tenant)
                service, owner = producer.service.service_id, producer.stack.account_id
                for n in range(args.tenants):
                    endpoints = seed_connections(
                        service,
                        per_tenant,
                        account_id=owner,
                        consumer_account_id=account(n),
                        state="available",
                    )
                    seed_slots(producer, f"tenant-{n:03d}", endpoints)
            report("steady: all available, slots in place", connections, counted_sweep(producer))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of this sweep's process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
