"""`make bench`: cold-start import time and memory per handler, and the AWS API calls one accepted
request costs end to end. Numbers are printed for the notes; nothing here asserts a time.

Run: `make bench` (or `.venv/bin/python -m tests.perf.bench`).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(f"functions.{p.parent.name}.app" for p in (ROOT / "functions").glob("*/app.py"))
RUNS = 5

# What the function sees in Lambda; handlers validate settings and build clients at init.
_LAMBDA_ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "TENANTS_TABLE": "gatekeeper-tenants",
    "TEMPLATES_TABLE": "gatekeeper-templates",
    "DECISIONS_TABLE": "gatekeeper-decisions",
    "EVENT_BUS_NAME": "gatekeeper-connections",
    "DECISION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:decisions",
    "ENDPOINT_SERVICE_IDS": "vpce-svc-0123456789abcdef0",
    "POWERTOOLS_SERVICE_NAME": "vpce-gatekeeper",
    "POWERTOOLS_METRICS_NAMESPACE": "VpceGatekeeper",
}

_PROBE = """
import resource, sys, time
start = time.perf_counter()
import {module}
elapsed = time.perf_counter() - start
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _import_cost(module: str) -> tuple[float, float, int]:
    """Median wall time (ms) and -X importtime total (ms) of a cold import, and peak RSS (KiB)."""
    env = {
        **os.environ,
        **_LAMBDA_ENVIRONMENT,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers/core")]),
    }
    walls, rss = [], 0
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=ROOT,
        ).stdout.split()
        walls.append(float(out[0]) * 1000)
        rss = max(rss, int(out[1]))
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    ).stderr.splitlines()
    self_us = sum(
        int(line.split("|")[0].split(":")[1])
        for line in trace
        if line.startswith("import time:") and "self" not in line
    )
    return statistics.median(walls), self_us / 1000, rss


def import_times() -> None:
    print(
        f"Cold start (import + init: settings, clients), median of {RUNS} fresh interpreters "
        f"(python {sys.version.split()[0]}):"
    )
    print(f"  {'module':44} {'wall ms':>8} {'importtime ms':>14} {'peak RSS MiB':>13}")
    for module in ["boto3", *HANDLERS]:
        wall, total, rss = _import_cost(module)
        print(f"  {module:44} {wall:8.1f} {total:14.1f} {rss / 1024:13.1f}")


def api_calls_per_accepted_request() -> None:
    """Count every AWS API call the handlers make for one accepted request (end to end)."""
    import boto3
    from moto import mock_aws

    from gatekeeper.models.tenant import Tenant
    from gatekeeper_ops.emulator import privatelink_emulator
    from gatekeeper_ops.sandbox.account import ProducerAccount

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    calls: Counter[str] = Counter()
    quiet = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
    with mock_aws(), privatelink_emulator():
        # Handlers build their clients from boto3's default session (mock_aws resets it, so set it
        # up inside); the sandbox and consumers use sessions of their own and are not counted.
        boto3.setup_default_session(region_name="us-east-1")
        default = boto3.DEFAULT_SESSION
        assert default is not None
        default.events.register(
            "before-call",
            lambda model, **_: calls.update([f"{model.service_model.service_name}:{model.name}"]),
        )
        producer = ProducerAccount.create(boto3.Session(region_name="us-east-1"), extra_environment=quiet)
        producer.push_builtin_templates()
        producer.add_tenant(
            Tenant(
                tenant_id="acme",
                display_name="Acme",
                principals=("111122223333",),
                services=(producer.service.service_id,),
                template="standard",
                max_endpoints=3,
            )
        )
        consumer = producer.consumer("111122223333")
        consumer.request_endpoint(producer.service)  # warm: clients created, caches filled
        producer.settle()
        calls.clear()
        endpoint = consumer.request_endpoint(producer.service)
        producer.settle()
        [decision] = producer.decisions.decisions_for_endpoint(endpoint)
        assert decision.outcome == "accepted", decision
    print(f"AWS API calls for one accepted request, end to end (handlers only): {sum(calls.values())}")
    for name, count in sorted(calls.items()):
        print(f"  {name:48} {count}")


def main() -> None:
    import_times()
    print()
    api_calls_per_accepted_request()
    sweep = ROOT / "tests/perf/reconcile_sweep.py"
    if sweep.exists():
        print()
        subprocess.run([sys.executable, "-m", "tests.perf.reconcile_sweep"], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
