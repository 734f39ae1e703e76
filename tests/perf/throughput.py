"""Decisions per second and per-decision latency: the project (ingest → bus → evaluate, policy,
quota, exactly-once, SNS + bus announcements) against the plain baseline (tests/perf/baseline.py),
on the same embedded stack, the same workload, in the same process, runs alternating A B A B.

The workload: entitled, suspended and unknown accounts (6 : 2 : 2) asking for endpoints, so both
implementations accept and reject (the baseline has no policy to hold with).
- burst phase (throughput): requests made `burst` at a time (the queue's batch size), then
  delivered until the stack is quiet, including what the decisions set off (EC2's Accept/Reject
  notifications, closes, quota releases): that work is part of what a decision costs.
- single phase (latency): one request at a time, delivered until quiet.
The consumers' CreateVpcEndpoint calls are not timed. A decision's moment is its SNS Publish
(both implementations publish exactly one per decision); its latency runs from the start of
delivery of its burst, so in the single phase it is the decision path end to end.
Times:
- wall: delivery until quiet, including the local Lambda service's own work (SQS receive and
  delete, DynamoDB stream polls, moto's EventBridge → SQS target delivery);
- handler: the handler invocations alone (their AWS calls included);
- in AWS: inside the handlers' calls to the emulated AWS (moto + emulator; nothing like AWS's
  latency, but the same emulator for both).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.perf import baseline
from tests.perf.harness import ENTITLED, SUSPENDED, UNKNOWN, BenchStack

# One burst's mix: 6 entitled, 2 suspended, 2 unknown, interleaved.
MIX = (ENTITLED, ENTITLED, SUSPENDED, ENTITLED, UNKNOWN, ENTITLED, ENTITLED, SUSPENDED, ENTITLED, UNKNOWN)
EXPECTED = {ENTITLED: "accepted", SUSPENDED: "rejected", UNKNOWN: "rejected"}


def workload(requests: int) -> list[str]:
    return [MIX[i % len(MIX)] for i in range(requests)]


@dataclass
class Run:
    implementation: str
    decisions: int = 0
    wall: float = 0.0
    handler: float = 0.0
    in_aws: float = 0.0
    calls: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)  # calls
    seconds_by_operation: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)

    def add(self, other: Run) -> None:
        self.decisions += other.decisions
        self.wall += other.wall
        self.handler += other.handler
        self.in_aws += other.in_aws
        self.calls += other.calls
        self.by_operation.update(other.by_operation)
        self.seconds_by_operation.update(other.seconds_by_operation)
        self.latencies += other.latencies
        self.outcomes.update(other.outcomes)
        self.wrong += other.wrong

    def per_second(self, seconds: float) -> float:
        return self.decisions / seconds if seconds else math.nan

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in seconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class DecisionClock:
    """When each decision was published (SNS Publish to the decision topic), and what it was."""

    def __init__(self, topic_arn: str) -> None:
        self.topic_arn = topic_arn
        self.at: dict[str, tuple[float, str]] = {}

    def __call__(self, operation: str, params: dict[str, Any]) -> None:
        if params.get("TopicArn") != self.topic_arn:
            return
        if operation == "sns:Publish":
            messages = [params]
        elif operation == "sns:PublishBatch":  # the decider's: its batch's decisions, ten a call
            messages = list(params["PublishBatchRequestEntries"])
        else:
            return
        for message in messages:
            document = json.loads(message["Message"])
            decision = message["MessageAttributes"]["decision"]["StringValue"]
            self.at.setdefault(document["vpc_endpoint_id"], (time.perf_counter(), decision))


@dataclass
class Contender:
    """One implementation: how to deliver until quiet, and the seconds its handlers have run so far."""

    name: str
    drain: Callable[[], object]
    handler_seconds: Callable[[], float]


class Match:
    """The project and the baseline on one stack, sharing the consumers and the decision clock."""

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        producer = stack.producer
        self.clock = DecisionClock(producer.stack.outputs["DecisionTopicArn"])
        stack.calls.listeners.append(self.clock)
        lambdas = producer.lambdas
        self.project = Contender(
            "project",
            lambdas.drain,
            lambda: sum(invocation.seconds for invocation in lambdas.invocations),
        )
        baseline.create_tables(
            producer.client("dynamodb"),
            {ENTITLED: ("bench-entitled", "active"), SUSPENDED: ("bench-suspended", "suspended")},
        )
        plain = baseline.PlainGatekeeper.from_default_session(producer.stack.outputs["DecisionTopicArn"])
        delivery = baseline.SqsDelivery(
            producer.client("sqs"), producer.stack.outputs["NotificationQueueUrl"], plain.handler
        )
        self.baseline = Contender(
            "baseline", delivery.drain, lambda: sum(i.seconds for i in delivery.invocations)
        )

    def run(self, contender: Contender, accounts: Sequence[str], burst: int) -> Run:
        run = Run(contender.name)
        calls = self.stack.calls
        handler_before, calls_before, aws_before = contender.handler_seconds(), calls.total, calls.seconds
        counts_before, seconds_before = Counter(calls.counts), Counter(calls.seconds_by_operation)
        for first in range(0, len(accounts), burst):
            chunk = accounts[first : first + burst]
            endpoints = {
                self.stack.consumer(account).request(self.stack.service_name): account for account in chunk
            }
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                contender.drain()
            run.wall += time.perf_counter() - started
            for endpoint, account in endpoints.items():
                if endpoint not in self.clock.at:
                    run.wrong.append(f"{endpoint} ({account}) undecided")
                    continue
                at, decision = self.clock.at[endpoint]
                run.decisions += 1
                run.latencies.append(at - started)
                run.outcomes[decision] += 1
                if decision != EXPECTED[account]:
                    run.wrong.append(f"{endpoint} ({account}) {decision}, expected {EXPECTED[account]}")
        run.handler = contender.handler_seconds() - handler_before
        run.calls = calls.total - calls_before
        run.in_aws = calls.seconds - aws_before
        run.by_operation = calls.counts - counts_before
        run.seconds_by_operation = calls.seconds_by_operation - seconds_before
        return run

    def alternate(self, accounts: Sequence[str], burst: int, rounds: int) -> tuple[Run, Run]:
        """Runs A B A B …; each implementation's runs summed."""
        project, plain = Run("project"), Run("baseline")
        for _ in range(rounds):
            project.add(self.run(self.project, accounts, burst))
            plain.add(self.run(self.baseline, accounts, burst))
        return project, plain


@dataclass
class Comparison:
    burst: tuple[Run, Run]  # project, baseline
    single: tuple[Run, Run]

    @property
    def problems(self) -> list[str]:
        return [f"{run.implementation}: {w}" for run in (*self.burst, *self.single) for w in run.wrong]


def compare(stack: BenchStack, requests: int = 30, singles: int = 15, rounds: int = 2) -> Comparison:
    match = Match(stack)
    for contender in (match.project, match.baseline):  # warm: clients built, caches filled
        match.run(contender, workload(len(MIX)), burst=len(MIX))
    return Comparison(
        burst=match.alternate(workload(requests), burst=len(MIX), rounds=rounds),
        single=match.alternate(workload(singles), burst=1, rounds=rounds),
    )


def print_comparison(result: Comparison, rounds: int) -> None:
    (project, plain), (project_single, plain_single) = result.burst, result.single
    print(
        f"Throughput, project vs plain baseline (tests/perf/baseline.py), same embedded stack, "
        f"{rounds} rounds A B:"
    )
    print(
        f"  burst phase: {project.decisions // rounds} requests a round in bursts of {len(MIX)} "
        "(6 entitled : 2 suspended : 2 unknown); ratio = project / baseline"
    )
    header = f"  {'':34}{'project':>12}{'baseline':>12}{'ratio':>9}"
    print(header)

    def row(label: str, a: float, b: float, fmt: str = "{:12.1f}") -> None:
        ratio = a / b if b else math.nan
        print(f"  {label:34}" + fmt.format(a) + fmt.format(b) + f"{ratio:8.2f}x")

    row("decisions/s (wall)", project.per_second(project.wall), plain.per_second(plain.wall))
    row("decisions/s (handler time)", project.per_second(project.handler), plain.per_second(plain.handler))
    per = max(project.decisions, 1), max(plain.decisions, 1)
    row("ms per decision (wall)", project.wall / per[0] * 1000, plain.wall / per[1] * 1000)
    row("  in the handlers", project.handler / per[0] * 1000, plain.handler / per[1] * 1000)
    row("    inside emulated AWS calls", project.in_aws / per[0] * 1000, plain.in_aws / per[1] * 1000)
    row(
        "    the handlers' own Python",
        (project.handler - project.in_aws) / per[0] * 1000,
        (plain.handler - plain.in_aws) / per[1] * 1000,
    )
    row(
        "  local delivery (SQS, streams, bus)",
        (project.wall - project.handler) / per[0] * 1000,
        (plain.wall - plain.handler) / per[1] * 1000,
    )
    row("AWS API calls per decision", project.calls / per[0], plain.calls / per[1], "{:12.2f}")
    print(f"  burst phase, per decision by operation:{'project':>17}{'baseline':>18}")
    operations = sorted(
        set(project.by_operation) | set(plain.by_operation), key=lambda o: -project.seconds_by_operation[o]
    )
    for operation in operations:
        cells = []
        for run, count in ((project, per[0]), (plain, per[1])):
            spent = run.seconds_by_operation[operation] / count * 1000
            cells.append(f"{run.by_operation[operation] / count:7.2f} calls {spent:5.1f} ms")
        print(f"    {operation:40}" + "".join(cells))
    n = project_single.decisions
    print(f"  single phase: {n // rounds} requests a round, one at a time (latency, n={n} each)")
    for q in (50, 99):
        row(
            f"p{q} decision latency ms",
            project_single.percentile(q) * 1000,
            plain_single.percentile(q) * 1000,
        )
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted((project.outcomes + project_single.outcomes).items()))
    print(f"  decisions (each implementation): {outcomes}")
    if result.problems:
        print(f"  PROBLEMS: {len(result.problems)}, e.g. {result.problems[0]}")
    print(
        "  The issue's target is project ≥ 0.8x the baseline's decisions/s; ratio < 1 means the "
        "project is slower."
    )
