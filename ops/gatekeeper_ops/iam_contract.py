"""The IAM contract: every AWS call a handler makes is allowed by its function's role, as the
SAM-transformed template (what CloudFormation receives) defines it, and by the target's resource
policy. Never deployed; the integration suites check it on every test.

- `CallRecorder` records each botocore API call made while the local Lambda runtime invokes a
  function, attributed to that function;
- `ContractView` resolves the transformed template for one emulated stack (its real table, topic,
  bus and key names/ARNs, its parameters and conditions): each function's role ARN and policies
  (inline + AWS managed), and the resource policies (bus, topics, queues, keys);
- `requests_for` turns a call into the IAM requests AWS would authorise (one per table of a
  transaction, per bus of a PutEvents, the KMS calls SNS makes for an encrypted topic …);
- `violations` evaluates them with `gatekeeper_ops.iam_policy` and explains each refusal.

A call it cannot map is itself a violation (fail closed): teach `requests_for` the new operation.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gatekeeper_ops.iam_policy import Policy, Request, evaluate
from gatekeeper_ops.stack import EmulatedStack, _Resolver, expand_for_each

# The AWS managed policies SAM attaches to function roles, as AWS publishes them (the parts that
# matter here). An ARN missing from this map is a violation, not a silent pass.
_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    "service-role/AWSLambdaBasicExecutionRole": {
        "Statement": [{"Effect": "Allow", "Action": _LOGS, "Resource": "*"}]
    },
    "AWSXrayWriteOnlyAccess": {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                "Resource": "*",
            }
        ]
    },
    "service-role/AWSLambdaSQSQueueExecutionRole": {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS],
                "Resource": "*",
            }
        ]
    },
    "service-role/AWSLambdaDynamoDBExecutionRole": {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                    *_LOGS,
                ],
                "Resource": "*",
            }
        ]
    },
}

# botocore service name → IAM action prefix, where they differ.
_PREFIX = {"dynamodbstreams": "dynamodb", "monitoring": "cloudwatch", "elbv2": "elasticloadbalancing"}
# Calls that need no permission.
_UNAUTHORISED_OK = {("sts", "GetCallerIdentity")}


# ------------------------------------------------------------------------------------ recording
@dataclass(frozen=True)
class ApiCall:
    function: str  # logical id of the function being invoked
    stack: EmulatedStack
    service: str  # botocore service name, e.g. dynamodb
    operation: str  # e.g. TransactWriteItems
    params: Mapping[str, Any]


_current: contextvars.ContextVar[tuple[str, EmulatedStack] | None] = contextvars.ContextVar(
    "gatekeeper_iam_contract_function", default=None
)


@dataclass
class CallRecorder:
    """Collects the API calls handlers make. `wrap_invoke` wraps `LocalLambda.invoke`;
    `wrap_api_call` wraps `botocore.client.BaseClient._make_api_call`."""

    calls: list[ApiCall] = field(default_factory=list)

    def wrap_invoke(self, invoke: Callable[..., Any]) -> Callable[..., Any]:
        def invoke_recorded(lambdas: Any, binding: Any, *args: Any, **kwargs: Any) -> Any:
            with self.attributed(binding.logical_id, lambdas.stack):
                return invoke(lambdas, binding, *args, **kwargs)

        return invoke_recorded

    def wrap_api_call(self, make_api_call: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        def make_api_call_recorded(client: Any, operation_name: str, api_params: Mapping[str, Any]) -> Any:
            current = _current.get()
            if current is not None:
                function, stack = current
                service = client.meta.service_model.service_name
                recorder.calls.append(ApiCall(function, stack, service, operation_name, dict(api_params)))
            return make_api_call(client, operation_name, api_params)

        return make_api_call_recorded

    @contextmanager
    def attributed(self, function: str, stack: EmulatedStack) -> Iterator[None]:
        token = _current.set((function, stack))
        try:
            yield
        finally:
            _current.reset(token)


# ------------------------------------------------------------------------------------ the stack
class ContractError(ValueError):
    """The transformed template cannot be read for the contract (fails closed)."""


@dataclass
class ContractView:
    """The transformed template's IAM, resolved for one emulated stack."""

    stack: EmulatedStack
    role_arns: dict[str, str]  # function (or stand-alone role) logical id → role ARN
    identity: dict[str, list[Policy]]  # function (or stand-alone role) logical id → its role's policies
    resource_policies: dict[str, list[Policy]]  # resource ARN → its policies
    topic_keys: dict[str, str]  # topic ARN → KMS key ARN

    @classmethod
    def build(cls, transformed: Mapping[str, Any], stack: EmulatedStack) -> ContractView:
        # A copy (the resolver must not touch a shared one), its Fn::ForEach loops expanded for this
        # stack's parameters, as CloudFormation's AWS::LanguageExtensions would.
        template = expand_for_each(json.loads(json.dumps(transformed)), stack.parameters)
        resources: dict[str, Any] = template["Resources"]
        physical = {k: dict(v) for k, v in stack.physical.items()}
        for logical_id, spec in resources.items():
            if spec["Type"] == "AWS::IAM::Role":
                name = f"{stack.name}-{logical_id}"
                arn = f"arn:aws:iam::{stack.account_id}:role/{name}"
                physical[logical_id] = {"Ref": name, "Arn": arn, "RoleId": name}
            physical.setdefault(
                logical_id, {"Ref": f"{stack.name}-{logical_id}", "Arn": f"arn:aws:local:::{logical_id}"}
            )
        shadow = EmulatedStack(stack.name, stack.region, stack.account_id, stack.parameters, physical)
        resolver = _Resolver(template, shadow)

        def present(spec: Mapping[str, Any]) -> bool:
            return "Condition" not in spec or bool(resolver.condition(spec["Condition"]))

        def resolve(logical_id: str, value: Any) -> Any:
            try:
                return resolver.resolve(value)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise ContractError(f"{logical_id}: cannot resolve {value!r} ({exc!r})") from exc

        scope = _Scope(stack, resources, physical, present, resolve)
        role_arns, identity = _function_roles(scope)
        return cls(stack, role_arns, identity, _resource_policies(scope), _topic_keys(scope))


@dataclass
class _Scope:
    """The transformed template being resolved for one stack."""

    stack: EmulatedStack
    resources: dict[str, Any]
    physical: dict[str, dict[str, Any]]
    present: Callable[[Mapping[str, Any]], bool]
    resolve: Callable[[str, Any], Any]


def _function_roles(scope: _Scope) -> tuple[dict[str, str], dict[str, list[Policy]]]:
    role_arns: dict[str, str] = {}
    identity: dict[str, list[Policy]] = {}
    for logical_id, spec in scope.resources.items():
        if spec["Type"] != "AWS::Lambda::Function" or not scope.present(spec):
            continue
        role = spec["Properties"]["Role"]
        if not (isinstance(role, dict) and "Fn::GetAtt" in role):
            raise ContractError(f"{logical_id}: Role {role!r} is not a role of this template")
        role_id = role["Fn::GetAtt"][0]
        role_arns[logical_id] = scope.physical[role_id]["Arn"]
        props = scope.resolve(role_id, scope.resources[role_id]["Properties"])
        identity[logical_id] = _role_policies(role_id, props)
    # Roles of their own (e.g. OperatorRole), by their logical id: calls may be attributed to them too.
    for logical_id, spec in scope.resources.items():
        if spec["Type"] == "AWS::IAM::Role" and scope.present(spec) and logical_id not in role_arns:
            role_arns[logical_id] = scope.physical[logical_id]["Arn"]
            identity[logical_id] = _role_policies(logical_id, scope.resolve(logical_id, spec["Properties"]))
    return role_arns, identity


def _resource_policies(scope: _Scope) -> dict[str, list[Policy]]:
    found: dict[str, list[Policy]] = {}

    def add(arn: str, name: str, document: Mapping[str, Any]) -> None:
        found.setdefault(arn, []).append(Policy(name, document, resource_policy=True))

    for logical_id, spec in scope.resources.items():
        if not scope.present(spec):
            continue
        kind = spec["Type"]
        if kind == "AWS::Events::EventBusPolicy":
            props = scope.resolve(logical_id, spec["Properties"])
            if "Statement" not in props:
                raise ContractError(f"{logical_id}: only Statement-style bus policies are modelled")
            bus = _bus_arn(scope.stack, props.get("EventBusName", "default"))
            add(bus, logical_id, {"Statement": [{"Sid": props.get("StatementId"), **props["Statement"]}]})
        elif kind == "AWS::Events::EventBus" and "Policy" in spec.get("Properties", {}):
            props = scope.resolve(logical_id, spec["Properties"])
            add(scope.physical[logical_id]["Arn"], logical_id, props["Policy"])
        elif kind == "AWS::SNS::TopicPolicy":
            props = scope.resolve(logical_id, spec["Properties"])
            for topic in props["Topics"]:
                add(topic, logical_id, props["PolicyDocument"])
        elif kind == "AWS::SQS::QueuePolicy":
            props = scope.resolve(logical_id, spec["Properties"])
            for url in props["Queues"]:
                add(_queue_arn(scope.stack, url), logical_id, props["PolicyDocument"])
        elif kind == "AWS::KMS::Key":
            document = scope.resolve(logical_id, spec["Properties"]["KeyPolicy"])
            add(scope.physical[logical_id]["Arn"], logical_id, document)
    return found


def _topic_keys(scope: _Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for logical_id, spec in scope.resources.items():
        if spec["Type"] != "AWS::SNS::Topic" or not scope.present(spec):
            continue
        key = spec.get("Properties", {}).get("KmsMasterKeyId")
        if key is None:
            continue
        key_id = scope.resolve(logical_id, key)
        key_arn = next(
            (p["Arn"] for p in scope.physical.values() if key_id in (p.get("Ref"), p.get("Arn"))), None
        )
        if key_arn is None:
            if str(key_id).startswith("alias/aws/"):
                continue  # an AWS managed key: its policy lets the account use it through SNS
            raise ContractError(f"{logical_id}: KMS key {key_id!r} is not a key of this stack")
        found[scope.physical[logical_id]["Ref"]] = key_arn
    return found


def _role_policies(role_id: str, props: Mapping[str, Any]) -> list[Policy]:
    policies = [
        Policy(f"{role_id}/{p['PolicyName']}", p["PolicyDocument"]) for p in props.get("Policies", [])
    ]
    for arn in props.get("ManagedPolicyArns", []):
        name = str(arn).split(":policy/", 1)[-1]
        if name not in MANAGED_POLICIES:
            raise ContractError(
                f"{role_id}: managed policy {arn} is not modelled; add its document to "
                "gatekeeper_ops.iam_contract.MANAGED_POLICIES"
            )
        policies.append(Policy(f"{role_id}/{name}", MANAGED_POLICIES[name]))
    return policies


def _bus_arn(stack: EmulatedStack, name_or_arn: str) -> str:
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return f"arn:aws:events:{stack.region}:{stack.account_id}:event-bus/{name_or_arn}"


def _queue_arn(stack: EmulatedStack, url: str) -> str:
    if url.startswith("arn:"):
        return url
    account, name = urlparse(url).path.strip("/").split("/")[-2:]
    return f"arn:aws:sqs:{stack.region}:{account}:{name}"


def _table_arn(stack: EmulatedStack, table: str, index: str | None = None) -> str:
    arn = (
        table
        if table.startswith("arn:")
        else f"arn:aws:dynamodb:{stack.region}:{stack.account_id}:table/{table}"
    )
    return f"{arn}/index/{index}" if index else arn


# ------------------------------------------------------------------------------------ requests
class UnmappedCall(ValueError):
    """A call `requests_for` does not know how to authorise (fails closed)."""


_TRANSACT_WRITE = {
    "ConditionCheck": "ConditionCheckItem",
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
}
_TABLE_OPERATIONS = {
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "DescribeTable",
    "DescribeContinuousBackups",
}
_SQS_OPERATIONS = {
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "GetQueueAttributes",
}
_ENDPOINT_SERVICE_OPERATIONS = {
    "AcceptVpcEndpointConnections",
    "RejectVpcEndpointConnections",
    "ModifyVpcEndpointServicePermissions",
}


@dataclass(frozen=True)
class _CallScope:
    """One call being mapped: its stack and parameters, its IAM action and its caller's role."""

    call: ApiCall
    view: ContractView
    principal: str

    @property
    def stack(self) -> EmulatedStack:
        return self.view.stack

    @property
    def params(self) -> Mapping[str, Any]:
        return self.call.params

    @property
    def action(self) -> str:
        return f"{_PREFIX.get(self.call.service, self.call.service)}:{self.call.operation}"

    def request(self, action: str, resource: str, **context: str) -> Request:
        base_context = {
            "aws:PrincipalArn": self.principal,
            "aws:PrincipalAccount": self.stack.account_id,
            "aws:RequestedRegion": self.stack.region,
        }
        return Request(self.principal, action, resource, {**base_context, **context})


# Each mapper returns the requests for its service's call, or None when it does not know the
# operation (requests_for then fails closed).
_RequestMapper = Callable[[_CallScope], list[Request] | None]


def _dynamodb_requests(scope: _CallScope) -> list[Request] | None:
    stack, params, operation = scope.stack, scope.params, scope.call.operation
    if operation in _TABLE_OPERATIONS:
        return [scope.request(scope.action, _table_arn(stack, params["TableName"], params.get("IndexName")))]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [scope.request(scope.action, _table_arn(stack, table)) for table in params["RequestItems"]]
    if operation == "TransactWriteItems":
        return [_transact_write_request(scope, item) for item in params["TransactItems"]]
    if operation == "TransactGetItems":
        return [
            scope.request("dynamodb:GetItem", _table_arn(stack, i["Get"]["TableName"]))
            for i in params["TransactItems"]
        ]
    return None


def _transact_write_request(scope: _CallScope, item: Mapping[str, Any]) -> Request:
    ((kind, body),) = item.items()
    return scope.request(f"dynamodb:{_TRANSACT_WRITE[kind]}", _table_arn(scope.stack, body["TableName"]))


def _sns_requests(scope: _CallScope) -> list[Request] | None:
    if scope.call.operation not in ("Publish", "PublishBatch"):
        return None
    topic = scope.params.get("TopicArn") or scope.params.get("TargetArn")
    if not topic:
        raise UnmappedCall("sns:Publish to a phone number or without a topic")
    # PublishBatch has no IAM action of its own: AWS authorises it as sns:Publish.
    found = [scope.request("sns:Publish", str(topic))]
    key = scope.view.topic_keys.get(str(topic))
    if key:  # SNS encrypts with the caller's permissions on the topic's key
        via = {
            "kms:ViaService": f"sns.{scope.stack.region}.amazonaws.com",
            "kms:CallerAccount": scope.stack.account_id,
        }
        found += [scope.request("kms:GenerateDataKey", key, **via), scope.request("kms:Decrypt", key, **via)]
    return found


def _events_requests(scope: _CallScope) -> list[Request] | None:
    if scope.call.operation != "PutEvents":
        return None
    return [
        scope.request(
            scope.action,
            _bus_arn(scope.stack, str(entry.get("EventBusName", "default"))),
            **{
                "events:source": str(entry.get("Source", "")),
                "events:detail-type": str(entry.get("DetailType", "")),
            },
        )
        for entry in scope.params["Entries"]
    ]


def _ec2_requests(scope: _CallScope) -> list[Request] | None:
    if scope.call.operation in _ENDPOINT_SERVICE_OPERATIONS:
        stack = scope.stack
        arn = (
            f"arn:aws:ec2:{stack.region}:{stack.account_id}:vpc-endpoint-service/{scope.params['ServiceId']}"
        )
        return [scope.request(scope.action, arn)]
    return _describe_requests(scope)


def _describe_requests(scope: _CallScope) -> list[Request] | None:
    if scope.call.operation.startswith("Describe"):
        return [scope.request(scope.action, "*")]  # Describe* has no resource-level permissions
    return None


def _sqs_requests(scope: _CallScope) -> list[Request] | None:
    if scope.call.operation not in _SQS_OPERATIONS:
        return None
    # SQS's batch calls have no IAM actions of their own: each is authorised as its single action.
    action = scope.action.removesuffix("Batch")
    return [scope.request(action, _queue_arn(scope.stack, scope.params["QueueUrl"]))]


def _cloudformation_requests(scope: _CallScope) -> list[Request] | None:
    stack, params = scope.stack, scope.params
    if scope.call.operation != "DescribeStacks" or not params.get("StackName"):
        return None
    name = str(params["StackName"])
    # The emulated stack's id is stack.py's AWS::StackId: a fixed uuid after the name.
    arn = name if name.startswith("arn:") else _Resolver({}, stack).pseudo("AWS::StackId")
    if not name.startswith("arn:") and name != stack.name:
        arn = arn.replace(f"stack/{stack.name}/", f"stack/{name}/")
    return [scope.request(scope.action, arn)]


def _cloudwatch_requests(scope: _CallScope) -> list[Request] | None:
    if scope.call.operation != "PutMetricData":
        return None
    namespace = str(scope.params.get("Namespace", ""))
    return [scope.request(scope.action, "*", **{"cloudwatch:namespace": namespace})]


# botocore service name → its mapper.
_REQUEST_MAPPERS: dict[str, _RequestMapper] = {
    "dynamodb": _dynamodb_requests,
    "sns": _sns_requests,
    "events": _events_requests,
    "ec2": _ec2_requests,
    "elbv2": _describe_requests,
    "sqs": _sqs_requests,
    "cloudformation": _cloudformation_requests,
    "cloudwatch": _cloudwatch_requests,
}


def requests_for(call: ApiCall, view: ContractView) -> list[Request]:
    scope = _CallScope(call, view, view.role_arns[call.function])
    if (call.service, call.operation) in _UNAUTHORISED_OK:
        return []
    mapper = _REQUEST_MAPPERS.get(call.service)
    requests = mapper(scope) if mapper else None
    if requests is None:
        raise UnmappedCall(
            f"{scope.action} is not mapped to IAM requests; teach gatekeeper_ops.iam_contract.requests_for"
        )
    return requests


def violations(calls: list[ApiCall], transformed: Mapping[str, Any]) -> list[str]:
    """One line per refused (function, action, resource), with the reason; empty when all pass."""
    views: dict[int, ContractView] = {}
    found: dict[tuple[str, str, str], str] = {}
    for call in calls:
        key = id(call.stack)
        if key not in views:
            try:
                views[key] = ContractView.build(transformed, call.stack)
            except ContractError as exc:
                return [f"the transformed template cannot be checked: {exc}"]
        view = views[key]
        try:
            requests = requests_for(call, view)
        except (UnmappedCall, KeyError) as exc:
            found[(call.function, f"{call.service}:{call.operation}", "?")] = f"unmapped call ({exc})"
            continue
        for req in requests:
            policies = [*view.identity[call.function], *view.resource_policies.get(req.resource, [])]
            verdict = evaluate(req, policies)
            if not verdict.allowed:
                reasons = f" by {', '.join(verdict.reasons)}" if verdict.reasons else ""
                context = {k: v for k, v in req.context.items() if not k.startswith("aws:")}
                detail = f"role {req.principal_arn}" + (f", context {context}" if context else "")
                found[(call.function, req.action, req.resource)] = (
                    f"{verdict.outcome.value}{reasons} ({detail})"
                )
    return [
        f"{function} may not {action} on {resource}: {why}"
        for (function, action, resource), why in sorted(found.items())
    ]


def load_transformed(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document
