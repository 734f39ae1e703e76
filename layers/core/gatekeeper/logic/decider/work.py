"""What every step shares: a request's `Work` (its step and what the steps learnt), the step names,
and how a step runs over many requests — each failing alone (`each`), at once through the fan-out
but one after another per tenant quota item (`at_once`)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cache, partial
from typing import Literal

from gatekeeper.dal.decisions import DecisionInputs, EndpointState, Slot
from gatekeeper.logic.assessment import Assessment
from gatekeeper.models.connection import ACCEPTED_STATES, CLOSED_STATES, ConnectionRef, VpcEndpointConnection
from gatekeeper.models.decision import Decision
from gatekeeper.models.errors import ConnectionNotVisible
from gatekeeper.models.requests import DecisionRequest

# The threads a decider writes a batch's claims, records and announcement marks with: as many as the
# DynamoDB client keeps connections (botocore's max_pool_connections, 10 by default; a thread more
# would open a connection the client then throws away). A batch topped up to 100 takes ten rounds.
DECISION_WRITERS = 10

Step = Literal["read", "assess", "claim", "act", "record", "announce", "done"]
_NO_INPUTS = DecisionInputs(None, None, None, 0)

# Runs callables at once and returns when the last has; none of them raises (each catches its own).
FanOut = Callable[[Sequence[Callable[[], None]]], None]


@cache
def _writers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=DECISION_WRITERS, thread_name_prefix="decision-writes")


def all_at_once(tasks: Sequence[Callable[[], None]]) -> None:
    """The decider's default fan-out: the tasks on a pool of DECISION_WRITERS threads (I/O-bound
    DynamoDB calls; boto3 clients are thread-safe). Each runs in a copy of the caller's context, so
    what the caller's context carries (the execution role a local Lambda signs with) carries over."""
    running = [_writers().submit(contextvars.copy_context().run, task) for task in tasks]
    wait(running)  # every one ended before anything is raised: none writes behind the caller's back
    for future in running:
        future.result()


@dataclass
class Work:
    """One request on its way through a batch, and what the steps learnt about it so far."""

    request: DecisionRequest
    step: Step = "read"
    connection: VpcEndpointConnection | None = None  # as EC2 lists it (None: not listed)
    inputs: DecisionInputs = _NO_INPUTS
    assessment: Assessment | None = None
    previous: EndpointState | None = None  # the state before the claim: what a rollback restores
    claimed: EndpointState | None = None  # the state steps 5-7 carry out (a claim, then its record)
    slot: Slot | None = None
    resumed: bool = False  # carries out a dead invocation's claim, not a decision of its own
    decided_again: bool = False  # after a resume, once (see DecisionService.decide)
    # What the request came to: the decision it made; None when nothing new was decided (a
    # duplicate, a race, nothing to do); an exception when it failed (its message comes back).
    outcome: Decision | Exception | None = None

    @property
    def vpc_endpoint_id(self) -> str:
        return self.request.connection.vpc_endpoint_id

    @property
    def ref(self) -> ConnectionRef:
        return self.request.connection

    def finish(self, outcome: Decision | None = None) -> None:
        self.step, self.outcome = "done", outcome

    def fail(self, error: Exception) -> None:
        self.step, self.outcome = "done", error


def at(works: Iterable[Work], step: Step) -> list[Work]:
    return [w for w in works if w.step == step]


def each(work: Work, step: Callable[[Work], None]) -> None:
    try:
        step(work)
    except Exception as exc:  # this request's failure alone
        work.fail(exc)


def at_once(
    fan_out: FanOut, works: list[Work], step: Callable[[Work], None], lane: Callable[[Work], str | None]
) -> None:
    """`step` for each request (each failing alone), the requests at once through `fan_out`, but
    one after another within a lane: writes to one tenant's quota item. DynamoDB cancels a
    transaction that meets another one in progress on the same item (TransactionConflict, which
    botocore does not retry), so a batch never races itself for a tenant's counter."""
    lanes: dict[str, list[Work]] = {}
    for work in works:
        key = lane(work)
        lanes.setdefault(work.vpc_endpoint_id if key is None else f"quota:{key}", []).append(work)
    tasks = [partial(_each_of, in_lane, step) for in_lane in lanes.values()]
    if len(tasks) == 1:  # one request alone (or one tenant's): no thread to hand it to
        tasks[0]()
    elif tasks:
        fan_out(tasks)


def _each_of(works: list[Work], step: Callable[[Work], None]) -> None:
    for work in works:
        each(work, step)


def one_per_endpoint(works: list[Work]) -> tuple[list[Work], list[Work]]:
    """(the first request of each endpoint, the rest): a pass decides an endpoint once."""
    first: dict[str, Work] = {}
    rest: list[Work] = []
    for work in works:
        if work.vpc_endpoint_id in first:
            rest.append(work)
        else:
            first[work.vpc_endpoint_id] = work
    return list(first.values()), rest


def not_visible(ref: ConnectionRef) -> ConnectionNotVisible:
    """Describe is eventually consistent: a connection a source has just seen may not be listed yet,
    so its absence is retried, never decided on."""
    return ConnectionNotVisible(
        f"EC2 does not list {ref.vpc_endpoint_id} of {ref.service_id} (yet); the request is "
        "retried, and the reconciler finds the connection if it is still waiting"
    )


def took_effect(decision: Decision, state: str | None) -> bool:
    """After a failed or unanswered call: does EC2 show the action done (by this or an earlier try)?"""
    if decision.outcome == "accepted":
        return state in ACCEPTED_STATES
    # A reject or revoke holds once the connection is closed, whatever closed it (the consumer may
    # delete it after the Reject): recorded, never rolled back, since it may already be announced.
    return state in CLOSED_STATES


def ids_of(subject: ConnectionRef | Decision | VpcEndpointConnection) -> dict[str, str]:
    return {"vpc_endpoint_id": subject.vpc_endpoint_id, "service_id": subject.service_id}
