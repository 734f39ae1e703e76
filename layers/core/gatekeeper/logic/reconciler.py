"""The reconciler: a periodic sweep that makes the gatekeeper agree with what EC2 reports — lost
requests announced, revocations requested where records forbid, quota drift repaired, missing
allowed principals added, and what dead invocations left (the `Unsettled` index) put back on the
decision path. It never accepts or rejects itself. Steps and costs: docs/reconciler.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gatekeeper.adapters.endpoint_service import EndpointService
from gatekeeper.dal.decisions import DecisionStore, EndpointState
from gatekeeper.dal.tenants import TenantDirectory, TenantStore
from gatekeeper.logic.announcer import Announcer
from gatekeeper.models.connection import (
    ACCEPTED_STATES,
    CLOSED_STATES,
    OPEN_STATES,
    PENDING_ACCEPTANCE,
    VpcEndpointConnection,
)
from gatekeeper.models.identifiers import now_utc, principal_arn
from gatekeeper.observability import logger

ANNOUNCE_CHUNK = 100  # connections announced between two looks at the clock


@dataclass
class SweepReport:
    """What one sweep found and did; the handler turns it into metrics."""

    services: int = 0
    connections: int = 0
    pending: int = 0
    held: int = 0
    in_flight: int = 0
    oldest_pending_age: float = 0.0
    oldest_held_age: float = 0.0
    stale_claims: int = 0  # claims whose invocation died, put back on the decision path
    unannounced: int = 0  # decisions recorded but never announced, put back on the decision path
    announced: int = 0
    revocations_requested: int = 0
    slots_released: int = 0
    slots_recorded: int = 0
    principals_added: int = 0
    invalid_tenants: int = 0
    unattributed: int = 0
    stopped_early: bool = False

    @property
    def repairs(self) -> int:
        return self.slots_released + self.slots_recorded + self.principals_added


@dataclass(frozen=True)
class ServiceView:
    """One managed service as the sweep saw it: its connections and their decision states."""

    service_id: str
    connections: Sequence[VpcEndpointConnection]
    states: dict[str, EndpointState]


def revocation_reason(
    connection: VpcEndpointConnection,
    state: EndpointState | None,
    directory: TenantDirectory,
    at: datetime,
) -> str | None:
    """Why the tenant record no longer allows this open connection, or None when it does (or when
    the sweep cannot tell: a claim whose record does not validate is the tenant sync's to report)."""
    account = connection.vpc_endpoint_owner
    claimant = directory.claims.get(account)
    if claimant in directory.invalid:
        return None
    tenant = directory.owner(account)
    if tenant is None:
        accepted_for = state.decision.tenant_id if state is not None else None
        if accepted_for is None:
            return None  # accepted for nobody (an operator's call, or before the gatekeeper): leave it
        return f"account {account} was accepted for tenant {accepted_for} and no tenant claims it now"
    denial = tenant.denial(connection.service_id, at)
    return denial.why if denial else None


def desired_principals(directory: TenantDirectory, service_id: str) -> frozenset[str]:
    """The allowed-principal ARNs the valid tenant records want on a service."""
    return frozenset(
        principal_arn(principal)
        for tenant in directory.tenants.values()
        if tenant.is_entitled(service_id)
        for principal in tenant.principals
    )


@dataclass
class Reconciler:
    endpoint_service: EndpointService
    decisions: DecisionStore
    tenants: TenantStore
    announcer: Announcer
    managed_services: Sequence[str]
    manage_allowed_principals: bool = True
    clock: Callable[[], datetime] = now_utc
    # Seconds left in the invocation (the handler passes the Lambda context's), and how many to keep
    # for flushing metrics and returning.
    time_left: Callable[[], float] = field(default=lambda: math.inf)
    reserve_seconds: float = 15.0
    # A claim or an unsent announcement older than this has lost its invocation (DecisionService).
    stale_after: timedelta = field(default=timedelta(seconds=45))

    def sweep(self) -> SweepReport:
        report = SweepReport()
        at = self.clock()
        directory = self.tenants.directory()
        self._finish_unsettled(at, report)
        report.invalid_tenants = len(directory.invalid)
        for tenant_id, problem in sorted(directory.invalid.items()):
            logger.error("Tenant record is invalid", extra={"tenant_id": tenant_id, "problem": problem})
        # Slots are read before EC2 is listed: a slot taken after this read belongs to a connection
        # that already existed, so it can never look orphaned below.
        slots = self._slots(directory)
        seen: set[str] = set()
        for service_id in self.managed_services:
            if self._out_of_time(report):
                break
            view = self._view(service_id)
            report.services += 1
            report.connections += len(view.connections)
            seen.update(c.vpc_endpoint_id for c in view.connections)
            self._reconcile_service(view, directory, slots, at, report)
            if self.manage_allowed_principals:
                self._add_missing_principals(service_id, directory, report)
        if not report.stopped_early:
            self._release_absent(slots, seen, report)
        return report

    # -- what dead invocations left -----------------------------------------------------------
    def _finish_unsettled(self, at: datetime, report: SweepReport) -> None:
        unsettled = self.decisions.unsettled(claimed_before=at - self.stale_after)
        if not unsettled:
            return
        for state in unsettled:
            if state.in_flight:
                report.stale_claims += 1
            else:
                report.unannounced += 1
            logger.warning(
                "Unfinished decision put back on the decision path",
                extra={
                    "vpc_endpoint_id": state.vpc_endpoint_id,
                    "status": state.status,
                    "notified": state.notified,
                    "claimed_at": state.claimed_at.isoformat(),
                },
            )
        self.announcer.requested_again(
            [(s.vpc_endpoint_id, s.decision.service_id) for s in unsettled], "reconcile"
        )

    # -- one service -----------------------------------------------------------------------
    def _view(self, service_id: str) -> ServiceView:
        connections = list(self.endpoint_service.connections(service_id))
        open_endpoints = [c.vpc_endpoint_id for c in connections if c.vpc_endpoint_state in OPEN_STATES]
        return ServiceView(service_id, connections, self.decisions.states(open_endpoints))

    def _reconcile_service(
        self,
        view: ServiceView,
        directory: TenantDirectory,
        slots: dict[str, str],
        at: datetime,
        report: SweepReport,
    ) -> None:
        announce: list[VpcEndpointConnection] = []
        revoke: list[tuple[VpcEndpointConnection, str]] = []
        for connection in view.connections:
            endpoint = connection.vpc_endpoint_id
            state = view.states.get(endpoint)
            if connection.vpc_endpoint_state == PENDING_ACCEPTANCE:
                # Held requests wait for a person (OldestHeldAgeSeconds); the pending age is the
                # age of requests nobody has decided yet, which is what its alarm is about.
                self._count_pending(connection, at, report, undecided=state is None or state.in_flight)
            if state is not None and state.in_flight:
                report.in_flight += 1  # its decider, its retry or _finish_unsettled finishes the job
                continue
            if connection.vpc_endpoint_state == PENDING_ACCEPTANCE:
                if state is None:
                    announce.append(connection)
                elif state.status == "held":
                    report.held += 1
                    age = (at - state.decision.decided_at).total_seconds()
                    report.oldest_held_age = max(report.oldest_held_age, age)
                    if reason := revocation_reason(connection, state, directory, at):
                        revoke.append((connection, reason))
            elif connection.vpc_endpoint_state in ACCEPTED_STATES:
                if reason := revocation_reason(connection, state, directory, at):
                    revoke.append((connection, reason))
                else:
                    self._ensure_slot(connection, directory, slots, report)
            elif connection.vpc_endpoint_state in CLOSED_STATES and endpoint in slots:
                self._release(slots.pop(endpoint), endpoint, report)
        if revoke:
            report.revocations_requested += self.announcer.revocations(revoke, "reconcile")
            logger.info("Revocations requested", extra={"service_id": view.service_id, "count": len(revoke)})
        self._announce(announce, report)

    def _count_pending(
        self, connection: VpcEndpointConnection, at: datetime, report: SweepReport, *, undecided: bool
    ) -> None:
        report.pending += 1
        if undecided and connection.creation_timestamp is not None:
            age = (at - connection.creation_timestamp).total_seconds()
            report.oldest_pending_age = max(report.oldest_pending_age, age)

    def _announce(self, connections: Sequence[VpcEndpointConnection], report: SweepReport) -> None:
        for start in range(0, len(connections), ANNOUNCE_CHUNK):
            if self._out_of_time(report):
                return
            report.announced += self.announcer.requested(
                connections[start : start + ANNOUNCE_CHUNK], "reconcile"
            )

    # -- quota slots -----------------------------------------------------------------------
    def _slots(self, directory: TenantDirectory) -> dict[str, str]:
        """endpoint → the tenant holding a slot for it, for every tenant the table knows of."""
        owners = set(directory.tenants) | set(directory.invalid) | set(directory.claims.values())
        return self.decisions.all_slots(sorted(owners))  # counters 100 a call, then a Query per tenant

    def _ensure_slot(
        self,
        connection: VpcEndpointConnection,
        directory: TenantDirectory,
        slots: dict[str, str],
        report: SweepReport,
    ) -> None:
        endpoint = connection.vpc_endpoint_id
        tenant = directory.owner(connection.vpc_endpoint_owner)
        if tenant is None:
            if endpoint not in slots:
                report.unattributed += 1
            return
        holder = slots.get(endpoint)
        if holder == tenant.tenant_id:
            return
        if holder is not None:  # the account moved to another tenant: so does the slot
            self._release(holder, endpoint, report)
        if self.decisions.record_slot(tenant.tenant_id, endpoint):
            report.slots_recorded += 1
            logger.warning(
                "Quota slot recorded for an endpoint EC2 reports in use",
                extra={"tenant_id": tenant.tenant_id, "vpc_endpoint_id": endpoint},
            )
        slots[endpoint] = tenant.tenant_id

    def _release(self, tenant_id: str, endpoint: str, report: SweepReport) -> None:
        if self.decisions.release_slot(tenant_id, endpoint):
            report.slots_released += 1
            logger.warning(
                "Quota slot released for an endpoint that is closed or gone",
                extra={"tenant_id": tenant_id, "vpc_endpoint_id": endpoint},
            )

    def _release_absent(self, slots: dict[str, str], seen: set[str], report: SweepReport) -> None:
        """Slots of endpoints no managed service lists any more (deleted long ago)."""
        absent = sorted(set(slots) - seen)
        if not absent:
            return
        states = self.decisions.states(absent)
        for endpoint in absent:
            state = states.get(endpoint)
            if state is None or state.decision.service_id in self.managed_services:
                self._release(slots[endpoint], endpoint, report)

    # -- allowed principals ----------------------------------------------------------------
    def _add_missing_principals(
        self, service_id: str, directory: TenantDirectory, report: SweepReport
    ) -> None:
        missing = desired_principals(directory, service_id) - self.endpoint_service.allowed_principals(
            service_id
        )
        if missing:
            self.endpoint_service.change_allowed_principals(service_id, add=missing)
            report.principals_added += len(missing)
            logger.warning(
                "Tenant principals added to the service's allowed principals",
                extra={"service_id": service_id, "principals": sorted(missing)},
            )

    def _out_of_time(self, report: SweepReport) -> bool:
        if self.time_left() > self.reserve_seconds:
            return False
        if not report.stopped_early:
            logger.warning("Sweep stopped before its deadline; the next sweep continues")
        report.stopped_early = True
        return True
