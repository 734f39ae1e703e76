"""AWS API calls per decision outcome, end to end in the handlers: the notification's ingest, the
bus, the decision (EC2, DynamoDB) and its announcements (SNS + bus), and everything the decision
sets off until the stack is quiet (EC2's Accept/Reject notification, the Closed event, the quota
release). Each outcome is requested twice and the second request counted: a warm container, its
clients built and its caches filled, as most requests find it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tests.perf.harness import ENTITLED, OTHER_REGION, REGION, SUSPENDED, UNKNOWN, BenchStack


@dataclass(frozen=True)
class Outcome:
    label: str
    account: str
    expected: str  # the decision the request must get
    consumer_region: str = REGION


OUTCOMES = (
    Outcome("accepted", ENTITLED, "accepted"),
    Outcome("rejected: suspended tenant (policy Deny)", SUSPENDED, "rejected"),
    Outcome("rejected: unknown account", UNKNOWN, "rejected"),
    Outcome("held: other region (policy Review)", ENTITLED, "held", consumer_region=OTHER_REGION),
)


def request_and_settle(stack: BenchStack, outcome: Outcome) -> str:
    """One request of this outcome, delivered until quiet; checks it got the expected decision."""
    consumer = stack.consumer(outcome.account, outcome.consumer_region)
    cross_region = REGION if outcome.consumer_region != REGION else None
    endpoint = consumer.request(stack.service_name, service_region=cross_region)
    stack.settle()
    decisions = stack.producer.decisions.decisions_for_endpoint(endpoint)
    # The serialised field, "decision" in every document (the attribute's name may change).
    got = decisions[-1].model_dump(mode="json")["decision"] if decisions else "undecided"
    if got != outcome.expected:
        raise AssertionError(f"{outcome.label}: {endpoint} was {got}, expected {outcome.expected}")
    return endpoint


def calls_per_outcome(stack: BenchStack) -> dict[str, Counter[str]]:
    measured: dict[str, Counter[str]] = {}
    for outcome in OUTCOMES:
        request_and_settle(stack, outcome)  # warm
        stack.calls.clear()
        request_and_settle(stack, outcome)
        measured[outcome.label] = Counter(stack.calls.counts)
    return measured


def print_calls_per_outcome(measured: dict[str, Counter[str]]) -> None:
    operations = sorted({name for counts in measured.values() for name in counts})
    labels = list(measured)
    short = ["accepted", "rej:suspended", "rej:unknown", "held"][: len(labels)]
    print(
        "AWS API calls per outcome, end to end in the handlers (a warm container; ingest → bus → "
        "evaluate → SNS + bus, and what the decision sets off until quiet):"
    )
    for label, name in zip(labels, short, strict=True):
        print(f"  {name:14} = {label}")
    print(f"  {'operation':44}" + "".join(f"{name:>15}" for name in short))
    for operation in operations:
        print(f"  {operation:44}" + "".join(f"{measured[label][operation]:>15}" for label in labels))
    print(f"  {'TOTAL':44}" + "".join(f"{sum(measured[label].values()):>15}" for label in labels))
