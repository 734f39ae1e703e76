"""The sandbox demo (`make demo`) as a smoke test, run in-process: moto's server with the emulator
on a loopback port, the stack from template.yaml, the real handlers. Its exit status is what CI
relies on, so a wrong expectation must turn it non-zero."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest
from rich.console import Console
from typer.testing import CliRunner

from gatekeeper_ops.cli.app import app as cli_app
from gatekeeper_ops.sandbox.demo import DemoOptions, DemoResult, main, run
from gatekeeper_ops.sandbox.seed import DemoSeed, Expectation, load_seed

pytestmark = pytest.mark.server


def quiet_console() -> Console:
    return Console(file=io.StringIO(), width=160, force_terminal=False)


def output(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    return tmp_path / "handlers.log"


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, Console, Path]:
    console = quiet_console()
    log = tmp_path_factory.mktemp("demo") / "handlers.log"
    return run(DemoOptions(log_file=log), console), console, log


def test_scripted_scenario_exits_zero_with_the_expected_outcomes(scripted):
    result, _, _ = scripted
    assert result.exit_code == 0, result.scenario and result.scenario.problems
    assert result.scenario is not None
    decided = {
        row.step.id: (row.decision.outcome, row.decision.reasons[0], row.decision.tenant_id)
        for row in result.scenario.steps
        if row.decision is not None
    }
    assert decided == {
        "acme": ("accepted", "Accept", "acme"),
        "globex": ("rejected", "TenantSuspended", "globex"),
        "initech": ("rejected", "TenantExpired", "initech"),
        "hooli-first": ("accepted", "Accept", "hooli"),
        "hooli-second": ("rejected", "QuotaExceeded", "hooli"),
        "soylent": ("accepted", "Accept", "soylent"),
        "acme-west": ("held", "OtherRegion", "acme"),
        "hooli-suspended": ("revoked", "TenantSuspended", "hooli"),
    }
    every_decided_request = [r for r in result.scenario.steps if r.step.is_request and r.refused is None]
    assert all(r.latency is not None and r.latency > 0 for r in every_decided_request)
    # The services start with no allowed principals and tenant sync allows only tenants' principals,
    # on the services they are entitled to: EC2 refuses the rest before the gatekeeper sees them.
    refused = {r.step.id: r.refused for r in result.scenario.steps if r.refused is not None}
    assert refused == {"stranger": "InvalidServiceName", "umbrella": "InvalidServiceName"}


def test_consumers_see_what_was_decided(scripted):
    result, _, _ = scripted
    states = {r.step.id: r.consumer_state for r in result.scenario.steps if r.step.is_request and r.endpoint}
    assert states == {
        "acme": "available",
        "globex": "rejected",
        "initech": "rejected",
        "hooli-first": "rejected",  # revoked by the suspension step
        "hooli-second": "rejected",
        "soylent": "available",
        "acme-west": "pendingAcceptance",
    }


def test_subscribers_receive_exactly_what_their_filter_policy_lets_through(scripted):
    result, _, _ = scripted
    received = {
        s.subscriber.name: sorted((d["tenant_id"], d["decision"]) for d in s.received)
        for s in result.scenario.subscribers
    }
    assert received == {
        "acme-tenant": [("acme", "accepted"), ("acme", "held")],
        "operators-held": [("acme", "held")],
    }


def test_suspending_a_tenant_revokes_its_live_endpoint(scripted):
    result, _, _ = scripted
    [suspension] = [row for row in result.scenario.steps if row.step.id == "hooli-suspended"]
    assert suspension.decision is not None
    assert (suspension.decision.outcome, suspension.decision.reasons) == ("revoked", ("TenantSuspended",))
    [first] = [row for row in result.scenario.steps if row.step.id == "hooli-first"]
    assert suspension.endpoint == first.endpoint
    assert suspension.consumer_state == "rejected"
    assert suspension.latency is not None


def test_handler_output_goes_to_the_log_file_not_the_console(scripted):
    _, console, log = scripted
    shown = output(console)
    assert "Endpoint connection requests" in shown
    assert "Every outcome is the one demo-seed.yaml expects" in shown
    assert '"level":' not in shown
    assert "_aws" not in shown
    # The handlers' EMF metrics are written whatever the log level another test left behind.
    assert '"ConnectionsAccepted"' in log.read_text()


def test_every_request_is_decided_in_its_first_invocation(scripted):
    # EC2's read lag (the emulator's) meets the decider's first Describe of each new endpoint: the
    # decider reads it again in the same invocation instead of raising for a retry.
    _, console, _ = scripted
    shown = output(console)
    assert "retried" not in shown
    assert " re-read (EC2 did not list the endpoint at once)" in shown


def test_the_process_environment_is_restored(log_file):
    before = dict(os.environ)
    run(DemoOptions(log_file=log_file), quiet_console(), minimal_seed())
    assert dict(os.environ) == before
    assert "AWS_ENDPOINT_URL" not in os.environ


def minimal_seed(expect: Expectation | None = None) -> DemoSeed:
    seed = load_seed()
    [first] = [s for s in seed.scenario if s.id == "acme"]
    if expect is not None:
        first = first.model_copy(update={"expect": expect})
    return seed.model_copy(update={"scenario": (first,), "subscribers": ()})


def test_a_wrong_expectation_makes_the_exit_status_non_zero(log_file):
    console = quiet_console()
    result = run(
        DemoOptions(log_file=log_file),
        console,
        minimal_seed(Expectation(decision="rejected", reason="TenantSuspended")),
    )
    assert result.exit_code != 0
    assert result.scenario is not None
    first, second = result.scenario.problems
    assert first == "acme: decision accepted, expected rejected (TenantSuspended)"
    # EC2 did what was decided, not what was expected (pending for a while after the accept, then available)
    assert second in (
        "acme: consumer sees pending, expected rejected",
        "acme: consumer sees available, expected rejected",
    )
    assert "differ from demo-seed.yaml" in output(console)


def test_a_wrong_reason_alone_is_caught(log_file):
    result = run(
        DemoOptions(log_file=log_file),
        quiet_console(),
        minimal_seed(Expectation(decision="accepted", reason="OtherRegion")),
    )
    assert result.exit_code != 0
    assert result.scenario is not None
    assert result.scenario.problems == ["acme: reasons ['Accept'], expected OtherRegion"]


def test_load_reports_throughput_and_latency_percentiles(log_file):
    console = quiet_console()
    result = run(DemoOptions(requests=30, in_flight=5, log_file=log_file), console)
    assert result.exit_code == 0
    report = result.load
    assert report is not None
    assert len(report.decided) == 27
    assert report.outcomes == {"accepted": 24, "rejected": 3, "refused": 3}  # unknown accounts: EC2 refuses
    assert report.per_second > 0
    assert 0 < report.percentile(50) <= report.percentile(99)
    # Each request decided in its first invocation, after one re-read (the emulator's read lag).
    assert report.invocation_errors == []
    assert report.rereads == len(report.decided)
    assert "decisions/s" in output(console)


def test_keep_running_keeps_deciding_and_prints_the_environment(log_file, tmp_path):
    console = quiet_console()
    stop = threading.Event()
    seed = load_seed().model_copy(update={"scenario": (), "subscribers": ()})
    results: list[DemoResult] = []
    worker = threading.Thread(
        target=lambda: results.append(
            run(DemoOptions(keep_running=True, log_file=log_file, reconcile_every=1), console, seed, stop)
        ),
        daemon=True,
    )
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while "The emulated account stays up" not in output(console):
            assert time.monotonic() < deadline, output(console)
            time.sleep(0.1)
        shown = output(console)
        for variable in (
            "AWS_ENDPOINT_URL=http://127.0.0.1:",
            "AWS_ACCESS_KEY_ID=",
            "GATEKEEPER_STACK=vpce-gatekeeper",
        ):
            assert f"export {variable}" in shown
        # Someone with the printed environment (here: this process's) creates an endpoint from the
        # producer account, which no tenant claims.
        ec2 = boto3.client("ec2", region_name="us-east-1")
        service = ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"][0]
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
        endpoint = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=vpc, SubnetIds=[subnet], ServiceName=service["ServiceName"]
        )["VpcEndpoint"]["VpcEndpointId"]
        while f"{endpoint} ✘ rejected" not in output(console):
            assert time.monotonic() < deadline, output(console)
            time.sleep(0.1)
        # The schedule fires on its own (here every second), and an operator runs a sweep now:
        # `gatekeeper reconcile` invokes the function, which the sandbox answers with the handler.
        while "reconcile sweep " not in output(console):
            assert time.monotonic() < deadline, output(console)
            time.sleep(0.1)
        swept = CliRunner().invoke(cli_app, ["reconcile", "--output", "json"], catch_exceptions=False)
        assert swept.exit_code == 0, swept.output
        # (the handler runs in this process too, so its EMF lines can land in the captured stdout)
        [report] = [d for d in json_documents(swept.stdout) if "services" in d]
        assert report["services"] == 2
        assert report["connections"] >= 1
        # The banner's commands, pasted into another shell after its export lines, work as printed.
        pasted = _pasted_commands(shown)
        assert "gatekeeper pending" in pasted
        for command in pasted:
            ran = _in_another_shell(shown, command, tmp_path)
            assert ran.returncode == 0, (command, ran.stdout, ran.stderr)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert [r.exit_code for r in results] == [0]


def _banner_part(shown: str, heading: str) -> str:
    return shown.split(f"{heading}\n", 1)[1].split("\n\n", 1)[0]


def _pasted_commands(shown: str) -> list[str]:
    """The banner's example commands (one may continue over lines ending in a backslash); the AWS
    CLI's only where this machine has it (a prerequisite the banner does not install)."""
    commands = re.split(r"(?<!\\)\n", _banner_part(shown, "Then, for example:"))
    return [
        c for c in commands if not c.startswith("#") and (shutil.which("aws") or not c.startswith("aws "))
    ]


def _in_another_shell(shown: str, command: str, home: Path) -> subprocess.CompletedProcess[str]:
    """`command` in a new shell that has none of this process's environment (no venv on its PATH,
    no AWS variables), after the banner's export lines, as a person pastes them."""
    exports = _banner_part(shown, "in another shell:")
    aws = shutil.which("aws")
    env = {
        "PATH": ":".join([*([os.path.dirname(aws)] if aws else []), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": os.environ.get("HOME", str(home)) if aws else str(home),
    }
    return subprocess.run(
        ["bash", "-c", f"{exports}\n{command}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def json_documents(text: str) -> list[dict]:
    decoder, documents, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) >= 0:
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--requests", "-1"])
    assert exit_info.value.code == 2
    assert "--requests must be >= 0" in capsys.readouterr().err
