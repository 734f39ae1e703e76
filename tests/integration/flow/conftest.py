"""An emulated producer account running the real stack: moto + the PrivateLink emulator,
resources from template.yaml, the real handlers delivered in-process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from gatekeeper_ops.sandbox.account import ProducerAccount
from tests.integration.conftest import MakeProducer, tenant

ACME = "111122223333"  # entitled, active, standard template
GLOBEX = "222233334444"  # suspended
INITECH = "333344445555"  # expired trial
UMBRELLA = "444455556666"  # entitled to another service only
HOOLI = "555566667777"  # trial tenant with a quota of one
STRANGER = "999988887777"  # no tenant
OTHER_SERVICE = "vpce-svc-0fffffffffffffff0"


@pytest.fixture
def producer(producer_factory: Callable[..., MakeProducer]) -> ProducerAccount:
    return producer_factory()()


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
