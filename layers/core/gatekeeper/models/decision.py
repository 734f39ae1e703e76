"""Decisions: the audit record and notification body of one decision about one connection."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from gatekeeper.models.identifiers import (
    now_utc,
)

Trigger = Literal["notification", "reconcile", "tenant-change", "operator"]
Outcome = Literal["accepted", "rejected", "held", "revoked"]
Action = Literal["reject", "hold"]


class ServiceAccess(BaseModel):
    """What a tenant needs to use an accepted connection; informational, so every field is optional
    except the service name (a part that could not be read is left out, never guessed)."""

    model_config = ConfigDict(frozen=True)

    service_name: str  # com.amazonaws.vpce.<region>.vpce-svc-…
    ports: tuple[int, ...] | None = None  # the NLB's listener ports
    private_dns_name: str | None = None
    private_dns_name_state: str | None = None  # pendingVerification | verified | failed
    healthy_zones: tuple[str, ...] | None = None  # the service's zones that reach a healthy target


class Decision(BaseModel):
    """One decision about one endpoint connection: the audit record and the notification body.

    `service_access` is set on accepted decisions when it could be read (optional: consumers that
    predate it keep parsing). `outcome` is serialised as `decision` (the SNS, bus and stored
    documents' field name, which subscribers filter on)."""

    model_config = ConfigDict(
        frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    vpc_endpoint_id: str
    service_id: str
    vpc_endpoint_owner: str
    vpc_endpoint_region: str | None = None
    tenant_id: str | None = None
    outcome: Outcome = Field(alias="decision")
    reasons: tuple[str, ...] = ()
    explanation: tuple[str, ...] = ()
    template: str | None = None
    template_version: int | None = None
    actor: str = "auto"
    trigger: Trigger = "notification"
    decided_at: datetime = Field(default_factory=now_utc)
    service_access: ServiceAccess | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def decision_id(self) -> str:
        """Stable across re-announcements (a resume announces the stored decision again): subscribers
        de-duplicate on it, since announcements are at-least-once. The decision record's own key."""
        return f"{self.vpc_endpoint_id}#{self.decided_at.isoformat()}#{self.outcome}"

    @model_validator(mode="after")
    def _actor(self) -> Decision:
        if not (self.actor in ("auto", "reconcile") or self.actor.startswith("operator:")):
            raise ValueError(f"actor {self.actor!r} must be auto, reconcile or operator:<arn>")
        return self
