"""`gatekeeper verify` against the kept-running sandbox (`make demo ARGS=--keep-running`), as an
operator would run it after `sam deploy`: the demo in one thread, the CLI with its environment. The
sandbox enforces the bus policy and the topic policy as AWS does, so every check must pass."""

from __future__ import annotations

import pytest

from gatekeeper_ops.cli import verify
from gatekeeper_ops.sandbox.seed import load_seed

from .conftest import kept_running_sandbox

pytestmark = pytest.mark.server


def test_verify_passes_against_the_kept_running_sandbox(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where verify saves the notification body
    with kept_running_sandbox(tmp_path) as sandbox:
        result = cli.run("verify", "--wait", "60")
    assert result.exit_code == 0, result.output
    checks = [line for line in result.stdout.splitlines() if line.startswith(("PASS  ", "FAIL  "))]
    services = len(load_seed().services)
    # per service 5; then 2 forged events, a line per bus policy statement, alarms, dashboard, reconcile
    assert len(checks) == 5 * services + 2 + len(verify.BUS_POLICY_SIDS) + 3, result.stdout
    assert all(line.startswith("PASS  ") for line in checks), result.stdout
    assert (tmp_path / "connection-notification-us-east-1.json").is_file()
    assert [r.exit_code for r in sandbox.results] == [0]  # the demo's own outcomes are unchanged
