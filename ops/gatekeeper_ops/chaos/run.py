"""One chaos run: the real stack on an emulated producer account, a seeded workload, transient
faults on every AWS call the handlers make, and a virtual clock that drives Lambda's retries, SQS
redelivery and the reconcile schedule. Then faults stop, retries and sweeps settle, and the
invariants (`gatekeeper_ops.chaos.invariants`) are checked against EC2, the DecisionsTable and
what subscribers received.

Timeline (virtual seconds): requests arrive over `requests x seconds_per_request`; the reconcile
schedule fires at its template rate throughout; the `suspend` tenant is suspended half-way; after
the last request faults stop and the run goes on for `settle_sweeps` more schedule periods.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import math
import os
import random
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial
from typing import Any
from unittest import mock

import boto3
import botocore.loaders
import botocore.session
from moto import mock_aws
from moto.moto_api._internal import mock_random
from moto.sqs.models import sqs_backends

from gatekeeper.dal.codec import decode
from gatekeeper.observability import metrics
from gatekeeper.wiring import services as runtime
from gatekeeper_ops.chaos.clock import START, VirtualClock
from gatekeeper_ops.chaos.faults import FaultInjector, FaultPlan
from gatekeeper_ops.chaos.invariants import Invariant, Observations, check
from gatekeeper_ops.chaos.workload import SUSPENDED_MID_RUN, Request, Workload, build
from gatekeeper_ops.emulator import privatelink_emulator, published_notifications
from gatekeeper_ops.emulator.provisioning import create_interface_endpoint
from gatekeeper_ops.emulator.settings import EmulatorSettings, EventualConsistency
from gatekeeper_ops.emulator.throttling import RequestThrottling, unthrottled
from gatekeeper_ops.fast_moto import faster_moto
from gatekeeper_ops.local_lambda import Invocation, RetryTiming, reset_handler_caches
from gatekeeper_ops.sandbox.account import ProducerAccount
from gatekeeper_ops.stack import ROOT

RECONCILE = "ReconcileConnectionsFunction"
DLQS = (
    "NotificationDeadLetterQueueUrl",
    "DecisionQueueDeadLetterQueueUrl",
    "DecisionDeadLetterQueueUrl",
    "TenantSyncDeadLetterQueueUrl",
)
_ROUND = 0.05  # virtual seconds one delivery round takes
_IDS = re.compile(r"vpce-[0-9a-f]{8,17}|\b\d{12}\b|[0-9a-f]{8}-[0-9a-f-]{27}")


@dataclass(frozen=True)
class ChaosSettings:
    requests: int = 300
    rate: float = 0.20  # transient faults per AWS call attempt of the handlers
    seed: int = 1
    crash_rate: float | None = None  # default: rate / 20
    unsuccessful_rate: float | None = None  # default: rate / 2
    seconds_per_request: float = 4.0  # arrival spacing (virtual)
    settle_sweeps: int = 4  # schedule periods after faults stop
    step: float = 60.0  # the longest the clock jumps at once
    stale_seconds: int = 45  # DECISION_CLAIM_STALE_SECONDS for the decision service
    # EC2's read lag: None reads consistently; otherwise a new or changed connection is read stale
    # for this many (virtual) seconds however often it is read (the emulator's EventualConsistency
    # with stale_reads=None), so the decider's re-reads and its retries of a connection EC2 does not
    # list yet meet the faults too.
    ec2_lag_seconds: float | None = None

    def emulator(self) -> EmulatorSettings:
        """EC2's token buckets always (the account's own: the handlers share them); the lag if asked,
        in time alone (stale_reads=None), however often it is read."""
        lag = self.ec2_lag_seconds
        return EmulatorSettings(
            eventual_consistency=None
            if lag is None
            else EventualConsistency(stale_reads=None, stale_seconds=lag),
            throttling=RequestThrottling(),
        )

    def plan(self) -> FaultPlan:
        return FaultPlan(
            rate=self.rate,
            crash_rate=self.rate / 20 if self.crash_rate is None else self.crash_rate,
            unsuccessful_rate=self.rate / 2 if self.unsuccessful_rate is None else self.unsuccessful_rate,
        )


@dataclass
class ChaosReport:
    settings: ChaosSettings
    workload: Workload
    injector: FaultInjector
    invocations: list[Invocation]
    invariants: list[Invariant]
    observations: Observations
    sweeps: int = 0
    sweeps_failed: int = 0
    duplicates_sent: int = 0
    deleted_during_decision: int = 0
    deleted_later: int = 0
    virtual_seconds: float = 0.0
    wall_seconds: float = 0.0
    slept_seconds: float = 0.0
    fault_window: float = 0.0
    stale_after: float = 0.0
    start: datetime = START

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.invariants)

    def failures(self) -> list[Invariant]:
        return [i for i in self.invariants if not i.ok]

    def timeline(self, endpoint: str) -> list[str]:
        """What happened to one endpoint, in virtual time: the invocations whose event names it, each
        followed by the faults injected while it ran."""
        start = self.start.timestamp()
        faults: dict[int, list[tuple[float, str]]] = {}
        for at, running, kind, service, operation in self.injector.log:
            faults.setdefault(running, []).append((at, f"{kind} on {service}:{operation}"))
        lines: list[str] = []
        for index, invocation in enumerate(self.invocations):
            if endpoint not in json.dumps(invocation.event, default=str):
                continue
            outcome = "ok" if invocation.ok else f"FAILED {invocation.error}"
            if invocation.ok and invocation.failed_records:
                outcome = f"ok, {invocation.failed_records} of its records failed"
            lines.append(
                f"t+{invocation.at - start:8.2f}s  {invocation.function} ({invocation.trigger}, attempt "
                f"{invocation.attempt}): {outcome.partition(chr(10))[0][:200]}"
            )
            lines += [f"t+{at - start:8.2f}s      fault: {what}" for at, what in faults.get(index, [])]
        return lines

    def errors(self, top: int = 10) -> list[tuple[str, int]]:
        return commonest_errors(self.invocations, top)


def commonest_errors(invocations: list[Invocation], top: int = 10) -> list[tuple[str, int]]:
    """The commonest invocation errors, ids blanked out, for a diagnosis."""
    counted = Counter(
        f"{i.function}: {_IDS.sub('…', (i.error or '').partition(chr(10))[0][:160])}"
        for i in invocations
        if not i.ok
    )
    return counted.most_common(top)


def run(settings: ChaosSettings) -> ChaosReport:
    """Run the scenario in this process (moto in-process); restores the environment afterwards."""
    started = time.perf_counter()
    clock = VirtualClock()
    with emulated_world(clock, settings.emulator(), settings.seed) as rng:
        faults = random.Random(rng.random())  # noqa: S311 - a reproducible run, not a secret
        injector = FaultInjector(settings.plan(), faults, time.time, enabled=False)
        instrument: Callable[..., Any] = runtime.client

        def client(service: str, config: Any = runtime._CONFIG) -> Any:
            return injector.instrument(instrument(service, config))

        with mock.patch.object(runtime, "client", client):
            scenario = _Scenario(settings, clock, injector, rng)
            report = scenario.play()
        report.wall_seconds = time.perf_counter() - started
        report.slept_seconds = clock.slept
        return report


@contextlib.contextmanager
def emulated_world(clock: VirtualClock, emulator: EmulatorSettings, seed: int) -> Iterator[random.Random]:
    """moto in-process with the PrivateLink emulator, on `clock`, seeded (moto's ids, the core's
    retry jitter); yields the run's own seeded random. Restores the environment afterwards."""
    if str(ROOT) not in sys.path:  # the handlers (`functions.*`) import from the repository root
        sys.path.append(str(ROOT))
    saved = dict(os.environ)
    try:
        with contextlib.ExitStack() as scope:
            _environment()
            scope.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
            if not metrics.namespace:  # Powertools read it at import, perhaps before the stack's env
                scope.enter_context(mock.patch.object(metrics, "namespace", "VpceGatekeeper"))
            scope.enter_context(_shared_botocore_loader())
            scope.enter_context(clock.running())
            scope.enter_context(faster_moto())
            scope.enter_context(mock_aws())
            scope.enter_context(privatelink_emulator(emulator))
            random.seed(seed)  # the core's retry jitter too: a reproducible run
            mock_random.seed(seed)
            yield random.Random(seed)  # noqa: S311 - a reproducible run, not a secret
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_handler_caches()
        metrics.clear_metrics()


def _environment() -> None:
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "GATEKEEPER_STACK", "MOTO_ACCOUNT_ID"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        }
    )


@contextlib.contextmanager
def _shared_botocore_loader() -> Iterator[None]:
    """Speed only: every consumer session would parse EC2's service model again."""
    with mock.patch.object(botocore.session, "create_loader", cache(botocore.loaders.create_loader)):
        yield


def schedule_seconds(expression: str) -> float:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        raise ValueError(f"only rate() schedules are emulated, not {expression!r}")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit


@dataclass(order=True)
class _Action:
    at: float
    order: int
    name: str = field(compare=False)
    run: Callable[[], None] = field(compare=False)


class _Scenario:
    def __init__(
        self, settings: ChaosSettings, clock: VirtualClock, injector: FaultInjector, rng: random.Random
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.injector = injector
        self.rng = rng
        self.invocations: list[Invocation] = []
        self.actions: list[_Action] = []
        self._order = 0
        self.sweeps = self.sweeps_failed = self.duplicates_sent = 0
        self.deleted_during = self.deleted_later = 0
        self._consumer_ec2: dict[tuple[str, str], Any] = {}
        self._clients: dict[str, Any] = {}

    # -- setup -------------------------------------------------------------------------------
    def _producer(self) -> ProducerAccount:
        producer = ProducerAccount.create(
            boto3.Session(region_name="us-east-1"),
            extra_environment={
                "DECISION_CLAIM_STALE_SECONDS": str(self.settings.stale_seconds),
            },
        )
        producer.push_builtin_templates()
        producer.lambdas.timing = RetryTiming.aws()
        self.invocations = producer.lambdas.invocations
        self.injector.invocation = lambda: len(self.invocations)  # the one running is appended next
        return producer

    def _at(self, at: float, name: str, action: Callable[[], None]) -> None:
        self._order += 1
        heapq.heappush(self.actions, _Action(at, self._order, name, action))

    # -- the run -------------------------------------------------------------------------------
    def play(self) -> ChaosReport:
        producer = self._producer()
        self.producer = producer
        self._sns = producer.client("sns")
        sns_queue = producer.subscribe_decisions("chaos-sns-decided")
        bus_queue = subscribe_bus(producer, "chaos-bus-decided")
        window = self.settings.requests * self.settings.seconds_per_request
        workload = build(producer.service.service_id, self.settings.requests, window, self.rng)
        for plan in workload.tenants:
            producer.add_tenant(plan.tenant, actor="chaos")
        for request in workload.requests:  # consumer networks now, so the clock is not spent on them
            producer.consumer(request.account, request.region)
        self._drain()  # what creating the tenants set off (principals), before faults start
        self.by_endpoint: dict[str, Request] = {}
        self.injector.before_call = self._race
        for request in workload.requests:
            self._at(request.at, f"create #{request.number}", partial(self._create, request))
        self._at(workload.suspend_at, "suspend", partial(self._suspend, producer))
        period = schedule_seconds(next(iter(producer.stack.functions[RECONCILE].schedules.values())))
        start = self.clock.elapsed
        self.injector.enabled = True
        self._play_until(start + window, start, period)
        fault_window = self.clock.elapsed - start
        self.injector.enabled = False
        self._play_until(self.clock.elapsed + self.settings.settle_sweeps * period + 1, start, period)
        self._drain()
        with unthrottled():  # the harness's reading, not the producer's traffic
            observations = observe(producer, sns_queue, bus_queue)
        report = ChaosReport(
            self.settings,
            workload,
            self.injector,
            self.invocations,
            check(workload, observations),
            observations,
            sweeps=self.sweeps,
            sweeps_failed=self.sweeps_failed,
            duplicates_sent=self.duplicates_sent,
            deleted_during_decision=self.deleted_during,
            deleted_later=self.deleted_later,
            virtual_seconds=self.clock.elapsed - start,
            fault_window=fault_window,
            stale_after=runtime.decision_service().stale_after.total_seconds(),
        )
        return report

    def _play_until(self, end: float, start: float, period: float) -> None:
        next_sweep = start + period * (1 + int((self.clock.elapsed - start) // period))
        while True:
            now = self.clock.elapsed
            while self.actions and self.actions[0].at <= now:
                heapq.heappop(self.actions).run()
            self._drain()
            if self.clock.elapsed >= next_sweep:
                self._sweep()
                next_sweep += period
                self._drain()
            if self.clock.elapsed >= end:
                return
            upcoming = self.actions[0].at if self.actions else end
            due = min(
                upcoming,
                next_sweep,
                end,
                next_visible(self.producer, self.clock),
                self.clock.elapsed + self.settings.step,
            )
            self.clock.advance_to(due)

    def _drain(self, max_rounds: int = 100_000) -> None:
        for _ in range(max_rounds):
            self.clock.advance(_ROUND)
            if self.producer.lambdas.pump() == 0:
                return
        raise RuntimeError(f"events still flowing after {max_rounds} rounds")

    def _sweep(self) -> None:
        self.sweeps += 1
        invocation = self.producer.lambdas.run_schedule(RECONCILE)
        self.sweeps_failed += 0 if invocation.ok else 1

    # -- what consumers (and operators) do ---------------------------------------------------
    def _ec2(self, request: Request) -> Any:
        """The consumer's EC2 client (one per consumer account and region: clients are slow to make)."""
        key = (request.account, request.region)
        if key not in self._consumer_ec2:
            self._consumer_ec2[key] = self.producer.consumer(*key).session.client("ec2")
        return self._consumer_ec2[key]

    def _create(self, request: Request) -> None:
        consumer = self.producer.consumer(request.account, request.region)
        service = self.producer.service
        request.endpoint = create_interface_endpoint(
            self._ec2(request),
            service.service_name,
            consumer.network,
            service_region=self.producer.stack.region
            if request.region != self.producer.stack.region
            else None,
        )
        self.by_endpoint[request.endpoint] = request
        if request.delete_at is not None:
            self._at(request.delete_at, f"delete #{request.number}", partial(self._delete, request))
        for at in request.duplicates_at:
            self._at(at, f"duplicate #{request.number}", partial(self._duplicate, request))

    def _delete(self, request: Request, during: bool = False) -> None:
        if request.deleted or request.endpoint is None:
            return
        self._ec2(request).delete_vpc_endpoints(VpcEndpointIds=[request.endpoint])
        request.deleted = True
        if during:
            self.deleted_during += 1
        else:
            self.deleted_later += 1

    def _race(self, service: str, operation: str, parameters: dict[str, Any]) -> None:
        """The consumer deletes its endpoint just before the decider's Accept/Reject reaches EC2."""
        if operation not in ("AcceptVpcEndpointConnections", "RejectVpcEndpointConnections"):
            return
        request = self.by_endpoint.get(str(parameters.get("VpcEndpointId.1", "")))
        if request is not None and request.delete_during_decision:
            self._delete(request, during=True)

    def _duplicate(self, request: Request) -> None:
        """SNS delivers the endpoint's Connect notification once more (at-least-once delivery)."""
        stack = self.producer.stack
        for sent in published_notifications(stack.account_id, stack.region):
            if sent.vpc_endpoint_id == request.endpoint and sent.event == "Connect":
                self._sns.publish(TopicArn=sent.topic_arn, Message=sent.message)
                self.duplicates_sent += 1
                return

    def _suspend(self, producer: ProducerAccount) -> None:
        tenants = producer.tenants
        current = tenants.get(SUSPENDED_MID_RUN)
        tenants.update(current.model_copy(update={"status": "suspended"}), actor="chaos")


def next_visible(producer: ProducerAccount, clock: VirtualClock) -> float:
    """When (elapsed seconds of `clock`) the next SQS message the local Lambda service polls becomes
    visible: nothing else moves by itself, so the clock can jump there. inf when none waits."""
    backend = sqs_backends[producer.stack.account_id][producer.stack.region]
    functions = producer.stack.functions.values()
    urls = {b.sqs_queue_url for b in functions if b.sqs_queue_url} | {u for b in functions for u in b.rules}
    polled = {url.rsplit("/", 1)[-1] for url in urls}
    now_ms = time.time() * 1000
    upcoming = [
        max(message.visible_at, message.delayed_until)
        for queue in backend.queues.values()
        if queue.name in polled
        for message in queue._messages
        if max(message.visible_at, message.delayed_until) >= now_ms
    ]
    if not upcoming:
        return math.inf
    return clock.elapsed + (min(upcoming) - now_ms) / 1000 + 0.001


def subscribe_bus(producer: ProducerAccount, name: str) -> str:
    """An SQS queue receiving the bus's `Endpoint Connection Decided` events; returns its url."""
    sqs, events = producer.client("sqs"), producer.client("events")
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = producer.stack.outputs["EventBusName"]
    pattern = {"source": ["vpce.gatekeeper"], "detail-type": ["Endpoint Connection Decided"]}
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def observe(producer: ProducerAccount, sns_queue: str, bus_queue: str) -> Observations:
    """What the invariants are checked against: every managed service's connections, the
    DecisionsTable, what the subscribers received and the DLQs (the subscriber queues consumed)."""
    ec2, sqs = producer.client("ec2"), producer.client("sqs")
    connections: dict[str, dict[str, Any]] = {}
    for service in producer.services:
        for page in ec2.get_paginator("describe_vpc_endpoint_connections").paginate(
            Filters=[{"Name": "service-id", "Values": [service.service_id]}]
        ):
            for raw in page["VpcEndpointConnections"]:
                connections[raw["VpcEndpointId"]] = raw
    items: list[dict[str, Any]] = []
    ddb = producer.client("dynamodb")
    for page in ddb.get_paginator("scan").paginate(TableName=producer.stack.outputs["DecisionsTableName"]):
        items += [decode(i) for i in page["Items"]]
    sns_messages = [json.loads(m["Body"]) for m in _receive_all(sqs, sns_queue)]
    bus_events = [json.loads(m["Body"]) for m in _receive_all(sqs, bus_queue)]
    dead_letters = {
        name: [m["Body"] for m in _receive_all(sqs, producer.stack.outputs[name])] for name in DLQS
    }
    return Observations(connections, items, sns_messages, bus_events, dead_letters)


def _receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=3600).get(
            "Messages", []
        )
        if not messages:
            return found
        found += messages
