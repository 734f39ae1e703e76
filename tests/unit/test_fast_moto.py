"""faster_moto keeps DynamoDB's all-or-nothing TransactWriteItems while copying only touched items."""

import json

import pytest
from botocore.exceptions import ClientError

from gatekeeper.dal.decisions import Slot
from gatekeeper.models.decision import Decision
from gatekeeper.models.errors import QuotaExceeded, TenantConflict, WriteConflict
from gatekeeper.models.tenant import Tenant
from gatekeeper_ops.fast_moto import faster_moto

SERVICE = "vpce-svc-0123456789abcdef0"


@pytest.fixture
def fast(tables):
    with faster_moto():
        yield tables


def scan(tables, name):
    items = tables.client.scan(TableName=tables.names[name])["Items"]
    return sorted(json.dumps(i, sort_keys=True) for i in items)


def decision(endpoint):
    return Decision(
        vpc_endpoint_id=endpoint,
        service_id=SERVICE,
        vpc_endpoint_owner="111111111111",
        tenant_id="acme",
        outcome="accepted",
    )


def test_a_failed_condition_cancels_everything_with_per_item_reasons(fast):
    first = "vpce-00000000000000001"
    fast.decisions.claim(decision(first), "accepting", None, Slot("acme", first, 1))
    before = scan(fast, "DecisionsTableName")
    second = "vpce-00000000000000002"
    with pytest.raises(QuotaExceeded):
        fast.decisions.claim(decision(second), "accepting", None, Slot("acme", second, 1))
    assert scan(fast, "DecisionsTableName") == before
    with pytest.raises(WriteConflict):
        fast.decisions.claim(decision(first), "accepting", None, Slot("acme", first, 5))
    assert scan(fast, "DecisionsTableName") == before


def test_tenant_claims_stay_unique(fast):
    record = {"display_name": "x", "services": (SERVICE,), "template": "standard", "max_endpoints": 1}
    fast.tenants.create(Tenant(tenant_id="acme", principals=("111111111111",), **record), "op")
    before = scan(fast, "TenantsTableName")
    with pytest.raises(TenantConflict, match="claimed by tenant acme"):
        fast.tenants.create(Tenant(tenant_id="globex", principals=("111111111111",), **record), "op")
    assert scan(fast, "TenantsTableName") == before


def test_a_write_that_fails_while_applying_is_undone(fast):
    table = fast.names["DecisionsTableName"]
    with pytest.raises(ClientError, match=r"ValidationException|TransactionCanceled"):
        fast.client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "A"}, "sk": {"S": "1"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "B"}, "sk": {"S": "1"}},
                        # A number minus a string: only detectable while applying.
                        "UpdateExpression": "SET n = :n - :s",
                        "ExpressionAttributeValues": {":n": {"N": "1"}, ":s": {"S": "x"}},
                    }
                },
            ]
        )
    assert fast.client.scan(TableName=table)["Items"] == []


def test_moto_is_restored_afterwards(tables):
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    with faster_moto():
        assert DynamoDBBackend.transact_write_items is not original
    assert DynamoDBBackend.transact_write_items is original
