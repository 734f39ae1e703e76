"""Tenant changes the SaaS control plane puts on the bus, and the answers it gets back.

The control plane puts `Tenant Change Requested` from its own source, `vpce.gatekeeper.control-plane`,
which the bus policy lets only the principals named in `ControlPlanePrincipalArns` put
(template.yaml). The stack answers each request, by its `request_id`, with `Tenant Changed` or
`Tenant Change Refused` (source `vpce.gatekeeper`, which only the stack's functions may put).

The AWS SaaS Builder Toolkit's control plane (sbt-aws, `@cdklabs/sbt-aws` 0.5.x, `EventManager`)
speaks its own events: `onboardingRequest`/`offboardingRequest` from its control-plane source
(default `controlPlaneEventSource`), answered with `provisionSuccess`/`provisionFailure` and
`deprovisionSuccess`/`deprovisionFailure` from its application-plane source (default
`applicationPlaneEventSource`), keyed by `tenantRegistrationId`. `sbt_change` maps them to tenant
changes and `sbt_answer` maps the answers back (docs/control-plane.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gatekeeper.models.identifiers import TENANT_ID

CONTROL_PLANE_SOURCE = "vpce.gatekeeper.control-plane"
CHANGE_REQUESTED = "Tenant Change Requested"
CHANGED = "Tenant Changed"
CHANGE_REFUSED = "Tenant Change Refused"

# sbt-aws's EventManager defaults (its DetailType enum); the stack's Sbt*EventSource parameters
# name the sources when the producer changed them.
SBT_CONTROL_PLANE_SOURCE = "controlPlaneEventSource"
SBT_APPLICATION_PLANE_SOURCE = "applicationPlaneEventSource"
SBT_ONBOARDING = "onboardingRequest"
SBT_OFFBOARDING = "offboardingRequest"
SBT_ANSWERS: dict[tuple[str, bool], str] = {
    ("create", True): "provisionSuccess",
    ("create", False): "provisionFailure",
    ("offboard", True): "deprovisionSuccess",
    ("offboard", False): "deprovisionFailure",
}
# What SBT's own provisioning jobs report on failure (ProvisioningScriptJob's jobFailureStatus).
_SBT_FAILURE_STATUS = {"create": "Failed to provision tenant.", "offboard": "Failed to deprovision tenant."}
# Where a producer puts the tenant's PrivateLink fields in SBT's tenant registration data.
SBT_FIELDS_KEY = "privateLink"

ChangeAction = Literal["create", "update", "suspend", "resume", "offboard"]
# The fields a change may set: the record's content, never its bookkeeping (version, updated_*).
CHANGE_FIELDS = frozenset(
    {
        "display_name",
        "status",
        "principals",
        "services",
        "template",
        "template_version",
        "parameters",
        "max_endpoints",
        "expires_at",
        "contact",
        "labels",
        "registered_endpoints",
    }
)


class TenantChangeRequest(BaseModel):
    """The detail of `Tenant Change Requested`.

    - `create`: `tenant` holds the new record's fields; no `expected_version`;
    - `update`: `tenant` holds the fields to change (each replaces the record's value whole);
      `expected_version` is the version the control plane read;
    - `suspend`, `resume`, `offboard`: no `tenant`; `expected_version` as for an update.

    `request_id` names the change: a repeat of it (a redelivery, a retry) gets the first answer and
    changes nothing more. `requested_by` is what the caller says about itself, recorded as such.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")
    action: ChangeAction
    tenant_id: str = Field(pattern=TENANT_ID.pattern)
    expected_version: int | None = Field(default=None, ge=1)
    tenant: dict[str, Any] | None = None
    requested_by: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _shape(self) -> TenantChangeRequest:
        if self.action == "create":
            if self.expected_version is not None:
                raise ValueError("a create has no expected_version: the tenant must not exist yet")
        elif self.expected_version is None:
            raise ValueError(f"{self.action} needs expected_version: the version of the record you read")
        if self.action in ("create", "update"):
            if not self.tenant:
                raise ValueError(f"{self.action} needs `tenant`: the record's fields")
            unknown = sorted(set(self.tenant) - CHANGE_FIELDS)
            if unknown:
                raise ValueError(
                    f"tenant has unknown or read-only field(s) {', '.join(unknown)}; "
                    f"a change may set {', '.join(sorted(CHANGE_FIELDS))}"
                )
        elif self.tenant is not None:
            raise ValueError(f"{self.action} takes no `tenant` fields")
        return self

    @property
    def digest(self) -> str:
        """What the request asks for, as a hash: a request id used again for another change is
        refused rather than answered with the first change's outcome."""
        body = self.model_dump(mode="json", exclude={"requested_by"})
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class SbtOrigin(BaseModel):
    """Which SBT registration a change came from: its answer goes back by `tenantRegistrationId`."""

    model_config = ConfigDict(frozen=True)

    tenant_registration_id: str


class ChangeAnswer(BaseModel):
    """The answer to one request: `Tenant Changed` or `Tenant Change Refused`, as put on the bus."""

    model_config = ConfigDict(frozen=True)

    detail_type: Literal["Tenant Changed", "Tenant Change Refused"]
    request_id: str | None
    action: str | None
    tenant_id: str | None
    version: int | None = None  # the record's version after the change (None: removed, or refused)
    tenant: dict[str, Any] | None = None  # the record as written
    reasons: tuple[str, ...] = ()
    sbt: SbtOrigin | None = None

    @property
    def changed(self) -> bool:
        return self.detail_type == CHANGED

    def detail(self) -> dict[str, Any]:
        """The event's detail (the SBT origin is not part of it: SBT is answered in its own terms)."""
        detail: dict[str, Any] = {
            "request_id": self.request_id,
            "action": self.action,
            "tenant_id": self.tenant_id,
        }
        if self.changed:
            detail |= {"version": self.version, "tenant": self.tenant}
        else:
            detail["reasons"] = list(self.reasons)
        return detail


class ChangeRefused(ValueError):
    """A change that will not be made, with the reasons the control plane is told."""

    def __init__(self, *reasons: str) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = tuple(reasons)


# ---------------------------------------------------------------------------------------------
# SBT's events
# ---------------------------------------------------------------------------------------------
def sbt_change(
    detail_type: str, detail: dict[str, Any], version_of: Callable[[str], int]
) -> tuple[TenantChangeRequest, SbtOrigin]:
    """An sbt-aws onboarding/offboarding request → the tenant change it asks for.

    SBT's detail is the producer's tenant registration data merged with the tenant's data and
    `tenantId`, `tenantRegistrationId` (sbt-aws tenant-registrations function). It carries no AWS
    account or endpoint service: the producer supplies them under `privateLink` in the registration
    data (`POST /tenant-registrations` with `tenantRegistrationData.privateLink`), with exactly the
    fields of a create. Offboarding needs nothing more: the tenant's current version is read.
    Raises ChangeRefused naming what is missing.
    """
    registration = detail.get("tenantRegistrationId")
    if not isinstance(registration, str) or not registration:
        raise ChangeRefused("the SBT event carries no tenantRegistrationId")
    origin = SbtOrigin(tenant_registration_id=registration)
    tenant_id = detail.get("tenantId")
    if not isinstance(tenant_id, str) or not TENANT_ID.match(tenant_id.lower()):
        raise ChangeRefused(f"the SBT event's tenantId {tenant_id!r} is not a tenant id (a-z, 0-9, '-')")
    tenant_id = tenant_id.lower()
    request_version: int | None = None
    if detail_type == SBT_ONBOARDING:
        fields = detail.get(SBT_FIELDS_KEY)
        if not isinstance(fields, dict):
            raise ChangeRefused(
                f"the onboarding request has no `{SBT_FIELDS_KEY}` object: put the tenant's principals, "
                f"services, template and max_endpoints in tenantRegistrationData.{SBT_FIELDS_KEY}"
            )
        name = detail.get("tenantName")
        fields = {"display_name": name if isinstance(name, str) and name else tenant_id, **fields}
        action: ChangeAction = "create"
    elif detail_type == SBT_OFFBOARDING:
        fields, action = {}, "offboard"
        request_version = version_of(tenant_id)
    else:
        raise ChangeRefused(f"SBT's {detail_type!r} is not mapped to a tenant change")
    request = {"request_id": f"sbt-{action}-{registration}", "action": action, "tenant_id": tenant_id}
    try:
        parsed = TenantChangeRequest.model_validate(
            {**request, "tenant": fields or None, "expected_version": request_version}
        )
    except ValueError as exc:
        raise ChangeRefused(*problems(exc)) from None
    return parsed, origin


def sbt_answer(answer: ChangeAnswer) -> tuple[str, dict[str, Any]]:
    """The answer SBT expects for a change it asked for: (detail type, detail). On success
    `jobOutput.tenantRegistrationData` tells SBT's registration the tenant's gatekeeper version; on
    failure `jobOutput` holds SBT's own failure status plus the gatekeeper's reasons."""
    if answer.sbt is None or answer.action not in _SBT_FAILURE_STATUS:
        raise ValueError(f"{answer.action} of {answer.tenant_id} was not asked for by SBT")
    detail_type = SBT_ANSWERS[(answer.action, answer.changed)]
    registration = {"tenantRegistrationId": answer.sbt.tenant_registration_id}
    if answer.changed:
        data = {"gatekeeperTenantId": answer.tenant_id or "", "gatekeeperVersion": str(answer.version or "")}
        return detail_type, {**registration, "jobOutput": {"tenantData": {}, "tenantRegistrationData": data}}
    reasons = "; ".join(answer.reasons)
    return detail_type, {
        **registration,
        "jobOutput": {
            "tenantStatus": _SBT_FAILURE_STATUS[answer.action],
            "tenantRegistrationData": {"gatekeeperRefusal": reasons},
        },
    }


def problems(exc: Exception) -> list[str]:
    """A validation error as one line per problem, each naming the field at fault."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return [str(exc)]
    found = []
    for error in errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        found.append(f"{where}: {message}" if where else message)
    return found
