"""What must hold after a chaos run has settled, read from EC2, the DecisionsTable and what the
subscribers of the decision topic and of the bus's `Endpoint Connection Decided` events received.

Each invariant names the endpoints (or tenants) that break it, so a failure can be followed up.
Duplicate announcements of one decision (same endpoint, outcome and `decided_at`: a publish whose
answer was lost and that was retried) are allowed by at-least-once delivery; they are counted and
reported, not hidden. Two *different* decisions with the same outcome for one endpoint are not.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gatekeeper.dal.decisions import FINAL, IN_FLIGHT, REFUSALS
from gatekeeper.models.connection import ACCEPTED_STATES, PENDING_ACCEPTANCE
from gatekeeper_ops.chaos.workload import SUSPENDED_MID_RUN, Workload

_ENDPOINT = re.compile(r"\bvpce-[0-9a-f]{8,17}\b")
Triple = tuple[str, str, datetime]  # (endpoint, outcome, decided_at)


@dataclass
class Observations:
    connections: dict[str, dict[str, Any]]  # endpoint → DescribeVpcEndpointConnections item
    items: list[dict[str, Any]]  # the DecisionsTable, decoded
    sns_documents: list[dict[str, Any]]  # decision documents received from the decision topic
    bus_documents: list[dict[str, Any]]  # details of `Endpoint Connection Decided` events
    dead_letters: dict[str, list[str]]  # DLQ output name → message bodies

    def __post_init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.records: list[Triple] = []
        self.counters: dict[str, int] = {}
        self.slots: dict[str, set[str]] = defaultdict(set)
        self.reasons: Counter[str] = Counter()  # "outcome Reason+Reason" of every decision record
        for item in self.items:
            pk, sk = str(item["pk"]), str(item["sk"])
            if pk.startswith("ENDPOINT#") and sk == "STATE":
                self.states[pk.removeprefix("ENDPOINT#")] = item
            elif pk.startswith("ENDPOINT#") and sk.startswith("DECISION#"):
                document = _json(item["decision"])
                self.records.append(_triple(document))
                self.reasons[f"{document['decision']} {'+'.join(document.get('reasons') or ())}"] += 1
            elif pk.startswith("TENANT#") and sk == "QUOTA":
                self.counters[pk.removeprefix("TENANT#")] = int(item.get("active", 0))
            elif pk.startswith("TENANT#") and sk.startswith("SLOT#"):
                self.slots[pk.removeprefix("TENANT#")].add(sk.removeprefix("SLOT#"))
        self.sns = Counter(_triple(d) for d in self.sns_documents)
        self.bus = Counter(_triple(d) for d in self.bus_documents)

    def ec2_state(self, endpoint: str) -> str:
        raw = self.connections.get(endpoint)
        return str(raw["VpcEndpointState"]) if raw else "absent"

    def status(self, endpoint: str) -> str | None:
        state = self.states.get(endpoint)
        return str(state["status"]) if state else None

    def outcomes(self, endpoint: str) -> set[str]:
        return {outcome for e, outcome, _ in self.records if e == endpoint}

    def duplicates(self, channel: str) -> int:
        counted = self.sns if channel == "sns" else self.bus
        return sum(n - 1 for n in counted.values() if n > 1)


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
    """One decision per (endpoint, outcome): in the records and in what was announced."""
    found = Invariant("one-decision", "exactly one decision per (endpoint, outcome)")
    for label, triples in (("records", list(seen.records)), ("sns", list(seen.sns)), ("bus", list(seen.bus))):
        times: dict[tuple[str, str], set[datetime]] = defaultdict(set)
        for endpoint, outcome, at in triples:
            times[(endpoint, outcome)].add(at)
        found.offenders += [
            f"{endpoint} ({label}: {len(at)} different {outcome})"
            for (endpoint, outcome), at in sorted(times.items())
            if len(at) > 1
        ]
    return found


def _announced(seen: Observations) -> Invariant:
    """Every recorded decision reached SNS and the bus; nothing was announced that was not recorded."""
    found = Invariant(
        "announced", "every decision announced on SNS and the bus, nothing unrecorded announced"
    )
    recorded = set(seen.records)
    for endpoint, outcome, at in sorted(recorded):
        missing = [
            name for name, got in (("sns", seen.sns), ("bus", seen.bus)) if (endpoint, outcome, at) not in got
        ]
        if missing:
            found.offenders.append(f"{endpoint} ({outcome} not on {'+'.join(missing)})")
    for name, got in (("sns", seen.sns), ("bus", seen.bus)):
        found.offenders += [f"{e} ({o} on {name}, not recorded)" for e, o, a in sorted(set(got) - recorded)]
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
    import json

    parsed: dict[str, Any] = json.loads(value) if isinstance(value, str) else dict(value)
    return parsed


def _triple(document: dict[str, Any]) -> Triple:
    at = document["decided_at"]
    decided = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
    return (str(document["vpc_endpoint_id"]), str(document["decision"]), decided)
