"""`gatekeeper templates list|show|validate|push|diff`: immutable versions, problems located by
statement and key, invalid templates never stored."""

from __future__ import annotations

import json
from pathlib import Path

from gatekeeper_ops.sandbox.account import BUILTIN_TEMPLATES

from .conftest import OPERATOR, table_snapshot

STANDARD = BUILTIN_TEMPLATES / "standard.json"


def edited_standard(tmp_path: Path, **changes: object) -> Path:
    document = json.loads(STANDARD.read_text())
    document.update(changes)
    path = tmp_path / "standard.json"
    path.write_text(json.dumps(document))
    return path


BROKEN = {
    "Name": "broken",
    "Statement": [
        {
            "Sid": "Entitled",
            "Effect": "Deny",
            "Condition": {"StringNotLike": {"endpoint:SeviceId": "vpce-svc-*"}},
        },
        {"Sid": "Hold", "Effect": "Maybe"},
    ],
}


def test_validate_is_offline_and_reports_ok(cli):
    # No producer fixture: no AWS at all (the stack could not even be found).
    result = cli.json("templates", "validate", *sorted(BUILTIN_TEMPLATES.glob("*.json")))
    assert [t["valid"] for t in result] == [True, True, True]
    assert "ok" in cli.ok("templates", "validate", STANDARD).stdout


def test_validate_names_the_statement_and_key_at_fault(cli, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(BROKEN))
    result = cli.run("templates", "validate", path)
    assert result.exit_code == 1
    assert "Statement[0] 'Entitled': StringNotLike endpoint:SeviceId: unknown condition key" in result.stdout
    assert "Statement[1] 'Hold': Effect 'Maybe' is not one of Allow" in result.stdout
    assert result.stderr.strip() == f"error: 1 of 1 template file(s) invalid: {path}"
    document = json.loads(cli.run("templates", "validate", path, "--json").stdout)
    [entry] = document
    assert entry["valid"] is False
    assert len(entry["problems"]) == 2


def test_validate_refuses_a_file_that_is_not_json(cli, tmp_path):
    path = tmp_path / "t.json"
    path.write_text("{'Name': ")
    assert "not valid JSON" in cli.fails("templates", "validate", path)


def test_list_and_show(producer, cli):
    listed = cli.json("templates", "list")
    assert [(t["name"], t["version"]) for t in listed] == [("enterprise", 1), ("standard", 1), ("trial", 1)]
    assert all(t["problems"] == [] for t in listed)
    shown = cli.json("templates", "show", "standard")
    assert (shown["version"], shown["valid"]) == (1, True)
    assert shown["document"]["Name"] == "standard"
    human = cli.ok("templates", "show", "standard").stdout
    assert "template standard v1 — pushed by sandbox" in human
    assert '"Sid": "OtherRegion"' in human
    assert "no template 'gold'" in cli.fails("templates", "show", "gold")


def test_push_stores_a_new_immutable_version_attributed_to_the_caller(producer, cli, tmp_path):
    path = edited_standard(tmp_path, Description="Paying tenants, revised")
    [pushed] = cli.json("templates", "push", path)
    assert (pushed["action"], pushed["version"], pushed["created_by"]) == ("pushed", 2, OPERATOR)
    assert producer.templates.get("standard", 1).document["Description"].startswith("Paying tenants: up to 3")
    assert producer.templates.get("standard").document["Description"] == "Paying tenants, revised"
    versions = cli.json("templates", "list", "standard")
    assert [v["version"] for v in versions] == [1, 2]


def test_push_of_an_identical_document_stores_nothing(producer, cli):
    before = table_snapshot(producer, "TemplatesTableName")
    assert "is identical; nothing pushed" in cli.ok("templates", "push", STANDARD).stdout
    assert table_snapshot(producer, "TemplatesTableName") == before


def test_push_of_an_invalid_template_is_refused_and_stores_nothing(producer, cli, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({**BROKEN, "Name": "standard"}))
    before = table_snapshot(producer, "TemplatesTableName")
    error = cli.fails("templates", "push", path)
    assert error.startswith("error: template 'standard' is invalid: Statement[0] 'Entitled'")
    assert "unknown condition key" in error
    assert table_snapshot(producer, "TemplatesTableName") == before


def test_push_that_would_break_a_tenants_overrides_needs_force(seeded, cli, tmp_path):
    cli.ok("tenants", "update", "acme", "--param", "HomeRegions=us-east-1,eu-west-1")
    document = json.loads(STANDARD.read_text())
    del document["Parameters"]["HomeRegions"]
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] != "OtherRegion"]
    path = tmp_path / "standard.json"
    path.write_text(json.dumps(document))
    before = table_snapshot(seeded, "TemplatesTableName")
    error = cli.fails("templates", "push", path)
    assert "standard would break tenants whose overrides no longer fit: acme (override 'HomeRegions'" in error
    assert table_snapshot(seeded, "TemplatesTableName") == before
    [pushed] = cli.json("templates", "push", path, "--force")
    assert pushed["broken_tenants"]


def test_diff_between_versions_and_against_a_file(producer, cli, tmp_path):
    path = edited_standard(tmp_path, Description="Revised")
    local = cli.json("templates", "diff", "standard", path)
    assert local["changed"] is True
    assert '+  "Description": "Revised",' in local["diff"]
    cli.ok("templates", "push", path)
    stored = cli.json("templates", "diff", "standard")
    assert (stored["from"], stored["to"]) == ("standard v1", "standard v2")
    assert any(line.startswith('-  "Description": "Paying tenants') for line in stored["diff"])
    assert cli.json("templates", "diff", "standard", path)["changed"] is False
    assert "identical" in cli.ok("templates", "diff", "standard", "--from", "2", "--to", "2").stdout
    assert "has only version 1" in cli.fails("templates", "diff", "trial")


def test_template_commands_against_a_missing_stack_fail_in_one_line(producer, cli):
    expected = (
        "error: stack 'nope' not found in us-east-1; pass --stack-name or set GATEKEEPER_STACK "
        "(and check --region/--profile)"
    )
    for command in (["list"], ["show", "standard"], ["push", STANDARD], ["diff", "standard", STANDARD]):
        assert cli.fails("--stack-name", "nope", "templates", *command) == expected, command


def test_push_several_files_checks_all_before_pushing_any(producer, cli, tmp_path):
    trial = json.loads((BUILTIN_TEMPLATES / "trial.json").read_text())
    trial["Description"] = "Trials, revised"
    revised = tmp_path / "trial.json"
    revised.write_text(json.dumps(trial))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(BROKEN))
    before = table_snapshot(producer, "TemplatesTableName")
    error = cli.fails("templates", "push", revised, broken)
    assert error.endswith(f"({broken}; nothing pushed)")
    assert table_snapshot(producer, "TemplatesTableName") == before
    results = cli.json("templates", "push", STANDARD, revised)
    assert [(r["name"], r["action"], r["version"]) for r in results] == [
        ("standard", "unchanged", 1),
        ("trial", "pushed", 2),
    ]


def test_a_stored_version_broken_in_the_console_is_reported_not_hidden(producer, cli):
    producer.client("dynamodb").put_item(
        TableName=producer.stack.outputs["TemplatesTableName"],
        Item={
            "pk": {"S": "TEMPLATE#standard"},
            "sk": {"S": "V#000002"},
            "name": {"S": "standard"},
            "version": {"N": "2"},
            "document": {
                "S": json.dumps({"Name": "standard", "Statement": [{"Sid": "A", "Effect": "Accept"}]})
            },
            "created_by": {"S": "console"},
            "created_at": {"S": "2026-01-01T00:00:00+00:00"},
        },
    )
    [standard] = [t for t in cli.json("templates", "list") if t["name"] == "standard"]
    assert standard["version"] == 2
    assert "Statement[0] 'A': Effect 'Accept' is not one of Allow" in standard["problems"][0]
    shown = cli.ok("templates", "show", "standard").stdout
    assert "INVALID: template standard v2: Statement[0] 'A'" in shown
    # A tenant cannot be put on it: it would only ever be held.
    args = ["--name", "T", "-p", "123456789012", "-s", "*", "-t", "standard", "--max-endpoints", "1"]
    error = cli.fails("tenants", "add", "t1", *args)
    assert "template standard v2 is invalid" in error
