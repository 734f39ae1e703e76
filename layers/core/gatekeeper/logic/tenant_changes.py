"""Tenant changes from the SaaS control plane: validated with the CLI's own rules, applied with the
store's conditional transaction, idempotent by request id, answered on the bus (`Tenant Changed`
or `Tenant Change Refused`). Why and how: `TenantChanges`; the contract: docs/control-plane.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gatekeeper.adapters.bus import EventPublisher
from gatekeeper.dal.templates import TemplateStore
from gatekeeper.dal.tenant_changes import ChangeLog
from gatekeeper.dal.tenants import TenantStore
from gatekeeper.logic.tenant_rules import TenantRules, write_refusal
from gatekeeper.models.errors import EventRefused, GatekeeperError, TenantNotFound
from gatekeeper.models.identifiers import now_utc
from gatekeeper.models.tenant import Tenant
from gatekeeper.models.tenant_change import (
    CHANGE_REFUSED,
    CHANGE_REQUESTED,
    CHANGED,
    CONTROL_PLANE_SOURCE,
    SBT_OFFBOARDING,
    SBT_ONBOARDING,
    ChangeAnswer,
    ChangeRefused,
    SbtOrigin,
    TenantChangeRequest,
    problems,
    sbt_answer,
    sbt_change,
)
from gatekeeper.observability import logger
from gatekeeper.policy import PolicyError

_STATUS = {"suspend": "suspended", "resume": "active"}


@dataclass
class TenantChanges:
    """A change is validated with the CLI's own rules (the Tenant model, parsed strictly from JSON, and
    `tenant_rules`: template, parameters, existence, version, account claims), applied with the store's
    conditional transaction (version checked, accounts claimed), and answered on the bus with
    `Tenant Changed` or `Tenant Change Refused`. A refused change writes nothing but the record of its
    answer.

    Idempotent by request id: an applied change's record is written in the same transaction as the
    tenant record (dal.tenant_changes), so a redelivered or retried request finds it and is answered
    again with the same answer, never applied twice; two deliveries racing each other meet in that
    transaction's condition. This is why the idempotency is a conditional write and not Powertools'
    idempotency utility: that one records "in progress" and the result around the function in a second
    step, and a crash between the tenant write and that step would leave the change applied but not
    recorded as done.

    What a change causes downstream needs nothing here: the tenant record's stream runs tenant sync as
    for any other write (allowed principals, revocations through the decision path, held requests
    requested again).
    """

    tenants: TenantStore
    templates: TemplateStore
    log: ChangeLog
    bus: EventPublisher  # answers, source vpce.gatekeeper
    sbt_bus: EventPublisher  # SBT's answers, source: SBT's application plane
    sbt_control_plane_source: str
    clock: Callable[[], datetime] = now_utc

    def handle(self, source: str, detail_type: str, detail: dict[str, Any]) -> ChangeAnswer:
        """One event from the bus → its answer, put on the bus. Raises EventRefused for an event this
        function does not take (the rules deliver none: fail closed, changing nothing)."""
        if (source, detail_type) == (CONTROL_PLANE_SOURCE, CHANGE_REQUESTED):
            answer = self._requested(detail)
        elif source == self.sbt_control_plane_source and detail_type in (SBT_ONBOARDING, SBT_OFFBOARDING):
            answer = self._sbt(detail_type, detail)
        else:
            raise EventRefused(
                f"'{detail_type}' from '{source}' is not a tenant change; the control plane puts "
                f"'{CHANGE_REQUESTED}' from '{CONTROL_PLANE_SOURCE}' (or SBT's {SBT_ONBOARDING}/"
                f"{SBT_OFFBOARDING} from '{self.sbt_control_plane_source}')"
            )
        self._answer(answer)
        return answer

    # -- the two kinds of request --------------------------------------------------------------
    def _requested(self, detail: dict[str, Any]) -> ChangeAnswer:
        try:
            request = TenantChangeRequest.model_validate(detail)
        except ValueError as exc:
            # Malformed: refused without a record (it may not even carry a usable request id).
            request_id = detail.get("request_id")
            return _refused(
                request_id if isinstance(request_id, str) else None,
                detail.get("action") if isinstance(detail.get("action"), str) else None,
                detail.get("tenant_id") if isinstance(detail.get("tenant_id"), str) else None,
                problems(exc),
            )
        recorded = self.log.get(request.request_id)
        if recorded is not None:
            if recorded.digest != request.digest:
                return _refused(
                    request.request_id,
                    request.action,
                    request.tenant_id,
                    [
                        f"request id {request.request_id} was used for another change already; "
                        "give every change its own request id"
                    ],
                )
            return recorded.answer
        return self._apply(request, None)

    def _sbt(self, detail_type: str, detail: dict[str, Any]) -> ChangeAnswer:
        registration = detail.get("tenantRegistrationId")
        action = "create" if detail_type == SBT_ONBOARDING else "offboard"
        origin = SbtOrigin(tenant_registration_id=registration) if isinstance(registration, str) else None
        if origin is not None:
            # SBT repeats nothing but the registration: its id names the change.
            recorded = self.log.get(f"sbt-{action}-{registration}")
            if recorded is not None:
                return recorded.answer
        try:
            request, origin = sbt_change(detail_type, detail, self._current_version)
        except ChangeRefused as refusal:
            tenant = detail.get("tenantId")
            return _refused(
                None, action, tenant if isinstance(tenant, str) else None, refusal.reasons, origin
            )
        return self._apply(request, origin)

    def _current_version(self, tenant_id: str) -> int:
        try:
            return self.tenants.get(tenant_id).version
        except (GatekeeperError, ValueError) as exc:
            raise ChangeRefused(str(exc)) from None

    # -- applying ------------------------------------------------------------------------------
    def _apply(self, request: TenantChangeRequest, sbt: SbtOrigin | None) -> ChangeAnswer:
        try:
            return self._write(request, sbt)
        except ChangeRefused as refusal:
            answer = _refused(request.request_id, request.action, request.tenant_id, refusal.reasons, sbt)
        if self.log.record_refusal(request.request_id, request.digest, answer):
            return answer
        # A delivery of the same request got there first (its transaction holds the record).
        recorded = self.log.get(request.request_id)
        return recorded.answer if recorded is not None else answer

    def _write(self, request: TenantChangeRequest, sbt: SbtOrigin | None) -> ChangeAnswer:
        at = self.clock()
        actor = f"control-plane:{request.request_id}"
        rules = TenantRules(self.templates)
        try:
            if request.action == "create":
                assert request.tenant is not None
                after = rules.check(_strict({**request.tenant, "tenant_id": request.tenant_id}))
                write_refusal(self.tenants, None, after)
                answer = _changed(request, _as_stored(after, 1, actor, at), sbt)
                self.tenants.create(after, actor, at, also=[self._entry(request, answer, at)])
                return answer
            before = self._read(request)
            if request.action == "offboard":
                answer = _changed(request, None, sbt)
                self.tenants.remove(before.tenant_id, before.version, also=[self._entry(request, answer, at)])
                return answer
            fields = request.tenant or {"status": _STATUS[request.action]}
            if request.action in _STATUS and before.status == fields["status"]:
                raise ChangeRefused(f"tenant {before.tenant_id} is already {before.status}")
            record = before.model_dump(mode="json", exclude={"version", "updated_by", "updated_at"})
            after = rules.check(_strict({**record, **fields})).model_copy(update={"version": before.version})
            write_refusal(self.tenants, before, after)
            answer = _changed(request, _as_stored(after, before.version + 1, actor, at), sbt)
            self.tenants.update(after, actor, at, also=[self._entry(request, answer, at)])
            return answer
        except (GatekeeperError, PolicyError, ValueError) as exc:
            if isinstance(exc, ChangeRefused):
                raise
            raise ChangeRefused(*_reasons(exc)) from None

    def _read(self, request: TenantChangeRequest) -> Tenant:
        """The record the change applies to, at the version the control plane read."""
        try:
            current = self.tenants.get(request.tenant_id)
        except TenantNotFound:
            raise ChangeRefused(f"no tenant {request.tenant_id!r}") from None
        if current.version != request.expected_version:
            raise ChangeRefused(
                f"tenant {request.tenant_id} is at version {current.version}, not the expected "
                f"{request.expected_version}: changed by someone else since you read it; nothing was "
                "written — read it again and retry"
            )
        return current

    def _entry(self, request: TenantChangeRequest, answer: ChangeAnswer, at: datetime) -> Any:
        return self.log.entry(request.request_id, request.digest, answer, at)

    # -- answering -----------------------------------------------------------------------------
    def _answer(self, answer: ChangeAnswer) -> None:
        self.bus.publish(answer.detail_type, [answer.detail()])
        if answer.sbt is not None and answer.action in ("create", "offboard"):
            detail_type, detail = sbt_answer(answer)
            self.sbt_bus.publish(detail_type, [detail])
        logger.info(
            "Tenant change answered",
            extra={k: v for k, v in answer.model_dump(mode="json").items() if k != "tenant"},
        )


def _strict(record: dict[str, Any]) -> Tenant:
    """A record from an event → Tenant, types as JSON states them: "3" is not a number, 3 is."""
    return Tenant.model_validate_json(json.dumps(record), strict=True)


def _as_stored(tenant: Tenant, version: int, actor: str, at: datetime) -> Tenant:
    """The record as the store writes it (TenantStore.create/update set the same three fields)."""
    return tenant.model_copy(update={"version": version, "updated_by": actor, "updated_at": at})


def _changed(request: TenantChangeRequest, stored: Tenant | None, sbt: SbtOrigin | None) -> ChangeAnswer:
    return ChangeAnswer(
        detail_type=CHANGED,
        request_id=request.request_id,
        action=request.action,
        tenant_id=request.tenant_id,
        version=stored.version if stored else None,
        tenant=stored.model_dump(mode="json", exclude_none=True) if stored else None,
        sbt=sbt,
    )


def _refused(
    request_id: str | None,
    action: str | None,
    tenant_id: str | None,
    reasons: Any,
    sbt: SbtOrigin | None = None,
) -> ChangeAnswer:
    return ChangeAnswer(
        detail_type=CHANGE_REFUSED,
        request_id=request_id,
        action=action,
        tenant_id=tenant_id,
        reasons=tuple(reasons),
        sbt=sbt,
    )


def _reasons(exc: Exception) -> list[str]:
    parameter_problems = getattr(exc, "problems", None)
    if isinstance(parameter_problems, list | tuple) and parameter_problems:
        return [f"parameters: {p}" for p in parameter_problems]
    return problems(exc)
