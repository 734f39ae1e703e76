"""One burst: N endpoint requests created within one second on the emulated producer account, with
EC2's token buckets on and Lambda's concurrency modelled (`gatekeeper_ops.burst.conductor`), the
stack provisioned from template.yaml and its triggers delivered by the local Lambda service as AWS
would (`RetryTiming.aws()`: async retries after 1 and 2 minutes, SQS visibility, redrive, DLQs),
and the reconcile schedule firing at its template rate. It runs until every request is decided
and everything has settled (or `give_up_after` virtual seconds), then checks the chaos invariants.

Nothing here knows how the stack decides: requests go in as consumers' CreateVpcEndpoint calls,
decisions are read where subscribers read them (the decision topic), EC2 calls where EC2 counts
them (the emulator's buckets), so the same harness measures any decision path.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import boto3
from moto.sqs.models import sqs_backends

from gatekeeper_ops.burst.conductor import Conductor
from gatekeeper_ops.chaos.invariants import Invariant, Observations, check
from gatekeeper_ops.chaos.run import (
    RECONCILE,
    emulated_world,
    next_visible,
    observe,
    schedule_seconds,
    subscribe_bus,
)
from gatekeeper_ops.chaos.workload import KIND_WEIGHTS, Kind, Request, Workload, build
from gatekeeper_ops.emulator.provisioning import create_interface_endpoint
from gatekeeper_ops.emulator.settings import EmulatorSettings
from gatekeeper_ops.emulator.throttling import Buckets, RequestThrottling, buckets, unthrottled
from gatekeeper_ops.local_lambda import Invocation, RetryTiming
from gatekeeper_ops.sandbox.account import ProducerAccount

# The chaos mix without the tenant suspended mid-run: a burst suspends nobody.
WEIGHTS: dict[Kind, float] = {kind: weight for kind, weight in KIND_WEIGHTS.items() if kind != "suspend"}
_ROUND = 0.05  # virtual seconds between two polls of the local Lambda service
HOW = ("first invocation", "retry", "sweep", "unknown")
_ENDPOINT = re.compile(r"\bvpce-[0-9a-f]{8,17}\b")


@dataclass(frozen=True)
class BurstSettings:
    requests: int = 1000
    services: int = 1
    seed: int = 1
    drained: bool = False  # EC2's buckets start empty (the account's other automation spent them)
    window: float = 1.0  # the requests are created within this many (virtual) seconds
    call_latency: float = 0.02  # virtual seconds one AWS call takes
    give_up_after: float = 3600.0  # virtual seconds after the first request

    def emulator(self) -> EmulatorSettings:
        return EmulatorSettings(
            throttling=RequestThrottling.drained() if self.drained else RequestThrottling()
        )


@dataclass
class Announced:
    endpoint: str
    outcome: str
    at: float  # elapsed virtual seconds when the decision topic delivered it


@dataclass
class BurstReport:
    settings: BurstSettings
    workload: Workload
    invocations: list[Invocation]
    invariants: list[Invariant]
    observations: Observations
    buckets: Buckets
    account: str
    services: list[str]
    announced: dict[str, Announced]  # endpoint → its first announcement
    created: dict[str, float]  # endpoint → elapsed virtual seconds when its consumer created it
    how: dict[str, str] = field(default_factory=dict)  # endpoint → one of HOW
    timeouts: int = 0
    sweeps: int = 0
    virtual_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.invariants) and len(self.announced) == len(self.created)

    def latencies(self) -> list[float]:
        return sorted(a.at - self.created[e] for e, a in self.announced.items() if e in self.created)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of create → announced, in virtual seconds."""
        spent = self.latencies()
        return spent[max(0, math.ceil(q / 100 * len(spent)) - 1)] if spent else math.nan

    @property
    def last_decision(self) -> float:
        """First request created → last decision announced (virtual seconds)."""
        first = min(self.created.values(), default=0.0)
        return max((a.at for a in self.announced.values()), default=math.nan) - first

    def ec2_calls(self) -> dict[str, tuple[int, int]]:
        """The producer's EC2 calls per action in its account and Region: (answered, throttled)."""
        actions: set[str] = set()
        answered: Counter[str] = Counter()
        throttled: Counter[str] = Counter()
        for (account, _region, action), count in self.buckets.allowed.items():
            if account == self.account:
                answered[action] += count
                actions.add(action)
        for (account, _region, action), count in self.buckets.throttled.items():
            if account == self.account:
                throttled[action] += count
                actions.add(action)
        return {action: (answered[action], throttled[action]) for action in sorted(actions)}

    def calls_per_decision(self) -> dict[str, float]:
        """Per service: the EC2 calls that named it (ServiceId, or a service-id filter) per request
        decided on it; `(unattributed)`: calls naming no service (e.g. a vpc-endpoint-id filter),
        per decision."""
        decided = Counter(r.service_id for r in self.workload.requests if r.endpoint in self.announced)
        named: Counter[str] = Counter()
        for (account, _region, _action, service), count in self.buckets.by_service.items():
            if account == self.account:
                named[service or "(unattributed)"] += count
        total = sum(decided.values()) or 1
        result = {service: named[service] / decided[service] for service in self.services if decided[service]}
        result["(unattributed)"] = named["(unattributed)"] / total
        return result

    def failed_invocations(self) -> Counter[str]:
        return Counter(i.function for i in self.invocations if not i.ok)

    def timed_out_invocations(self) -> Counter[str]:
        return Counter(
            i.function for i in self.invocations if not i.ok and (i.error or "").startswith("Task timed out")
        )

    def dead_letters(self) -> dict[str, int]:
        return {name: len(bodies) for name, bodies in self.observations.dead_letters.items()}


def run(settings: BurstSettings) -> BurstReport:
    started = time.perf_counter()
    conductor = Conductor(call_latency=settings.call_latency)
    with emulated_world(conductor, settings.emulator(), settings.seed) as rng:
        report = _Burst(settings, conductor, rng).play()
        report.wall_seconds = time.perf_counter() - started
        return report


class _Burst:
    def __init__(self, settings: BurstSettings, conductor: Conductor, rng: Any) -> None:
        self.settings = settings
        self.clock = conductor
        self.rng = rng
        self.sweeps = 0
        self._read = 0  # announcements read so far from the subscriber queue
        self.announced: dict[str, Announced] = {}

    def play(self) -> BurstReport:
        with unthrottled():  # setting up is not the producer's traffic
            producer = ProducerAccount.create(
                boto3.Session(region_name="us-east-1"), services=self.settings.services
            )
            producer.push_builtin_templates()
            self.producer = producer
            sns_queue = producer.subscribe_decisions("burst-sns-decided")
            bus_queue = subscribe_bus(producer, "burst-bus-decided")
            services = tuple(s.service_id for s in producer.services)
            workload = build(
                services,
                self.settings.requests,
                self.settings.window,
                self.rng,
                delete_share=0,
                delete_during_share=0,
                duplicate_share=0,
                weights=WEIGHTS,
            )
            for plan in workload.tenants:
                producer.add_tenant(plan.tenant, actor="burst")
            self._ec2: dict[tuple[str, str], Any] = {}
            for request in workload.requests:  # consumer networks before the clock starts
                self._consumer_ec2(request)
            producer.settle()  # what creating the tenants set off (principals), one at a time
        producer.lambdas.timing = RetryTiming.aws()
        producer.lambdas.concurrency = self.clock
        self._sns_queue = sns_queue.rsplit("/", 1)[-1]
        created = self._play(workload)
        with unthrottled():
            observations = observe(producer, sns_queue, bus_queue)
        report = BurstReport(
            self.settings,
            workload,
            producer.lambdas.invocations,
            check(workload, observations),
            observations,
            _current_buckets(),
            producer.stack.account_id,
            list(services),
            self.announced,
            created,
            timeouts=self.clock.timeouts,
            sweeps=self.sweeps,
        )
        report.virtual_seconds = self.clock.elapsed - self.start
        report.how = _how_decided(report, self.clock.start.timestamp())
        if self.clock.errors:
            raise RuntimeError(f"the harness failed in an invocation thread: {self.clock.errors[0]!r}")
        return report

    def _play(self, workload: Workload) -> dict[str, float]:
        lambdas = self.producer.lambdas
        period = schedule_seconds(next(iter(self.producer.stack.functions[RECONCILE].schedules.values())))
        self.start = start = self.clock.elapsed
        next_sweep = start + period
        waiting = sorted(workload.requests, key=lambda r: r.at)
        created: dict[str, float] = {}
        while True:
            now = self.clock.elapsed
            while waiting and start + waiting[0].at <= now:
                request = waiting.pop(0)
                created[self._create(request)] = now
            delivered = lambdas.pump()
            if now >= next_sweep:
                self.sweeps += 1
                self.clock.dispatch(partial(lambdas.run_schedule, RECONCILE))
                next_sweep += period
            steps = self.clock.run_until(now + _ROUND)
            self._read_announcements()
            everything_decided = not waiting and len(self.announced) >= len(created)
            idle = not delivered and not steps and not self.clock.busy
            if everything_decided and idle and next_visible(self.producer, self.clock) == math.inf:
                return created
            if self.clock.elapsed - start > self.settings.give_up_after:
                return created
            if not delivered and not steps:
                upcoming = min(
                    start + waiting[0].at if waiting else math.inf,
                    self.clock.next_wake,
                    next_visible(self.producer, self.clock),
                    next_sweep,
                )
                self.clock.advance_to(upcoming)

    def _consumer_ec2(self, request: Request) -> Any:
        key = (request.account, request.region)
        if key not in self._ec2:
            self._ec2[key] = self.producer.consumer(*key).session.client("ec2")
        return self._ec2[key]

    def _create(self, request: Request) -> str:
        service = next(s for s in self.producer.services if s.service_id == request.service_id)
        consumer = self.producer.consumer(request.account, request.region)
        home = self.producer.stack.region
        with unthrottled():  # the consumers' accounts, not the producer's
            request.endpoint = create_interface_endpoint(
                self._consumer_ec2(request),
                service.service_name,
                consumer.network,
                service_region=home if request.region != home else None,
            )
        return request.endpoint

    def _read_announcements(self) -> None:
        """The decision documents the subscriber's queue received since the last look, with when
        (moto's queue, read in place: the run consumes nothing before the end)."""
        backend = sqs_backends[self.producer.stack.account_id][self.producer.stack.region]
        messages = backend.queues[self._sns_queue]._messages
        for message in messages[self._read :]:
            document = json.loads(json.loads(message.body)["Message"])
            endpoint = str(document["vpc_endpoint_id"])
            at = int(message.sent_timestamp or 0) / 1000 - self.clock.start.timestamp()
            self.announced.setdefault(endpoint, Announced(endpoint, str(document["decision"]), at))
        self._read = len(messages)


def _current_buckets() -> Buckets:
    from gatekeeper_ops.emulator.settings import current_settings

    throttling = current_settings().throttling
    if throttling is None:
        raise RuntimeError("the burst runs with EC2's token buckets on")
    return buckets(throttling)


def _given(invocation: Invocation) -> str:
    """What an invocation was given, as text: its event and what it received from its queue itself."""
    return json.dumps([invocation.event, invocation.received], default=str)


def _how_decided(report: BurstReport, epoch: float) -> dict[str, str]:
    """Which invocation announced each decision: the one running when it was announced whose event
    (or its own top-up from its queue) names the endpoint — by a sweep's request (trigger
    `reconcile`), a retry (attempt > 1), or the first invocation."""
    spans: dict[str, list[Invocation]] = {}
    for invocation in report.invocations:
        for endpoint in set(_ENDPOINT.findall(_given(invocation))):
            spans.setdefault(endpoint, []).append(invocation)
    how: dict[str, str] = {}
    for endpoint, announced in report.announced.items():
        at = announced.at + epoch
        running = [i for i in spans.get(endpoint, []) if i.at <= at + 1e-6 and at <= i.ended + 1e-6]
        if not running:
            how[endpoint] = "unknown"
            continue
        invocation = max(running, key=lambda i: i.at)
        text = _given(invocation).replace('\\"', '"')  # SQS bodies are JSON inside JSON
        if '"trigger": "reconcile"' in text or invocation.trigger == "schedule":
            how[endpoint] = "sweep"
        elif invocation.attempt > 1:
            how[endpoint] = "retry"
        else:
            how[endpoint] = "first invocation"
    return how
