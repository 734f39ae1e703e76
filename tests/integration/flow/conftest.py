"""An emulated producer account running the real stack: moto + the PrivateLink emulator,
resources from template.yaml, the real handlers delivered in-process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from gatekeeper.models import Tenant
from gatekeeper_ops.emulator import privatelink_emulator
from gatekeeper_ops.sandbox.account import ProducerAccount

ACME = "111122223333"  # entitled, active, standard template
GLOBEX = "222233334444"  # suspended
INITECH = "333344445555"  # expired trial
UMBRELLA = "444455556666"  # entitled to another service only
HOOLI = "555566667777"  # trial tenant with a quota of one
STRANGER = "999988887777"  # no tenant
OTHER_SERVICE = "vpce-svc-0fffffffffffffff0"


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProducerAccount]:
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    with mock_aws(), privatelink_emulator():
        account = ProducerAccount.create(boto3.Session(region_name="us-east-1"))
        account.push_builtin_templates()
        yield account


def tenant(tenant_id: str, account: str, service: str, **changes: object) -> Tenant:
    fields: dict[str, object] = {
        "tenant_id": tenant_id,
        "display_name": tenant_id.title(),
        "principals": (account,),
        "services": (service,),
        "template": "standard",
        "max_endpoints": 3,
    }
    return Tenant.model_validate({**fields, **changes})


@pytest.fixture
def tenants(producer: ProducerAccount) -> ProducerAccount:
    service = producer.service.service_id
    past = datetime.now(UTC) - timedelta(days=1)
    for record in (
        tenant("acme", ACME, service, labels={"tier": "gold"}),
        tenant("globex", GLOBEX, service, status="suspended"),
        tenant("initech", INITECH, service, template="trial", expires_at=past),
        tenant("umbrella", UMBRELLA, OTHER_SERVICE),
        tenant("hooli", HOOLI, service, template="trial", max_endpoints=5),
    ):
        producer.add_tenant(record)
    return producer
