"""Issue 19, tried as a new user would: a record broken in the console is repaired without revoking
anyone; every write that revokes shows which endpoints first (`--dry-run`), asks with the count or
takes `--yes`, and plans exactly what its dry run showed; numbers in files are numbers; a tenant
may leave its quota to the template."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gatekeeper.logic.announcer import Announcer
from gatekeeper_ops.sandbox.account import ProducerAccount
from tests.integration.conftest import tenant

from .conftest import ACME, table_snapshot

UMBRELLA = "444455556666"
NEW = "333344445555"
ROOT = Path(__file__).resolve().parents[3]


def _break(producer: ProducerAccount, tenant_id: str, expression: str, values: dict[str, Any]) -> None:
    """A console edit: the item changed by hand, bypassing every check (`#s` is `status`, a
    reserved word)."""
    kwargs: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
    if "#s" in expression:
        kwargs["ExpressionAttributeNames"] = {"#s": "status"}
    producer.client("dynamodb").update_item(
        TableName=producer.stack.outputs["TenantsTableName"],
        Key={"pk": {"S": f"TENANT#{tenant_id}"}, "sk": {"S": "TENANT"}},
        UpdateExpression=expression,
        **kwargs,
    )


def _connected(producer: ProducerAccount, account: str) -> str:
    endpoint = producer.consumer(account).request_endpoint(producer.service)
    producer.settle()
    producer.connection_state(endpoint)  # pending → available (the emulator's pending_reads)
    assert producer.connection_state(endpoint) == "available"
    return endpoint


@pytest.fixture
def revocations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every revocation request any handler puts on the bus (tenant sync, the sweep)."""
    requested: list[Any] = []
    real = Announcer.revocations

    def spy(self: Announcer, connections: Any, trigger: Any) -> int:
        items = list(connections)
        requested.extend(items)
        return real(self, items, trigger)

    monkeypatch.setattr(Announcer, "revocations", spy)
    return requested


@pytest.fixture
def umbrella(seeded: ProducerAccount) -> str:
    """Tenant umbrella with an accepted, available endpoint; returns the endpoint id."""
    seeded.add_tenant(tenant("umbrella", UMBRELLA, seeded.service.service_id))
    seeded.settle()
    return _connected(seeded, UMBRELLA)


def _sweep(producer: ProducerAccount) -> None:
    invocation = producer.lambdas.run_schedule("ReconcileConnectionsFunction")
    assert invocation.ok, invocation.error


# -- tenants repair -------------------------------------------------------------------------------
def test_repair_fixes_a_console_edit_keeps_the_claims_and_never_revokes(seeded, cli, umbrella, revocations):
    _break(
        seeded,
        "umbrella",
        "SET max_endpoints = :n, #s = :s, principals = :p, note = :note",
        {":n": {"S": "3"}, ":s": {"S": "Active"}, ":p": {"SS": [UMBRELLA]}, ":note": {"S": "ticket 42"}},
    )
    seeded.settle()  # the broken record's stream record reaches the tenant sync
    revocations.clear()
    # Every message about the broken record names the repair, none a removal.
    for command in (("show", "umbrella"), ("update", "umbrella", "--contact", "x@y.test")):
        error = cli.fails("tenants", *command)
        assert "max_endpoints: is a string (S), must be a number (N)" in error
        assert "fix it with `gatekeeper tenants repair umbrella`" in error
    before = table_snapshot(seeded)
    plan = cli.json("tenants", "repair", "umbrella", "--dry-run")
    fixes = {fix["field"]: fix["fix"] for fix in plan["fixes"]}
    assert set(fixes) == {"max_endpoints", "status", "principals", "note"}
    assert fixes["max_endpoints"] == "3 (a number)"
    assert fixes["status"] == "'active'"
    assert fixes["note"] == "dropped (was ticket 42)"
    assert (plan["manual"], plan["endpoints"]) == ([], [])
    human = cli.ok("tenants", "repair", "umbrella", "--dry-run").stdout
    assert "  fix     max_endpoints: is a string ('3') → 3 (a number)" in human
    assert "dry run: nothing written" in human
    # A script that forgot --yes is refused before anything is written.
    refused = cli.run("tenants", "repair", "umbrella")
    assert refused.exit_code == 2
    assert "not confirmed: no terminal to ask on; nothing written" in refused.stderr
    assert table_snapshot(seeded) == before
    done = cli.json("tenants", "repair", "umbrella", "--yes")
    assert done["action"] == "repaired"
    stored = seeded.tenants.get("umbrella")
    assert (stored.principals, stored.max_endpoints, stored.status, stored.version) == (
        (UMBRELLA,),
        3,
        "active",
        2,
    )
    assert seeded.tenants.owner_of(UMBRELLA) == "umbrella"  # its claim kept
    assert cli.json("tenants", "show", "umbrella")["quota"]["effective"] == 3
    seeded.settle()  # the repair's stream record: tenant sync
    _sweep(seeded)
    seeded.settle()
    assert revocations == []  # no revocation request on the bus
    assert seeded.connection_state(umbrella) == "available"
    assert [d.outcome for d in seeded.decisions.decisions_for_endpoint(umbrella)] == ["accepted"]
    assert "nothing to repair" in cli.ok("tenants", "repair", "umbrella").stdout


def test_repair_is_version_checked(seeded, cli, umbrella, monkeypatch):
    from gatekeeper.dal.tenants import TenantStore

    _break(seeded, "umbrella", "SET max_endpoints = :n", {":n": {"S": "3"}})
    real = TenantStore.repair

    def racing(self: TenantStore, *args: Any, **kwargs: Any) -> Any:
        _break(seeded, "umbrella", "SET version = :v", {":v": {"N": "7"}})  # someone else, meanwhile
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TenantStore, "repair", racing)
    error = cli.fails("tenants", "repair", "umbrella", "--yes")
    assert "tenant umbrella was changed by someone else since you read it; nothing was written" in error


@pytest.mark.parametrize(
    ("expression", "values", "manual"),
    [
        (
            "SET principals = :p, max_endpoints = :n",
            {":p": {"L": [{"S": UMBRELLA}, {"S": ACME}]}, ":n": {"S": "3"}},
            "account 111122223333 is claimed by tenant acme",
        ),
        ("SET #s = :s", {":s": {"S": "paused"}}, "status: 'paused' is neither active nor suspended"),
        ("REMOVE template", {}, "template: missing; only you know it"),
    ],
    ids=["claimed-by-another-tenant", "unknown-status", "missing-template"],
)
def test_repair_reports_what_only_a_person_can_fix_and_writes_nothing(
    seeded, cli, umbrella, expression, values, manual
):
    _break(seeded, "umbrella", expression, values)
    before = table_snapshot(seeded)
    for extra in (("--dry-run",), ("--yes",)):
        result = cli.run("tenants", "repair", "umbrella", *extra)
        assert result.exit_code == 1, result.output
        assert manual in result.stdout
        assert "needs 1 manual fix(es) (listed above); nothing written" in result.stderr
    assert table_snapshot(seeded) == before


# -- previews before any revocation ---------------------------------------------------------------
def test_suspend_previews_asks_with_the_count_and_plans_what_its_dry_run_showed(seeded, cli, terminal):
    endpoint = _connected(seeded, ACME)
    service = seeded.service.service_id
    before = table_snapshot(seeded)
    dry = cli.json("tenants", "suspend", "acme", "--dry-run")
    assert dry["endpoints"] == [
        {
            "vpc_endpoint_id": endpoint,
            "owner": ACME,
            "service_id": service,
            "state": "available",
            "tenant_id": "acme",
            "action": "revoke",
            "why": "tenant acme is suspended",
        }
    ]
    human = cli.ok("tenants", "suspend", "acme", "--dry-run").stdout
    assert f"revoke     {endpoint}  owner {ACME}  {service}  available" in human
    # The warning comes before the write: declined, nothing is written.
    declined = cli.run("tenants", "suspend", "acme", input="n\n")
    assert declined.exit_code == 1
    assert f"revoke     {endpoint}" in declined.stderr
    assert "Suspend tenant acme: revokes or rejects 1 open endpoint connection(s)" in declined.stderr
    assert table_snapshot(seeded) == before
    real = cli.json("tenants", "suspend", "acme", "--yes")
    assert real["endpoints"] == dry["endpoints"]  # plan(dry) == plan(real)
    seeded.settle()
    assert seeded.decisions.decisions_for_endpoint(endpoint)[-1].outcome == "revoked"


def test_a_script_without_yes_is_refused_with_exit_2_and_nothing_written(seeded, cli):
    _connected(seeded, ACME)
    before = table_snapshot(seeded)
    for command in (
        ("tenants", "suspend", "acme"),
        ("tenants", "remove", "acme"),
        ("tenants", "update", "acme", "--add-principal", NEW, "--remove-principal", ACME),
    ):
        result = cli.run(*command)
        assert result.exit_code == 2, (command, result.output)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1
        assert "revokes or rejects 1 open endpoint connection(s)" in errors[0]
        assert "Preview with --dry-run, then repeat with --yes" in errors[0]
    assert table_snapshot(seeded) == before


def test_writes_that_take_nothing_away_do_not_ask(seeded, cli):
    _connected(seeded, ACME)
    assert cli.json("tenants", "update", "acme", "--contact", "noc@acme.test")["endpoints"] == []
    assert cli.json("tenants", "resume", "globex")["endpoints"] == []


def test_update_that_narrows_principals_lists_the_endpoints_it_revokes(seeded, cli):
    endpoint = _connected(seeded, ACME)
    args = ("tenants", "update", "acme", "--add-principal", NEW, "--remove-principal", ACME)
    dry = cli.json(*args, "--dry-run")
    [planned] = dry["endpoints"]
    assert (planned["vpc_endpoint_id"], planned["action"]) == (endpoint, "revoke")
    assert planned["why"] == f"account {ACME} would no longer be a principal of any tenant (was acme)"
    assert cli.json(*args, "--yes")["endpoints"] == dry["endpoints"]


def test_remove_previews_and_confirms_before_the_write(seeded, cli, terminal):
    endpoint = _connected(seeded, ACME)
    before = table_snapshot(seeded)
    dry = cli.json("tenants", "remove", "acme", "--dry-run")
    assert [(e["vpc_endpoint_id"], e["action"]) for e in dry["endpoints"]] == [(endpoint, "revoke")]
    declined = cli.run("tenants", "remove", "acme", input="n\n")
    assert "Remove tenant acme (Acme): revokes or rejects 1 open endpoint connection(s)" in declined.stderr
    assert table_snapshot(seeded) == before
    assert cli.json("tenants", "remove", "acme", "--yes")["endpoints"] == dry["endpoints"]


def test_pruning_import_previews_the_endpoints_of_the_tenants_it_removes(seeded, cli, tmp_path):
    endpoint = _connected(seeded, ACME)
    exported = yaml.safe_load(cli.ok("tenants", "export").stdout)
    path = tmp_path / "globex-only.yaml"
    path.write_text(yaml.safe_dump([t for t in exported if t["tenant_id"] == "globex"]))
    args = ("tenants", "import", str(path), "--prune", "--confirm-removals", "1")
    before = table_snapshot(seeded)
    dry = cli.json(*args, "--dry-run")
    assert [(e["vpc_endpoint_id"], e["tenant_id"], e["action"]) for e in dry["endpoints"]] == [
        (endpoint, "acme", "revoke")
    ]
    assert cli.run(*args).exit_code == 2  # a script must say --yes
    assert table_snapshot(seeded) == before
    real = cli.json(*args, "--yes")
    assert real["endpoints"] == dry["endpoints"]
    assert real["summary"]["remove"] == 1


# -- issue 19 item 5: numbers are numbers, the quota may be the template's ------------------------------
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_import_refuses_numbers_written_as_strings(seeded, cli, tmp_path, fmt):
    record = {
        "tenant_id": "initech", "display_name": "Initech", "principals": [NEW],
        "services": [seeded.service.service_id], "template": "standard", "max_endpoints": "3",
    }  # fmt: skip
    path = tmp_path / f"t.{fmt}"
    path.write_text(yaml.safe_dump({"tenants": [record]}) if fmt == "yaml" else json.dumps([record]))
    error = cli.fails("tenants", "import", path, "--dry-run")
    assert "initech: invalid Tenant: max_endpoints: Input should be a valid integer" in error
    record["max_endpoints"] = 3
    path.write_text(yaml.safe_dump({"tenants": [record]}) if fmt == "yaml" else json.dumps([record]))
    assert cli.json("tenants", "import", path)["summary"]["create"] == 1


def test_csv_numbers_are_read_as_numbers(seeded, cli, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "tenant_id,display_name,principals,services,template,max_endpoints\n"
        f"initech,Initech,{NEW},{seeded.service.service_id},standard,2\n"
    )
    assert cli.json("tenants", "import", path)["summary"]["create"] == 1
    assert seeded.tenants.get("initech").max_endpoints == 2


def test_max_endpoints_is_optional_and_the_template_decides(seeded, cli):
    service = seeded.service.service_id
    created = cli.json(
        "tenants", "add", "initech", "--name", "Initech", "-p", NEW, "-s", service, "--template", "trial"
    )
    assert "max_endpoints" not in created["tenant"]
    assert cli.json("tenants", "show", "initech")["quota"] == {
        "max_endpoints": None, "template_max_endpoints": 1, "effective": 1,
    }  # fmt: skip
    # The decision path enforces the template's quota: one endpoint, the second is refused.
    first = seeded.consumer(NEW).request_endpoint(seeded.service)
    seeded.settle()
    second = seeded.consumer(NEW).request_endpoint(seeded.service)
    seeded.settle()
    assert seeded.decisions.decisions_for_endpoint(first)[-1].outcome == "accepted"
    refused = seeded.decisions.decisions_for_endpoint(second)[-1]
    assert (refused.outcome, refused.reasons) == ("rejected", ("QuotaExceeded",))


# -- no message advises a step that revokes a healthy endpoint ------------------------------------------
# Advice that takes access away without a preview: a removal of the record, or of a principal, as a fix.
_REVOKING_ADVICE = re.compile(
    r"remove the record|add it again|remove it there first|`gatekeeper tenants (remove|suspend)\b",
    re.IGNORECASE,
)


def _messages() -> list[tuple[str, str]]:
    sources = [
        *(ROOT / "ops/gatekeeper_ops/cli").glob("*.py"),
        *(ROOT / "layers/core/gatekeeper").rglob("*.py"),
    ]
    found: list[tuple[str, str]] = []
    for source in sources:
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((str(source.relative_to(ROOT)), node.value))
    return found


def test_no_message_advises_a_step_that_would_revoke_a_healthy_endpoint():
    messages = _messages()
    assert any("gatekeeper tenants repair" in text for _, text in messages)  # the scan sees the messages
    offending = [(where, text) for where, text in messages if _REVOKING_ADVICE.search(text)]
    assert offending == []
    for page in ("README.md", "docs/troubleshooting.md"):  # the README's short table, and the full one
        rows = (ROOT / page).read_text().splitlines()
        [line] = [
            row for row in rows if row.startswith(("| `TenantInvalid`", "| Decisions say `TenantInvalid`"))
        ]
        assert "gatekeeper tenants repair" in line, page


def test_template_push_previews_the_connections_it_decides_differently(seeded, cli, tmp_path):
    endpoint = _connected(seeded, ACME)
    document = json.loads((ROOT / "policy-templates/standard.json").read_text())
    document["Statement"].insert(0, {"Sid": "Closed", "Effect": "Deny"})  # a mistake: denies everyone
    path = tmp_path / "standard.json"
    path.write_text(json.dumps(document))
    dry = cli.json("templates", "push", path, "--dry-run")
    [planned] = dry["endpoints"]
    assert (planned["vpc_endpoint_id"], planned["tenant_id"], planned["action"]) == (
        endpoint,
        "acme",
        "differs",
    )
    assert planned["why"].startswith("accepted (Accept) → rejected (Closed) under standard")
    assert cli.json("templates", "list", "standard")[-1]["version"] == 1  # nothing pushed
    refused = cli.run("templates", "push", path)
    assert refused.exit_code == 2
    assert "The push changes how 1 open endpoint connection(s) would be decided" in refused.stderr
    real = cli.json("templates", "push", path, "--yes")
    assert real["endpoints"] == dry["endpoints"]
    assert real["templates"][0]["version"] == 2
    seeded.settle()
    assert seeded.connection_state(endpoint) == "available"  # a template change revokes nothing


def test_import_and_add_name_the_repair_for_a_broken_record_instead_of_planning_a_create(
    seeded, cli, umbrella, tmp_path
):
    record = {
        "tenant_id": "umbrella", "display_name": "Umbrella", "principals": [UMBRELLA],
        "services": [seeded.service.service_id], "template": "standard", "max_endpoints": 3,
    }  # fmt: skip
    _break(seeded, "umbrella", "SET max_endpoints = :n", {":n": {"S": "3"}})
    path = tmp_path / "umbrella.yaml"
    path.write_text(yaml.safe_dump({"tenants": [record]}))
    before = table_snapshot(seeded)
    for extra in (("--dry-run",), ()):
        error = cli.fails("tenants", "import", path, *extra)
        assert "umbrella: its stored record does not validate; an import does not overwrite it" in error
        assert "`gatekeeper tenants repair umbrella`" in error
    added = cli.fails(
        "tenants", "add", "umbrella", "--name", "Umbrella", "-p", NEW, "-s", seeded.service.service_id,
        "--template", "standard", "--dry-run",
    )  # fmt: skip
    assert "tenant umbrella already exists, and its stored record does not validate" in added
    assert table_snapshot(seeded) == before
