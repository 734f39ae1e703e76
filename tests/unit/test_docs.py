"""The docs a tool writes are current, and the hand-written ones stay within their budget."""

from __future__ import annotations

from pathlib import Path

from gatekeeper_ops.docgen import budget, cli_reference, parameters

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_reference_is_what_the_cli_prints_now():
    checked_in = (ROOT / cli_reference.PAGE).read_text(encoding="utf-8")
    assert checked_in == cli_reference.render(), "docs/cli-reference.md is stale: run `make docs`"


def test_the_deploy_guide_lists_every_template_parameter_as_declared():
    page = (ROOT / parameters.PAGE).read_text(encoding="utf-8")
    assert page == parameters.current(page), "docs/deploy.md's parameter table is stale: run `make docs`"
    for name in ("EndpointServiceIds", "DecisionMaxConcurrency", "OperatorPrincipalArns"):
        assert f"| `{name}` |" in page


def test_the_cli_reference_covers_every_command():
    page = cli_reference.render()
    for command in ("gatekeeper tenants add", "gatekeeper templates push", "gatekeeper report usage"):
        assert f"## `{command}`" in page


def test_every_hand_written_page_is_within_its_budget():
    assert budget.problems(ROOT) == [], budget.table(ROOT)


def test_an_oversized_page_is_named_with_its_excess(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("x" * (budget.README_LIMIT + 1))
    (tmp_path / "docs" / "long.md").write_text("y" * (budget.PAGE_LIMIT + 10))
    (tmp_path / "docs" / "operator-guide.md").write_text("z" * (budget.PAGE_LIMIT * 3))  # generated
    found = budget.problems(tmp_path)
    assert found == [
        f"README.md: {budget.README_LIMIT + 1:,} bytes, over its {budget.README_LIMIT:,}-byte budget by 1",
        f"docs/long.md: {budget.PAGE_LIMIT + 10:,} bytes, over its {budget.PAGE_LIMIT:,}-byte budget by 10",
    ]


def test_the_total_counts_hand_written_pages_only(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("r")
    for n in range(9):
        (tmp_path / "docs" / f"page{n}.md").write_text("p" * 14_000)
    (tmp_path / "docs" / "cli-reference.md").write_text("c" * 200_000)
    [total] = budget.problems(tmp_path)
    assert total.startswith("hand-written docs: 126,001 bytes in all, over the 110,000-byte budget")
