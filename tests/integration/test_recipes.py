"""The operator guide's recipes run: every command, as an operator types it, against the sandbox,
exits as the recipe says. (The page itself is written by `make docs`; ids differ on every run, so
its text is not compared, only what the commands do.)"""

from __future__ import annotations

import pytest

from gatekeeper_ops.docgen import recipes

pytestmark = [pytest.mark.server, pytest.mark.xdist_group("recipes")]  # one worker: the recipes run once


@pytest.fixture(scope="module")
def runs() -> list[recipes.RecipeRun]:
    return recipes.run_recipes()


def test_every_recipe_command_exits_as_the_recipe_says(runs):
    assert [p for r in runs for p in r.problems] == []
    assert [len(r.transcripts) for r in runs] == [len(r.steps) for r in recipes.RECIPES]


def test_a_refusal_in_a_recipe_is_one_error_line(runs):
    refused = [t for r in runs for t in r.transcripts if t.exit_code == 1]
    assert refused, "the recipes show at least one refusal"
    for transcript in refused:
        errors = [line for line in transcript.output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, transcript.output
        assert "Traceback" not in transcript.output


def test_the_page_shows_each_recipe_with_its_commands_and_output(runs):
    page = recipes.render(runs)
    for recipe in recipes.RECIPES:
        assert f"## {recipe.title}" in page
    assert "$ gatekeeper tenants add wonka" in page
    assert "# (console edit) umbrella" in page
    assert "decided: accepted (OperatorDecision)" in page
