"""`gatekeeper verify`: the deployed stack (or the sandbox) proves, in a minute, that the real path
works — what cannot be checked offline: the body AWS sends, the `aws:SourceArn` it publishes with,
the bus policy as deployed.

For each managed service it creates a canary: an interface endpoint from the producer account
itself, in the service's own VPC (its NLB's VPC and subnets unless given), and follows it through
the stack, with a temporary SQS subscriber on each topic and a temporary rule on the bus. The
producer account is no tenant, so the canary is decided like any stranger (`UnknownPrincipalAction`,
reject by default): nothing is accepted. Its principal (`arn:aws:iam::<producer>:root`) is added to
the service's allowed principals for the run, unless `*` or it is already there: tenant sync only
withdraws principals that a changed tenant record used to name, and the sweep only adds, so neither
removes it meanwhile (docs/operator-guide.md#verify-a-deployment).

Everything it creates is removed on the way out — after the checks, after a failure, on Ctrl-C or
SIGTERM; what could not be removed is named on stderr. Exit status 0 only when every check passes.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from gatekeeper_ops.cli import reconcile
from gatekeeper_ops.cli.context import Gatekeeper, describe_error, gatekeeper
from gatekeeper_ops.cli.help import examples
from gatekeeper_ops.cli.output import JsonOption, OutputOption, QueryOption, rendering, say, warn

GATEKEEPER_SOURCE = "vpce.gatekeeper"
OPERATOR_SOURCE = "vpce.gatekeeper.operator"
# The bus policy's statements (template.yaml, EventBusPolicy resources): each must be in the document.
BUS_POLICY_SIDS = {
    "OnlyTheStackAnnouncesConnections": GATEKEEPER_SOURCE,
    "OnlyOperatorsDecide": OPERATOR_SOURCE,
    "OnlyTheControlPlaneChangesTenants": "vpce.gatekeeper.control-plane",  # models.tenant_change
}
PROBE_DETAIL_TYPE = "Gatekeeper Verify Probe"  # no rule of the stack matches it
POLL_SECONDS = 1.0


def sleep(seconds: float) -> None:
    """The pause between two looks (the sandbox's tests deliver the emulated account's events here)."""
    time.sleep(seconds)


def wait_for[T](look: Callable[[], T | None], seconds: float) -> T | None:
    """`look()` until it finds something or `seconds` have passed (at least one look)."""
    deadline = time.monotonic() + seconds
    while True:
        found = look()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            return None
        sleep(POLL_SECONDS)


@dataclass
class Check:
    check: str
    passed: bool
    detail: str
    fix: str = ""
    service: str | None = None


@dataclass(frozen=True)
class Options:
    """What the operator asked for: where canaries go, how long a step may take, where the body goes."""

    vpc_id: str | None
    subnet_ids: list[str]
    security_group_ids: list[str]
    wait: float
    body_path: Path
    human: bool


@dataclass(frozen=True)
class Subscribers:
    """The temporary queues: the notification topic's, the decision topic's, the bus rule's."""

    notifications: str
    decisions: str
    bus: str


@dataclass
class Network:
    vpc_id: str
    subnet_ids: list[str]
    security_group_ids: list[str]


@dataclass
class Probe:
    """The run's temporary resources, each undone (last first) when the run ends, however it ends."""

    gk: Gatekeeper
    run: str
    undo: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    leftovers: list[str] = field(default_factory=list)

    def later(self, what: str, action: Callable[[], object]) -> None:
        def attempt() -> None:
            try:
                action()
            except Exception as exc:  # keep undoing the rest; name what is left
                self.leftovers.append(f"{what}: {describe_error(exc) or exc}")

        self.undo.callback(attempt)

    def queue(self, name: str, allow: dict[str, Any]) -> tuple[str, str]:
        """A queue only `allow`'s principal (with its aws:SourceArn) may send to; url and ARN."""
        sqs = self.gk.client("sqs")
        url = str(sqs.create_queue(QueueName=f"gatekeeper-verify-{self.run}-{name}")["QueueUrl"])
        self.later(f"queue {url}", lambda: sqs.delete_queue(QueueUrl=url))
        arn = str(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )
        statement = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn, **allow}
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        return url, arn

    def topic_subscriber(self, name: str, topic_arn: str) -> str:
        """A queue subscribed to a topic (SNS envelopes, as the stack's own queue receives them)."""
        url, arn = self.queue(
            name,
            {
                "Principal": {"Service": "sns.amazonaws.com"},
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            },
        )
        sns = self.gk.client("sns")
        subscription = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)["SubscriptionArn"]
        self.later(f"subscription {subscription}", lambda: sns.unsubscribe(SubscriptionArn=subscription))
        return url

    def bus_subscriber(self, bus: str, pattern: dict[str, Any]) -> str:
        """A queue that a temporary rule on the bus sends matching events to."""
        events = self.gk.client("events")
        rule = f"gatekeeper-verify-{self.run}"
        rule_arn = str(
            events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))["RuleArn"]
        )
        self.later(f"rule {rule} on {bus}", lambda: events.delete_rule(Name=rule, EventBusName=bus))
        url, arn = self.queue(
            "bus",
            {
                "Principal": {"Service": "events.amazonaws.com"},
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            },
        )
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "verify", "Arn": arn}])
        self.later(
            f"target of rule {rule}",
            lambda: events.remove_targets(Rule=rule, EventBusName=bus, Ids=["verify"]),
        )
        return url

    def allow_principal(self, service_id: str, principal: str) -> None:
        ec2 = self.gk.client("ec2")
        allowed = {
            p.get("Principal")
            for p in ec2.describe_vpc_endpoint_service_permissions(ServiceId=service_id)["AllowedPrincipals"]
        }
        if principal in allowed or "*" in allowed:
            return
        ec2.modify_vpc_endpoint_service_permissions(ServiceId=service_id, AddAllowedPrincipals=[principal])
        self.later(
            f"allowed principal {principal} of {service_id}",
            lambda: ec2.modify_vpc_endpoint_service_permissions(
                ServiceId=service_id, RemoveAllowedPrincipals=[principal]
            ),
        )

    def endpoint(self, service_name: str, network: Network) -> str:
        ec2 = self.gk.client("ec2")
        extra = {"SecurityGroupIds": network.security_group_ids} if network.security_group_ids else {}
        endpoint = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface",
            VpcId=network.vpc_id,
            SubnetIds=network.subnet_ids,
            ServiceName=service_name,
            PrivateDnsEnabled=False,
            TagSpecifications=[
                {"ResourceType": "vpc-endpoint", "Tags": [{"Key": "gatekeeper:verify", "Value": self.run}]}
            ],
            **extra,
        )["VpcEndpoint"]["VpcEndpointId"]
        self.later(f"endpoint {endpoint}", lambda: ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint]))
        return str(endpoint)


def messages_about(gk: Gatekeeper, queue_url: str, needle: str) -> list[str]:
    """The bodies waiting in a subscriber queue that mention `needle` (consumed)."""
    sqs = gk.client("sqs")
    found = []
    for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if needle in message["Body"]:
            found.append(str(message["Body"]))
    return found


# ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def interrupted_by_sigterm() -> Iterator[None]:
    """SIGTERM ends the run as Ctrl-C does (KeyboardInterrupt), so the canary is still removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    app.command(
        epilog=examples(
            "gatekeeper verify",
            "gatekeeper verify --subnet-id subnet-0abc --security-group-id sg-0abc --wait 120",
            "gatekeeper verify --output json --query 'checks[?!passed]'",
        )
    )(verify)


def verify(
    ctx: typer.Context,
    *,
    service: Annotated[
        list[str] | None, typer.Option("--service", help="Only this managed service (repeatable).")
    ] = None,
    vpc_id: Annotated[
        str | None, typer.Option("--vpc-id", help="The canary's VPC (default: the service's NLB's).")
    ] = None,
    subnet_id: Annotated[
        list[str] | None,
        typer.Option("--subnet-id", help="The canary's subnets (repeatable; default: the NLB's)."),
    ] = None,
    security_group_id: Annotated[
        list[str] | None,
        typer.Option(
            "--security-group-id", help="The canary's security groups (default: the VPC's default)."
        ),
    ] = None,
    wait: Annotated[
        float, typer.Option("--wait", min=1, help="Seconds each step may take before it fails.")
    ] = 60.0,
    body_file: Annotated[
        Path | None,
        typer.Option(
            "--body-file",
            help="Where the first run saves the connection notification's raw body "
            "(default: connection-notification-<region>.json).",
        ),
    ] = None,
    output: OutputOption = None,
    query: QueryOption = None,
    json_output: JsonOption = False,
) -> None:
    """Prove the deployed stack works: a canary endpoint per managed service, followed from EC2's
    notification to the decision announced on SNS and the bus; forged events refused by the bus;
    the bus policy, alarms, dashboard and reconcile function. Everything it creates is removed.
    Exit status 0 only when every check passes."""
    render = rendering(output, query, json_output)
    gk = gatekeeper(ctx)
    stack = gk.stack
    services = [s for s in stack.managed_services if not service or s in service]
    run = uuid.uuid4().hex[:8]
    options = Options(
        vpc_id,
        subnet_id or [],
        security_group_id or [],
        wait,
        body_file or Path(f"connection-notification-{stack.region}.json"),
        render.human,
    )
    checks: list[Check] = []
    probe = Probe(gk, run)
    try:
        with interrupted_by_sigterm(), probe.undo:
            checks += _canaries(gk, probe, services, options)
            checks += _bus_checks(gk, run)
            checks += _stack_checks(gk)
    finally:
        for leftover in probe.leftovers:
            warn(f"could not remove {leftover}; remove it by hand")
    passed = all(c.passed for c in checks) and not probe.leftovers
    if render.human:
        for c in checks:
            where = f"{c.service}: " if c.service else ""
            fix = f" — fix: {c.fix}" if c.fix and not c.passed else ""
            say(f"{'PASS' if c.passed else 'FAIL'}  {c.check:<22} {where}{c.detail}{fix}")
        say(f"{'all checks passed' if passed else 'verify FAILED'}; the canary and its probes are removed")
    else:
        render.emit(
            {
                "stack": stack.name,
                "region": stack.region,
                "passed": passed,
                "checks": [asdict(c) for c in checks],
                "left_behind": probe.leftovers,
            }
        )
    if not passed:
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------------------
def _canaries(gk: Gatekeeper, probe: Probe, services: list[str], options: Options) -> list[Check]:
    stack = gk.stack
    subscribers = Subscribers(
        notifications=probe.topic_subscriber("notifications", stack.connection_notification_topic_arn),
        decisions=probe.topic_subscriber("decisions", stack.decision_topic_arn),
        bus=probe.bus_subscriber(
            stack.event_bus_name,
            {"source": [GATEKEEPER_SOURCE], "detail-type": ["Endpoint Connection Decided"]},
        ),
    )
    account = gk.caller_arn.split(":")[4]
    principal = f"arn:aws:iam::{account}:root"
    checks: list[Check] = []
    for service_id in services:
        service_name, network = _service_network(gk, service_id, options)
        probe.allow_principal(service_id, principal)
        endpoint = probe.endpoint(service_name, network)
        checks += _follow(gk, service_id, endpoint, subscribers, options)
    return checks


def _service_network(gk: Gatekeeper, service_id: str, options: Options) -> tuple[str, Network]:
    """The service's name, and where its canary goes: the options, else its NLB's VPC and subnets."""
    vpc_id, subnets = options.vpc_id, options.subnet_ids
    [configuration] = gk.client("ec2").describe_vpc_endpoint_service_configurations(ServiceIds=[service_id])[
        "ServiceConfigurations"
    ]
    if not (vpc_id and subnets):
        balancers = configuration.get("NetworkLoadBalancerArns") or []
        [nlb] = gk.client("elbv2").describe_load_balancers(LoadBalancerArns=balancers[:1])["LoadBalancers"]
        vpc_id = vpc_id or nlb["VpcId"]
        subnets = subnets or [zone["SubnetId"] for zone in nlb.get("AvailabilityZones", [])]
    network = Network(str(vpc_id), list(subnets), list(options.security_group_ids))
    return str(configuration["ServiceName"]), network


def _follow(
    gk: Gatekeeper, service_id: str, endpoint: str, subscribers: Subscribers, options: Options
) -> list[Check]:
    """The canary from EC2's notification to its decision announced on both channels."""
    wait = options.wait
    started = time.monotonic()

    def took() -> str:
        return f"{time.monotonic() - started:.1f} s"

    def about(queue: str) -> Callable[[], str | None]:
        return lambda: next(iter(messages_about(gk, queue, endpoint)), None)

    checks = []
    envelope = wait_for(about(subscribers.notifications), wait)
    if envelope is None:
        checks.append(
            Check(
                "notification",
                False,
                f"no Connect notification for canary {endpoint} within {wait:g} s",
                "vpce.amazonaws.com cannot publish to the notification topic: check the topic policy "
                "(aws:SourceAccount, aws:SourceArn of the service), the TopicKey key policy, and that "
                "`gatekeeper services list` shows the service's connection notification",
                service_id,
            )
        )
    else:
        checks.append(
            Check("notification", True, f"Connect for canary {endpoint} in {took()}", "", service_id)
        )
        checks.append(_parsed(envelope, endpoint, service_id, options))
    record = wait_for(lambda: next(iter(gk.decisions.decisions_for_endpoint(endpoint)), None), wait)
    if record is None:
        checks.append(
            Check(
                "decision recorded",
                False,
                f"no decision for {endpoint} within {wait:g} s",
                # Without a notification only the sweep decides: the cause is the line above.
                _FOLLOWS.format(check="notification")
                if envelope is None
                else "see the IngestNotifications and EvaluateConnection logs and the DLQs "
                "(README, Troubleshooting)",
                service_id,
            )
        )
    else:
        reasons = ", ".join(record.reasons)
        checks.append(
            Check("decision recorded", True, f"{record.outcome} ({reasons}) in {took()}", "", service_id)
        )
    for name, queue, own_fix in (
        (
            "announced on SNS",
            subscribers.decisions,
            "EvaluateConnection's sns:Publish and the TopicKey permissions",
        ),
        ("announced on the bus", subscribers.bus, "EvaluateConnection's events:PutEvents; the bus policy"),
    ):
        if record is None:  # nothing decided, nothing to announce: no second wait, the fix is upstream
            found = wait_for(about(queue), 0)
            detail = f"nothing about {endpoint}: nothing was decided"
            fix = _FOLLOWS.format(check="decision recorded")
        else:
            found = wait_for(about(queue), wait)
            detail = f"nothing about {endpoint} in {wait:g} s"
            fix = own_fix
        if found:
            detail = f"the decision on {endpoint} in {took()}"
        checks.append(Check(name, found is not None, detail, fix, service_id))
    return checks


# The fix of a check that failed only because an earlier one did: fixing that one comes first.
_FOLLOWS = "follows from the failed '{check}' check above: fix that first"


def _parsed(envelope: str, endpoint: str, service_id: str, options: Options) -> Check:
    """The body as the ingest function parses it; on the first run it is printed and saved."""
    from gatekeeper.models.connection_notification import parse_notification
    from gatekeeper.models.errors import NotificationUnparseable

    message = json.loads(envelope).get("Message", envelope)
    body_path = options.body_path
    if not body_path.exists():
        body_path.write_text(message + "\n")
        if options.human:
            say(f"connection notification body (saved to {body_path}):\n{message}")
    fix = (
        f"AWS's body (saved in {body_path}) is not the shape the parser knows: teach "
        "gatekeeper.models.connection_notification its keys; meanwhile the fallback finds the id in the text"
    )
    try:
        parsed = parse_notification(envelope)
    except NotificationUnparseable as exc:
        return Check("parsed by primary", False, str(exc), fix, service_id)
    if parsed.vpc_endpoint_id != endpoint or not parsed.by_known_key:
        how = "the fallback (an id found in the text)" if not parsed.by_known_key else parsed.vpc_endpoint_id
        return Check("parsed by primary", False, f"the body was read by {how}", fix, service_id)
    return Check(
        "parsed by primary", True, f"{parsed.event or '?'} of {parsed.vpc_endpoint_id}", "", service_id
    )


# ------------------------------------------------------------------------------------------------
def _bus_checks(gk: Gatekeeper, run: str) -> list[Check]:
    stack = gk.stack
    events = gk.client("events")
    checks = []
    caller = gk.caller_arn
    operator = _is_operator(caller, stack.operator_role_arn)
    for source in (GATEKEEPER_SOURCE, OPERATOR_SOURCE):
        refused = _forged_put_refused(gk, source, run)
        if source == OPERATOR_SOURCE and operator and not refused:
            checks.append(
                Check(f"forged {source}", True, f"accepted: you ({caller}) are the operator role", "")
            )
            continue
        checks.append(
            Check(
                f"forged {source}",
                refused,
                f"{'refused' if refused else 'ACCEPTED'} from {caller}",
                f"the bus policy does not deny {source} to others: redeploy (sam deploy) so the "
                "EventBusPolicy statements are in place",
            )
        )
    policy = json.loads(events.describe_event_bus(Name=stack.event_bus_name).get("Policy") or "{}")
    statements = {s.get("Sid"): s for s in policy.get("Statement", [])}
    for sid, source in BUS_POLICY_SIDS.items():
        statement = statements.get(sid, {})
        present = statement.get("Effect") == "Deny" and source in json.dumps(statement.get("Condition", {}))
        checks.append(
            Check(
                "bus policy",
                present,
                f"statement {sid} ({'Deny ' + source if present else 'missing'})",
                f"the bus {stack.event_bus_name} lacks {sid}: redeploy (sam deploy); the EventBusPolicy "
                "resources each add one statement",
            )
        )
    return checks


def _is_operator(caller: str, operator_role: str | None) -> bool:
    """Whether the caller's session is of the stack's OperatorRole (assumed-role/<name>/…)."""
    if not operator_role:
        return False
    name = operator_role.rsplit("/", 1)[-1]
    return f":assumed-role/{name}/" in caller or caller == operator_role


def _forged_put_refused(gk: Gatekeeper, source: str, run: str) -> bool:
    """A probe event of `source` from the caller: refused (AccessDenied, or a failed entry)?"""
    from botocore.exceptions import ClientError

    entry = {
        "Source": source,
        "DetailType": PROBE_DETAIL_TYPE,  # no rule matches it: harmless if the bus takes it
        "Detail": json.dumps({"probe": run}),
        "EventBusName": gk.stack.event_bus_name,
    }
    try:
        answer = gk.client("events").put_events(Entries=[entry])
    except ClientError as exc:
        return "AccessDenied" in str(exc.response.get("Error", {}).get("Code", ""))
    return int(answer.get("FailedEntryCount", 0)) > 0


def _stack_checks(gk: Gatekeeper) -> list[Check]:
    stack = gk.stack
    cloudwatch = gk.client("cloudwatch")
    alarming = [
        alarm["AlarmName"]
        for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=f"{stack.name}-", StateValue="ALARM"
        )
        for alarm in page.get("MetricAlarms", [])
        if alarm.get("StateValue") == "ALARM"  # not only the filter: some endpoints ignore it
    ]
    checks = [
        Check(
            "alarms",
            not alarming,
            f"in ALARM: {', '.join(alarming)}" if alarming else "none in ALARM",
            "each alarm's description says what to do (README, Troubleshooting)",
        )
    ]
    dashboard = stack.dashboard_name or f"{stack.name}-operations"
    checks.append(_answers("dashboard", lambda: cloudwatch.get_dashboard(DashboardName=dashboard), dashboard))
    checks.append(
        _answers("reconcile function", lambda: reconcile.invoke_sweep(gk), stack.reconcile_function or "?")
    )
    return checks


def _answers(name: str, call: Callable[[], object], what: str) -> Check:
    try:
        call()
    except Exception as exc:
        return Check(name, False, f"{what}: {describe_error(exc) or exc}", "is the stack fully deployed?")
    return Check(name, True, f"{what} answers")
