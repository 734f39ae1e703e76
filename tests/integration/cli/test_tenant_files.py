"""`gatekeeper tenants import|export`: YAML and CSV round trips, --dry-run diffs that write nothing,
whole-file validation before any write, version checks against edits made since the export."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from .conftest import ACME, GLOBEX, OPERATOR, table_snapshot

NEW = "333344445555"


def test_export_then_import_round_trips_unchanged(seeded, cli, tmp_path):
    cli.ok(
        "tenants", "update", "acme", "--param", "HomeRegions=us-east-1,eu-west-1", "--param", "MaxEndpoints=2"
    )
    before = table_snapshot(seeded)
    for fmt in ("yaml", "csv", "json"):
        path = tmp_path / f"tenants.{fmt}"
        cli.ok("tenants", "export", "--file", path)
        result = cli.json("tenants", "import", path)
        assert result["summary"] == {"create": 0, "update": 0, "remove": 0, "unchanged": 2}, fmt
        assert table_snapshot(seeded) == before, fmt


def test_export_yaml_to_stdout_carries_versions(seeded, cli):
    document = yaml.safe_load(cli.ok("tenants", "export").stdout)
    acme = next(t for t in document if t["tenant_id"] == "acme")
    assert acme["principals"] == [ACME]  # quoted: still a string after YAML
    assert acme["version"] == 1
    assert [t["tenant_id"] for t in cli.json("tenants", "export")] == ["acme", "globex"]


def test_csv_export_is_one_row_per_tenant_with_flat_columns(seeded, cli):
    cli.ok("tenants", "update", "acme", "--param", "HomeRegions=us-east-1,eu-west-1", "--add-principal", NEW)
    rows = list(csv.DictReader(io.StringIO(cli.ok("tenants", "export", "--output", "csv").stdout)))
    acme = next(r for r in rows if r["tenant_id"] == "acme")
    assert acme["principals"] == f"{ACME};{NEW}"
    assert acme["parameters"] == "HomeRegions=us-east-1,eu-west-1"
    assert acme["labels"] == "tier=gold"


def test_edited_yaml_dry_run_shows_the_diff_and_writes_nothing(seeded, cli, tmp_path):
    document = yaml.safe_load(cli.ok("tenants", "export").stdout)
    acme = next(t for t in document if t["tenant_id"] == "acme")
    acme["max_endpoints"] = 9
    document.append(
        {"tenant_id": "initech", "display_name": "Initech", "principals": [NEW],
         "services": [seeded.service.service_id], "template": "trial", "max_endpoints": 1}
    )  # fmt: skip
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(document))
    before = table_snapshot(seeded)

    human = cli.ok("tenants", "import", path, "--dry-run").stdout
    assert "~ update acme (v1)" in human
    assert "max_endpoints: 3 → 9" in human
    assert "+ create initech" in human
    assert "dry run: 1 create, 1 update, 0 remove, 1 unchanged; nothing written" in human
    plan = cli.json("tenants", "import", path, "--dry-run")
    assert plan["dry_run"] is True
    assert {c["tenant_id"]: c["action"] for c in plan["changes"]} == {
        "acme": "update", "globex": "unchanged", "initech": "create"
    }  # fmt: skip
    assert table_snapshot(seeded) == before

    applied = cli.json("tenants", "import", path)
    assert applied["summary"]["create"] == 1
    assert seeded.tenants.get("acme").max_endpoints == 9
    initech = seeded.tenants.get("initech")
    assert (initech.version, initech.updated_by) == (1, OPERATOR)
    # Importing the same file again (say, after a partial failure) finds everything as it says:
    # acme's file version is now behind, but nothing would be overwritten, so nothing is refused.
    after = table_snapshot(seeded)
    again = cli.json("tenants", "import", path)
    assert again["summary"] == {"create": 0, "update": 0, "remove": 0, "unchanged": 3}
    assert table_snapshot(seeded) == after


def test_csv_import_creates_tenants_with_typed_overrides(producer, cli, tmp_path):
    service = producer.service.service_id
    path = tmp_path / "tenants.csv"
    path.write_text(
        "tenant_id,display_name,principals,services,template,max_endpoints,parameters,labels\n"
        f"acme,Acme,{ACME};arn:aws:iam::{NEW}:role/app,{service},standard,3,"
        '"HomeRegions=us-east-1,eu-west-1;MaxEndpoints=2",tier=gold\n'
    )
    cli.ok("tenants", "import", path)
    acme = producer.tenants.get("acme")
    assert acme.principals == (ACME, f"arn:aws:iam::{NEW}:role/app")
    assert acme.parameters == {"HomeRegions": ["us-east-1", "eu-west-1"], "MaxEndpoints": 2}
    assert acme.labels == {"tier": "gold"}
    assert producer.tenants.owner_of(NEW) == "acme"


def test_import_from_stdin(producer, cli):
    document = {"tenants": [{"tenant_id": "acme", "display_name": "Acme", "principals": [ACME],
                             "services": ["*"], "template": "standard", "max_endpoints": 1}]}  # fmt: skip
    cli.ok("tenants", "import", "-", "--format", "json", input=json.dumps(document))
    assert producer.tenants.get("acme").services == ("*",)


def _write(tmp_path, records: list[dict]) -> str:
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": records}))
    return str(path)


def _record(tenant_id: str, account: str, service: str, **changes: object) -> dict:
    return {
        "tenant_id": tenant_id, "display_name": tenant_id.title(), "principals": [account],
        "services": [service], "template": "standard", "max_endpoints": 3, **changes,
    }  # fmt: skip


def test_one_bad_record_refuses_the_whole_file_and_lists_every_problem(seeded, cli, tmp_path):
    service = seeded.service.service_id
    path = _write(
        tmp_path,
        [
            _record("initech", NEW, service),  # fine on its own
            _record("hooli", f"arn:aws:iam::{NEW[:-1]}9:role/a/b", service),
            _record("umbrella", GLOBEX, service),  # globex's account
            _record("massive", "444455556666", service, template="nope"),
        ],
    )
    before = table_snapshot(seeded)
    error = cli.fails("tenants", "import", path)
    assert error.startswith("error: import refused, nothing written: ")
    assert "hooli: invalid Tenant: principals: principal" in error
    assert "has a path" in error
    assert "umbrella: account 222233334444 is already claimed by tenant globex" in error
    assert "massive: no template 'nope'" in error
    assert table_snapshot(seeded) == before


def test_import_refuses_a_file_exported_before_someone_else_edited(seeded, cli, tmp_path):
    path = tmp_path / "tenants.yaml"
    cli.ok("tenants", "export", "--file", path)
    cli.ok("tenants", "update", "acme", "--contact", "someone@else.test")  # acme is now v2
    document = yaml.safe_load(path.read_text())
    document[0]["max_endpoints"] = 8
    path.write_text(yaml.safe_dump(document))
    before = table_snapshot(seeded)
    error = cli.fails("tenants", "import", path)
    assert "acme: the file has version 1 but the tenant is at version 2" in error
    assert "changed by someone else" in error
    assert table_snapshot(seeded) == before


def test_account_moving_between_tenants_in_one_file_is_released_first(seeded, cli, tmp_path):
    service = seeded.service.service_id
    # globex gives its account to a new tenant in the same file: globex must be written first.
    path = _write(
        tmp_path,
        [
            _record("aaa-new-owner", GLOBEX, service),
            _record("globex", "444455556666", service, status="suspended", display_name="Globex"),
        ],
    )
    plan = cli.json("tenants", "import", path, "--dry-run")
    order = [c["tenant_id"] for c in plan["changes"] if c["action"] != "unchanged"]
    assert order == ["globex", "aaa-new-owner"]
    cli.ok("tenants", "import", path)
    assert seeded.tenants.owner_of(GLOBEX) == "aaa-new-owner"
    assert seeded.tenants.owner_of("444455556666") == "globex"


def test_prune_removes_tenants_missing_from_the_file_after_confirmation(seeded, cli, tmp_path, terminal):
    document = yaml.safe_load(cli.ok("tenants", "export").stdout)
    document = [t for t in document if t["tenant_id"] == "acme"]
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(document))
    assert cli.json("tenants", "import", path)["summary"]["remove"] == 0  # without --prune: kept
    plan = cli.json("tenants", "import", path, "--prune", "--dry-run")
    assert plan["summary"]["remove"] == 1
    before = table_snapshot(seeded)
    assert cli.run("tenants", "import", path, "--prune", input="n\n").exit_code == 1
    assert table_snapshot(seeded) == before
    cli.ok("tenants", "import", path, "--prune", "--yes")
    assert seeded.tenants.owner_of(GLOBEX) is None


def test_unquoted_account_id_that_lost_digits_is_refused(producer, cli, tmp_path):
    path = tmp_path / "tenants.yaml"
    path.write_text(
        "tenants:\n- tenant_id: acme\n  display_name: Acme\n  principals: [012345670123]\n"
        "  services: ['*']\n  template: standard\n  max_endpoints: 1\n"
    )
    assert "quote account ids in YAML" in cli.fails("tenants", "import", path)
    path.write_text(path.read_text().replace("[012345670123]", f"[{ACME}]"))  # 12 digits: exact
    cli.ok("tenants", "import", path)
    assert producer.tenants.get("acme").principals == (ACME,)


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("tenants: {acme: 1}", "t.yaml", "an import file holds a list of tenant records"),
        ("tenants: [\n", "t.yaml", "not valid YAML"),
        ("tenant_id,colour\nacme,red\n", "t.csv", "CSV has unknown column(s) colour"),
    ],
    ids=["not-a-list", "bad-yaml", "bad-csv-column"],
)
def test_malformed_files_are_one_line_errors(cli, tmp_path, text, name, expected):
    # No AWS at all: a file is read and checked before the stack is looked up.
    path = tmp_path / name
    path.write_text(text)
    assert expected in cli.fails("tenants", "import", path)


def test_missing_file_is_one_line(cli, tmp_path):
    assert cli.fails("tenants", "import", tmp_path / "nope.yaml").endswith("nope.yaml")
