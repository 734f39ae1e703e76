"""`simulate`, `pending`, `approve`, `reject`: connections and what policy says about them.

`simulate` and `pending` only read: they call the Lambda's own DecisionService.assess, so they
show exactly what the live policy would decide. `approve` and `reject` never touch EC2 or the
tables themselves: they put `Endpoint Connection Operator Decision` on the bus with the source
`vpce.gatekeeper.operator`, which the bus policy lets only the stack's operator principals use (run
the CLI with the `OperatorRoleArn` role on AWS). evaluate_connection carries the decision out, records
it with that role as the actor (and your identity as stated by you) and notifies, like any other
decision.
"""

from __future__ import annotations

import time
from time import sleep
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from gatekeeper_ops.cli.context import CliError, Gatekeeper, gatekeeper
from gatekeeper_ops.cli.help import examples
from gatekeeper_ops.cli.output import (
    JsonOption,
    OutputOption,
    QueryOption,
    Rendering,
    YesOption,
    age,
    console,
    rendering,
    say,
    styled_decision,
    table,
    warn,
)

# The core and rich are imported by the commands that use them: `gatekeeper --help` loads neither.
if TYPE_CHECKING:
    from gatekeeper.dal.decisions import EndpointState
    from gatekeeper.logic.decision_service import Assessment
    from gatekeeper.models.connection import VpcEndpointConnection
    from gatekeeper.models.requests import OperatorVerdict

SIMULATED_ENDPOINT = "vpce-0000000000000000"
EndpointId = Annotated[str, typer.Argument(help="The consumer's VPC endpoint id (vpce-…).")]


def register(app: typer.Typer) -> None:
    app.command(
        epilog=examples(
            "gatekeeper simulate --principal 111122223333 --service vpce-svc-0123456789abcdef0",
            "gatekeeper simulate --principal arn:aws:iam::111122223333:role/app "
            "--service vpce-svc-0123456789abcdef0 --region eu-west-1 --json",
        )
    )(simulate)
    app.command(
        epilog=examples("gatekeeper pending", "gatekeeper pending --query '[].vpc_endpoint_id' --output text")
    )(pending)
    app.command(
        epilog=examples(
            "gatekeeper approve vpce-0a1b2c3d4e5f67890 --reason 'eu-west-1 expansion, ticket OPS-42'",
            "gatekeeper approve vpce-0a1b2c3d4e5f67890 --wait 60",
        )
    )(approve)
    app.command(
        epilog=examples(
            "gatekeeper reject vpce-0a1b2c3d4e5f67890 --reason 'unknown consumer'",
            "gatekeeper reject vpce-0a1b2c3d4e5f67890 --reason 'contract ended' --yes  # revokes if accepted",
        )
    )(reject)


def _explain(assessment: Assessment) -> dict[str, Any]:
    decision = assessment.decision
    document: dict[str, Any] = {
        "decision": decision.outcome,
        "reasons": list(decision.reasons),
        "tenant_id": decision.tenant_id,
        "template": decision.template,
        "template_version": decision.template_version,
        "explanation": list(decision.explanation),
    }
    if assessment.slot is not None:
        document["quota_limit"] = assessment.slot.limit
    if assessment.evaluation is not None:
        document["evaluation"] = assessment.evaluation.model_dump(mode="json")
    return document


# -- simulate -----------------------------------------------------------------------------------
def simulate(
    ctx: typer.Context,
    *,
    principal: Annotated[str, typer.Option("--principal", "-p", help="Consumer account id or IAM ARN.")],
    service: Annotated[str, typer.Option("--service", "-s", help="Endpoint service id (vpce-svc-…).")],
    region: Annotated[
        str | None,
        typer.Option(
            "--region", help="The consumer's region (cross-region PrivateLink); default: the stack's."
        ),
    ] = None,
    ip_address_type: Annotated[
        str, typer.Option("--ip-address-type", help="ipv4, dualstack or ipv6, as the endpoint would request.")
    ] = "ipv4",
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """What the live policy would decide now for a new endpoint from this principal, with the
    explanation (every statement, matched or not, and the values compared). No side effects."""
    from rich.text import Text

    from gatekeeper.models.connection import VpcEndpointConnection
    from gatekeeper.models.identifiers import SERVICE_ID, account_of, now_utc

    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    account = account_of(principal)
    if not SERVICE_ID.match(service):
        raise CliError(f"{service!r} is not an endpoint service id (vpce-svc-…)")
    stack = gk.stack
    if service not in stack.managed_services:
        warn(
            f"stack {stack.name} does not manage {service}: a real request to it would not be decided at all"
        )
    connection = VpcEndpointConnection.model_validate(
        {
            "ServiceId": service,
            "VpcEndpointId": SIMULATED_ENDPOINT,
            "VpcEndpointOwner": account,
            "VpcEndpointState": "pendingAcceptance",
            "CreationTimestamp": now_utc(),
            "VpcEndpointRegion": region or stack.region,
            "IpAddressType": ip_address_type,
        }
    )
    assessment = gk.decision_service.assess(connection, "operator")
    if not render.human:
        render.emit({"simulated": True, "connection": connection.to_event(), **_explain(assessment)})
        return
    decision = assessment.decision
    if principal != account:
        say(f"connections carry only the owner account: simulating account {account}")
    out = Text.assemble(
        ("decision  ", "bold"),
        styled_decision(decision.outcome),
        f"  ({', '.join(decision.reasons) or '-'})",
    )
    console().print(out)
    say(f"request   {account} → {service} from {connection.region(stack.region)} ({ip_address_type})")
    say(f"tenant    {decision.tenant_id or '(none)'}")
    if decision.template:
        say(f"template  {decision.template} v{decision.template_version}")
    if assessment.slot is not None and decision.tenant_id:
        # The count the assessment read (the decision service's reads are made once).
        active = gk.decision_service.decisions.active_endpoints(decision.tenant_id)
        say(f"quota     {active} of {assessment.slot.limit} endpoints in use; this one would take a slot")
    say("explanation")
    for line in decision.explanation:
        say(f"  {line}")


# -- pending ------------------------------------------------------------------------------------
def pending(
    ctx: typer.Context,
    service: Annotated[
        str | None, typer.Option("--service", "-s", help="Only this managed service (default: all of them).")
    ] = None,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Connections waiting for acceptance across the managed services: their recorded status
    (held, undecided) and what the policy would decide now."""
    from rich.text import Text

    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    services = gk.stack.managed_services
    if service is not None:
        if service not in services:
            raise CliError(f"stack {gk.stack.name} does not manage {service}; managed: {', '.join(services)}")
        services = (service,)
    connections = gk.connections(services, ["pendingAcceptance"])
    states = gk.decisions.states([c.vpc_endpoint_id for c in connections]) if connections else {}
    rows: list[dict[str, Any]] = []
    for connection in sorted(connections, key=lambda c: (c.creation_timestamp is None, c.creation_timestamp)):
        state = states.get(connection.vpc_endpoint_id)
        rows.append(
            {
                "vpc_endpoint_id": connection.vpc_endpoint_id,
                "service_id": connection.service_id,
                "owner": connection.vpc_endpoint_owner,
                "region": connection.region(gk.stack.region),
                "requested_at": connection.creation_timestamp,
                "status": state.status if state else "undecided",
                "recorded": _recorded(state),
                "now": _explain(gk.decision_service.assess(connection, "operator")),
            }
        )
    if not render.human:
        render.emit(rows)
        return
    if not rows:
        say(f"no pending connections on {', '.join(services) or 'any managed service'}")
        return
    table(
        None,
        ("endpoint", "tenant / owner", "region", "service", "age", "status", "policy now"),
        [
            (
                r["vpc_endpoint_id"],
                r["now"]["tenant_id"] or r["owner"],
                r["region"],
                r["service_id"],
                age(r["requested_at"]),
                r["status"] + (f" ({', '.join(r['recorded']['reasons'])})" if r["recorded"] else ""),
                Text.assemble(styled_decision(r["now"]["decision"]), f" {', '.join(r['now']['reasons'])}"),
            )
            for r in rows
        ],
    )
    say("decide with `gatekeeper approve <vpce-id>` or `gatekeeper reject <vpce-id> --reason …`")


def _recorded(state: EndpointState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "decision": state.decision.outcome,
        "reasons": list(state.decision.reasons),
        "decided_at": state.decision.decided_at,
        "actor": state.decision.actor,
    }


# -- approve / reject ---------------------------------------------------------------------------
def approve(
    ctx: typer.Context,
    vpc_endpoint_id: EndpointId,
    *,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why; recorded and notified.")] = None,
    wait: Annotated[int, typer.Option("--wait", help="Wait up to N seconds for the recorded decision.")] = 0,
    yes: YesOption = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Accept a pending connection (typically one held for review) through the decision path: it
    is recorded as an operator decision (you, as requester), counted against the tenant's quota and
    notified. On AWS, run it with the stack's OperatorRoleArn role: only it may put operator events."""
    _operator_decision(
        gatekeeper(ctx),
        vpc_endpoint_id,
        outcome="accepted",
        reason=reason,
        wait=wait,
        yes=yes,
        render=rendering(output, query, json_output),
    )


def reject(
    ctx: typer.Context,
    vpc_endpoint_id: EndpointId,
    *,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why; recorded and sent to the tenant.")],
    wait: Annotated[int, typer.Option("--wait", help="Wait up to N seconds for the recorded decision.")] = 0,
    yes: YesOption = False,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Reject a pending connection, or revoke an accepted one (its endpoint stops working), through
    the decision path: recorded as an operator decision (you, as requester) and notified. On AWS,
    run it with the stack's OperatorRoleArn role: only it may put operator events."""
    _operator_decision(
        gatekeeper(ctx),
        vpc_endpoint_id,
        outcome="rejected",
        reason=reason,
        wait=wait,
        yes=yes,
        render=rendering(output, query, json_output),
    )


def _operator_decision(
    gk: Gatekeeper,
    vpc_endpoint_id: str,
    *,
    outcome: Literal["accepted", "rejected"],
    reason: str | None,
    wait: int,
    yes: bool,
    render: Rendering,
) -> None:
    from gatekeeper.adapters.bus import EventPublisher
    from gatekeeper.models.connection import ACCEPTED_STATES, ConnectionRef
    from gatekeeper.models.events import OPERATOR_DECISION, OPERATOR_SOURCE
    from gatekeeper.models.requests import OperatorRequest

    connection, state, current = _decidable(gk, vpc_endpoint_id, outcome)
    if connection is None:  # already what was asked: nothing to publish, not a failure
        if not render.human:
            render.emit(
                {
                    "vpc_endpoint_id": vpc_endpoint_id,
                    "requested_decision": outcome,
                    "published": False,
                    "state": current,
                }
            )
        else:
            shown = f"accepted ({current})" if outcome == "accepted" else current
            say(f"{vpc_endpoint_id} is already {shown}; nothing to do")
        return
    policy = gk.decision_service.assess(connection, "operator").decision
    revoke = connection.vpc_endpoint_state in ACCEPTED_STATES
    if not yes:
        if outcome == "accepted" and policy.outcome == "rejected":  # a hold is exactly what approve is for
            typer.confirm(
                f"Policy would reject {vpc_endpoint_id} ({', '.join(policy.reasons)}). Approve anyway?",
                abort=True,
                err=True,
            )
        if revoke:
            typer.confirm(
                f"{vpc_endpoint_id} is {connection.vpc_endpoint_state}: rejecting it revokes the tenant's "
                "access. Continue?",
                abort=True,
                err=True,
            )
    request = OperatorRequest(
        connection=ConnectionRef(vpc_endpoint_id=vpc_endpoint_id, service_id=connection.service_id),
        decision=outcome,
        reason=reason,
        requested_by=gk.caller_arn,
    )
    operator_bus = EventPublisher(gk.client("events"), gk.stack.event_bus_name, source=OPERATOR_SOURCE)
    operator_bus.publish(OPERATOR_DECISION, [request.model_dump(mode="json", by_alias=True)])
    verb = "revocation" if revoke else "approval" if outcome == "accepted" else "rejection"
    document: dict[str, Any] = {
        "vpc_endpoint_id": vpc_endpoint_id,
        "requested_decision": outcome,
        "requested_by": gk.caller_arn,
        "reason": reason,
        "published": True,
        "policy_now": {"decision": policy.outcome, "reasons": list(policy.reasons)},
    }
    decided = _wait_for_decision(gk, vpc_endpoint_id, state, wait) if wait > 0 else None
    if decided is not None:
        document["decision"] = decided.decision.model_dump(mode="json")
    if not render.human:
        render.emit(document)
        return
    say(f"{verb} of {vpc_endpoint_id} requested by {gk.caller_arn}")
    if decided is not None:
        say(f"decided: {decided.decision.outcome} ({', '.join(decided.decision.reasons)})")
    else:
        say(
            "evaluate_connection carries it out and notifies; follow it with "
            f"`gatekeeper decisions --endpoint {vpc_endpoint_id}`"
        )


def _behind(connection: VpcEndpointConnection | None, state: EndpointState | None) -> bool:
    """Whether EC2's answer looks older than the recorded decision (it still shows the request waiting,
    or does not list it yet)."""
    if connection is None:
        return True
    return connection.vpc_endpoint_state == "pendingAcceptance" and state is not None and state.final


def _decidable(
    gk: Gatekeeper, vpc_endpoint_id: str, outcome: Literal["accepted", "rejected"]
) -> tuple[VpcEndpointConnection | None, EndpointState | None, str]:
    """The connection if the decision path can act on the operator's request (None when it is
    already in the requested state), the recorded state and EC2's state; CliError saying why not."""
    from gatekeeper.dal.decisions import IN_FLIGHT
    from gatekeeper.models.requests import CARRIED_OUT, operator_verdict

    stack = gk.stack
    state = gk.decisions.state(vpc_endpoint_id)
    connection = gk.endpoint_service.connection(vpc_endpoint_id)
    if _behind(connection, state):
        # EC2's reads lag its writes for a moment (eventual consistency): read once more before
        # telling the operator the record and EC2 disagree.
        connection = gk.endpoint_service.connection(vpc_endpoint_id)
    if connection is None:
        raise CliError(
            f"no connection {vpc_endpoint_id} to an endpoint service of this account in {stack.region}; "
            "list them with `gatekeeper pending`"
        )
    if connection.service_id not in stack.managed_services:
        raise CliError(
            f"{vpc_endpoint_id} connects to {connection.service_id}, which stack {stack.name} does not "
            "manage (EndpointServiceIds); see `gatekeeper services list`"
        )
    if state is not None and state.status in IN_FLIGHT:
        raise CliError(f"{vpc_endpoint_id} is being decided right now ({state.status}); retry in a minute")
    recorded = state.status if state else None
    current = connection.vpc_endpoint_state
    verdict = operator_verdict(outcome, current, recorded)
    if verdict == "already":
        return None, state, current
    if verdict not in CARRIED_OUT:
        raise CliError(_refusal(verdict, connection, recorded))
    return connection, state, current


def _refusal(verdict: OperatorVerdict, connection: VpcEndpointConnection, recorded: str | None) -> str:
    """Why the decision path would not carry the operator's request out, and what to do instead."""
    endpoint, current = connection.vpc_endpoint_id, connection.vpc_endpoint_state
    if verdict == "not-pending":
        return (
            f"{endpoint} is {current}; only a pendingAcceptance connection can be approved — "
            "the consumer has to create a new endpoint"
        )
    if verdict == "never-accepted":
        return (
            f"{endpoint} is {current} but the gatekeeper never accepted it "
            f"(recorded: {recorded or 'nothing'}); "
            "the decision path revokes only what it accepted — reject it with `aws ec2 "
            f"reject-vpc-endpoint-connections --service-id {connection.service_id} --vpc-endpoint-ids "
            f"{endpoint}`"
        )
    if verdict == "drift":
        return (
            f"{endpoint} is pendingAcceptance but the gatekeeper recorded it {recorded}; "
            "the reconciler repairs such drift — check `gatekeeper decisions --endpoint "
            f"{endpoint}`"
        )
    return f"{endpoint} is {current}; only pending or accepted connections can be rejected"


def _wait_for_decision(
    gk: Gatekeeper, vpc_endpoint_id: str, before: EndpointState | None, seconds: int
) -> EndpointState:
    from gatekeeper.dal.decisions import IN_FLIGHT

    deadline = time.monotonic() + seconds
    while True:
        state = gk.decisions.state(vpc_endpoint_id)
        moved = state is not None and (before is None or state.seq > before.seq)
        operator = state is not None and state.decision.trigger == "operator"
        if moved and state is not None and operator and state.status not in IN_FLIGHT:
            return state
        if time.monotonic() >= deadline:
            raise CliError(
                f"the request was published but no decision was recorded within {seconds}s; check "
                f"`gatekeeper decisions --endpoint {vpc_endpoint_id}` and the DecisionDeadLetterQueue"
            )
        sleep(1.0)
