"""Provision the stack's resources on an emulated account from `template.yaml` itself.

The tests and the sandbox never declare a table, topic, queue, rule or pattern a second time:
they read the template, resolve its intrinsic functions for the given parameters, and create
each supported resource through boto3 (moto, in-process or server). Lambda functions are not
created in moto (no Docker); instead every function's triggers are wired so that a local runtime
(`gatekeeper_ops.local_lambda`) can deliver them to the real handler in-process:
- an SQS event source: the function is bound to that queue;
- an EventBridgeRule event: the rule is created on the bus with the template's own pattern and
  an SQS target (a delivery queue standing in for the Lambda service's async invoke queue);
- a Schedule/ScheduleV2 event: recorded, so the local runtime can fire it (`run_schedule`);
- a DynamoDB event: the function is bound to the table's stream with the mapping's settings
  (batch size, filter criteria, retries, bisect, on-failure queue).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


# ---------------------------------------------------------------------------- YAML loading
# libyaml's parser where PyYAML has it (its wheels do): the same document, 10x faster to read, and
# the tests and the sandbox provision a stack from the template hundreds of times.
_SafeLoader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


class _CfnLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """YAML loader that turns CloudFormation short tags (!Ref, !Sub …) into their long form."""


def _multi(tag: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        name = "Ref" if tag == "Ref" else f"Fn::{tag}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _tag in (
    "Ref",
    "GetAtt",
    "Sub",
    "Join",
    "Split",
    "Select",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "GetAZs",
    "ImportValue",
    "FindInMap",
    "Base64",
    "Condition",
):
    _CfnLoader.add_constructor(f"!{_tag}", _multi(_tag))


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as written: its `Fn::ForEach` blocks are expanded by `expand_for_each`."""
    with path.open() as handle:
        document: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return document


# ---------------------------------------------------------------------------- AWS::LanguageExtensions
FOR_EACH = "Fn::ForEach::"


def expand_for_each(template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The template with every `Fn::ForEach::<Loop>: [Identifier, Collection, {OutputKey: OutputValue}]`
    replaced by its outputs, as the AWS::LanguageExtensions transform does before any other: one
    copy of the outputs per item of the collection (a list, or a function of the parameters such as
    a CommaDelimitedList's Ref), with `${Identifier}` in every key and string replaced by the item,
    `&{Identifier}` by the item without its non-alphanumeric characters (logical ids), and
    `{"Ref": Identifier}` by the item. Loops nest; two outputs with one key are an error."""
    stack = EmulatedStack("expand", "us-east-1", "000000000000", _parameters(template, parameters))
    resolver = _Resolver(template, stack)

    def expand(value: Any) -> Any:
        if isinstance(value, list):
            return [expand(v) for v in value]
        if not isinstance(value, dict):
            return value
        expanded: dict[str, Any] = {}
        for key, item in value.items():
            if key.startswith(FOR_EACH):
                # Each copy is expanded on its own (its loops too) before the copies are merged.
                outputs = [
                    pair for copy in _loop_copies(key, item, resolver) for pair in expand(copy).items()
                ]
            else:
                outputs = [(key, expand(item))]
            for output_key, output in outputs:
                if output_key in expanded:
                    raise ValueError(f"{key}: {output_key} is defined twice")
                expanded[output_key] = output
        return expanded

    return {name: expand(section) for name, section in template.items()}


def _loop_copies(key: str, loop: Any, resolver: _Resolver) -> list[dict[str, Any]]:
    """One copy of the loop's outputs per item of its collection, the identifier replaced."""
    if not (
        isinstance(loop, list) and len(loop) == 3 and isinstance(loop[0], str) and isinstance(loop[2], dict)
    ):
        raise ValueError(f"{key} is not [Identifier, Collection, {{OutputKey: OutputValue}}]")
    identifier, collection, body = loop
    items = resolver.resolve(collection)
    if not isinstance(items, list):
        raise ValueError(f"{key}: its collection {collection!r} is not a list")
    return [_substitute(body, identifier, str(item)) for item in items]


def _substitute(value: Any, identifier: str, item: str) -> Any:
    if isinstance(value, str):
        alphanumeric = re.sub(r"[^A-Za-z0-9]", "", item)
        return value.replace(f"${{{identifier}}}", item).replace(f"&{{{identifier}}}", alphanumeric)
    if isinstance(value, list):
        return [_substitute(v, identifier, item) for v in value]
    if isinstance(value, dict):
        if value == {"Ref": identifier}:
            return item
        return {_substitute(k, identifier, item): _substitute(v, identifier, item) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------- the stack
@dataclass
class FunctionBinding:
    """A function of the template and what triggers it locally."""

    logical_id: str
    module: str  # e.g. functions.evaluate_connection.app
    handler: str  # e.g. lambda_handler
    environment: dict[str, str]
    timeout: int
    sqs_queue_url: str | None = None
    sqs_batch_size: int = 10
    sqs_batching_window: float = 0.0  # MaximumBatchingWindowInSeconds
    sqs_maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency (None: not capped)
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions
    rules: list[str] = field(default_factory=list)  # delivery queue urls of its EventBridge rules
    schedules: dict[str, str] = field(default_factory=dict)  # event id → schedule expression
    async_retry_attempts: int = 2  # EventInvokeConfig.MaximumRetryAttempts (Lambda's default: 2)
    on_failure_queue_url: str | None = None  # EventInvokeConfig's OnFailure destination (async invokes)
    streams: list[StreamSource] = field(default_factory=list)  # DynamoDB stream event sources


@dataclass
class StreamSource:
    """A DynamoDB stream event source mapping, as the template declares it."""

    event_id: str
    stream_arn: str
    batch_size: int = 100
    starting_position: str = "LATEST"
    filters: list[dict[str, Any]] = field(default_factory=list)  # FilterCriteria patterns, parsed
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    maximum_retry_attempts: int = -1  # -1: until the record expires, as Lambda's default
    on_failure_queue_url: str | None = None


@dataclass
class EmulatedStack:
    """The resources of one stack, created on an emulated account."""

    name: str
    region: str
    account_id: str
    parameters: dict[str, Any]
    physical: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id → {Ref:…, Arn:…}
    functions: dict[str, FunctionBinding] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    rule_patterns: dict[str, dict[str, Any]] = field(default_factory=dict)  # rule name → pattern

    def ref(self, logical_id: str) -> str:
        return str(self.physical[logical_id]["Ref"])

    def environment(self) -> dict[str, str]:
        """The environment every function shares (the template's Globals, resolved)."""
        merged: dict[str, str] = {}
        for binding in self.functions.values():
            merged.update(binding.environment)
        return merged


class _Resolver:
    def __init__(self, template: dict[str, Any], stack: EmulatedStack) -> None:
        self.template = template
        self.stack = stack
        self.conditions: dict[str, bool] = {}

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": self.stack.region,
            "AWS::AccountId": self.stack.account_id,
            "AWS::StackName": self.stack.name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.stack.region}:{self.stack.account_id}:stack/"
            f"{self.stack.name}/00000000-0000-0000-0000-000000000000",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }[name]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.stack.parameters:
            return self.stack.parameters[name]
        return self.stack.physical[name]["Ref"]

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return self._resolve_list(value)
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return self._resolve_mapping(value)
        ((name, arg),) = value.items()
        intrinsic = _INTRINSICS.get(name)
        if intrinsic is None:  # a one-key mapping that is not a function, e.g. {"Name": …}
            return {name: self.resolve(arg)}
        return intrinsic(self, arg)

    # An item or key that resolves to None (AWS::NoValue) is left out, as CloudFormation does.
    def _resolve_list(self, value: list[Any]) -> list[Any]:
        return [r for r in (self.resolve(v) for v in value) if r is not None]

    def _resolve_mapping(self, value: dict[str, Any]) -> dict[str, Any]:
        return {k: r for k, r in ((k, self.resolve(v)) for k, v in value.items()) if r is not None}

    def _get_att(self, arg: Any) -> Any:
        logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        return self.stack.physical[logical][attribute]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def substitute(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(variables[token])
            if "." in token:
                logical, attribute = token.split(".", 1)
                return str(self.stack.physical[logical][attribute])
            return str(self.ref(token))

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)

    def _join(self, arg: Any) -> str:
        return str(self.resolve(arg[0])).join(str(v) for v in self.resolve(arg[1]))

    def _split(self, arg: Any) -> list[str]:
        return str(self.resolve(arg[1])).split(self.resolve(arg[0]))

    def _select(self, arg: Any) -> Any:
        return self.resolve(arg[1])[int(self.resolve(arg[0]))]

    def _equals(self, arg: Any) -> bool:
        left, right = self.resolve(arg[0]), self.resolve(arg[1])
        if not isinstance(left, list | dict) and not isinstance(right, list | dict):
            # CloudFormation compares strings (a Number parameter's Ref is one).
            return str(left) == str(right)
        return bool(left == right)

    def _not(self, arg: Any) -> bool:
        return not self.resolve(arg[0])

    def _and(self, arg: Any) -> bool:
        return all(self.resolve(a) for a in arg)

    def _or(self, arg: Any) -> bool:
        return any(self.resolve(a) for a in arg)

    def _if(self, arg: Any) -> Any:
        return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])

    def _find_in_map(self, arg: Any) -> Any:
        mapping, top, second = (self.resolve(a) for a in arg)
        return self.resolve(self.template["Mappings"][mapping][str(top)][str(second)])


# Intrinsic function (or Ref/Condition) name → how the resolver evaluates its argument.
_INTRINSICS: dict[str, Callable[[_Resolver, Any], Any]] = {
    "Ref": _Resolver.ref,
    "Fn::GetAtt": _Resolver._get_att,
    "Fn::Sub": _Resolver._sub,
    "Fn::Join": _Resolver._join,
    "Fn::Split": _Resolver._split,
    "Fn::Select": _Resolver._select,
    "Fn::Equals": _Resolver._equals,
    "Fn::Not": _Resolver._not,
    "Fn::And": _Resolver._and,
    "Fn::Or": _Resolver._or,
    "Fn::If": _Resolver._if,
    "Fn::FindInMap": _Resolver._find_in_map,
    "Condition": _Resolver.condition,
}


def _parameters(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        value = overrides.get(name, spec.get("Default"))
        if value is None:
            raise ValueError(f"template parameter {name} has no default; pass it")
        if spec["Type"] == "CommaDelimitedList" and isinstance(value, str):
            value = [v.strip() for v in value.split(",")]
        resolved[name] = value
    return resolved


def provision(
    session: boto3.Session,
    parameters: dict[str, Any],
    stack_name: str = "gatekeeper",
    template: dict[str, Any] | None = None,
) -> EmulatedStack:
    """Create the template's resources in the account and region of `session`."""
    template = expand_for_each(template or load_template(), parameters)
    region = session.region_name or "us-east-1"
    account = session.client("sts").get_caller_identity()["Account"]
    stack = EmulatedStack(stack_name, region, account, _parameters(template, parameters))
    resolver = _Resolver(template, stack)
    builder = _Builder(session, stack, resolver, template)
    for logical_id in _creation_order(template):
        spec = template["Resources"][logical_id]
        if "Condition" in spec and not resolver.condition(spec["Condition"]):
            continue
        builder.create(logical_id, spec)
    for name, output in template.get("Outputs", {}).items():
        stack.outputs[name] = str(resolver.resolve(output["Value"]))
    return stack


def _creation_order(template: dict[str, Any]) -> list[str]:
    """Resources ordered so that every Ref/GetAtt/Sub/DependsOn target comes first."""
    resources = template["Resources"]

    def owner(logical_id: str) -> str:
        # SAM's implicit resources (e.g. a function's generated <Function>Role) come with their function.
        if logical_id not in resources and logical_id.endswith("Role") and logical_id[:-4] in resources:
            return logical_id[:-4]
        return logical_id

    def deps(value: Any) -> set[str]:
        found: set[str] = set()
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "Ref" and isinstance(v, str) and v in resources:
                    found.add(v)
                elif k == "Fn::GetAtt":
                    found.add(owner(v[0] if isinstance(v, list) else v.split(".")[0]))
                elif k == "Fn::Sub":
                    text = v if isinstance(v, str) else v[0]
                    found |= {t.split(".")[0] for t in re.findall(r"\$\{([^}!]+)\}", text)} & set(resources)
                    found |= deps(v)
                else:
                    found |= deps(v)
        elif isinstance(value, list):
            for v in value:
                found |= deps(v)
        return found

    graph: dict[str, set[str]] = {}
    for logical_id, spec in resources.items():
        depends = spec.get("DependsOn", [])
        graph[logical_id] = (deps(spec) | set([depends] if isinstance(depends, str) else depends)) - {
            logical_id
        }
    # Globals reference resources for every function.
    globals_deps = deps(template.get("Globals", {}))
    for logical_id, spec in resources.items():
        if spec["Type"] == "AWS::Serverless::Function":
            graph[logical_id] |= globals_deps
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(node: str) -> None:
        if node in ordered:
            return
        if node in visiting:
            raise ValueError(f"template has a dependency cycle through {node}")
        visiting.add(node)
        for dep in sorted(graph[node]):
            visit(dep)
        visiting.discard(node)
        ordered.append(node)

    for node in sorted(graph):
        visit(node)
    return ordered


class _Builder:
    def __init__(
        self, session: boto3.Session, stack: EmulatedStack, resolver: _Resolver, template: dict[str, Any]
    ):
        self.session = session
        self.stack = stack
        self.resolver = resolver
        self.template = template
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)  # type: ignore[call-overload]
        return self._clients[service]

    def name(self, logical_id: str) -> str:
        return f"{self.stack.name}-{logical_id}"

    def create(self, logical_id: str, spec: dict[str, Any]) -> None:
        kind = spec["Type"]
        method = getattr(self, "_" + kind.replace("::", "_").lower(), None)
        if method is None:  # e.g. log groups, the layer: nothing to emulate
            self.stack.physical[logical_id] = {
                "Ref": self.name(logical_id),
                "Arn": f"arn:aws:local:::{logical_id}",
            }
            return
        properties = self.resolver.resolve(spec.get("Properties", {}))
        self.stack.physical[logical_id] = method(logical_id, properties, spec)

    # -- resources ---------------------------------------------------------------------------
    def _aws_kms_key(self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        key = self.client("kms").create_key(
            Description=props.get("Description", logical_id), Policy=json.dumps(props["KeyPolicy"])
        )["KeyMetadata"]
        return {"Ref": key["KeyId"], "Arn": key["Arn"]}

    def _aws_sns_topic(self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
        arn = self.client("sns").create_topic(Name=self.name(logical_id), Attributes=attributes)["TopicArn"]
        return {"Ref": arn, "TopicArn": arn, "TopicName": self.name(logical_id)}

    def _aws_sns_topicpolicy(
        self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        for topic in props["Topics"]:
            self.client("sns").set_topic_attributes(
                TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
            )
        return {"Ref": self.name(logical_id)}

    def _aws_sns_subscription(
        self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        if props["Protocol"] == "email":  # nobody reads mail here
            return {"Ref": self.name(logical_id)}
        arn = self.client("sns").subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props["Endpoint"],
            Attributes={
                k: json.dumps(v) if isinstance(v, dict) else str(v)
                for k, v in props.items()
                if k in ("FilterPolicy", "RawMessageDelivery")
            },
        )["SubscriptionArn"]
        return {"Ref": arn}

    def _aws_sqs_queue(self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        attributes: dict[str, str] = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "SqsManagedSseEnabled"):
            if key in props:
                attributes[key] = str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=self.name(logical_id), Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return {"Ref": url, "Arn": arn, "QueueName": self.name(logical_id), "QueueUrl": url}

    def _aws_sqs_queuepolicy(
        self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )
        return {"Ref": self.name(logical_id)}

    def _aws_events_eventbus(
        self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        arn = self.client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
        return {"Ref": props["Name"], "Arn": arn, "Name": props["Name"]}

    def _aws_events_eventbuspolicy(
        self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        """One statement added to the bus's one policy document, as CloudFormation's handler does
        (read, add the statement under its StatementId, write)."""
        events = self.client("events")
        bus = props.get("EventBusName", "default")
        current = events.describe_event_bus(Name=bus).get("Policy")
        statements: list[dict[str, Any]] = json.loads(current)["Statement"] if current else []
        statement = {"Sid": props["StatementId"], **props["Statement"]}
        statements = [s for s in statements if s.get("Sid") != statement["Sid"]] + [statement]
        document = {"Version": "2012-10-17", "Statement": statements}
        events.put_permission(EventBusName=bus, Policy=json.dumps(document))
        return {"Ref": f"{bus}|{props['StatementId']}"}

    def _aws_dynamodb_table(
        self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        ddb = self.client("dynamodb")
        kwargs: dict[str, Any] = {
            "TableName": props.get("TableName", self.name(logical_id)),
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        for key in (
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "StreamSpecification",
            "SSESpecification",
        ):
            if key in props:
                kwargs[key] = props[key]
        if "StreamSpecification" in kwargs:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **kwargs["StreamSpecification"]}
        if "SSESpecification" in kwargs:
            kwargs["SSESpecification"] = {"Enabled": kwargs["SSESpecification"]["SSEEnabled"]}
        if "DeletionProtectionEnabled" in props:
            kwargs["DeletionProtectionEnabled"] = str(props["DeletionProtectionEnabled"]).lower() == "true"
        table = ddb.create_table(**kwargs)["TableDescription"]
        if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            ddb.update_continuous_backups(
                TableName=kwargs["TableName"],
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        return {
            "Ref": kwargs["TableName"],
            "Arn": table["TableArn"],
            "StreamArn": table.get("LatestStreamArn", ""),
        }

    def _aws_cloudwatch_alarm(
        self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        self.client("cloudwatch").put_metric_alarm(AlarmName=self.name(logical_id), **props)
        return {"Ref": self.name(logical_id)}

    def _aws_cloudwatch_dashboard(
        self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        name = props.get("DashboardName") or self.name(logical_id)
        self.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
        return {"Ref": name}

    def _aws_ec2_vpcendpointconnectionnotification(
        self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        notification = self.client("ec2").create_vpc_endpoint_connection_notification(**props)
        notification_id = notification["ConnectionNotification"]["ConnectionNotificationId"]
        return {"Ref": notification_id}

    def _aws_events_rule(
        self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        """A rule of its own (not a function's EventBridgeRule event), with its SQS targets."""
        name = self.name(logical_id)
        events = self.client("events")
        bus = props.get("EventBusName", "default")
        arn = events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]))[
            "RuleArn"
        ]
        targets = [{"Id": t["Id"], "Arn": t["Arn"]} for t in props.get("Targets", [])]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self.stack.rule_patterns[name] = props["EventPattern"]
        return {"Ref": name, "Arn": arn}

    def _aws_iam_role(self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        # Nothing enforces IAM here; the role only needs its name and ARN (outputs, the IAM contract).
        name = self.name(logical_id)
        return {"Ref": name, "Arn": f"arn:aws:iam::{self.stack.account_id}:role/{name}", "RoleId": name}

    def _aws_serverless_function(
        self, logical_id: str, props: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        defaults = self.resolver.resolve(self.template.get("Globals", {}).get("Function", {}))
        environment = {
            **defaults.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        code = str(props["CodeUri"]).strip("/").replace("/", ".")
        handler_module, handler = props["Handler"].rsplit(".", 1)
        binding = FunctionBinding(
            logical_id=logical_id,
            module=f"{code}.{handler_module}",
            handler=handler,
            environment={k: str(v) for k, v in environment.items()},
            timeout=int(props.get("Timeout", defaults.get("Timeout", 3))),
        )
        reserved = props.get("ReservedConcurrentExecutions", defaults.get("ReservedConcurrentExecutions"))
        binding.reserved_concurrency = int(reserved) if reserved is not None else None
        invoke_config = props.get("EventInvokeConfig", {})
        binding.async_retry_attempts = int(
            invoke_config.get("MaximumRetryAttempts", binding.async_retry_attempts)
        )
        on_failure = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        binding.on_failure_queue_url = self._queue_url(on_failure) if on_failure else None
        for event_id, event in props.get("Events", {}).items():
            event_props = event["Properties"]
            if event["Type"] == "SQS":
                queue_arn = event_props["Queue"]
                binding.sqs_queue_url = next(
                    p["Ref"] for p in self.stack.physical.values() if p.get("Arn") == queue_arn
                )
                binding.sqs_batch_size = int(event_props.get("BatchSize", 10))
                binding.sqs_batching_window = float(event_props.get("MaximumBatchingWindowInSeconds", 0))
                scaling = event_props.get("ScalingConfig", {}).get("MaximumConcurrency")
                binding.sqs_maximum_concurrency = int(scaling) if scaling is not None else None
            elif event["Type"] == "EventBridgeRule":
                binding.rules.append(self._rule(f"{logical_id}{event_id}", event_props))
            elif event["Type"] in ("Schedule", "ScheduleV2"):
                binding.schedules[event_id] = str(
                    event_props.get("Schedule") or event_props["ScheduleExpression"]
                )
            elif event["Type"] == "DynamoDB":
                binding.streams.append(self._stream_source(event_id, event_props))
        self.stack.functions[logical_id] = binding
        # The role SAM generates for the function (template resources may refer to its ARN).
        self.stack.physical[f"{logical_id}Role"] = self._aws_iam_role(f"{logical_id}Role", {}, {})
        arn = f"arn:aws:lambda:{self.stack.region}:{self.stack.account_id}:function:{self.name(logical_id)}"
        return {"Ref": self.name(logical_id), "Arn": arn}

    def _queue_url(self, queue_arn: str) -> str:
        return str(next(p["Ref"] for p in self.stack.physical.values() if p.get("Arn") == queue_arn))

    def _stream_source(self, event_id: str, props: dict[str, Any]) -> StreamSource:
        on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        return StreamSource(
            event_id=event_id,
            stream_arn=str(props["Stream"]),
            batch_size=int(props.get("BatchSize", 100)),
            starting_position=str(props.get("StartingPosition", "LATEST")),
            filters=[json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])],
            report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
            maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            on_failure_queue_url=self._queue_url(on_failure) if on_failure else None,
        )

    def _rule(self, rule_id: str, props: dict[str, Any]) -> str:
        """The rule with the template's pattern; its target is a delivery queue for the local runtime."""
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=f"{self.stack.name}-{rule_id}-delivery")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        name = f"{self.stack.name}-{rule_id}"
        events = self.client("events")
        events.put_rule(
            Name=name, EventBusName=props["EventBusName"], EventPattern=json.dumps(props["Pattern"])
        )
        events.put_targets(
            Rule=name, EventBusName=props["EventBusName"], Targets=[{"Id": "function", "Arn": arn}]
        )
        self.stack.rule_patterns[name] = props["Pattern"]
        return str(url)


def register_outputs(session: boto3.Session, stack: EmulatedStack) -> None:
    """Publish the stack's outputs as a CloudFormation stack of the same name, so tools that find
    resources by `describe_stacks` (the gatekeeper CLI) work against the emulated account unchanged."""
    import warnings

    body = {
        "Description": "vpce-gatekeeper (emulated): outputs only; resources come from template.yaml",
        "Resources": {"Outputs": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {name: {"Value": value} for name, value in stack.outputs.items()},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto does not model the placeholder resource, which is fine
        session.client("cloudformation").create_stack(StackName=stack.name, TemplateBody=json.dumps(body))
