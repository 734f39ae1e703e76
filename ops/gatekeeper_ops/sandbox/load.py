"""`--requests N`: many consumer accounts ask for endpoints at once; how fast are they decided?

Entitled tenants, suspended tenants and unknown accounts (the seed's `load` mix) each make a
few requests, shuffled together. A closed loop keeps at most `in_flight` requests undecided —
like that many tenants clicking "create endpoint" at the same moment — while the local Lambda
service delivers (one invocation at a time, as a function with reserved concurrency 1 would).
Every request must get the decision its kind implies. An unknown account is not an allowed
principal of the service (tenant sync allows only tenants' principals), so EC2 refuses its
CreateVpcEndpoint outright: `refused`, with no decision to wait for.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import boto3
import botocore.session
from botocore.exceptions import ClientError

from gatekeeper.models.tenant import Tenant
from gatekeeper_ops.emulator.provisioning import (
    consumer_session,
    create_consumer_network,
    create_interface_endpoint,
)
from gatekeeper_ops.sandbox.embedded import DemoProducer
from gatekeeper_ops.sandbox.scenario import DecisionWatch
from gatekeeper_ops.sandbox.seed import DemoSeed

Kind = Literal["entitled", "suspended", "unknown"]
EXPECTED: dict[Kind, str] = {"entitled": "accepted", "suspended": "rejected", "unknown": "refused"}
_FIRST_ACCOUNT: dict[Kind, int] = {
    "entitled": 700_000_000_000,
    "suspended": 710_000_000_000,
    "unknown": 720_000_000_000,
}
# Rounds of the local Lambda service that deliver nothing before undecided requests count as lost.
_IDLE_ROUNDS = 50


@dataclass
class LoadConsumer:
    account_id: str
    kind: Kind
    ec2: Any
    network: Any


@dataclass
class LoadRequest:
    consumer: LoadConsumer
    started: float = 0.0
    endpoint: str | None = None
    latency: float | None = None
    decision: str | None = None

    @property
    def expected(self) -> str:
        return EXPECTED[self.consumer.kind]


@dataclass
class LoadReport:
    requests: list[LoadRequest]
    in_flight: int
    seconds: float  # first CreateVpcEndpoint → last decision
    setup_seconds: float
    durations: dict[str, list[float]] = field(default_factory=dict)  # function → seconds, in order
    invocation_errors: list[str] = field(default_factory=list)  # of the invocations that raised
    rereads: int = 0  # the decider's re-read rounds (a batch's unlisted endpoints together; pauses not slept)

    def work_trend(self, function: str) -> tuple[float, float]:
        """Mean duration of the first and the last tenth of a function's invocations."""
        spent = self.durations.get(function, [])
        tenth = max(1, len(spent) // 10)
        if not spent:
            return math.nan, math.nan
        return statistics.fmean(spent[:tenth]), statistics.fmean(spent[-tenth:])

    @property
    def decided(self) -> list[LoadRequest]:
        """Requests the gatekeeper decided (not the ones EC2 refused before they reached it)."""
        return [r for r in self.requests if r.decision not in (None, "refused")]

    @property
    def refused(self) -> list[LoadRequest]:
        return [r for r in self.requests if r.decision == "refused"]

    @property
    def per_second(self) -> float:
        return len(self.decided) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of decision latency, in seconds."""
        latencies = sorted(r.latency for r in self.decided if r.latency is not None)
        if not latencies:
            return math.nan
        return latencies[max(0, math.ceil(q / 100 * len(latencies)) - 1)]

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(r.decision or "undecided" for r in self.requests)

    @property
    def problems(self) -> list[str]:
        found: list[str] = []
        wrong = [r for r in self.decided + self.refused if r.decision != r.expected]
        if wrong:
            sample = wrong[0]
            found.append(
                f"{len(wrong)} requests got an unexpected decision (e.g. {sample.endpoint} of "
                f"{sample.consumer.kind} account {sample.consumer.account_id}: {sample.decision}, "
                f"expected {sample.expected})"
            )
        undecided = len(self.requests) - len(self.decided) - len(self.refused)
        if undecided:
            found.append(f"{undecided} requests were never decided")
        return found


def _split(total: int, mix: dict[Kind, float]) -> dict[Kind, int]:
    """`total` shared by the mix, largest remainder first, so the parts add up exactly."""
    exact = {kind: total * share for kind, share in mix.items()}
    counts = {kind: math.floor(value) for kind, value in exact.items()}
    for kind in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[
        : total - sum(counts.values())
    ]:
        counts[kind] += 1
    return counts


class LoadScenario:
    def __init__(
        self, producer: DemoProducer, seed: DemoSeed, watch: DecisionWatch, *, requests: int, in_flight: int
    ):
        self.producer = producer
        self.seed = seed
        self.watch = watch
        self.total = requests
        self.in_flight = max(1, in_flight)
        # Parsing botocore's EC2 model per consumer session is the slow part of making one; share it.
        self._loader = botocore.session.get_session().get_component("data_loader")

    # -- setup -------------------------------------------------------------------------------
    def prepare(
        self, on_consumer: Callable[[int, int], None] = lambda done, total: None
    ) -> list[LoadRequest]:
        """Tenants for the load, a consumer network per account, and the shuffled requests."""
        load = self.seed.load
        counts = _split(self.total, dict(load.mix))
        accounts: dict[Kind, list[str]] = {
            kind: [str(_FIRST_ACCOUNT[kind] + i) for i in range(math.ceil(count / load.requests_per_account))]
            for kind, count in counts.items()
        }
        primary = self.producer.account.service.service_id
        tenants = self.producer.account.tenants
        now = datetime.now(UTC)
        tenant_kinds: tuple[Kind, ...] = ("entitled", "suspended")
        for kind in tenant_kinds:
            for index, account in enumerate(accounts[kind]):
                tenants.create(
                    Tenant(
                        tenant_id=f"load-{kind}-{index:04d}",
                        display_name=f"Load {kind} {index}",
                        status="active" if kind == "entitled" else "suspended",
                        principals=(account,),
                        services=(primary,),
                        template=load.template,
                        max_endpoints=load.requests_per_account,
                    ),
                    actor="demo-load",
                    at=now,
                )
        all_accounts = [(kind, account) for kind, ids in accounts.items() for account in ids]
        consumers: dict[Kind, list[LoadConsumer]] = {kind: [] for kind in accounts}
        sts = self.producer.account.client("sts")
        for done, (kind, account) in enumerate(all_accounts, start=1):
            consumers[kind].append(self._consumer(sts, account, kind))
            on_consumer(done, len(all_accounts))
        requests = [
            LoadRequest(consumers[kind][i // load.requests_per_account])
            for kind, count in counts.items()
            for i in range(count)
        ]
        random.Random(len(requests)).shuffle(requests)  # noqa: S311 - a reproducible mix, not a secret
        self.producer.account.settle()  # what creating tenants sets off, before the clock runs
        return requests

    def _consumer(self, sts: Any, account: str, kind: Kind) -> LoadConsumer:
        botocore_session = botocore.session.Session()
        botocore_session.register_component("data_loader", self._loader)
        session: boto3.Session = consumer_session(
            sts, account, region_name=self.seed.region, botocore_session=botocore_session
        )
        ec2 = session.client("ec2")
        return LoadConsumer(account, kind, ec2, create_consumer_network(ec2))

    # -- the run -------------------------------------------------------------------------------
    def run(
        self, requests: list[LoadRequest], on_decided: Callable[[int], None] = lambda count: None
    ) -> LoadReport:
        lambdas = self.producer.account.lambdas
        service_name = self.producer.account.service.service_name
        first_invocation = len(lambdas.invocations)
        waiting = deque(requests)
        open_requests: dict[str, LoadRequest] = {}
        idle = 0
        started = time.perf_counter()
        last = started
        while waiting or open_requests:
            while waiting and len(open_requests) < self.in_flight:
                request = waiting.popleft()
                request.started = time.perf_counter()
                try:
                    request.endpoint = create_interface_endpoint(
                        request.consumer.ec2, service_name, request.consumer.network
                    )
                except ClientError:
                    request.decision, request.latency = "refused", time.perf_counter() - request.started
                    continue
                open_requests[request.endpoint] = request
            delivered = lambdas.pump()
            newly = 0
            for endpoint in [e for e in open_requests if e in self.watch.decided]:
                request = open_requests.pop(endpoint)
                at, request.decision = self.watch.decided[endpoint][0]
                request.latency = at - request.started
                last = max(last, at)
                newly += 1
            if newly:
                on_decided(newly)
            idle = 0 if delivered else idle + 1
            if idle > _IDLE_ROUNDS:
                break  # nothing moves: the rest are lost; the report says so
        lambdas.drain()  # what the decisions set off (Reject → Closed → quota release), untimed
        report = LoadReport(requests, self.in_flight, last - started, 0.0)
        for invocation in lambdas.invocations[first_invocation:]:
            report.durations.setdefault(invocation.function, []).append(invocation.seconds)
            if not invocation.ok:
                report.invocation_errors.append(invocation.error or "")
        return report
