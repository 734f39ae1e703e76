"""`gatekeeper tenants add|show|list|update|suspend|resume|remove`: validated, locked, attributed writes;
refused edits leave the tenants table byte-for-byte unchanged."""

from __future__ import annotations

import json

from .conftest import ACME, GLOBEX, OPERATOR, table_snapshot

NEW = "333344445555"


def add_args(service: str, *extra: str, tenant_id: str = "initech", principal: str = NEW) -> list[str]:
    return [
        "tenants", "add", tenant_id, "--name", "Initech", "--principal", principal, "--service", service,
        "--template", "standard", "--max-endpoints", "2", *extra,
    ]  # fmt: skip


def test_add_writes_a_validated_record_attributed_to_the_caller(producer, cli):
    service = producer.service.service_id
    extra = ["--param", "HomeRegions=us-east-1,eu-west-1", "--param", "MaxEndpoints=2"]
    extra += ["--label", "tier=silver", "--expires-at", "2030-01-31"]
    result = cli.json(*add_args(service, *extra))
    assert result["action"] == "created"
    stored = producer.tenants.get("initech")
    assert stored.version == 1
    assert stored.updated_by == OPERATOR
    assert stored.updated_at is not None
    # Overrides are stored as their template types, not as the strings typed on the command line.
    assert stored.parameters == {"HomeRegions": ["us-east-1", "eu-west-1"], "MaxEndpoints": 2}
    assert stored.labels == {"tier": "silver"}
    assert stored.expires_at is not None
    assert stored.expires_at.year == 2030
    assert producer.tenants.owner_of(NEW) == "initech"


def test_add_human_output_names_the_tenant_version_and_actor(producer, cli):
    out = cli.ok(*add_args(producer.service.service_id)).stdout
    assert "created tenant initech (version 1, by operator:arn:aws:sts::123456789012:user/moto)" in out
    assert "principals: [333344445555]" in out


def test_add_dry_run_writes_nothing(seeded, cli):
    before = table_snapshot(seeded)
    result = cli.json(*add_args(seeded.service.service_id, "--dry-run"))
    assert result["dry_run"] is True
    [change] = result["changes"]
    assert change["action"] == "create"
    assert change["changes"]["principals"]["to"] == [NEW]
    assert table_snapshot(seeded) == before


ADD_REFUSALS = {
    "path-arn": (
        (),
        f"arn:aws:iam::{NEW}:role/team/app",
        "has a path; PrivateLink does not accept principal ARNs",
    ),
    "duplicate-principal": ((), ACME, "account 111122223333 is already claimed by tenant acme"),
    "bad-account": ((), "12345", "is neither a 12-digit account id nor an IAM ARN"),
    "unknown-template": (("--template", "gold"), NEW, "no template 'gold'"),
    "unknown-version": (("--template-version", "9"), NEW, "no version 9 of template 'standard'"),
    "param-type": (("--param", "MaxEndpoints=lots"), NEW, "override 'MaxEndpoints'"),
    "unknown-param": (("--param", "Colour=blue"), NEW, "declares no such parameter"),
    "param-syntax": (("--param", "MaxEndpoints"), NEW, "is not KEY=VALUE"),
}


def test_add_refusals_name_the_problem_and_write_nothing(seeded, cli):
    # One account for every case (fast); each case must leave the table exactly as it was.
    before = table_snapshot(seeded)
    service = seeded.service.service_id
    cases = {
        name: add_args(service, *extra, principal=principal)
        for name, (extra, principal, _) in ADD_REFUSALS.items()
    }
    cases["existing-id"] = add_args(service, tenant_id="acme")
    cases["bad-service"] = add_args("svc-123")
    expected = {name: text for name, (_, _, text) in ADD_REFUSALS.items()}
    expected["existing-id"] = "tenant acme already exists"
    expected["bad-service"] = "service 'svc-123' is not an endpoint service id"
    for name, args in cases.items():
        error = cli.fails(*args)
        assert expected[name] in error, name
        assert table_snapshot(seeded) == before, name


def test_add_warns_about_a_service_the_stack_does_not_manage(producer, cli):
    result = cli.ok(*add_args("vpce-svc-0fffffffffffffff0"))
    assert "not managed by stack vpce-gatekeeper" in result.stderr
    assert producer.tenants.get("initech").services == ("vpce-svc-0fffffffffffffff0",)


def test_show_and_list(seeded, cli):
    shown = cli.json("tenants", "show", "acme")
    assert shown["principals"] == [ACME]
    assert shown["version"] == 1
    assert shown["active_endpoints"] == 0
    assert "active_endpoints" in cli.ok("tenants", "show", "acme").stdout
    listed = cli.json("tenants", "list")
    assert [t["tenant_id"] for t in listed] == ["acme", "globex"]
    assert [t["tenant_id"] for t in cli.json("tenants", "list", "--status", "suspended")] == ["globex"]
    table = cli.ok("tenants", "list").stdout
    for text in ("acme", "globex", "suspended"):
        assert text in table


def test_list_reports_a_record_broken_in_the_console(seeded, cli):
    seeded.client("dynamodb").update_item(
        TableName=seeded.stack.outputs["TenantsTableName"],
        Key={"pk": {"S": "TENANT#globex"}, "sk": {"S": "TENANT"}},
        UpdateExpression="SET max_endpoints = :bad",
        ExpressionAttributeValues={":bad": {"S": "many"}},
    )
    listed = cli.run("tenants", "list", "--output", "json")
    assert [t["tenant_id"] for t in json.loads(listed.stdout)] == ["acme"]
    [problem] = listed.stderr.splitlines()  # named on stderr in every format
    assert problem.startswith("warning: INVALID: tenant record TENANT#globex is invalid")
    assert "max_endpoints" in problem
    assert "INVALID" in cli.ok("tenants", "list").stderr


def test_show_unknown_tenant_is_one_line(seeded, cli):
    assert (
        cli.fails("tenants", "show", "nobody") == "error: no tenant 'nobody'; see `gatekeeper tenants list`"
    )


def test_update_changes_fields_bumps_the_version_and_records_who(seeded, cli):
    role = f"arn:aws:iam::{NEW}:role/ci"
    args = ["--add-principal", role, "--max-endpoints", "5", "--param", "HomeRegions=eu-west-1"]
    result = cli.json(
        "tenants", "update", "acme", *args, "--unset-label", "tier", "--contact", "ops@acme.test"
    )
    assert result["action"] == "updated"
    stored = seeded.tenants.get("acme")
    assert stored.version == 2
    assert stored.principals == (ACME, role)
    assert (stored.max_endpoints, stored.parameters, stored.labels) == (5, {"HomeRegions": ["eu-west-1"]}, {})
    assert stored.updated_by == OPERATOR
    assert seeded.tenants.owner_of(NEW) == "acme"


def test_update_dry_run_shows_the_diff_and_writes_nothing(seeded, cli):
    before = table_snapshot(seeded)
    result = cli.ok("tenants", "update", "acme", "--max-endpoints", "7", "--dry-run")
    assert "~ update acme (v1)" in result.stdout
    assert "max_endpoints: 3 → 7" in result.stdout
    assert table_snapshot(seeded) == before


def test_update_removing_a_principal_releases_its_claim(seeded, cli):
    cli.ok("tenants", "update", "acme", "--add-principal", NEW)
    cli.ok("tenants", "update", "acme", "--remove-principal", NEW)
    assert seeded.tenants.owner_of(NEW) is None
    assert seeded.tenants.get("acme").version == 3


UPDATE_REFUSALS = {
    "stale-version": (
        ("--expected-version", "7", "--max-endpoints", "4"),
        "tenant acme was changed by someone else",
    ),
    "duplicate-principal": (
        ("--add-principal", GLOBEX),
        "account 222233334444 is already claimed by tenant globex",
    ),
    "path-arn": (("--add-principal", f"arn:aws:iam::{NEW}:user/a/b"), "has a path"),
    "unknown-template": (("--template", "missing"), "no template 'missing'"),
    "not-on-record": (("--remove-principal", NEW), "principal 333344445555 is not on the record"),
    "param-range": (("--param", "MaxEndpoints=-1"), "below MinValue 0"),
}


def test_update_refusals_leave_the_table_unchanged(seeded, cli):
    before = table_snapshot(seeded)
    for name, (args, expected) in UPDATE_REFUSALS.items():
        assert expected in cli.fails("tenants", "update", "acme", *args), name
        assert table_snapshot(seeded) == before, name


def test_update_with_the_current_expected_version_succeeds(seeded, cli):
    cli.ok("tenants", "update", "acme", "--expected-version", "1", "--name", "ACME Corp")
    assert seeded.tenants.get("acme").display_name == "ACME Corp"


def test_concurrent_edit_between_read_and_write_is_refused(seeded, cli, monkeypatch):
    """Someone else writes after the CLI read the record: the conditional write refuses ours."""
    from gatekeeper.dal.tenants import TenantStore

    original = TenantStore.update

    def racing_update(self, tenant, actor, at=None):
        current = self.get(tenant.tenant_id)
        original(self, current.model_copy(update={"contact": "someone-else"}), "operator:other")
        monkeypatch.setattr(TenantStore, "update", original)
        return original(self, tenant, actor, at)

    monkeypatch.setattr(TenantStore, "update", racing_update)
    error = cli.fails("tenants", "update", "acme", "--max-endpoints", "9")
    assert "changed by someone else since you read it; nothing was written" in error
    stored = seeded.tenants.get("acme")
    assert (stored.version, stored.contact, stored.max_endpoints) == (2, "someone-else", 3)


def test_suspend_and_resume(seeded, cli):
    assert cli.json("tenants", "suspend", "acme")["tenant"]["status"] == "suspended"
    assert seeded.tenants.get("acme").status == "suspended"
    assert "already suspended" in cli.fails("tenants", "suspend", "acme")
    cli.ok("tenants", "resume", "acme")
    stored = seeded.tenants.get("acme")
    assert (stored.status, stored.version, stored.updated_by) == ("active", 3, OPERATOR)


def test_suspend_with_a_stale_version_is_refused(seeded, cli):
    before = table_snapshot(seeded)
    assert "changed by someone else" in cli.fails("tenants", "suspend", "acme", "--expected-version", "3")
    assert table_snapshot(seeded) == before


def test_remove_asks_then_releases_the_claims(seeded, cli, terminal):
    before = table_snapshot(seeded)
    declined = cli.run("tenants", "remove", "globex", input="n\n")
    assert declined.exit_code == 1
    assert table_snapshot(seeded) == before
    cli.ok("tenants", "remove", "globex", input="y\n")
    assert seeded.tenants.owner_of(GLOBEX) is None
    assert "globex" not in [t["tenant_id"] for t in cli.json("tenants", "list")]
    # The account is free for another tenant now.
    cli.ok(*add_args(seeded.service.service_id, tenant_id="globex2", principal=GLOBEX))


def test_remove_with_a_stale_version_is_refused(seeded, cli):
    before = table_snapshot(seeded)
    assert "changed by someone else" in cli.fails(
        "tenants", "remove", "acme", "--expected-version", "5", "--yes"
    )
    assert table_snapshot(seeded) == before


def test_remove_of_a_tenant_with_connected_endpoints_says_what_happens_to_them(seeded, cli):
    endpoint = seeded.consumer(ACME).request_endpoint(seeded.service)
    seeded.settle()
    seeded.connection_state(endpoint)  # EC2's first read after the accept may still be the old state
    result = cli.run("tenants", "remove", "acme", "--yes")
    assert result.exit_code == 0, result.output
    assert "endpoints: 1 revoked" in result.stdout
    assert f"revoke     {endpoint}  owner {ACME}" in result.stdout
    assert "removed tenant acme (was version" in result.stdout


def test_a_record_broken_in_the_console_is_explained_with_the_repair_command(seeded, cli):
    seeded.client("dynamodb").update_item(
        TableName=seeded.stack.outputs["TenantsTableName"],
        Key={"pk": {"S": "TENANT#globex"}, "sk": {"S": "TENANT"}},
        UpdateExpression="SET principals = :bad",
        ExpressionAttributeValues={":bad": {"L": [{"S": f"arn:aws:iam::{GLOBEX}:role/a/b"}]}},
    )
    commands = (("update", "globex", "--name", "Globex"), ("show", "globex"), ("remove", "globex", "--yes"))
    for command in commands:
        error = cli.fails("tenants", *command)
        assert "tenant record TENANT#globex is invalid: principals" in error
        assert "fix it with `gatekeeper tenants repair globex`" in error
    assert "remove" not in error.split("—")[-1]  # the advice is the repair, never a removal
