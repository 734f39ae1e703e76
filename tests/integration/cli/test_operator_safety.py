"""Operator safety, tried as a new user would: dry runs refuse what the write refuses, --prune
cannot empty the allow-list by accident, import files are checked as files first, quotas are
shown as the decision path enforces them, and read commands print what scripts ask for."""

from __future__ import annotations

import json

import pytest
import typer
import yaml

from gatekeeper_ops.cli.app import app
from gatekeeper_ops.cli.tenant_records import MAX_IMPORT_BYTES

from .conftest import GLOBEX, table_snapshot

NEW = "333344445555"


def _add(service: str, *extra: str, tenant_id: str = "initech", principal: str = NEW) -> list[str]:
    return [
        "tenants", "add", tenant_id, "--name", "Initech", "--principal", principal, "--service", service,
        "--template", "standard", "--max-endpoints", "2", *extra,
    ]  # fmt: skip


# -- dry runs run the write's checks ----------------------------------------------------------------
def test_dry_run_refuses_exactly_what_the_write_refuses(seeded, cli):
    service = seeded.service.service_id
    cases = {
        "existing-id": _add(service, tenant_id="acme"),
        "claimed-principal": _add(service, principal=GLOBEX),
        "claimed-by-update": ["tenants", "update", "acme", "--add-principal", GLOBEX],
        "stale-version": ["tenants", "update", "acme", "--contact", "x@y.test", "--expected-version", "7"],
    }
    expected = {
        "existing-id": "tenant acme already exists",
        "claimed-principal": "account 222233334444 is already claimed by tenant globex",
        "claimed-by-update": "account 222233334444 is already claimed by tenant globex",
        "stale-version": "tenant acme was changed by someone else since you read it",
    }
    before = table_snapshot(seeded)
    for name, args in cases.items():
        dry = cli.fails(*args, "--dry-run")
        real = cli.fails(*args)
        assert dry == real, name  # the same check, the same words
        assert expected[name] in dry, (name, dry)
    assert table_snapshot(seeded) == before


def test_dry_run_of_a_valid_add_still_writes_nothing(seeded, cli):
    before = table_snapshot(seeded)
    plan = cli.json(*_add(seeded.service.service_id, "--dry-run"))
    assert plan["changes"][0]["action"] == "create"
    assert table_snapshot(seeded) == before


# -- --prune guards -----------------------------------------------------------------------------
def _records(seeded, count: int, start: int = 0) -> list[dict]:
    service = seeded.service.service_id
    return [
        {
            "tenant_id": f"tenant-{i:03d}", "display_name": f"Tenant {i}",
            "principals": [f"{700000000000 + i}"], "services": [service], "template": "standard",
            "max_endpoints": 1,
        }
        for i in range(start, start + count)
    ]  # fmt: skip


def _file(tmp_path, records: list[dict], name: str = "tenants.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"tenants": records}))
    return str(path)


def test_prune_with_an_empty_file_is_always_refused(seeded, cli, tmp_path):
    before = table_snapshot(seeded)
    for text in ("", "tenants: []\n", "# truncated\n"):
        path = tmp_path / "empty.yaml"
        path.write_text(text)
        for extra in ((), ("--yes",), ("--confirm-removals", "2", "--yes"), ("--dry-run",)):
            error = cli.fails("tenants", "import", path, "--prune", *extra)
            assert "the file holds no tenant records: --prune would remove all 2 tenant(s); refused" in error
    assert table_snapshot(seeded) == before


def test_prune_of_more_than_a_tenth_needs_the_count_named(seeded, cli, tmp_path):
    # 2 seeded + 20 imported = 22 tenants; a file with 14 of them prunes 8 (> 10%).
    cli.ok("tenants", "import", _file(tmp_path, _records(seeded, 20)))
    kept = _file(tmp_path, _records(seeded, 14), "kept.yaml")
    before = table_snapshot(seeded)
    for extra in (("--yes",), ("--dry-run",)):  # a dry run refuses it too
        error = cli.fails("tenants", "import", kept, "--prune", *extra)
        assert (
            "--prune would remove 8 tenant(s) (acme, globex, tenant-014, tenant-015, tenant-016, … (3 more))"
            in error
        )
        assert "more than 10% of 22 tenants" in error
        assert "repeat with --confirm-removals 8" in error
    wrong = cli.fails("tenants", "import", kept, "--prune", "--confirm-removals", "7", "--yes")
    assert "--confirm-removals 7 does not match the plan: it removes 8 tenant(s)" in wrong
    assert table_snapshot(seeded) == before
    plan = cli.json("tenants", "import", kept, "--prune", "--confirm-removals", "8", "--dry-run")
    assert plan["summary"]["remove"] == 8
    result = cli.json("tenants", "import", kept, "--prune", "--confirm-removals", "8", "--yes")
    assert result["summary"]["remove"] == 8
    assert sorted(t["tenant_id"] for t in cli.json("tenants", "list")) == [
        f"tenant-{i:03d}" for i in range(14)
    ]


def test_prune_of_every_tenant_needs_the_count_even_when_few(seeded, cli, tmp_path):
    other = _file(tmp_path, _records(seeded, 1))  # neither acme nor globex: both would go
    error = cli.fails("tenants", "import", other, "--prune", "--yes")
    assert "--prune would remove 2 tenant(s) (acme, globex): every tenant" in error
    cli.ok("tenants", "import", other, "--prune", "--confirm-removals", "2", "--yes")
    assert [t["tenant_id"] for t in cli.json("tenants", "list")] == ["tenant-000"]


def test_confirm_removals_without_prune_is_refused(seeded, cli, tmp_path):
    error = cli.fails("tenants", "import", _file(tmp_path, _records(seeded, 1)), "--confirm-removals", "1")
    assert "--confirm-removals only means something with --prune" in error


# -- import files -------------------------------------------------------------------------------
def test_large_imports_show_progress_on_stderr(seeded, cli, tmp_path):
    result = cli.run("tenants", "import", _file(tmp_path, _records(seeded, 25)))
    assert result.exit_code == 0, result.output
    assert "Checking 25 records" in result.stderr
    assert "Writing 25 changes" in result.stderr
    assert "25/25" in result.stderr
    assert "imported: 25 create" in result.stdout
    quiet = cli.run("tenants", "import", _file(tmp_path, _records(seeded, 3, start=30)), "--json")
    assert quiet.stderr == ""  # JSON for scripts: no progress bar
    assert json.loads(quiet.stdout)["summary"]["create"] == 3


def test_files_over_the_cap_are_refused_before_reading(cli, tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_IMPORT_BYTES + 1)  # sparse: nothing is written or read
    error = cli.fails("tenants", "import", path)
    assert "huge.yaml is 5.0 MiB; tenant imports are capped at 5 MiB" in error
    stdin = cli.fails("tenants", "import", "-", input="#" * (MAX_IMPORT_BYTES + 10))
    assert "stdin is 5.0 MiB; tenant imports are capped at 5 MiB" in stdin


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (
            b'{"tenants": [\n  {"tenant_id": "acme",}\n]}',
            "t.json",
            "t.json is not valid JSON: Illegal trailing comma before end of object at line 2 column 23",
        ),
        (
            b"tenants: []",
            "tenants.txt",
            "unknown format of {dir}/tenants.txt (extension .txt): name it .yaml, .yml, .json or .csv",
        ),
        (b"tenants: []", "tenants", "(no extension)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "t.yaml", "t.yaml is not a text file (binary data)"),
        (b"tenant_id: caf\xe9", "t.yaml", "is not a text file (not UTF-8 at byte 14)"),
    ],
    ids=["bad-json", "unknown-extension", "no-extension", "binary", "latin-1"],
)
def test_files_are_checked_as_files_first(cli, tmp_path, content, name, expected):
    # No AWS at all: the file is refused before the stack is looked up.
    path = tmp_path / name
    path.write_bytes(content)
    assert expected.format(dir=tmp_path) in cli.fails("tenants", "import", path)


def test_format_flag_overrides_an_unknown_extension(producer, cli, tmp_path):
    path = tmp_path / "tenants.txt"
    path.write_text(json.dumps({"tenants": _records(producer, 1)}))
    assert cli.json("tenants", "import", path, "--format", "json")["summary"]["create"] == 1


# -- the effective quota ------------------------------------------------------------------------
def test_show_and_list_give_the_effective_quota(seeded, cli):
    service = seeded.service.service_id
    result = cli.run(*_add(service, "--max-endpoints", "10", tenant_id="big", principal=NEW))
    assert result.exit_code == 0, result.output
    assert (
        "warning: --max-endpoints 10 exceeds template standard's MaxEndpoints 3: the effective quota is 3"
        in result.stderr
    )
    assert "--param MaxEndpoints=10" in result.stderr
    shown = cli.json("tenants", "show", "big")
    assert shown["quota"] == {"max_endpoints": 10, "template_max_endpoints": 3, "effective": 3}
    listed = {t["tenant_id"]: t["quota"] for t in cli.json("tenants", "list")}
    assert listed["big"]["effective"] == 3
    assert listed["acme"] == {"max_endpoints": 3, "template_max_endpoints": 3, "effective": 3}
    human = cli.ok("tenants", "list").stdout
    assert "3 (record 10, template 3)" in human
    assert "effective quota" in cli.ok("tenants", "show", "big").stdout
    # The tenant's own override of the template parameter counts, as in the decision path.
    raised = cli.run("tenants", "update", "big", "--param", "MaxEndpoints=8")
    assert "exceeds template" in raised.stderr
    assert cli.json("tenants", "show", "big")["quota"]["effective"] == 8
    lowered = cli.run("tenants", "update", "big", "--max-endpoints", "5")
    assert lowered.exit_code == 0
    assert "exceeds" not in lowered.stderr
    assert cli.json("tenants", "show", "big")["quota"] == {
        "max_endpoints": 5, "template_max_endpoints": 8, "effective": 5,
    }  # fmt: skip
    # An unrelated edit does not repeat the warning.
    assert "exceeds" not in cli.run("tenants", "update", "big", "--contact", "ops@big.test").stderr


def test_simulate_uses_the_same_effective_quota(seeded, cli):
    cli.ok(*_add(seeded.service.service_id, "--max-endpoints", "10", tenant_id="big"))
    result = cli.json("simulate", "--principal", NEW, "--service", seeded.service.service_id)
    assert result["quota_limit"] == cli.json("tenants", "show", "big")["quota"]["effective"] == 3


# -- --output and --query -----------------------------------------------------------------------
def test_output_json_text_and_query_on_read_commands(seeded, cli):
    as_json = json.loads(cli.ok("tenants", "list", "--output", "json").stdout)
    assert as_json == cli.json("tenants", "list")  # --json is --output json
    ids = cli.ok("tenants", "list", "--query", "[?status=='active'].tenant_id").stdout
    assert json.loads(ids) == ["acme"]
    text = cli.ok("tenants", "list", "--query", "[].[tenant_id, status]", "--output", "text").stdout
    assert text.splitlines() == ["acme\tactive", "globex\tsuspended"]
    one = cli.ok("tenants", "show", "acme", "--query", "quota.effective", "--output", "text").stdout
    assert one == "3\n"
    table = cli.ok("tenants", "list", "--query", "[].{id: tenant_id, v: version}", "--output", "table")
    assert "id" in table.stdout
    assert "acme" in table.stdout
    for command in (("decisions",), ("pending",), ("services", "list"), ("templates", "list")):
        json.loads(cli.ok(*command, "--output", "json").stdout)
        cli.ok(*command, "--output", "text")
    names = cli.ok("templates", "list", "--query", "[].name", "--output", "text").stdout
    assert names.split() == ["enterprise", "standard", "trial"]


def test_output_and_query_refusals(seeded, cli):
    assert "is not a JMESPath expression" in cli.fails("tenants", "list", "--query", "tenants[?")
    assert "--json and --output table disagree" in cli.fails("tenants", "list", "--json", "--output", "table")
    assert "--output 'xml' is not a format: it takes table, json, csv, text, yaml" in cli.fails(
        "tenants", "list", "--output", "xml"
    )


# -- help ---------------------------------------------------------------------------------------
def _commands():
    root = typer.main.get_command(app)
    found = []

    def walk(command, path):
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, (*path, name))
        else:
            found.append((path, command))

    walk(root, ())
    return found


def test_boolean_options_are_flags_without_a_negative_form(cli):
    for path, command in _commands():
        for param in command.params:
            if getattr(param, "is_flag", False) and param.name not in ("help",):
                assert not param.secondary_opts, (path, param.opts, param.secondary_opts)
        out = cli.ok(*path, "--help").stdout
        assert "<bool>" not in out, path  # a flag takes no value
        assert "--no-" not in out.replace("--no-expiry", ""), path
