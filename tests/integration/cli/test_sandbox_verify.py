"""`gatekeeper verify` against the kept-running sandbox (`make demo ARGS=--keep-running`), as an
operator would run it after `sam deploy`: the demo in one thread, the CLI with its environment. The
sandbox enforces the bus policy and the topic policy as AWS does, so every check must pass."""

from __future__ import annotations

import io
import threading
import time

import pytest
from rich.console import Console

from gatekeeper_ops.sandbox.demo import DemoOptions, DemoResult, run
from gatekeeper_ops.sandbox.seed import load_seed

pytestmark = pytest.mark.server


def test_verify_passes_against_the_kept_running_sandbox(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where verify saves the notification body
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
        # This process's environment points at the demo's server (as the printed exports would).
        result = cli.run("verify", "--wait", "60")
    finally:
        stop.set()
        worker.join(timeout=30)
    assert result.exit_code == 0, result.output
    checks = [line for line in result.stdout.splitlines() if line.startswith(("PASS  ", "FAIL  "))]
    services = len(load_seed().services)
    assert len(checks) == 5 * services + 7, result.stdout
    assert all(line.startswith("PASS  ") for line in checks), result.stdout
    assert (tmp_path / "connection-notification-us-east-1.json").is_file()
    assert [r.exit_code for r in results] == [0]  # the demo's own outcomes are unchanged
