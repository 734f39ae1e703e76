"""`gatekeeper reconcile`: run one reconcile sweep now, instead of waiting for the schedule.

It invokes the stack's ReconcileConnectionsFunction (output `ReconcileFunctionName`) synchronously,
exactly as the schedule would, and prints what the sweep found and did. Against the sandbox the
same call reaches the local Lambda service (gatekeeper-demo --keep-running)."""

from __future__ import annotations

import json
from typing import Any

import typer

from gatekeeper_ops.cli.context import CliError, Gatekeeper, gatekeeper
from gatekeeper_ops.cli.help import examples
from gatekeeper_ops.cli.output import JsonOption, OutputOption, QueryOption, rendering, say

_SHOWN = (
    ("services", "managed services"),
    ("connections", "connections"),
    ("pending", "pending acceptance"),
    ("held", "held for review"),
    ("announced", "announced (no decision yet)"),
    ("revocations_requested", "revocations requested"),
    ("repairs", "repairs (slots, principals)"),
    ("stale_claims", "stale claims resumed"),
    ("unannounced", "decisions announced again"),
    ("invalid_tenants", "invalid tenant records"),
)


def register(app: typer.Typer) -> None:
    app.command(
        epilog=examples("gatekeeper reconcile", "gatekeeper reconcile --output json --query stale_claims")
    )(reconcile)


def reconcile(
    ctx: typer.Context,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run one reconcile sweep now: lost requests announced, revocations requested, quota and
    allowed principals repaired, unfinished decisions put back on the decision path."""
    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    payload = invoke_sweep(gk)
    if not render.human:
        render.emit(payload)
        return
    say(f"reconcile sweep of stack {gk.stack.name} ({gk.stack.reconcile_function})")
    for key, label in _SHOWN:
        say(f"  {label:<28} {payload.get(key, 0)}")
    if payload.get("stopped_early"):
        say("  stopped before its deadline: the next sweep continues")


def invoke_sweep(gk: Gatekeeper) -> dict[str, Any]:
    """One sweep now: the stack's ReconcileConnectionsFunction invoked as the schedule would; its
    report. A function error is a CliError naming the function."""
    from botocore.config import Config

    from gatekeeper.models.identifiers import now_utc

    function = gk.stack.reconcile_function
    if not function:
        raise CliError(
            f"stack {gk.stack.name} has no output ReconcileFunctionName; update the stack (sam deploy) "
            "to use `gatekeeper reconcile`"
        )
    event = {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {"requested-by": "gatekeeper reconcile"},
    }
    # A sweep of 10,000 connections takes seconds of work, but its function's timeout is 300 s.
    invoke_config = Config(
        read_timeout=330, connect_timeout=5, retries={"mode": "standard", "max_attempts": 1}
    )
    client = gk.session.client("lambda", config=invoke_config)
    answer = client.invoke(FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event))
    payload: Any = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        raise CliError(f"the sweep failed in {function}: {message}; see the function's logs")
    return payload if isinstance(payload, dict) else {"answer": payload}
