"""`make demo ARGS=--keep-running` serves AWS/PrivateLinkServices metrics for the endpoints its
scenario accepted, so `gatekeeper report usage|orphans` have something to show — run here the
way an operator would: the demo in one thread, the CLI with the environment it prints."""

from __future__ import annotations

import json

import pytest

from gatekeeper_ops.sandbox.demo import IDLE_STEPS

from .conftest import kept_running_sandbox

pytestmark = pytest.mark.server


def test_the_kept_running_sandbox_serves_traffic_for_the_reports(cli, tmp_path):
    with kept_running_sandbox(tmp_path) as sandbox:
        assert "gatekeeper report usage --since 3d" in sandbox.shown.getvalue()
        usage = json.loads(cli.ok("report", "usage", "--since", "3d", "--by", "endpoint", "--json").stdout)
        orphans = json.loads(cli.ok("report", "orphans", "--json").stdout)
    results = sandbox.results
    assert [r.exit_code for r in results] == [0]  # the scenario's outcomes are unchanged
    scenario = results[0].scenario
    assert scenario is not None
    idle = {r.endpoint for r in scenario.steps if r.step.id in IDLE_STEPS}
    rows = {row["vpc_endpoint_id"]: row for row in usage}
    assert set(rows) >= idle
    busy = [row for endpoint, row in rows.items() if endpoint not in idle]
    assert busy
    assert all(row["bytes_processed"] > 0 and row["tenant_id"] for row in busy)
    assert all(rows[endpoint]["bytes_processed"] == 0 for endpoint in idle)
    assert {row["vpc_endpoint_id"] for row in orphans} == idle
    assert all(row["reasons"] == ["idle"] for row in orphans)
