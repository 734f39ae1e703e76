"""The `gatekeeper` CLI, in-process (typer's CliRunner), against an emulated producer account
running the real stack: moto + the PrivateLink emulator, the stack registered in CloudFormation
under its default name so the CLI finds it exactly as it would in a real account."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from gatekeeper_ops.cli.app import app
from gatekeeper_ops.sandbox.account import ProducerAccount
from gatekeeper_ops.sandbox.demo import DemoOptions, DemoResult, run
from gatekeeper_ops.sandbox.seed import load_seed
from tests.integration.conftest import MakeProducer, tenant

ACME = "111122223333"  # active, standard template
GLOBEX = "222233334444"  # suspended
STRANGER = "999988887777"  # no tenant
OPERATOR = "operator:arn:aws:sts::123456789012:user/moto"  # moto's caller identity, on table writes
REQUESTER = "arn:aws:sts::123456789012:user/moto"


def decider_actor() -> str:
    """Who evaluate_connection records an operator decision as: the principal the bus policy lets put
    operator events (the stack's OperatorRole), never who the event says it is from."""
    return f"operator:{os.environ.get('OPERATOR_ROLE_ARN') or 'unknown'}"


@pytest.fixture
def producer(producer_factory: Callable[..., MakeProducer]) -> ProducerAccount:
    return producer_factory()()


@pytest.fixture
def seeded(producer: ProducerAccount) -> ProducerAccount:
    service = producer.service.service_id
    producer.add_tenant(tenant("acme", ACME, service, labels={"tier": "gold"}))
    producer.add_tenant(tenant("globex", GLOBEX, service, status="suspended"))
    return producer


@dataclass
class Cli:
    """Runs `gatekeeper …` and checks the contract: success exits 0; failure is one line on stderr.

    An operator's command comes some seconds after what it looks at: before each, the emulator's
    clock moves past EC2's read lag (EventualConsistency.stale_seconds), which every reader, the
    CLI's own included, has then caught up with."""

    runner: CliRunner
    catch_up: Callable[[], None] = lambda: None

    def run(self, *args: object, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        self.catch_up()
        return self.runner.invoke(
            app,
            [str(a) for a in args],
            input=input,
            env={"COLUMNS": "200", **(env or {})},
            catch_exceptions=False,
        )

    def ok(self, *args: object, input: str | None = None) -> Result:
        result = self.run(*args, input=input)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: object, input: str | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", input=input).stdout)

    def fails(self, *args: object, input: str | None = None, env: dict[str, str] | None = None) -> str:
        """The single error line of a refused command."""
        result = self.run(*args, input=input, env=env)
        assert result.exit_code != 0, result.output
        assert "Traceback" not in result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, result.stderr
        return errors[0]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Cli:
    from gatekeeper_ops.emulator import EventualConsistency
    from gatekeeper_ops.emulator import clock as emulator_clock

    ahead = [0.0]
    wall = emulator_clock.now
    monkeypatch.setattr(emulator_clock, "now", lambda: wall() + ahead[0])

    def catch_up() -> None:
        ahead[0] += EventualConsistency().stale_seconds + 1

    return Cli(CliRunner(), catch_up)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A person at a terminal answers the prompts (CliRunner's `input`); without this fixture a
    command that must ask is run as a script would be: no terminal."""
    from gatekeeper_ops.cli import impact

    monkeypatch.setattr(impact, "interactive", lambda: True)


def table_snapshot(producer: ProducerAccount, output: str = "TenantsTableName") -> str:
    """Every item of a stack table, raw attribute values, in key order: for byte-for-byte comparisons."""
    client = producer.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=producer.stack.outputs[output]):
        items += page["Items"]
    items.sort(key=lambda item: (item["pk"]["S"], item["sk"]["S"]))
    return json.dumps(items, sort_keys=True)


INITECH = "333344445555"  # active, its endpoint carries no traffic
UMBRELLA = "444455556666"  # its tenant record is removed while its endpoint stays open


@dataclass(frozen=True)
class Traffic:
    """The endpoints of the `traffic` fixture, by what the reports should say about them."""

    producer: ProducerAccount
    busy: str  # acme's, with CloudWatch traffic
    idle: str  # initech's, silent
    unclaimed: str  # umbrella's: accepted, then its tenant removed
    undecided: str  # a stranger's, accepted in EC2 behind the gatekeeper's back


@pytest.fixture
def traffic(seeded: ProducerAccount) -> Traffic:
    """Open endpoints in every situation the reports tell apart, with hourly AWS/PrivateLinkServices
    datapoints for the last 3 days (as the sandbox seeds them) for all but the idle and undecided ones."""
    service = seeded.service.service_id
    seeded.add_tenant(tenant("initech", INITECH, service))
    seeded.add_tenant(tenant("umbrella", UMBRELLA, service))
    seeded.settle()
    endpoints = {}
    for name, account in (("busy", ACME), ("idle", INITECH), ("unclaimed", UMBRELLA)):
        endpoints[name] = seeded.consumer(account).request_endpoint(seeded.service)
    seeded.settle()
    # Accepted: `pending` at the first read (the emulator's pending_reads), `available` after.
    assert {seeded.connection_state(e) for e in endpoints.values()} <= {"pending", "available"}
    assert {seeded.connection_state(e) for e in endpoints.values()} == {"available"}
    seeded.tenants.remove("umbrella", seeded.tenants.get("umbrella").version)
    endpoints["undecided"] = seeded.consumer(STRANGER).request_endpoint(seeded.service)
    seeded.client("ec2").accept_vpc_endpoint_connections(
        ServiceId=service, VpcEndpointIds=[endpoints["undecided"]]
    )
    seeded.connection_state(endpoints["undecided"])  # pending → available
    # No settle(): the removal and the stranger's notification stay undelivered, as if the
    # tenant sync and the reconciler had not run yet.
    seeded.seed_traffic(idle=[endpoints["idle"], endpoints["undecided"]])
    return Traffic(seeded, **endpoints)


@dataclass
class KeptRunningSandbox:
    """`make demo ARGS=--keep-running` in a thread of this process: what it printed, and its result
    once stopped. This process's environment points at its server, as the printed exports would."""

    shown: io.StringIO = field(default_factory=io.StringIO)
    results: list[DemoResult] = field(default_factory=list)


@contextlib.contextmanager
def kept_running_sandbox(log_dir: Path) -> Iterator[KeptRunningSandbox]:
    from rich.console import Console

    sandbox = KeptRunningSandbox()
    console = Console(file=sandbox.shown, width=160, force_terminal=False)
    stop = threading.Event()
    options = DemoOptions(keep_running=True, log_file=log_dir / "handlers.log")
    worker = threading.Thread(
        target=lambda: sandbox.results.append(run(options, console, load_seed(), stop)), daemon=True
    )
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while "The emulated account stays up" not in sandbox.shown.getvalue():
            assert time.monotonic() < deadline, sandbox.shown.getvalue()
            time.sleep(0.2)
        yield sandbox
    finally:
        stop.set()
        worker.join(timeout=30)


@contextlib.contextmanager
def verify_served(producer: ProducerAccount, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`gatekeeper verify` against the in-process account as against the sandbox: the bus policy
    enforced, its pauses spent delivering the account's events (the local Lambda service), the sweep
    it invokes run by that service."""
    from gatekeeper_ops.cli import reconcile, verify
    from gatekeeper_ops.emulator import EmulatorSettings, EventualConsistency, privatelink_emulator

    settings = EmulatorSettings(enforce_bus_policy=True, eventual_consistency=EventualConsistency())
    with privatelink_emulator(settings):
        monkeypatch.setattr(verify, "sleep", lambda _: producer.settle())
        monkeypatch.setattr(
            reconcile,
            "invoke_sweep",
            lambda _: producer.lambdas.run_schedule("ReconcileConnectionsFunction").result,
        )
        yield
