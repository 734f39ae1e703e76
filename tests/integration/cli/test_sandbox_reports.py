"""`make demo ARGS=--keep-running` serves AWS/PrivateLinkServices metrics for the endpoints its
scenario accepted, so `gatekeeper report usage|orphans` have something to show — run here the
way an operator would: the demo in one thread, the CLI with the environment it prints."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
from rich.console import Console

from gatekeeper_ops.sandbox.demo import IDLE_STEPS, DemoOptions, DemoResult, run
from gatekeeper_ops.sandbox.seed import load_seed

pytestmark = pytest.mark.server


def test_the_kept_running_sandbox_serves_traffic_for_the_reports(cli, tmp_path):
    shown = io.StringIO()
    console = Console(file=shown, width=160, force_terminal=False)
    stop = threading.Event()
    results: list[DemoResult] = []
    options = DemoOptions(keep_running=True, log_file=tmp_path / "handlers.log")
    worker = threading.Thread(
        target=lambda: results.append(run(options, console, load_seed(), stop)), daemon=True
    )
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while "The emulated account stays up" not in shown.getvalue():
            assert time.monotonic() < deadline, shown.getvalue()
            time.sleep(0.2)
        assert "gatekeeper report usage --since 3d" in shown.getvalue()
        # This process's environment points at the demo's server (as the printed exports would).
        usage = json.loads(cli.ok("report", "usage", "--since", "3d", "--by", "endpoint", "--json").stdout)
        orphans = json.loads(cli.ok("report", "orphans", "--json").stdout)
    finally:
        stop.set()
        worker.join(timeout=30)
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
