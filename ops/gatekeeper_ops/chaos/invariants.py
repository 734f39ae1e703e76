"""What must hold after a chaos run has settled, read from EC2, the DecisionsTable and what the
subscribers of the decision topic and of the bus's `Endpoint Connection Decided` events received.

Each invariant names the endpoints (or tenants) that break it, so a failure can be followed up.
Announcements are at-least-once: every copy a subscriber received is kept and counted (raw copies
per 1,000 decisions), and the delivery contract is checked on them — each recorded decision at
least once on each channel, every copy of it the same `decision_id` and the same body, nothing
announced unrecorded. A second `decision_id` for one (endpoint, outcome) is a second decision.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from gatekeeper.dal.decisions import FINAL, IN_FLIGHT, REFUSALS
from gatekeeper.models.connection import ACCEPTED_STATES, PENDING_ACCEPTANCE
from gatekeeper.models.decision import Decision
from gatekeeper_ops.chaos.workload import SUSPENDED_MID_RUN, Workload

_ENDPOINT = re.compile(r"\bvpce-[0-9a-f]{8,17}\b")
CHANNELS = ("sns", "bus")


@dataclass(frozen=True)
class Copy:
    """One announcement as its subscriber received it: the decision document (SNS's `Message`, the
    event's `detail`) and, on SNS, the `decision_id` message attribute ("" when missing; an event
    has no attribute, None)."""

    body: dict[str, Any]
    attribute: str | None = None

    @property
    def decision_id(self) -> str | None:
        value = self.body.get("decision_id")
        return str(value) if value else None

    @property
    def endpoint(self) -> str:
        return str(self.body.get("vpc_endpoint_id"))

    @property
    def outcome(self) -> str:
        return str(self.body.get("decision"))


@dataclass
class Observations:
    connections: dict[str, dict[str, Any]]  # endpoint → DescribeVpcEndpointConnections item
    items: list[dict[str, Any]]  # the DecisionsTable, decoded
    sns_messages: list[dict[str, Any]]  # every SNS message the topic's subscriber received
    bus_events: list[dict[str, Any]]  # every `Endpoint Connection Decided` event the rule delivered
    dead_letters: dict[str, list[str]]  # DLQ output name → message bodies

    def __post_init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.records: list[Decision] = []
        self.counters: dict[str, int] = {}
        self.slots: dict[str, set[str]] = defaultdict(set)
        self.reasons: Counter[str] = Counter()  # "outcome Reason+Reason" of every decision record
        for item in self.items:
            pk, sk = str(item["pk"]), str(item["sk"])
            if pk.startswith("ENDPOINT#") and sk == "STATE":
                self.states[pk.removeprefix("ENDPOINT#")] = item
            elif pk.startswith("ENDPOINT#") and sk.startswith("DECISION#"):
                decision = Decision.model_validate(_json(item["decision"]))
                self.records.append(decision)
                self.reasons[f"{decision.outcome} {'+'.join(decision.reasons)}"] += 1
            elif pk.startswith("TENANT#") and sk == "QUOTA":
                self.counters[pk.removeprefix("TENANT#")] = int(item.get("active", 0))
            elif pk.startswith("TENANT#") and sk.startswith("SLOT#"):
                self.slots[pk.removeprefix("TENANT#")].add(sk.removeprefix("SLOT#"))
        # Every copy, not a set: a duplicate is counted (and must match its decision), never merged.
        self.copies: dict[str, list[Copy]] = {
            "sns": [Copy(_json(m["Message"]), _attribute(m, "decision_id")) for m in self.sns_messages],
            "bus": [Copy(_json(e["detail"])) for e in self.bus_events],
        }

    def ec2_state(self, endpoint: str) -> str:
        raw = self.connections.get(endpoint)
        return str(raw["VpcEndpointState"]) if raw else "absent"

    def status(self, endpoint: str) -> str | None:
        state = self.states.get(endpoint)
        return str(state["status"]) if state else None

    def outcomes(self, endpoint: str) -> set[str]:
        return {d.outcome for d in self.records if d.vpc_endpoint_id == endpoint}

    def per_thousand(self, count: int) -> float:
        """`count` per 1,000 recorded decisions."""
        return 1000 * count / max(1, len(self.records))

    def extra_copies(self, channel: str) -> int:
        """Copies beyond the first of each decision: what at-least-once delivery added."""
        copies = self.copies[channel]
        return len(copies) - len({c.decision_id for c in copies})


KEYS = (
    "decided",
    "no-claims-in-flight",
    "ec2-agrees",
    "one-decision",
    "announced",
    "quota",
    "policy",
    "dead-letters",
)


@dataclass
class Invariant:
    key: str  # one of KEYS
    name: str
    offenders: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.offenders

    def message(self, limit: int = 25) -> str:
        shown = ", ".join(self.offenders[:limit])
        more = f" (+{len(self.offenders) - limit} more)" if len(self.offenders) > limit else ""
        return f"{self.name}: {len(self.offenders)} offender(s): {shown}{more}. {self.detail}".strip()


def check(workload: Workload, seen: Observations) -> list[Invariant]:
    ours = {r.endpoint: r for r in workload.requests if r.endpoint}
    found = [
        _decided(ours, seen),
        _no_claims_in_flight(seen),
        _ec2_agrees(ours, seen),
        _one_decision(seen),
        _announced(seen),
        _quota(workload, seen),
        _policy(workload, ours, seen),
    ]
    found.append(_dead_letters(found, seen))
    return found


def _decided(ours: dict[str, Any], seen: Observations) -> Invariant:
    """Every request not deleted by its consumer is decided; a held one has its state and record."""
    found = Invariant("decided", "every connection decided (none left pendingAcceptance unless held)")
    for endpoint in sorted(ours):
        if seen.ec2_state(endpoint) != "pendingAcceptance":
            continue
        if seen.status(endpoint) == "held" and "held" in seen.outcomes(endpoint):
            continue
        found.offenders.append(f"{endpoint} (state={seen.status(endpoint)})")
    return found


def _no_claims_in_flight(seen: Observations) -> Invariant:
    found = Invariant("no-claims-in-flight", "no claim left in accepting/rejecting/revoking")
    found.offenders = [
        f"{endpoint} ({state['status']})"
        for endpoint, state in sorted(seen.states.items())
        if state["status"] in IN_FLIGHT
    ]
    return found


def _ec2_agrees(ours: dict[str, Any], seen: Observations) -> Invariant:
    """No effect in EC2 without its record, no recorded effect missing from EC2."""
    found = Invariant("ec2-agrees", "EC2 agrees with the decision state and records")
    for endpoint in sorted(set(ours) | set(seen.connections)):
        ec2, status, outcomes = seen.ec2_state(endpoint), seen.status(endpoint), seen.outcomes(endpoint)
        if ec2 in ACCEPTED_STATES and not (status == "accepted" and "accepted" in outcomes):
            found.offenders.append(f"{endpoint} ({ec2} in EC2, state={status}, records={sorted(outcomes)})")
        elif ec2 == "rejected" and not (status in REFUSALS and status in outcomes):
            found.offenders.append(
                f"{endpoint} (rejected in EC2, state={status}, records={sorted(outcomes)})"
            )
        elif ec2 == PENDING_ACCEPTANCE and status in FINAL:
            found.offenders.append(f"{endpoint} (pendingAcceptance in EC2, state={status})")
    found.detail = "(pending/available needs state+record accepted; rejected needs rejected/revoked)"
    return found


def _one_decision(seen: Observations) -> Invariant:
    """One decision per (endpoint, outcome): one record, and one `decision_id` in what each channel
    delivered. Copies of it are deliveries; a second id is a second decision, whatever its time."""
    found = Invariant("one-decision", "exactly one decision per (endpoint, outcome)")
    decided: dict[str, list[tuple[str, str, str | None]]] = {
        "records": [(d.vpc_endpoint_id, d.outcome, d.decision_id) for d in seen.records]
    }
    decided |= {
        name: [(c.endpoint, c.outcome, c.decision_id) for c in seen.copies[name]] for name in CHANNELS
    }
    for label, triples in decided.items():
        ids: dict[tuple[str, str], set[str | None]] = defaultdict(set)
        for endpoint, outcome, decision_id in triples:
            ids[(endpoint, outcome)].add(decision_id)
        found.offenders += [
            f"{endpoint} ({label}: {len(different)} different {outcome})"
            for (endpoint, outcome), different in sorted(ids.items())
            if len(different) > 1
        ]
    return found


def _announced(seen: Observations) -> Invariant:
    """The delivery contract, on every copy received: each recorded decision at least once on SNS and
    on the bus; each copy carries a recorded `decision_id` (on SNS as its message attribute too) and
    that decision's body; nothing announced that was not recorded."""
    found = Invariant(
        "announced",
        "every decision announced at least once on SNS and the bus, each copy its recorded decision",
    )
    recorded = {d.decision_id: d for d in seen.records}
    bodies = {decision_id: d.model_dump(mode="json") for decision_id, d in recorded.items()}
    for name in CHANNELS:
        copies = seen.copies[name]
        delivered = {c.decision_id for c in copies}
        found.offenders += [
            f"{d.vpc_endpoint_id} ({d.outcome} not on {name})"
            for decision_id, d in sorted(recorded.items())
            if decision_id not in delivered
        ]
        for copy in copies:
            if copy.decision_id not in recorded:
                found.offenders.append(f"{copy.endpoint} ({copy.outcome} on {name}, not recorded)")
            elif copy.body != bodies[copy.decision_id]:
                found.offenders.append(f"{copy.endpoint} ({copy.outcome} on {name}, not its record's body)")
            elif copy.attribute is not None and copy.attribute != copy.decision_id:
                found.offenders.append(f"{copy.endpoint} ({name} attribute decision_id {copy.attribute!r})")
    unnotified = sorted(e for e, s in seen.states.items() if not s.get("notified"))
    found.detail = f"states not marked notified: {len(unnotified)} {unnotified[:10]}"
    return found


def _quota(workload: Workload, seen: Observations) -> Invariant:
    """Per tenant: the quota counter == its slot items == its open endpoints in EC2."""
    found = Invariant("quota", "quota counter == slots == open endpoints, per tenant")
    for plan in workload.tenants:
        tenant = plan.tenant.tenant_id
        accounts = set(plan.tenant.principals)
        open_ = {
            e
            for e, raw in seen.connections.items()
            if raw["VpcEndpointOwner"] in accounts and seen.ec2_state(e) in ACCEPTED_STATES
        }
        slots = seen.slots.get(tenant, set())
        counter = seen.counters.get(tenant, 0)
        if not counter == len(slots) == len(open_):
            found.offenders.append(
                f"{tenant} (counter={counter} slots={len(slots)} open={len(open_)}; "
                f"open without slot {sorted(open_ - slots)}; "
                f"slot without open endpoint {sorted(slots - open_)})"
            )
    return found


def _policy(workload: Workload, ours: dict[str, Any], seen: Observations) -> Invariant:
    """What policy implies: strangers, suspended and unentitled tenants never keep access; held stays
    held; a tenant never has more open endpoints than its quota; the suspended tenant lost all."""
    found = Invariant("policy", "outcomes follow policy (no access for the refused, quotas, revocation)")
    for endpoint, request in sorted(ours.items()):
        ec2, status = seen.ec2_state(endpoint), seen.status(endpoint)
        if request.kind in ("unknown", "suspended", "not_entitled") and (
            ec2 in ACCEPTED_STATES or status == "accepted"
        ):
            found.offenders.append(
                f"{endpoint} ({request.kind} account {request.account} has {ec2}/{status})"
            )
        if request.kind == "held" and ec2 != "deleted" and status != "held":
            found.offenders.append(f"{endpoint} (held request is {ec2}/{status})")
    for plan in workload.tenants:
        accounts = set(plan.tenant.principals)
        open_ = [
            e
            for e, raw in seen.connections.items()
            if raw["VpcEndpointOwner"] in accounts and raw["VpcEndpointState"] in ACCEPTED_STATES
        ]
        limit = 0 if plan.tenant.tenant_id == SUSPENDED_MID_RUN else plan.quota
        if len(open_) > limit:
            found.offenders.append(
                f"{plan.tenant.tenant_id} ({len(open_)} open, at most {limit}: {sorted(open_)})"
            )
    return found


def _dead_letters(found: list[Invariant], seen: Observations) -> Invariant:
    """A DLQ message is accounted for when what it was about ended well (the sweeps finished it)."""
    failing = {o.split(" ")[0] for invariant in found for o in invariant.offenders}
    result = Invariant("dead-letters", "nothing in the DLQs unaccounted for")
    counts = {name: len(bodies) for name, bodies in seen.dead_letters.items()}
    for name, bodies in sorted(seen.dead_letters.items()):
        for body in bodies:
            endpoints = set(_ENDPOINT.findall(body))
            if endpoints & failing:
                result.offenders.append(f"{sorted(endpoints & failing)[0]} ({name})")
            elif not endpoints and "TenantSync" in name and not found[-1].ok:
                result.offenders.append(f"{name} batch (revocations incomplete)")
    result.detail = f"DLQ messages: {counts}"
    return result


def _json(value: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(value) if isinstance(value, str) else dict(value)
    return parsed


def _attribute(message: dict[str, Any], name: str) -> str:
    """A message attribute of an SNS message as its SQS subscriber receives it ("" when absent)."""
    return str(message.get("MessageAttributes", {}).get(name, {}).get("Value", ""))
