import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from moto.dynamodb.models import DynamoDBBackend

from gatekeeper.dal.decisions import Slot
from gatekeeper.logic.decision_service import all_at_once
from gatekeeper.models.decision import Decision
from gatekeeper.models.errors import (
    QuotaExceeded,
    TemplateNotFound,
    TenantConflict,
    TenantInvalid,
    TenantNotFound,
    WriteConflict,
)
from gatekeeper.models.tenant import Tenant
from gatekeeper.policy import TemplateInvalid
from gatekeeper_ops.fast_moto import faster_moto

SERVICE = "vpce-svc-0123456789abcdef0"
STANDARD = json.loads(Path("policy-templates/standard.json").read_text())


def tenant(tenant_id="acme", principals=("111111111111",), **changes):
    return Tenant(
        tenant_id=tenant_id,
        display_name=tenant_id,
        principals=principals,
        services=(SERVICE,),
        template="standard",
        max_endpoints=2,
        **changes,
    )


def scan(tables, name):
    return sorted(
        json.dumps(i, sort_keys=True) for i in tables.client.scan(TableName=tables.names[name])["Items"]
    )


# -- tenants ---------------------------------------------------------------------------------
def test_create_claims_every_account_and_lookup_takes_two_reads(tables):
    stored = tables.tenants.create(
        tenant(principals=("111111111111", "arn:aws:iam::222222222222:role/consumer")),
        "arn:aws:iam::1:user/op",
    )
    assert (stored.version, stored.updated_by) == (1, "arn:aws:iam::1:user/op")
    assert tables.tenants.find_by_account("222222222222").tenant_id == "acme"
    assert tables.tenants.find_by_account("333333333333") is None
    reads = []
    tables.client.meta.events.register("before-call.dynamodb", lambda **kw: reads.append(kw["model"].name))
    tables.tenants.find_by_account("111111111111")
    assert reads == ["GetItem", "GetItem"]


def test_principal_claimed_by_another_tenant_is_refused_naming_it_and_nothing_is_written(tables):
    tables.tenants.create(tenant(), "op")
    before = scan(tables, "TenantsTableName")
    with pytest.raises(TenantConflict, match="account 111111111111 is already claimed by tenant acme"):
        tables.tenants.create(tenant("globex", principals=("arn:aws:iam::111111111111:role/x",)), "op")
    assert scan(tables, "TenantsTableName") == before


def test_duplicate_tenant_id_is_refused(tables):
    tables.tenants.create(tenant(), "op")
    with pytest.raises(TenantConflict, match="already exists"):
        tables.tenants.create(tenant(principals=("999999999999",)), "op")


def test_update_with_a_stale_version_is_refused(tables):
    first = tables.tenants.create(tenant(), "op")
    tables.tenants.update(first.model_copy(update={"display_name": "Acme Corp"}), "op")
    before = scan(tables, "TenantsTableName")
    with pytest.raises(TenantConflict, match="changed by someone else"):
        tables.tenants.update(first.model_copy(update={"status": "suspended"}), "op")
    assert scan(tables, "TenantsTableName") == before


def test_update_moves_claims(tables):
    first = tables.tenants.create(tenant(), "op")
    moved = tables.tenants.update(first.model_copy(update={"principals": ("222222222222",)}), "op2")
    assert moved.version == 2
    assert tables.tenants.owner_of("111111111111") is None
    assert tables.tenants.owner_of("222222222222") == "acme"
    # The freed account can now be claimed by someone else.
    tables.tenants.create(tenant("globex", principals=("111111111111",)), "op")


def test_remove_deletes_record_and_claims(tables):
    stored = tables.tenants.create(tenant(), "op")
    with pytest.raises(TenantConflict):
        tables.tenants.remove("acme", expected_version=7)
    tables.tenants.remove("acme", expected_version=stored.version)
    assert tables.tenants.owner_of("111111111111") is None
    with pytest.raises(TenantNotFound):
        tables.tenants.get("acme")


def test_hand_edited_invalid_record_fails_closed(tables):
    tables.tenants.create(tenant(), "op")
    tables.client.update_item(
        TableName=tables.names["TenantsTableName"],
        Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": "TENANT"}},
        UpdateExpression="SET principals = :p",
        ExpressionAttributeValues={":p": {"L": [{"S": "arn:aws:iam::111111111111:role/a/b"}]}},
    )
    with pytest.raises(TenantInvalid, match="path"):
        tables.tenants.find_by_account("111111111111")
    listed = list(tables.tenants.list())
    assert len(listed) == 1
    assert isinstance(listed[0], TenantInvalid)


@pytest.mark.parametrize(
    ("attribute", "value", "why"),
    [
        ("principals", {"SS": ["111111111111"]}, "principals: is a string set (SS), must be a list (L)"),
        ("max_endpoints", {"S": "3"}, "max_endpoints: is a string (S), must be a number (N)"),
        ("services", {"L": [{"N": "1"}]}, "services: every element must be a string (S)"),
        ("labels", {"M": {"tier": {"N": "1"}}}, "labels: every value must be a string (S)"),
        ("tenant_id", {"S": "globex"}, "tenant_id: is 'globex' but the record's key is 'TENANT#acme'"),
    ],
    ids=["string-set", "number-as-string", "number-in-list", "number-label", "other-tenant-id"],
)
def test_hand_edited_record_with_wrong_types_or_key_is_refused_never_coerced(tables, attribute, value, why):
    tables.tenants.create(tenant(), "op")
    tables.client.update_item(
        TableName=tables.names["TenantsTableName"],
        Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": "TENANT"}},
        UpdateExpression="SET #a = :v",
        ExpressionAttributeNames={"#a": attribute},
        ExpressionAttributeValues={":v": value},
    )
    with pytest.raises(TenantInvalid) as refused:
        tables.tenants.find_by_account("111111111111")
    assert why in str(refused.value)
    assert "acme" in tables.tenants.directory().invalid


def test_a_record_without_a_version_is_refused(tables):
    tables.tenants.create(tenant(), "op")
    tables.client.update_item(
        TableName=tables.names["TenantsTableName"],
        Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": "TENANT"}},
        UpdateExpression="REMOVE version",
    )
    with pytest.raises(TenantInvalid, match="version: missing"):
        tables.tenants.get("acme")


def test_claim_without_record_is_unknown(tables):
    tables.client.put_item(
        TableName=tables.names["TenantsTableName"],
        Item={"pk": {"S": "ACCOUNT#111111111111"}, "sk": {"S": "CLAIM"}, "tenant_id": {"S": "ghost"}},
    )
    assert tables.tenants.find_by_account("111111111111") is None


# -- templates -------------------------------------------------------------------------------
def test_templates_are_versioned_and_immutable(tables):
    v1 = tables.templates.push(STANDARD, "op")
    v2 = tables.templates.push({**STANDARD, "Description": "changed"}, "op")
    assert (v1.version, v2.version) == (1, 2)
    assert tables.templates.get("standard").document["Description"] == "changed"
    assert tables.templates.get("standard", 1).document == STANDARD
    assert [t.version for t in tables.templates.versions("standard")] == [1, 2]
    assert [(t.name, t.version) for t in tables.templates.latest()] == [("standard", 2)]
    with pytest.raises(TemplateNotFound, match="version 9 of template 'standard'"):
        tables.templates.get("standard", 9)


def test_invalid_template_is_never_stored(tables):
    with pytest.raises(TemplateInvalid):
        tables.templates.push({**STANDARD, "Statement": [{"Sid": "X", "Effect": "Maybe"}]}, "op")
    assert tables.templates.latest() == []


def test_hand_corrupted_stored_template_names_its_version(tables):
    tables.templates.push(STANDARD, "op")
    tables.client.update_item(
        TableName=tables.names["TemplatesTableName"],
        Key={"pk": {"S": "TEMPLATE#standard"}, "sk": {"S": "V#000001"}},
        UpdateExpression="SET document = :d",
        ExpressionAttributeValues={":d": {"S": "{not json"}},
    )
    with pytest.raises(TemplateInvalid, match="template standard v1"):
        tables.templates.get("standard").parse()


# -- decisions and quota ---------------------------------------------------------------------
def decision(endpoint="vpce-0a1b2c3d4e5f60718", outcome="accepted", **changes):
    return Decision(
        vpc_endpoint_id=endpoint,
        service_id=SERVICE,
        vpc_endpoint_owner="111111111111",
        tenant_id="acme",
        outcome=outcome,
        **changes,
    )


def test_claim_is_exclusive(tables):
    claimed = tables.decisions.claim(decision(), "accepting", None, Slot("acme", "vpce-0a1b2c3d4e5f60718", 2))
    with pytest.raises(WriteConflict):
        tables.decisions.claim(decision(), "accepting", None, Slot("acme", "vpce-0a1b2c3d4e5f60718", 2))
    final = tables.decisions.finalise(claimed, decision())
    assert tables.decisions.state("vpce-0a1b2c3d4e5f60718").status == "accepted"
    with pytest.raises(WriteConflict):  # a stale finaliser loses
        tables.decisions.finalise(claimed, decision())
    assert final.seq == claimed.seq + 1
    assert [d.outcome for d in tables.decisions.decisions_for_endpoint("vpce-0a1b2c3d4e5f60718")] == [
        "accepted"
    ]


def test_last_slot_cannot_be_taken_twice(tables):
    tables.decisions.claim(
        decision("vpce-00000000000000001"), "accepting", None, Slot("acme", "vpce-00000000000000001", 2)
    )
    tables.decisions.claim(
        decision("vpce-00000000000000002"), "accepting", None, Slot("acme", "vpce-00000000000000002", 2)
    )
    before = scan(tables, "DecisionsTableName")
    with pytest.raises(QuotaExceeded, match="2 of 2"):
        tables.decisions.claim(
            decision("vpce-00000000000000003"), "accepting", None, Slot("acme", "vpce-00000000000000003", 2)
        )
    assert scan(tables, "DecisionsTableName") == before
    assert tables.decisions.active_endpoints("acme") == 2
    assert sorted(tables.decisions.slots("acme")) == ["vpce-00000000000000001", "vpce-00000000000000002"]


def test_zero_quota_refuses_every_slot(tables):
    with pytest.raises(QuotaExceeded):
        tables.decisions.claim(decision(), "accepting", None, Slot("acme", "vpce-0a1b2c3d4e5f60718", 0))


def test_rollback_restores_state_and_slot(tables):
    slot = Slot("acme", "vpce-0a1b2c3d4e5f60718", 2)
    claimed = tables.decisions.claim(decision(), "accepting", None, slot)
    tables.decisions.rollback(claimed, None, slot)
    assert tables.decisions.state("vpce-0a1b2c3d4e5f60718") is None
    assert tables.decisions.active_endpoints("acme") == 0
    held = tables.decisions.claim(decision(outcome="held"), "held", None)
    again = tables.decisions.claim(decision(), "accepting", held, slot)
    tables.decisions.rollback(again, held, slot)
    assert tables.decisions.state("vpce-0a1b2c3d4e5f60718").status == "held"


def test_slot_release_happens_once(tables):
    tables.decisions.claim(decision(), "accepting", None, Slot("acme", "vpce-0a1b2c3d4e5f60718", 2))
    assert tables.decisions.release_slot("acme", "vpce-0a1b2c3d4e5f60718") is True
    assert tables.decisions.release_slot("acme", "vpce-0a1b2c3d4e5f60718") is False
    assert tables.decisions.active_endpoints("acme") == 0


def test_record_slot_repairs_without_quota_check_and_only_once(tables):
    assert tables.decisions.record_slot("acme", "vpce-0a1b2c3d4e5f60718") is True
    assert tables.decisions.record_slot("acme", "vpce-0a1b2c3d4e5f60718") is False
    assert tables.decisions.active_endpoints("acme") == 1


def test_claiming_an_endpoint_that_already_holds_a_slot_keeps_that_slot(tables):
    tables.decisions.record_slot("acme", "vpce-0a1b2c3d4e5f60718")
    claimed = tables.decisions.claim(decision(), "accepting", None, Slot("acme", "vpce-0a1b2c3d4e5f60718", 5))
    assert claimed.status == "accepting"
    assert tables.decisions.active_endpoints("acme") == 1


def test_decisions_by_tenant_and_time(tables):
    now = datetime.now(UTC)
    old = decision("vpce-00000000000000001", "held", decided_at=now - timedelta(days=2))
    new = decision("vpce-00000000000000002", "held", decided_at=now)
    for d in (old, new):
        tables.decisions.claim(d, "held", None)
    assert [d.vpc_endpoint_id for d in tables.decisions.decisions_for_tenant("acme")] == [
        "vpce-00000000000000001",
        "vpce-00000000000000002",
    ]
    recent = tables.decisions.decisions_for_tenant("acme", since=now - timedelta(hours=1))
    assert [d.vpc_endpoint_id for d in recent] == ["vpce-00000000000000002"]
    assert tables.decisions.decisions_for_tenant("nobody") == []


@pytest.fixture
def fast_transactions():
    """For the tests that write hundreds of items or more: moto's TransactWriteItems copies every
    table it touches (O(table) a write), gatekeeper_ops.fast_moto only the items it touches, with
    the same answers (tests/unit/test_fast_moto.py)."""
    with faster_moto():
        yield


@pytest.mark.usefixtures("fast_transactions")
def test_batch_state_reads(tables):
    ids = [f"vpce-{i:017x}" for i in range(1, 151)]
    for endpoint in ids[:120]:
        tables.decisions.claim(decision(endpoint, "held"), "held", None)
    states = tables.decisions.states(ids)
    assert len(states) == 120
    assert set(states) == set(ids[:120])


def test_unsettled_index_holds_claims_and_unannounced_decisions_until_announced(tables):
    at = datetime(2026, 11, 27, 12, tzinfo=UTC)
    first, second = "vpce-00000000000000001", "vpce-00000000000000002"
    in_flight = tables.decisions.claim(decision(first), "accepting", None, at=at)
    claimed = tables.decisions.claim(decision(second), "accepting", None, at=at)
    final = tables.decisions.finalise(claimed, decision(second), at=at + timedelta(seconds=1))
    found = {s.vpc_endpoint_id: s for s in tables.decisions.unsettled(at + timedelta(minutes=1))}
    assert (found[first].status, found[second].status) == ("accepting", "accepted")
    assert tables.decisions.unsettled(at) == []  # only what was claimed before the moment asked
    assert tables.decisions.mark_notified(final) is True
    assert [s.vpc_endpoint_id for s in tables.decisions.unsettled(at + timedelta(minutes=1))] == [first]
    assert in_flight.in_flight


def test_unsettled_states_spread_over_every_shard_and_are_all_found(tables):
    # A constant partition key that every claim writes caps a burst at ~1,000 writes a second.
    from gatekeeper.dal.decisions import UNSETTLED_SHARDS, unsettled_partition

    at = datetime(2026, 11, 27, 12, tzinfo=UTC)
    ids = [f"vpce-{i:017x}" for i in range(1, 41)]
    for endpoint in ids:
        tables.decisions.claim(decision(endpoint, "held"), "held", None, at=at)
    assert {unsettled_partition(e) for e in ids} == {f"UNSETTLED#{n}" for n in range(UNSETTLED_SHARDS)}
    items = tables.client.scan(TableName=tables.names["DecisionsTableName"])["Items"]
    assert {i["unsettled_pk"]["S"] for i in items if "unsettled_pk" in i} == {
        unsettled_partition(e) for e in ids
    }
    found = tables.decisions.unsettled(at + timedelta(minutes=1))
    assert [s.vpc_endpoint_id for s in found] == sorted(ids)  # every shard, oldest first


def test_mark_notified_after_a_takeover_is_not_an_error(tables):
    claimed = tables.decisions.claim(decision(), "accepting", None)
    final = tables.decisions.finalise(claimed, decision())
    tables.decisions.take_over_notification(final)
    assert tables.decisions.mark_notified(final) is False


def test_notification_takeover_is_exclusive(tables):
    state = tables.decisions.claim(decision(outcome="held"), "held", None)
    taken = tables.decisions.take_over_notification(state)
    with pytest.raises(WriteConflict):
        tables.decisions.take_over_notification(state)
    tables.decisions.mark_notified(taken)
    assert tables.decisions.state(state.vpc_endpoint_id).notified is True


# -- what the decision path reads in one call ------------------------------------------------
def counted(tables):
    calls = []
    tables.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls


def test_read_inputs_reads_state_claim_tenant_and_quota_in_one_call_when_the_tenant_is_guessed(tables):
    tables.tenants.create(tenant(), "op")
    tables.decisions.claim(decision(), "accepting", None, Slot("acme", "vpce-0a1b2c3d4e5f60718", 2))
    calls = counted(tables)
    inputs = tables.decisions.read_inputs(tables.tenants, "vpce-0a1b2c3d4e5f60718", "111111111111", "acme")
    assert calls == ["BatchGetItem"]
    assert (inputs.state.status, inputs.owner, inputs.tenant.tenant_id, inputs.active) == (
        "accepting",
        "acme",
        "acme",
        1,
    )
    calls.clear()
    # A wrong guess (the account moved to another tenant): the claim decides, a second read follows.
    wrong = tables.decisions.read_inputs(tables.tenants, None, "111111111111", "globex")
    assert calls == ["BatchGetItem", "BatchGetItem"]
    assert (wrong.state, wrong.owner, wrong.tenant.tenant_id, wrong.active) == (None, "acme", "acme", 1)


def test_read_inputs_fails_closed_on_missing_invalid_or_disagreeing_records(tables):
    assert tables.decisions.read_inputs(tables.tenants, None, "111111111111").tenant is None  # no claim
    tables.client.put_item(
        TableName=tables.names["TenantsTableName"],
        Item={"pk": {"S": "ACCOUNT#111111111111"}, "sk": {"S": "CLAIM"}, "tenant_id": {"S": "ghost"}},
    )
    ghost = tables.decisions.read_inputs(tables.tenants, None, "111111111111", "ghost")
    assert (ghost.owner, ghost.tenant) == ("ghost", None)  # a claim whose record is gone: unknown
    tables.tenants.create(tenant("other", principals=("333333333333",)), "op")
    tables.client.put_item(
        TableName=tables.names["TenantsTableName"],
        Item={"pk": {"S": "ACCOUNT#111111111111"}, "sk": {"S": "CLAIM"}, "tenant_id": {"S": "other"}},
    )
    assert tables.decisions.read_inputs(tables.tenants, None, "111111111111").tenant is None  # disagree
    tables.client.update_item(
        TableName=tables.names["TenantsTableName"],
        Key={"pk": {"S": "TENANT#other"}, "sk": {"S": "TENANT"}},
        UpdateExpression="SET max_endpoints = :s",
        ExpressionAttributeValues={":s": {"S": "many"}},
    )
    invalid = tables.decisions.read_inputs(tables.tenants, None, "111111111111", "other").tenant
    assert isinstance(invalid, TenantInvalid)


def batch_get_responses(tables):
    """What each BatchGetItem returned (parsed), as the store saw it."""
    responses = []
    tables.client.meta.events.register(
        "after-call.dynamodb.BatchGetItem", lambda parsed, **_: responses.append(parsed)
    )
    return responses


def test_read_inputs_reads_every_field_of_the_state_and_the_counter_but_not_a_legacy_set(tables):
    # Every field of the state differs from its default (notified, a slot), so a field the read leaves
    # out makes it differ from the state read whole.
    endpoint = "vpce-0a1b2c3d4e5f60718"
    tables.tenants.create(tenant(labels={"tier": "gold"}, contact="ops@acme.example"), "op")
    tables.decisions.record_slot("acme", "vpce-00000000000000009")
    rich = decision(reasons=("Accept",), explanation=("Accept: matched",), template="standard")
    claimed = tables.decisions.claim(rich, "accepting", None, Slot("acme", endpoint, 5))
    tables.decisions.finalise(claimed, rich, notified=True)
    add_legacy_set(tables, "acme", ["vpce-00000000000000009", endpoint])
    responses = batch_get_responses(tables)

    inputs = tables.decisions.read_inputs(tables.tenants, endpoint, "111111111111", "acme")

    assert inputs.state == tables.decisions.state(endpoint)
    assert (inputs.state.notified, inputs.state.slot_tenant) == (True, "acme")
    assert inputs.tenant == tables.tenants.get("acme")
    assert inputs.active == tables.decisions.active_endpoints("acme") == 2
    [response] = responses
    items = [item for table_items in response["Responses"].values() for item in table_items]
    assert len(items) == 4
    assert not [item for item in items if "endpoints" in item]  # the legacy set stays in the table


def test_read_inputs_reads_the_tenant_record_whole_so_an_attribute_it_does_not_know_fails_closed(tables):
    tables.tenants.create(tenant(), "op")
    tables.client.update_item(  # a hand edit with a typo: `expires_at` misspelt
        TableName=tables.names["TenantsTableName"],
        Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": "TENANT"}},
        UpdateExpression="SET expire_at = :x",
        ExpressionAttributeValues={":x": {"S": "2000-01-01T00:00:00Z"}},
    )
    for guess in ("acme", None):  # in the first call, or after the claim
        invalid = tables.decisions.read_inputs(tables.tenants, None, "111111111111", guess).tenant
        assert isinstance(invalid, TenantInvalid)
        assert "expire_at" in str(invalid)


def test_read_inputs_asks_again_for_unprocessed_keys_with_the_same_consistency_and_projection(tables):
    from botocore.stub import ANY, Stubber

    from gatekeeper.dal.decisions import READ_ATTRIBUTES, DecisionStore
    from gatekeeper.dal.tenants import TenantStore

    decisions_table, tenants_table = tables.names["DecisionsTableName"], tables.names["TenantsTableName"]
    store, tenants = DecisionStore(tables.client, decisions_table), TenantStore(tables.client, tenants_table)
    state_key = {"pk": {"S": "ENDPOINT#vpce-0a1b2c3d4e5f60718"}, "sk": {"S": "STATE"}}
    names = {f"#a{i}": name for i, name in enumerate(READ_ATTRIBUTES)}
    projected = {
        "ConsistentRead": True,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    with Stubber(tables.client) as stub:
        stub.add_response(
            "batch_get_item",
            # DynamoDB answers with the options too; a reply without them must not lose them.
            {"Responses": {}, "UnprocessedKeys": {decisions_table: {"Keys": [state_key]}}},
            {"RequestItems": {decisions_table: {**projected, "Keys": [state_key]}, tenants_table: ANY}},
        )
        stub.add_response(
            "batch_get_item",
            {"Responses": {decisions_table: []}, "UnprocessedKeys": {}},
            {"RequestItems": {decisions_table: {**projected, "Keys": [state_key]}}},
        )
        inputs = store.read_inputs(tenants, "vpce-0a1b2c3d4e5f60718", "111111111111")
        stub.assert_no_pending_responses()
    assert (inputs.state, inputs.owner) == (None, None)


def add_legacy_set(tables, tenant_id, endpoints):
    """What a counter written before slots scaled carries: a string set of its slots."""
    tables.client.update_item(
        TableName=tables.names["DecisionsTableName"],
        Key={"pk": {"S": f"TENANT#{tenant_id}"}, "sk": {"S": "QUOTA"}},
        UpdateExpression="SET endpoints = :e",
        ExpressionAttributeValues={":e": {"SS": list(endpoints)}},
    )


def counter(tables, tenant_id):
    return tables.client.get_item(
        TableName=tables.names["DecisionsTableName"],
        Key={"pk": {"S": f"TENANT#{tenant_id}"}, "sk": {"S": "QUOTA"}},
    )["Item"]


def test_all_slots_reads_counters_then_the_slot_items_of_each_tenant_holding_any(tables):
    for endpoint in ("vpce-00000000000000001", "vpce-00000000000000002"):
        tables.decisions.record_slot("acme", endpoint)
    tables.decisions.record_slot("globex", "vpce-00000000000000003")
    tables.decisions.record_slot("initech", "vpce-00000000000000005")
    tables.decisions.release_slot("acme", "vpce-00000000000000001")
    tables.decisions.release_slot("initech", "vpce-00000000000000005")  # a counter at 0: no Query
    # A counter from before slots scaled, with a stale set: its slot items are what counts.
    tables.client.put_item(
        TableName=tables.names["DecisionsTableName"],
        Item={"pk": {"S": "TENANT#old"}, "sk": {"S": "SLOT#vpce-00000000000000004"}},
    )
    tables.client.put_item(
        TableName=tables.names["DecisionsTableName"],
        Item={
            "pk": {"S": "TENANT#old"},
            "sk": {"S": "QUOTA"},
            "active": {"N": "1"},
            "endpoints": {"SS": ["vpce-00000000000000009"]},
        },
    )
    calls = counted(tables)
    slots = tables.decisions.all_slots(["acme", "globex", "initech", "nobody", "old"])
    assert slots == {
        "vpce-00000000000000002": "acme",
        "vpce-00000000000000003": "globex",
        "vpce-00000000000000004": "old",
    }
    assert calls == ["BatchGetItem", "Query", "Query", "Query"]


def test_a_legacy_counter_keeps_counting_and_its_next_claim_and_release_drop_its_set(tables):
    first, second, third = "vpce-00000000000000001", "vpce-00000000000000002", "vpce-00000000000000003"
    tables.decisions.record_slot("acme", first)
    add_legacy_set(tables, "acme", [first])
    claimed = tables.decisions.claim(decision(second), "accepting", None, Slot("acme", second, 2))
    assert "endpoints" not in counter(tables, "acme")
    with pytest.raises(QuotaExceeded, match="2 of 2"):
        tables.decisions.claim(decision(third), "accepting", None, Slot("acme", third, 2))
    add_legacy_set(tables, "acme", [first, second])
    tables.decisions.finalise(claimed, decision(second, "rejected"), release_slot=True)
    assert "endpoints" not in counter(tables, "acme")
    assert tables.decisions.active_endpoints("acme") == 1
    assert tables.decisions.all_slots(["acme"]) == {first: "acme"}


# -- a tenant with 20,000 endpoints --------------------------------------------------------------
BIG = 20_000


def seed_open_endpoints(tables, tenant_id, count):
    """`count` slots and their counter, written straight into moto (what `count` claims leave)."""
    from moto.dynamodb.models import dynamodb_backends

    from gatekeeper.dal.codec import encode

    backend = dynamodb_backends["123456789012"]["us-east-1"]
    table = tables.names["DecisionsTableName"]
    for n in range(count):
        item = {"pk": f"TENANT#{tenant_id}", "sk": f"SLOT#vpce-{n:017x}", "item_type": "slot"}
        backend.put_item(table, encode(item))
    backend.put_item(table, encode({"pk": f"TENANT#{tenant_id}", "sk": "QUOTA", "active": count}))


def transact_sizes(tables):
    """The size in bytes of each TransactWriteItems request the store sends."""
    sizes = []
    tables.client.meta.events.register(
        "before-call.dynamodb.TransactWriteItems",
        lambda params, **_: sizes.append(len(params["body"])),  # the request on the wire
    )
    return sizes


@pytest.mark.usefixtures("fast_transactions")
def test_a_tenant_with_20000_endpoints_claims_and_releases_exactly_at_a_constant_write_size(tables):
    at = datetime(2026, 12, 7, 5, tzinfo=UTC)
    first, second, third = (f"vpce-1{n:016x}" for n in (1, 2, 3))  # ids of one length
    sizes = transact_sizes(tables)
    tables.decisions.claim(decision(first), "accepting", None, Slot("acme", first, BIG + 2), at)
    tables.decisions.release_slot("acme", first)
    seed_open_endpoints(tables, "acme", BIG)

    tables.decisions.claim(decision(second), "accepting", None, Slot("acme", second, BIG + 1), at)
    assert tables.decisions.active_endpoints("acme") == BIG + 1
    with pytest.raises(QuotaExceeded, match=f"{BIG + 1} of {BIG + 1}"):  # the last slot is taken
        tables.decisions.claim(decision(third), "accepting", None, Slot("acme", third, BIG + 1), at)
    assert tables.decisions.release_slot("acme", second) is True
    assert tables.decisions.release_slot("acme", second) is False  # once
    assert tables.decisions.active_endpoints("acme") == BIG
    tables.decisions.claim(decision(third), "accepting", None, Slot("acme", third, BIG + 1), at)

    slots = tables.decisions.all_slots(["acme"])
    assert len(slots) == BIG + 1 == tables.decisions.active_endpoints("acme")
    assert (third in slots, second in slots) == (True, False)
    assert set(counter(tables, "acme")) == {"pk", "sk", "active", "item_type"}  # lists no endpoint
    # At 1 endpoint and at 20,000 a claim (taken or refused) and a release send the same bytes.
    claim_at_one, release_at_one, claim_at_big, refused, release_at_big, _, claim_again = sizes
    assert claim_at_one == claim_at_big == refused == claim_again
    assert release_at_one == release_at_big
    assert claim_at_big < 2_000


def test_concurrent_claims_on_one_tenants_quota_stay_exact_with_the_deciders_thread_pool(tables, monkeypatch):
    """moto applies a transaction's items one by one; a pause after the slot's Put lets another
    thread's transaction read the counter before this one updates it, unless moto answers one
    request at a time (as the emulator makes it, and as AWS applies a transaction: atomically)."""
    put_item = DynamoDBBackend.put_item

    def slow_put_item(self, *args, **kwargs):
        answer = put_item(self, *args, **kwargs)
        time.sleep(0.005)
        return answer

    monkeypatch.setattr(DynamoDBBackend, "put_item", slow_put_item)
    endpoints = [f"vpce-{i:017x}" for i in range(1, 13)]
    claimed: list[str] = []

    def claim(endpoint: str) -> None:
        with contextlib.suppress(QuotaExceeded):
            tables.decisions.claim(decision(endpoint), "accepting", None, Slot("acme", endpoint, 3))
            claimed.append(endpoint)

    all_at_once([partial(claim, endpoint) for endpoint in endpoints])

    assert len(claimed) == 3
    assert tables.decisions.active_endpoints("acme") == 3
    assert sorted(tables.decisions.slots("acme")) == sorted(claimed)
