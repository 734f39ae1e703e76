"""What each handler loads at cold start, so the cold start cannot silently regress (issue 11).

Each handler is imported in a fresh interpreter with the Lambda environment, as Lambda's init does;
the test asserts which modules are (not) in `sys.modules` afterwards, never a time (`make bench`
measures those).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.perf.bench import LAMBDA_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]

# Never on any handler's cold start: Powertools' batch and parser machinery (a plain loop and plain
# pydantic do the job), its event data classes, and the X-Ray SDK its Tracer would import.
EVERY_HANDLER_WITHOUT = {
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_xray_sdk",
}
USE_CASES = {
    "gatekeeper.logic.decision_service",
    "gatekeeper.logic.announcer",
    "gatekeeper.logic.reconciler",
    "gatekeeper.logic.tenant_sync",
}
# handler: (its own part of the core, loaded at init; what it never runs, not loaded)
PARTS = {
    "evaluate_connection": (
        {"gatekeeper.logic.decision_service", "gatekeeper.policy"},
        USE_CASES - {"gatekeeper.logic.decision_service"} | {"gatekeeper.dal.tenant_stream"},
    ),
    "close_connection": (
        {"gatekeeper.logic.decision_service"},
        USE_CASES - {"gatekeeper.logic.decision_service"}
        | {"gatekeeper.policy", "gatekeeper.dal.tenant_stream"},
    ),
    "ingest_notifications": (
        {"gatekeeper.logic.announcer"},
        USE_CASES - {"gatekeeper.logic.announcer"}
        | {
            "gatekeeper.policy",
            "gatekeeper.dal.decisions",
            "gatekeeper.dal.tenants",
            "gatekeeper.dal.templates",
            "gatekeeper.dal.tenant_stream",
            "gatekeeper.adapters.decision_topic",
            "gatekeeper.adapters.load_balancers",
        },
    ),
    "reconcile_connections": (
        {"gatekeeper.logic.reconciler"},
        {
            "gatekeeper.logic.decision_service",
            "gatekeeper.logic.tenant_sync",
            "gatekeeper.policy",
            "gatekeeper.dal.templates",
            "gatekeeper.dal.tenant_stream",
        },
    ),
    "apply_tenant_change": (
        {"gatekeeper.logic.tenant_changes", "gatekeeper.dal.tenant_changes", "gatekeeper.policy"},
        USE_CASES
        | {
            "gatekeeper.dal.decisions",
            "gatekeeper.dal.tenant_stream",
            "gatekeeper.adapters.endpoint_service",
        },
    ),
    "sync_tenants": (
        {"gatekeeper.logic.tenant_sync", "gatekeeper.dal.tenant_stream"},
        {
            "gatekeeper.logic.decision_service",
            "gatekeeper.logic.reconciler",
            "gatekeeper.policy",
            "gatekeeper.dal.templates",
        },
    ),
}

_PROBE = """
import json, sys
import functions.{function}.app
from gatekeeper.wiring import services
lazy = {{}}
if "{function}" == "sync_tenants":  # operators are alerted about an invalid record only
    lazy["alarm_sns"] = services.tenant_sync().alerts._client._client is not None
if "{function}" == "ingest_notifications":  # EC2 is read for a Delete notification only
    lazy["ec2"] = services.announcer().endpoint_service._client._client is not None
print(json.dumps({{"modules": sorted(sys.modules), "built": lazy}}))
"""


def cold_start(function: str) -> dict[str, object]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))},
        **LAMBDA_ENVIRONMENT,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers/core")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(function=function)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_every_handler_is_covered():
    assert set(PARTS) == {p.parent.name for p in (ROOT / "functions").glob("*/app.py")}


@pytest.mark.parametrize("function", sorted(PARTS))
def test_a_cold_start_loads_only_the_handlers_own_part_of_the_core(function):
    loaded = set(cold_start(function)["modules"])
    own, never = PARTS[function]
    assert own <= loaded, f"{function} should load {sorted(own - loaded)} at init"
    unwanted = {
        m for m in loaded if any(m == n or m.startswith(f"{n}.") for n in never | EVERY_HANDLER_WITHOUT)
    }
    assert not unwanted, f"{function}'s cold start loads {sorted(unwanted)}, which it never runs"


def test_tenant_sync_builds_its_alarm_topic_client_at_the_first_alert_not_at_init():
    assert cold_start("sync_tenants")["built"] == {"alarm_sns": False}


def test_ingest_builds_its_ec2_client_at_the_first_delete_not_at_init():
    """A Connect goes on the bus by its ids: the cold start of the path that decides has no EC2 client."""
    assert cold_start("ingest_notifications")["built"] == {"ec2": False}
