"""The demo's scripted scenario: seed the emulated account, play each step the real way (a
consumer's CreateVpcEndpoint, then the local Lambda service delivers what follows), and judge
every outcome against the seed's expectations — the decision, its reason, what the consumer's
EC2 shows, and which subscribers were told.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from gatekeeper.dal.decisions import DecisionStore
from gatekeeper.models.connection import ACCEPTED_STATES, PENDING_ACCEPTANCE
from gatekeeper.models.decision import Decision
from gatekeeper.models.tenant_change import CHANGE_REQUESTED, CONTROL_PLANE_SOURCE
from gatekeeper_ops.local_lambda import Invocation
from gatekeeper_ops.sandbox.account import BUILTIN_TEMPLATES
from gatekeeper_ops.sandbox.embedded import DemoProducer
from gatekeeper_ops.sandbox.seed import DemoSeed, StepSeed, SubscriberSeed

# What the consumer's own DescribeVpcEndpoints shows once a decision is carried out.
CONSUMER_STATES: dict[str, frozenset[str]] = {
    "accepted": ACCEPTED_STATES,  # pending is normal right after an accept
    "rejected": frozenset({"rejected"}),
    "revoked": frozenset({"rejected"}),
    "held": frozenset({PENDING_ACCEPTANCE}),
}


class DecisionWatch:
    """Times decisions: from the consumer's CreateVpcEndpoint (or the operator's change) to the
    moment the handler that recorded and announced the decision returned.

    Its `on_invocation` is the local Lambda service's callback; it sees every invocation. The decider
    answers a batch with its failures only, so the decisions of the requests it finished are read
    from the decisions table (`decisions`, set once the stack exists)."""

    def __init__(self) -> None:
        self.decided: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.decisions: DecisionStore | None = None
        self._seen: set[tuple[str, str]] = set()  # (endpoint, decision id) already reported

    def on_invocation(self, invocation: Invocation) -> None:
        if invocation.function != "EvaluateConnectionFunction" or self.decisions is None:
            return
        if not invocation.ok or not isinstance(invocation.event, dict):
            return
        failed = {f["itemIdentifier"] for f in (invocation.result or {}).get("batchItemFailures", [])}
        for record in invocation.event.get("Records", []):
            if record["messageId"] in failed:
                continue
            endpoint = json.loads(record["body"])["detail"]["connection"]["VpcEndpointId"]
            state = self.decisions.state(endpoint)
            if state is None or state.in_flight or (endpoint, state.decision.decision_id) in self._seen:
                continue
            self._seen.add((endpoint, state.decision.decision_id))
            decision = state.decision.model_dump(mode="json")
            self.decided[endpoint].append((time.perf_counter(), str(decision["decision"])))
            for listener in self.listeners:
                listener(endpoint, decision)

    def latency(self, endpoint: str, since: float) -> float | None:
        times = [at for at, _ in self.decided.get(endpoint, []) if at >= since]
        return min(times) - since if times else None


Status = Literal["waiting", "requested", "decided"]


@dataclass
class StepResult:
    step: StepSeed
    tenant_id: str | None
    service_key: str | None
    region: str
    status: Status = "waiting"
    endpoint: str | None = None
    decision: Decision | None = None
    latency: float | None = None
    consumer_state: str | None = None
    refused: str | None = None  # EC2's error code when it refused the CreateVpcEndpoint
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "decided" and not self.problems


@dataclass
class SubscriberResult:
    subscriber: SubscriberSeed
    queue_url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class ScenarioOutcome:
    steps: list[StepResult]
    subscribers: list[SubscriberResult]
    seconds: float

    @property
    def problems(self) -> list[str]:
        found = [f"{r.step.id}: {p}" for r in self.steps for p in r.problems]
        found += [f"{s.subscriber.name}: {p}" for s in self.subscribers for p in s.problems]
        return found

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ControlPlaneExchange:
    """One tenant change from the control plane: the event it put, the events the stack answered
    with (as a rule on the bus delivers them to the control plane's queue)."""

    sent: dict[str, Any]
    heard: list[dict[str, Any]]


ANSWERS = {"source": ["vpce.gatekeeper"], "detail-type": ["Tenant Changed", "Tenant Change Refused"]}


def seed_account(producer: DemoProducer, seed: DemoSeed) -> list[ControlPlaneExchange]:
    """The seed's templates (built-ins, as version 1) and tenants, through the stores the CLI uses;
    then the tenants the control plane onboards, each by a `Tenant Change Requested` event."""
    account = producer.account
    for name in seed.templates:
        account.push_template(BUILTIN_TEMPLATES / f"{name}.json", actor="demo-seed")
    now = datetime.now(UTC)
    for tenant in seed.tenants:
        account.add_tenant(tenant.to_tenant(producer.service_ids, now), actor="demo-seed")
    if not seed.control_plane:
        return []
    answers = account.listen("control-plane-answers", ANSWERS)
    client = account.control_plane()
    exchanges = []
    for onboarded in seed.control_plane:
        record = onboarded.to_tenant(producer.service_ids, now).model_dump(
            mode="json", exclude_none=True, exclude={"tenant_id", "version"}
        )
        change = {"action": "create", "tenant_id": onboarded.tenant_id, "tenant": record}
        request = client.put({"request_id": f"demo-onboard-{onboarded.tenant_id}", **change})
        client.wait(request.request_id)
        sent = {
            "source": CONTROL_PLANE_SOURCE,
            "detail-type": CHANGE_REQUESTED,
            "detail": request.model_dump(mode="json", exclude_none=True),
        }
        exchanges.append(ControlPlaneExchange(sent, account.heard(answers)))
    return exchanges


def why(decision: Decision) -> str:
    """One line a person reads: the condition that decided, or the guard's own message."""
    reason = decision.reasons[0] if decision.reasons else ""
    if reason == "QuotaExceeded":
        return decision.explanation[-1] if decision.explanation else reason
    for line in decision.explanation:
        if line.startswith(("Allow ", "Deny ", "Review ")) and f" {reason} matched: " in line:
            detail = line.split(" matched: ", 1)[1]
            if detail == "no condition":
                return f"no Deny or Review statement of {decision.template} matched"
            return detail
    return decision.explanation[0] if decision.explanation else reason


class ScriptedScenario:
    """Plays the seed's scenario on a seeded producer; `on_change` sees the rows after each move."""

    def __init__(
        self,
        producer: DemoProducer,
        seed: DemoSeed,
        watch: DecisionWatch,
        on_change: Callable[[list[StepResult]], None] = lambda rows: None,
    ) -> None:
        self.producer = producer
        self.account = producer.account
        self.seed = seed
        self.watch = watch
        self.on_change = on_change
        self.decisions = DecisionStore(
            self.account.client("dynamodb"), self.account.stack.outputs["DecisionsTableName"]
        )
        self.rows = [self._row(step) for step in seed.scenario]
        self._by_id = {row.step.id: row for row in self.rows}

    def _row(self, step: StepSeed) -> StepResult:
        if step.is_request:
            assert step.account is not None
            return StepResult(
                step, self.seed.tenant_of(step.account), step.service, step.region or self.seed.region
            )
        earlier = next(s for s in self.seed.scenario if s.id == step.endpoint_of)
        return StepResult(step, step.tenant_change, earlier.service, earlier.region or self.seed.region)

    def subscribe(self) -> list[SubscriberResult]:
        return [
            SubscriberResult(s, self.account.subscribe_decisions(s.name, dict(s.filter_policy)))
            for s in self.seed.subscribers
        ]

    def play(self) -> ScenarioOutcome:
        started = time.perf_counter()
        subscribers = self.subscribe()
        self.on_change(self.rows)
        for row in self.rows:
            if row.step.is_request:
                self._request(row)
            elif row.step.registers:
                self._register(row)
            else:
                self._suspend(row)
            self.on_change(self.rows)
        self._consumers_settled()
        self.on_change(self.rows)
        for subscriber in subscribers:
            self._check_subscriber(subscriber)
        return ScenarioOutcome(self.rows, subscribers, time.perf_counter() - started)

    # -- steps ---------------------------------------------------------------------------------
    def _request(self, row: StepResult) -> None:
        step = row.step
        assert step.account is not None
        assert step.service is not None
        consumer = self.account.consumer(step.account, row.region)
        service = self.producer.services[step.service]
        since = time.perf_counter()
        try:
            row.endpoint = consumer.request_endpoint(service, service_region=self.seed.region)
        except ClientError as exc:
            self._refused(row, str(exc.response.get("Error", {}).get("Code", "?")))
            return
        if step.expect.decision == "refused":
            row.problems.append("EC2 let the consumer create its endpoint; expected it refused")
        row.status = "requested"
        self.on_change(self.rows)
        self.account.settle()
        self._judge(row, since)
        row.consumer_state = consumer.endpoint_state(row.endpoint)
        self._check_consumer_state(row)

    def _refused(self, row: StepResult, code: str) -> None:
        row.status, row.refused = "decided", code
        expect = row.step.expect
        if expect.decision != "refused":
            row.problems.append(
                f"EC2 refused the consumer's CreateVpcEndpoint ({code}); expected {expect.describe()}"
            )
        elif expect.reason and expect.reason != code:
            row.problems.append(f"EC2 refused with {code}, expected {expect.reason}")

    def _suspend(self, row: StepResult) -> None:
        step = row.step
        assert step.suspend is not None
        assert step.endpoint_of is not None
        earlier = self._by_id[step.endpoint_of]
        row.endpoint = earlier.endpoint
        tenants = self.account.tenants
        since = time.perf_counter()
        tenants.update(tenants.get(step.suspend).model_copy(update={"status": "suspended"}), actor="demo")
        row.status = "requested"
        self.on_change(self.rows)
        self._settle_tenant_change(row, earlier, since)

    def _register(self, row: StepResult) -> None:
        """The tenant registers an earlier step's endpoint through the control plane (an update of
        its record's registered_endpoints); tenant sync then requests its held request again."""
        step = row.step
        assert step.registers is not None
        assert step.endpoint_of is not None
        earlier = self._by_id[step.endpoint_of]
        row.endpoint = earlier.endpoint
        current = self.account.tenants.get(step.registers)
        since = time.perf_counter()
        registered = [*current.registered_endpoints, row.endpoint or ""]
        self.account.control_plane().update(
            step.registers, current.version, {"registered_endpoints": registered}
        )
        row.status = "requested"
        self.on_change(self.rows)
        self._settle_tenant_change(row, earlier, since)

    def _settle_tenant_change(self, row: StepResult, earlier: StepResult, since: float) -> None:
        """Deliver what a tenant change set off; judge its decision and what the consumer sees."""
        self.account.settle()
        self._judge(row, since)
        if row.endpoint and earlier.step.account:
            consumer = self.account.consumer(earlier.step.account, earlier.region)
            row.consumer_state = consumer.endpoint_state(row.endpoint)
            self._check_consumer_state(row)

    def _judge(self, row: StepResult, since: float) -> None:
        expect = row.step.expect
        recorded = self.decisions.decisions_for_endpoint(row.endpoint) if row.endpoint else []
        if not recorded:
            row.status = "decided"
            row.problems.append(f"no decision recorded; expected {expect.describe()}")
            return
        row.decision = max(recorded, key=lambda d: d.decided_at)
        row.latency = self.watch.latency(row.endpoint or "", since)
        row.status = "decided"
        decision = row.decision
        if decision.outcome != expect.decision:
            row.problems.append(f"decision {decision.outcome}, expected {expect.describe()}")
        elif expect.reason and expect.reason not in decision.reasons:
            row.problems.append(f"reasons {list(decision.reasons)}, expected {expect.reason}")
        if decision.tenant_id != row.tenant_id:
            row.problems.append(f"tenant {decision.tenant_id}, expected {row.tenant_id}")

    def _check_consumer_state(self, row: StepResult) -> None:
        allowed = CONSUMER_STATES[row.step.expect.decision]
        if row.consumer_state not in allowed:
            row.problems.append(
                f"consumer sees {row.consumer_state}, expected {' or '.join(sorted(allowed))}"
            )

    def _consumers_settled(self) -> None:
        """What each consumer sees at the end. After an accept it sees `pending` once; by now every
        accepted endpoint that no later step took away must be `available`."""
        taken_away = {r.step.endpoint_of for r in self.rows if r.step.endpoint_of and r.status == "decided"}
        for row in self.rows:
            accepted = row.decision is not None and row.decision.outcome == "accepted"
            if not (row.step.is_request and accepted and row.endpoint):
                continue
            assert row.step.account is not None
            assert row.endpoint is not None
            consumer = self.account.consumer(row.step.account, row.region)
            row.consumer_state = consumer.endpoint_state(row.endpoint)
            if row.step.id not in taken_away and row.consumer_state != "available":
                row.problems.append(f"consumer endpoint is {row.consumer_state}, expected available")

    # -- subscribers -----------------------------------------------------------------------------
    def _check_subscriber(self, subscriber: SubscriberResult) -> None:
        subscriber.received = self.account.received(subscriber.queue_url)
        expected: list[tuple[str, str]] = []
        for row in self.rows:
            if row.status != "decided" or row.endpoint is None:
                continue
            attributes = {
                "decision": row.step.expect.decision,
                "tenant_id": row.tenant_id or "unknown",
                "service_id": self.producer.service_ids[row.service_key or ""],
            }
            if subscriber.subscriber.matches(attributes):
                expected.append((row.endpoint, row.step.expect.decision))
        got = [(str(d.get("vpc_endpoint_id")), str(d.get("decision"))) for d in subscriber.received]
        for item in expected:
            if item not in got:
                subscriber.problems.append(f"did not receive {item[1]} for {item[0]}")
        for item in got:
            if item not in expected:
                subscriber.problems.append(f"received {item[1]} for {item[0]}, which its filter excludes")
        duplicates = {item for item in got if got.count(item) > 1}
        for item in sorted(duplicates):
            subscriber.problems.append(f"received {item[1]} for {item[0]} {got.count(item)} times")
