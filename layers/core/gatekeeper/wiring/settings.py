"""The one settings model: the Lambda environment, validated once at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatekeeper.models.decision import Action
from gatekeeper.models.identifiers import SERVICE_ID
from gatekeeper.models.tenant_change import SBT_APPLICATION_PLANE_SOURCE, SBT_CONTROL_PLANE_SOURCE


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    tenants_table: str = Field(alias="TENANTS_TABLE", min_length=3)
    templates_table: str = Field(alias="TEMPLATES_TABLE", min_length=3)
    decisions_table: str = Field(alias="DECISIONS_TABLE", min_length=3)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    decision_topic_arn: str = Field(alias="DECISION_TOPIC_ARN", pattern=r"^arn:aws[a-z-]*:sns:")
    # Any number of managed services: the template makes each its notification, alarm and IAM ARN.
    endpoint_service_ids: tuple[str, ...] = Field(alias="ENDPOINT_SERVICE_IDS")
    default_action: Action = Field(default="reject", alias="DEFAULT_ACTION")
    unknown_principal_action: Action = Field(default="reject", alias="UNKNOWN_PRINCIPAL_ACTION")
    region: str = Field(alias="AWS_REGION", min_length=1)
    # Tenant sync and the reconciler: keep the services' allowed principals in step with the tenants.
    manage_allowed_principals: bool = Field(default=True, alias="MANAGE_ALLOWED_PRINCIPALS")
    # Where operators hear about what needs a person (e.g. a tenant record that does not validate).
    alarm_topic_arn: str | None = Field(
        default=None, alias="ALARM_TOPIC_ARN", pattern=r"^arn:aws[a-z-]*:sns:"
    )

    # The principal the bus policy lets put operator requests; operator decisions are recorded as it.
    operator_role_arn: str | None = Field(
        default=None, alias="OPERATOR_ROLE_ARN", pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/"
    )
    # A claim older than this belongs to an invocation that died. Longer than the decider's timeout,
    # shorter than Lambda's first async retry (~60 s), so that retry finishes it (template.yaml).
    claim_stale_seconds: int = Field(default=45, alias="DECISION_CLAIM_STALE_SECONDS", ge=1, le=900)
    # apply_tenant_change: the record of each control-plane request, and SBT's event sources.
    tenant_changes_table: str | None = Field(default=None, alias="TENANT_CHANGES_TABLE", min_length=3)
    sbt_control_plane_source: str = Field(
        default=SBT_CONTROL_PLANE_SOURCE, alias="SBT_CONTROL_PLANE_EVENT_SOURCE", min_length=1
    )
    sbt_application_plane_source: str = Field(
        default=SBT_APPLICATION_PLANE_SOURCE, alias="SBT_APPLICATION_PLANE_EVENT_SOURCE", min_length=1
    )
    # The decider's own queue: a full delivery (a burst waits) is topped up from it to this many
    # requests a batch (adapters/decision_queue.py). Unset: every delivery is decided as it comes.
    decision_queue_url: str | None = Field(default=None, alias="DECISION_QUEUE_URL", pattern=r"^https?://")
    decision_batch_size: int = Field(default=10, alias="DECISION_BATCH_SIZE", ge=1, le=1000)
    # How long a decider reuses what it read about a service's load balancer (0: read every time).
    data_plane_cache_seconds: float = Field(default=30, alias="DATA_PLANE_CACHE_SECONDS", ge=0, le=300)

    @field_validator("alarm_topic_arn", "operator_role_arn", "decision_queue_url", mode="before")
    @classmethod
    def _unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("endpoint_service_ids", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("endpoint_service_ids")
    @classmethod
    def _service_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for service_id in value:
            if not SERVICE_ID.match(service_id):
                raise ValueError(f"{service_id!r} is not an endpoint service id (vpce-svc-…)")
        return value

    @property
    def operator_actor(self) -> str:
        return f"operator:{self.operator_role_arn or 'unknown'}"

    def manages(self, service_id: str) -> bool:
        return service_id in self.endpoint_service_ids


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    return Settings.model_validate(dict(os.environ if environ is None else environ))


@cache
def settings() -> Settings:
    """Cold-start settings; a missing variable fails the init with the variable's name."""
    return load_settings()
