"""A small client for the SaaS control plane: put a tenant change on the stack's bus, wait for its
answer.

    from gatekeeper_ops.control_plane import ControlPlaneClient, ChangeRefusedError
    client = ControlPlaneClient.for_stack(boto3.Session(), "vpce-gatekeeper")
    answer = client.create("wayne", {"display_name": "Wayne", "principals": ["777788889999"],
                                     "services": ["vpce-svc-0123456789abcdef0"],
                                     "template": "standard", "max_endpoints": 3})
    client.suspend("wayne", expected_version=answer.version)

How it hears the answer: the stack records every request's answer, by request id, in its
TenantChangesTable before (or, for a refusal, instead of) putting it on the bus, and the client reads
that item (`dynamodb:GetItem`, consistent) until it is there. Polling one key needs no queue, rule or
subscription per client, works for any number of clients at once, and needs only the two permissions
of the stack's ControlPlaneClientPolicy; event-driven producers (SBT) listen on the bus instead.

A request is validated locally with the stack's own model first: a malformed one raises here and is
never put (the stack would refuse it without recording an answer to wait for).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3

from gatekeeper.dal.tenant_changes import ChangeLog
from gatekeeper.models.tenant_change import (
    CHANGE_REQUESTED,
    CONTROL_PLANE_SOURCE,
    ChangeAnswer,
    TenantChangeRequest,
    problems,
)

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef


class ControlPlaneError(Exception):
    """Base of the client's errors."""


class ChangeInvalid(ControlPlaneError, ValueError):
    """The request does not validate; it was not put."""


class ChangeNotAccepted(ControlPlaneError):
    """The bus did not take the event (e.g. AccessDenied: the caller is not in ControlPlanePrincipalArns)."""


class ChangeRefusedError(ControlPlaneError):
    """The stack refused the change; nothing was written. `reasons` say why."""

    def __init__(self, answer: ChangeAnswer) -> None:
        super().__init__(f"{answer.action} of tenant {answer.tenant_id} refused: {'; '.join(answer.reasons)}")
        self.answer = answer
        self.reasons = answer.reasons


class AnswerTimeout(ControlPlaneError, TimeoutError):
    """No answer yet. The change may still be applied: wait again with the same request id (a repeat
    of the request id is never applied twice)."""


class ControlPlaneClient:
    def __init__(
        self,
        session: boto3.Session,
        bus_name: str,
        changes_table: str,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._events = session.client("events")
        self._log = ChangeLog(session.client("dynamodb"), changes_table)
        self._bus = bus_name
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def for_stack(cls, session: boto3.Session, stack_name: str, **kwargs: Any) -> ControlPlaneClient:
        """The stack's bus and answers table, from its outputs."""
        [stack] = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        return cls(session, outputs["EventBusName"], outputs["TenantChangesTableName"], **kwargs)

    # -- one change ------------------------------------------------------------------------------
    def put(self, change: dict[str, Any]) -> TenantChangeRequest:
        """Validate and put one change (a request id is generated when it has none)."""
        try:
            request = TenantChangeRequest.model_validate({"request_id": f"cp-{uuid.uuid4()}", **change})
        except ValueError as exc:
            raise ChangeInvalid("; ".join(problems(exc))) from None
        entry: PutEventsRequestEntryTypeDef = {
            "Source": CONTROL_PLANE_SOURCE,
            "DetailType": CHANGE_REQUESTED,
            "Detail": json.dumps(request.model_dump(mode="json", exclude_none=True)),
            "EventBusName": self._bus,
        }
        try:
            response = self._events.put_events(Entries=[entry])
        except self._events.exceptions.ClientError as exc:
            raise ChangeNotAccepted(f"the bus refused the change: {exc}") from None
        [result] = response["Entries"]
        if result.get("ErrorCode"):
            raise ChangeNotAccepted(
                f"the bus refused the change: {result['ErrorCode']}: {result.get('ErrorMessage')}"
            )
        return request

    def wait(self, request_id: str, timeout: float = 30.0, interval: float = 0.25) -> ChangeAnswer:
        """The answer to a request put earlier; AnswerTimeout when none came within `timeout` seconds."""
        deadline = self._clock() + timeout
        delay = interval
        while True:
            recorded = self._log.get(request_id)
            if recorded is not None:
                return recorded.answer
            if self._clock() >= deadline:
                raise AnswerTimeout(f"no answer to {request_id} within {timeout:g} s; wait again for it")
            self._sleep(delay)
            delay = min(delay * 2, 2.0)

    def apply(self, change: dict[str, Any], timeout: float = 30.0) -> ChangeAnswer:
        """Put a change and wait for it: the `Tenant Changed` answer, or ChangeRefusedError."""
        request = self.put(change)
        answer = self.wait(request.request_id, timeout)
        if not answer.changed:
            raise ChangeRefusedError(answer)
        return answer

    # -- the change kinds --------------------------------------------------------------------------
    # Keyword options of each: request_id (default: a new one), requested_by, timeout (seconds).
    def create(self, tenant_id: str, tenant: dict[str, Any], **options: Any) -> ChangeAnswer:
        return self._change("create", tenant_id, None, tenant, **options)

    def update(
        self, tenant_id: str, expected_version: int, tenant: dict[str, Any], **options: Any
    ) -> ChangeAnswer:
        return self._change("update", tenant_id, expected_version, tenant, **options)

    def suspend(self, tenant_id: str, expected_version: int, **options: Any) -> ChangeAnswer:
        return self._change("suspend", tenant_id, expected_version, None, **options)

    def resume(self, tenant_id: str, expected_version: int, **options: Any) -> ChangeAnswer:
        return self._change("resume", tenant_id, expected_version, None, **options)

    def offboard(self, tenant_id: str, expected_version: int, **options: Any) -> ChangeAnswer:
        return self._change("offboard", tenant_id, expected_version, None, **options)

    def _change(
        self,
        action: str,
        tenant_id: str,
        expected_version: int | None,
        tenant: dict[str, Any] | None,
        *,
        request_id: str | None = None,
        requested_by: str | None = None,
        timeout: float = 30.0,
    ) -> ChangeAnswer:
        change = {
            "action": action,
            "tenant_id": tenant_id,
            "expected_version": expected_version,
            "tenant": tenant,
            "request_id": request_id,
            "requested_by": requested_by,
        }
        return self.apply({k: v for k, v in change.items() if v is not None}, timeout)
