"""`make bench`: the numbers issue 11 asks for, in one run, for the notes. Nothing here asserts a
time (tests/perf/test_bench.py runs the machinery at a tiny size, asserting counts and outcomes).

1. cold start (import + init) of every handler in fresh interpreters, against the realistic floor
   `import boto3; boto3.client("ec2")`; peak RSS of each. Measured as deployed: the core layer
   assembled as `sam build` ships it (gatekeeper_ops.layer_bytecode), nothing cached at run time
   (Lambda's /opt is read-only), with its bytecode (shipped) and without (as the python3.13 build
   method shipped it before), and in the dev venv (whose caches hold every module's bytecode);
2. AWS API calls per outcome (accepted, rejected twice, held), end to end in the handlers;
3. decisions/s and p50/p99 latency, the project against a plain baseline (tests/perf/baseline.py)
   on the same embedded stack, runs alternating A B A B;
4. the reconcile sweep at 1,000 and 10,000 connections, cold and steady (tests/perf/reconcile_sweep.py);
5. peak RSS overall.

How to read the output: docs/development.md, "make bench".
Run: `make bench` (or `.venv/bin/python -m tests.perf.bench [--runs 5] [--requests 30] …`).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from gatekeeper_ops import layer_bytecode

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(f"functions.{p.parent.name}.app" for p in (ROOT / "functions").glob("*/app.py"))
FLOOR = 'import boto3; boto3.client("ec2")'
# (connections, tenants): 100 connections a tenant at both sizes, so the two differ only in scale.
SWEEPS = ((1_000, 10), (10_000, 100))

# What the function sees in Lambda; handlers validate settings and build clients at init (also the
# environment of tests/unit/test_cold_start.py's probes).
LAMBDA_ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "cold-start",
    "AWS_SECRET_ACCESS_KEY": "cold-start",
    "TENANTS_TABLE": "gatekeeper-tenants",
    "TEMPLATES_TABLE": "gatekeeper-templates",
    "DECISIONS_TABLE": "gatekeeper-decisions",
    "TENANT_CHANGES_TABLE": "gatekeeper-tenant-changes",
    "EVENT_BUS_NAME": "gatekeeper-connections",
    "DECISION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:decisions",
    "ALARM_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alarms",
    "ENDPOINT_SERVICE_IDS": "vpce-svc-0123456789abcdef0",
    "POWERTOOLS_SERVICE_NAME": "vpce-gatekeeper",
    "POWERTOOLS_METRICS_NAMESPACE": "VpceGatekeeper",
    "PYDANTIC_DISABLE_PLUGINS": "__all__",
}

_PROBE = """
import resource, time
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@dataclass(frozen=True)
class Layout:
    """Where a probe's code comes from."""

    name: str
    path: tuple[str, ...]  # PYTHONPATH
    read_only: bool  # as in Lambda: nothing compiled is cached


def _probe(statement: str, layout: Layout) -> tuple[float, int]:
    """Seconds `statement` takes in a fresh interpreter (interpreter start-up excluded), peak RSS KiB."""
    env = {**os.environ, **LAMBDA_ENVIRONMENT, "PYTHONPATH": os.pathsep.join(layout.path)}
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "PYTHONDONTWRITEBYTECODE"):
        env.pop(variable, None)
    if layout.read_only:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(statement=statement)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"cold start probe `{statement}` ({layout.name}) failed:\n{done.stderr}")
    seconds, rss = done.stdout.split()
    return float(seconds), int(rss)


def _layouts(scratch: Path) -> list[Layout]:
    """The dev venv, and the layer as deployed with and without its bytecode. The functions' own
    code (a few lines each, not compiled by `sam build`) is copied without bytecode."""
    functions = scratch / "task"
    shutil.copytree(ROOT / "functions", functions / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    shipped = layer_bytecode.assemble(scratch / "shipped", bytecode=True)
    bare = layer_bytecode.assemble(scratch / "bare", bytecode=False)
    return [
        Layout("deployed (layer bytecode shipped)", (str(shipped), str(functions)), read_only=True),
        Layout("deployed, layer without bytecode", (str(bare), str(functions)), read_only=True),
        Layout("dev venv (bytecode cached)", (str(ROOT), str(ROOT / "layers/core")), read_only=False),
    ]


def cold_starts(runs: int) -> None:
    """Every probe once a round, rounds repeated: drift on a shared machine hits all of them alike."""
    with tempfile.TemporaryDirectory(prefix="bench-layer-") as scratch:
        layouts = _layouts(Path(scratch))
        floor_layout = layouts[-1]
        probes = [("floor: " + FLOOR, FLOOR, floor_layout), ("import boto3", "import boto3", floor_layout)]
        probes += [
            (f"{module.split('.')[1]}, {layout.name}", f"import {module}", layout)
            for module in HANDLERS
            for layout in layouts
        ]
        walls: dict[str, list[float]] = {name: [] for name, _, _ in probes}
        rss: dict[str, int] = {name: 0 for name, _, _ in probes}
        for _ in range(runs):
            for name, statement, layout in probes:
                seconds, peak = _probe(statement, layout)
                walls[name].append(seconds * 1000)
                rss[name] = max(rss[name], peak)
    floor = statistics.median(walls["floor: " + FLOOR])
    floor_min = min(walls["floor: " + FLOOR])
    print(
        f"1. Cold start (import + init: settings validated, clients built), median of {runs} fresh "
        f"interpreters, python {sys.version.split()[0]}; target ≤ 1.2x the floor, as deployed:"
    )
    print(f"  {'':64}{'median ms':>10}{'x floor':>9}{'min ms':>8}{'x floor':>9}{'peak RSS MiB':>14}")
    for name, _, _ in probes:
        median, least = statistics.median(walls[name]), min(walls[name])
        print(
            f"  {name:64}{median:10.0f}{median / floor:9.2f}{least:8.0f}{least / floor_min:9.2f}"
            f"{rss[name] / 1024:14.1f}"
        )


def embedded(requests: int, singles: int, rounds: int) -> None:
    """Sections 2 and 3: one embedded stack, in this process."""
    from tests.perf import outcomes, throughput
    from tests.perf.harness import bench_stack

    started = time.perf_counter()
    with bench_stack() as stack:
        set_up = time.perf_counter() - started
        print()
        print("2. ", end="")
        outcomes.print_calls_per_outcome(outcomes.calls_per_outcome(stack))
        print()
        comparison = throughput.compare(stack, requests=requests, singles=singles, rounds=rounds)
        print("3. ", end="")
        throughput.print_comparison(comparison, rounds)
    print(f"  (stack set up in {set_up:.1f} s)")


def sweeps() -> None:
    for connections, tenants in SWEEPS:
        print()
        print("4. ", end="", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.perf.reconcile_sweep",
                "--connections",
                str(connections),
                "--tenants",
                str(tenants),
            ],
            check=True,
            cwd=ROOT,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per cold-start probe")
    parser.add_argument("--requests", type=int, default=30, help="burst-phase requests per round")
    parser.add_argument("--singles", type=int, default=15, help="single-phase requests per round")
    parser.add_argument("--rounds", type=int, default=2, help="A B rounds (project, baseline)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the reconcile sweeps")
    args = parser.parse_args()
    # A handler without metrics to flush warns on every invocation (metrics are off here).
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    started = time.perf_counter()
    cold_starts(args.runs)
    embedded(args.requests, args.singles, args.rounds)
    if not args.no_sweep:
        sweeps()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print()
    print(
        f"5. Peak RSS: {max(own, children):.0f} MiB overall — this process (embedded stack, sections 2-3) "
        f"{own:.0f} MiB, largest child (a cold-start probe or a sweep) {children:.0f} MiB"
    )
    print(f"make bench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
