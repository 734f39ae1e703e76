"""`gatekeeper-demo` (`make demo`): the whole flow on an emulated producer account in this process.

moto's server with the PrivateLink emulator listens on 127.0.0.1; this process's environment
points every boto3 client at it (ours, the handlers', anyone's with the printed variables). The
stack is provisioned from template.yaml, seeded from demo-seed.yaml, and then consumer accounts
create endpoints: notification → SNS → SQS → ingest_notifications → bus → rule →
evaluate_connection → EC2 → SNS, the real handlers invoked in-process when their trigger fires.

Exit status 0 when every outcome is the one the seed expects, 1 otherwise: a smoke test.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from gatekeeper_ops.sandbox import render
from gatekeeper_ops.sandbox.embedded import (
    DeciderPauses,
    DemoProducer,
    aws_environment,
    create_producer,
    decider_pauses,
    emulated_aws,
    handler_logs_to,
    output_to,
)
from gatekeeper_ops.sandbox.invoke_bridge import InvokeBridge
from gatekeeper_ops.sandbox.load import LoadReport, LoadScenario
from gatekeeper_ops.sandbox.scenario import DecisionWatch, ScenarioOutcome, ScriptedScenario, seed_account
from gatekeeper_ops.sandbox.seed import DEFAULT_SEED, DemoSeed, load_seed

STACK_NAME = "vpce-gatekeeper"
# With --keep-running, accepted endpoints get CloudWatch traffic for the reports; these scenario
# steps' endpoints stay silent, so `gatekeeper report orphans` has an idle one to show.
IDLE_STEPS = ("soylent",)
RECONCILER = "ReconcileConnectionsFunction"


def schedule_seconds(schedules: dict[str, str]) -> float:
    """A `rate(N minutes|hours|…)` schedule in seconds (a cron one: every 5 minutes)."""
    units = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
    for expression in schedules.values():
        if expression.startswith("rate(") and expression.endswith(")"):
            count, unit = expression[5:-1].split()
            return float(count) * units[unit]
    return 300.0


OK, OUTCOMES_DIFFER = 0, 1


@dataclass(frozen=True)
class DemoOptions:
    requests: int = 0
    in_flight: int = 10
    keep_running: bool = False
    seed: Path = DEFAULT_SEED
    port: int = 0
    log_file: Path | None = None
    # With keep_running: seconds between reconcile sweeps (None: the template's ReconcileIntervalMinutes).
    reconcile_every: float | None = None


@dataclass
class DemoResult:
    exit_code: int
    scenario: ScenarioOutcome | None = None
    load: LoadReport | None = None
    log_path: str = ""


def parse_args(argv: list[str] | None = None) -> DemoOptions:
    parser = argparse.ArgumentParser(
        prog="gatekeeper-demo",
        description="vpce-gatekeeper on an emulated AWS account in this process "
        "(moto + the PrivateLink emulator).",
        epilog="Exit status 1 when an outcome differs from the seed's expectations. "
        "Examples: gatekeeper-demo --requests 1000 | gatekeeper-demo --keep-running --port 5000",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=0,
        metavar="N",
        help="instead of the scripted scenario, N endpoint requests from many consumer accounts; "
        "reports decisions/s and p50/p99 decision latency",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=DemoOptions.in_flight,
        metavar="W",
        help="with --requests: at most W requests undecided at once (default %(default)s)",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="afterwards, keep the emulated account up, keep deciding, and print the environment "
        "variables that point boto3, the AWS CLI and the gatekeeper CLI at it (Ctrl-C stops)",
    )
    parser.add_argument(
        "--reconcile-every",
        type=float,
        metavar="SECONDS",
        help="with --keep-running: run the reconcile sweep this often (default: the template's "
        "ReconcileIntervalMinutes, 5); `gatekeeper reconcile` runs one now",
    )
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED, help="seed file (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--log-file", type=Path, help="where handler logs and metrics go (default: a temp file)"
    )
    args = parser.parse_args(argv)
    if args.requests < 0 or args.in_flight < 1:
        parser.error("--requests must be >= 0 and --in-flight >= 1")
    if args.reconcile_every is not None and args.reconcile_every <= 0:
        parser.error("--reconcile-every must be > 0 seconds")
    return DemoOptions(
        args.requests,
        args.in_flight,
        args.keep_running,
        args.seed,
        args.port,
        args.log_file,
        args.reconcile_every,
    )


def make_console() -> Console:
    # Pinned to the real stdout: while the demo runs, sys.stdout/stderr carry handler output to the log.
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 140  # CI logs: wide enough for the request table
    return console


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    return run(options, make_console()).exit_code


def run(
    options: DemoOptions,
    console: Console,
    seed: DemoSeed | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[DemoProducer, DemoResult, dict[str, str]], None] | None = None,
) -> DemoResult:
    """Start the emulated account, play the scenario (or the load), report; with keep_running,
    stay up until Ctrl-C (or until `stop` is set), calling `on_ready` once it is up with the
    environment it prints for another shell."""
    seed = seed or load_seed(options.seed)
    started = time.perf_counter()
    with ExitStack() as stack:
        log_path = _log_path(options)
        log = stack.enter_context(log_path.open("a", encoding="utf-8"))
        watch = DecisionWatch()
        with console.status("Starting moto with the PrivateLink emulator on 127.0.0.1…"):
            url = stack.enter_context(emulated_aws(seed.region, options.port))
            stack.enter_context(output_to(log))
        with console.status("Provisioning the stack from template.yaml and seeding demo-seed.yaml…"):
            pauses = stack.enter_context(decider_pauses())  # before any handler builds its services
            producer = create_producer(seed, on_invocation=watch.on_invocation, stack_name=STACK_NAME)
            watch.decisions = producer.account.decisions
            # After the local Lambda service set the handlers' environment (POWERTOOLS_*).
            stack.enter_context(handler_logs_to(log))
            onboarded = seed_account(producer, seed)
            producer.account.settle()  # what seeding sets off (tenant-table stream), before the clock runs
            _warm_handlers(producer)
        console.print(render.header(_header_rows(producer, seed, options, url, log_path)))
        if onboarded:
            console.print(render.control_plane(onboarded))
        result = DemoResult(OK, log_path=str(log_path))
        if options.requests:
            result.load = _play_load(
                producer, seed, watch, options=options, console=console, log_path=log_path, pauses=pauses
            )
            failed = bool(result.load.problems) or any(_dead_letters(producer).values())
        else:
            result.scenario = _play_scenario(
                producer, seed, watch, console=console, log_path=log_path, started=started, pauses=pauses
            )
            failed = not result.scenario.ok or any(_dead_letters(producer).values())
        result.exit_code = OUTCOMES_DIFFER if failed else OK
        if options.keep_running:
            _keep_running(
                producer,
                watch,
                seed,
                url=url,
                result=result,
                console=console,
                stop=stop or threading.Event(),
                reconcile_every=options.reconcile_every,
                on_ready=on_ready,
            )
    return result


# ------------------------------------------------------------------------ setup
def _log_path(options: DemoOptions) -> Path:
    if options.log_file:
        return options.log_file
    handle, name = tempfile.mkstemp(prefix="gatekeeper-demo-", suffix=".log")
    os.close(handle)
    return Path(name)


def _warm_handlers(producer: DemoProducer) -> None:
    """Import every handler up front, as a warm Lambda container has: latencies then show the
    decision path, not Python's first import of Powertools and pydantic."""
    for binding in producer.account.stack.functions.values():
        importlib.import_module(binding.module)


def _header_rows(
    producer: DemoProducer, seed: DemoSeed, options: DemoOptions, url: str, log_path: Path
) -> dict[str, str]:
    stack = producer.account.stack
    services = " · ".join(f"{s.key} [dim]{producer.services[s.key].service_id}[/]" for s in seed.services)
    return {
        "Emulated AWS": f"{url}  [dim](moto server + PrivateLink emulator, in this process)[/]",
        "Producer": f"account {stack.account_id}, {stack.region} · stack [bold]{stack.name}[/] "
        f"[dim](resources from template.yaml)[/]",
        "Endpoint services": f"{services}  [dim](internal NLB, acceptance required)[/]",
        "Handlers": ", ".join(b.module.split(".")[-2] for b in stack.functions.values())
        + "  [dim](the real ones, invoked in-process when their trigger fires)[/]",
        "Seed": f"{len(seed.tenants)} tenants, templates {', '.join(seed.templates)}  "
        f"[dim]({options.seed.name})[/]",
        "Playing": (
            f"{options.requests} endpoint requests, at most {options.in_flight} in flight"
            if options.requests
            else f"{len(seed.scenario)} scripted steps, {len(seed.subscribers)} decision subscribers"
        ),
        "Handler logs": str(log_path),
    }


def _dead_letters(producer: DemoProducer) -> dict[str, int]:
    outputs = producer.account.stack.outputs
    return {
        name.removesuffix("Url"): producer.account.queue_depth(name)
        for name in sorted(outputs)
        if name.endswith("DeadLetterQueueUrl")
    }


def _invocation_counts(producer: DemoProducer) -> tuple[dict[str, int], list[str]]:
    """Invocations per function, and the errors of those that raised."""
    counts: dict[str, int] = {}
    errors: list[str] = []
    for invocation in producer.account.lambdas.invocations:
        counts[invocation.function] = counts.get(invocation.function, 0) + 1
        if not invocation.ok:
            errors.append(invocation.error or "")
    return counts, errors


# ------------------------------------------------------------------------ the scenario
def _play_scenario(
    producer: DemoProducer,
    seed: DemoSeed,
    watch: DecisionWatch,
    *,
    console: Console,
    log_path: Path,
    started: float,
    pauses: DeciderPauses,
) -> ScenarioOutcome:
    names = {s.key: s.name for s in seed.services}
    scenario = ScriptedScenario(producer, seed, watch)
    with Live(
        render.scenario_table(scenario.rows, names),
        console=console,
        refresh_per_second=12,
        redirect_stdout=False,  # sys.stdout goes to the handler log meanwhile
        redirect_stderr=False,
    ) as live:
        scenario.on_change = lambda rows: live.update(render.scenario_table(rows, names), refresh=True)
        outcome = scenario.play()
    row_problems = [p for r in outcome.steps for p in r.problems]
    if row_problems:
        console.print(render.problems_panel([f"{r.step.id}: {p}" for r in outcome.steps for p in r.problems]))
    console.print()
    console.rule("[bold]Decision notifications, as SQS subscribers of the decision topic receive them")
    console.print(render.notifications(outcome.subscribers))
    counts, errors = _invocation_counts(producer)
    console.print(
        render.summary(
            outcome,
            invocations=counts,
            failed_invocations=errors,
            rereads=len(pauses.seconds),
            dead_letters=_dead_letters(producer),
            log_path=str(log_path),
            total_seconds=time.perf_counter() - started,
        )
    )
    return outcome


# ------------------------------------------------------------------------ the load
def _play_load(
    producer: DemoProducer,
    seed: DemoSeed,
    watch: DecisionWatch,
    *,
    options: DemoOptions,
    console: Console,
    log_path: Path,
    pauses: DeciderPauses,
) -> LoadReport:
    load = LoadScenario(producer, seed, watch, requests=options.requests, in_flight=options.in_flight)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, redirect_stdout=False, redirect_stderr=False) as progress:
        setup_started = time.perf_counter()
        accounts = progress.add_task("Consumer accounts", total=None, rate="")
        requests = load.prepare(lambda done, total: progress.update(accounts, completed=done, total=total))
        setup_seconds = time.perf_counter() - setup_started
        decided = progress.add_task("Decisions", total=len(requests), rate="")
        run_started = time.perf_counter()

        def advance(count: int) -> None:
            progress.advance(decided, count)
            done = progress.tasks[decided].completed
            progress.update(decided, rate=f"{done / max(1e-9, time.perf_counter() - run_started):.1f}/s")

        # One invocation at a time: the decider's pauses are counted, not slept (DeciderPauses).
        pauses.slept, counted = False, len(pauses.seconds)
        try:
            report = load.run(requests, advance)
        finally:
            pauses.slept = True
    report.setup_seconds = setup_seconds
    report.rereads = len(pauses.seconds) - counted
    console.print(render.load_report(report, _dead_letters(producer), str(log_path)))
    return report


# ------------------------------------------------------------------------ keep running
def _keep_running(
    producer: DemoProducer,
    watch: DecisionWatch,
    seed: DemoSeed,
    *,
    url: str,
    result: DemoResult,
    console: Console,
    stop: threading.Event,
    reconcile_every: float | None = None,
    on_ready: Callable[[DemoProducer, DemoResult, dict[str, str]], None] | None = None,
) -> None:
    account = producer.account

    def announce(endpoint: str, decision: dict[str, Any]) -> None:
        reasons = ", ".join(decision.get("reasons") or [])
        line = Text.assemble(
            (datetime.now().strftime("%H:%M:%S "), "dim"),
            (f"{endpoint} ", "bold"),
            render.decision_text(str(decision.get("decision"))),
            (f"  {reasons}", "dim"),
        )
        console.print(line)

    lambdas = account.lambdas
    bridge = InvokeBridge(lambdas)
    every = reconcile_every or schedule_seconds(lambdas.stack.functions[RECONCILER].schedules)
    next_sweep = time.monotonic() + every

    def deliver() -> None:
        # One loop delivers everything, one invocation at a time: the handlers share this process.
        nonlocal next_sweep
        while not stop.is_set():
            try:
                delivered = bridge.serve() + lambdas.pump()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + every
                    sweep = lambdas.run_schedule(RECONCILER)
                    console.print(render.sweep_line(sweep))
            except Exception as exc:  # the server going away at Ctrl-C, or a bug: say it, keep going
                console.print(f"[red]local Lambda delivery failed: {type(exc).__name__}: {exc}[/]")
                delivered = 0
            if not delivered:
                stop.wait(0.2)

    watch.listeners.append(announce)
    idle = [r.endpoint for r in (result.scenario.steps if result.scenario else []) if r.step.id in IDLE_STEPS]
    account.seed_traffic(idle=[e for e in idle if e])
    environment = {
        **aws_environment(url, seed.region),
        # As on AWS, the operator is the stack's OperatorRole: the bus policy lets only it (and the
        # functions' roles) put operator decisions, so `gatekeeper approve` works from these keys.
        **_operator_keys(account),
        "GATEKEEPER_STACK": account.stack.name,
    }
    # The venv's bin is where `gatekeeper` is: another shell has not activated the venv.
    bin_dir = str(Path(sys.executable).parent)
    console.print(render.environment_lines(environment, _examples(producer, seed, result), bin_dir))
    console.print(f"[dim]Reconcile sweep every {every:g} s; `gatekeeper reconcile` runs one now.[/]")
    worker = threading.Thread(target=deliver, name="local-lambda", daemon=True)
    worker.start()
    try:
        with _stopped_by_signals(stop), bridge.installed():
            if on_ready is not None:
                on_ready(producer, result, environment)
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        console.print("[dim]Stopping the emulated account…[/]")
        stop.set()
        worker.join(timeout=10)


def _operator_keys(account: Any) -> dict[str, str]:
    role = account.stack.outputs["OperatorRoleArn"]
    keys = account.client("sts").assume_role(RoleArn=role, RoleSessionName="sandbox-operator")["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
        "AWS_SESSION_TOKEN": keys["SessionToken"],
    }


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM set `stop`, also when the shell started the demo in the
    background with SIGINT ignored. Signal handlers belong to the main thread; elsewhere (tests)
    only `stop` ends it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in handled}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _examples(producer: DemoProducer, seed: DemoSeed, result: DemoResult) -> list[str]:
    service = producer.account.service
    held = [
        r.endpoint
        for r in (result.scenario.steps if result.scenario else [])
        if r.decision is not None and r.decision.outcome == "held" and r.endpoint
    ]
    examples = [
        "aws cloudformation describe-stacks --stack-name $GATEKEEPER_STACK --query 'Stacks[0].Outputs'",
        "aws ec2 describe-vpc-endpoint-connections --output table \\\n"
        "    --query 'VpcEndpointConnections[].[VpcEndpointId,VpcEndpointOwner,VpcEndpointState]'",
        "gatekeeper pending",
        "gatekeeper report usage --since 3d",
        "gatekeeper report orphans",
    ]
    if held:
        examples.append(f"gatekeeper approve {held[0]}")
    examples.append(
        "# a new request from the producer account itself (no tenant claims it: rejected)\n"
        f"aws ec2 create-vpc-endpoint --vpc-endpoint-type Interface --vpc-id {service.vpc_id} \\\n"
        f"    --subnet-ids {service.subnet_ids[0]} --service-name {service.service_name}"
    )
    return examples
