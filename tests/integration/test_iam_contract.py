"""The IAM contract itself: the transformed template's roles and bus policy, resolved for an emulated
stack, refuse what they should — so a handler change that needs a new permission fails the suite."""

from __future__ import annotations

import pytest

from gatekeeper_ops.iam_contract import ApiCall, ContractView, violations
from gatekeeper_ops.iam_policy import Outcome, Policy, Request, evaluate
from tests.integration.conftest import transformed_template

ANNOUNCERS = [
    "IngestNotificationsFunction",
    "ReconcileConnectionsFunction",
    "SyncTenantsFunction",
    "EvaluateConnectionFunction",
    "ApplyTenantChangeFunction",
]
CONTROL_PLANE = "arn:aws:iam::123456789012:role/saas-control-plane"


@pytest.fixture
def producer(producer_factory):
    return producer_factory()(
        parameters={
            "OperatorPrincipalArns": "arn:aws:iam::123456789012:role/sso/Ops*",
            "ControlPlanePrincipalArns": CONTROL_PLANE,
        }
    )


@pytest.fixture
def view(producer) -> ContractView:
    return ContractView.build(transformed_template(), producer.stack)


def put_events(view: ContractView, principal: str, source: str) -> Request:
    bus = view.stack.physical["EventBus"]["Arn"]
    return Request(
        principal, "events:PutEvents", bus, {"aws:PrincipalArn": principal, "events:source": source}
    )


def may_put(view: ContractView, principal: str, source: str) -> Outcome:
    """As if the principal's own policy allowed PutEvents: only the bus policy can refuse."""
    request = put_events(view, principal, source)
    own = Policy(
        "identity", {"Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}]}
    )
    return evaluate(request, [own, *view.resource_policies[request.resource]]).outcome


def test_the_bus_policy_lets_only_the_announcing_functions_put_gatekeeper_events(view):
    for function in ANNOUNCERS:
        assert may_put(view, view.role_arns[function], "vpce.gatekeeper") is Outcome.ALLOWED, function
    close = view.role_arns["CloseConnectionFunction"]
    assert may_put(view, close, "vpce.gatekeeper") is Outcome.EXPLICIT_DENY
    operator = view.stack.physical["OperatorRole"]["Arn"]
    assert may_put(view, operator, "vpce.gatekeeper") is Outcome.EXPLICIT_DENY
    assert may_put(view, "arn:aws:iam::123456789012:user/mallory", "vpce.gatekeeper") is Outcome.EXPLICIT_DENY


def test_only_operators_may_put_operator_decisions(view):
    operator = view.stack.physical["OperatorRole"]["Arn"]
    assert may_put(view, operator, "vpce.gatekeeper.operator") is Outcome.ALLOWED
    assert (
        may_put(view, "arn:aws:iam::123456789012:role/sso/OpsAdmin", "vpce.gatekeeper.operator")
        is Outcome.ALLOWED
    )
    for function in [*ANNOUNCERS, "CloseConnectionFunction"]:
        assert may_put(view, view.role_arns[function], "vpce.gatekeeper.operator") is Outcome.EXPLICIT_DENY
    assert (
        may_put(view, "arn:aws:iam::123456789012:role/other", "vpce.gatekeeper.operator")
        is Outcome.EXPLICIT_DENY
    )
    # Other sources are not the bus policy's business.
    assert may_put(view, "arn:aws:iam::123456789012:role/other", "com.example") is Outcome.ALLOWED


def test_only_the_control_plane_may_put_tenant_changes(view):
    for source in ("vpce.gatekeeper.control-plane", "controlPlaneEventSource"):  # its own, and SBT's
        assert may_put(view, CONTROL_PLANE, source) is Outcome.ALLOWED, source
        operator = view.stack.physical["OperatorRole"]["Arn"]
        for forger in [operator, "arn:aws:iam::123456789012:user/mallory", *view.role_arns.values()]:
            assert may_put(view, forger, source) is Outcome.EXPLICIT_DENY, (forger, source)
    # The control plane announces nothing as the stack, and answers nothing as SBT's application plane.
    assert may_put(view, CONTROL_PLANE, "vpce.gatekeeper") is Outcome.EXPLICIT_DENY
    assert may_put(view, CONTROL_PLANE, "applicationPlaneEventSource") is Outcome.EXPLICIT_DENY
    answering = view.role_arns["ApplyTenantChangeFunction"]
    assert may_put(view, answering, "applicationPlaneEventSource") is Outcome.ALLOWED


def test_without_control_plane_principals_nobody_may_put_tenant_changes(producer_factory):
    view = ContractView.build(transformed_template(), producer_factory()().stack)
    operator = view.stack.physical["OperatorRole"]["Arn"]
    for principal in [operator, CONTROL_PLANE, *view.role_arns.values()]:
        assert may_put(view, principal, "vpce.gatekeeper.control-plane") is Outcome.EXPLICIT_DENY


def test_a_call_the_role_lacks_fails_with_function_action_and_resource(producer):
    stack = producer.stack
    calls = [
        # e.g. close_connection starting to scan the tenants
        ApiCall(
            "CloseConnectionFunction", stack, "dynamodb", "Scan", {"TableName": stack.ref("TenantsTable")}
        ),
        # e.g. reconcile querying a new index of the decisions table
        ApiCall(
            "ReconcileConnectionsFunction",
            stack,
            "dynamodb",
            "Query",
            {"TableName": stack.ref("DecisionsTable"), "IndexName": "ByState"},
        ),
        # an EC2 mutation on a service the stack does not manage
        ApiCall(
            "EvaluateConnectionFunction",
            stack,
            "ec2",
            "AcceptVpcEndpointConnections",
            {"ServiceId": "vpce-svc-00000000000000000", "VpcEndpointIds": ["vpce-1"]},
        ),
        # a service the contract has never heard of
        ApiCall("SyncTenantsFunction", stack, "s3", "GetObject", {"Bucket": "b", "Key": "k"}),
    ]
    problems = violations(calls, transformed_template())
    assert problems == [
        f"CloseConnectionFunction may not dynamodb:Scan on {stack.physical['TenantsTable']['Arn']}: "
        "implicitly denied "
        f"(no statement allows it) (role {stack.physical['CloseConnectionFunctionRole']['Arn']})",
        "EvaluateConnectionFunction may not ec2:AcceptVpcEndpointConnections on "
        "arn:aws:ec2:us-east-1:123456789012:vpc-endpoint-service/vpce-svc-00000000000000000: "
        "implicitly denied "
        f"(no statement allows it) (role {stack.physical['EvaluateConnectionFunctionRole']['Arn']})",
        f"ReconcileConnectionsFunction may not dynamodb:Query on {stack.physical['DecisionsTable']['Arn']}"
        "/index/ByState: implicitly denied "
        f"(no statement allows it) (role {stack.physical['ReconcileConnectionsFunctionRole']['Arn']})",
        "SyncTenantsFunction may not s3:GetObject on ?: unmapped call (s3:GetObject is not mapped to IAM "
        "requests; teach gatekeeper_ops.iam_contract.requests_for)",
    ]


def test_the_managed_service_may_be_decided_and_publishing_needs_the_topic_key(producer, view):
    stack = producer.stack
    service = producer.service.service_id
    decide = ApiCall(
        "EvaluateConnectionFunction",
        stack,
        "ec2",
        "RejectVpcEndpointConnections",
        {"ServiceId": service, "VpcEndpointIds": ["vpce-1"]},
    )
    publish = ApiCall(
        "SyncTenantsFunction", stack, "sns", "Publish", {"TopicArn": stack.ref("AlarmTopic"), "Message": "m"}
    )
    assert violations([decide, publish], transformed_template()) == []
    # The alarm topic is encrypted: publishing is also kms:GenerateDataKey + kms:Decrypt on its key.
    assert view.topic_keys[stack.ref("AlarmTopic")] == stack.physical["TopicKey"]["Arn"]
    # The close function may publish nowhere.
    stray = ApiCall(
        "CloseConnectionFunction", stack, "sns", "Publish", {"TopicArn": stack.ref("DecisionTopic")}
    )
    problems = violations([stray], transformed_template())
    assert [p.split(" on ")[0] for p in problems] == [
        "CloseConnectionFunction may not kms:Decrypt",
        "CloseConnectionFunction may not kms:GenerateDataKey",
        "CloseConnectionFunction may not sns:Publish",
    ]


def test_the_operator_role_runs_the_cli_and_puts_only_operator_decisions(producer):
    stack = producer.stack
    bus = stack.ref("EventBus")

    def put(source: str) -> ApiCall:
        entry = {"Source": source, "DetailType": "Endpoint Connection Operator Decision", "EventBusName": bus}
        return ApiCall("OperatorRole", stack, "events", "PutEvents", {"Entries": [entry]})

    cli_calls = [
        ApiCall("OperatorRole", stack, "cloudformation", "DescribeStacks", {"StackName": stack.name}),
        ApiCall("OperatorRole", stack, "dynamodb", "Scan", {"TableName": stack.ref("TenantsTable")}),
        ApiCall(
            "OperatorRole",
            stack,
            "dynamodb",
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": stack.ref("TenantsTable"), "Item": {}}}]},
        ),
        ApiCall(
            "OperatorRole",
            stack,
            "dynamodb",
            "Query",
            {"TableName": stack.ref("DecisionsTable"), "IndexName": "ByTenant"},
        ),
        ApiCall("OperatorRole", stack, "ec2", "DescribeVpcEndpointConnections", {}),
        put("vpce.gatekeeper.operator"),
    ]
    assert violations(cli_calls, transformed_template()) == []
    [forged] = violations([put("vpce.gatekeeper")], transformed_template())
    assert "explicitly denied by EventBusOnlyTheStackAnnounces" in forged
    [other_stack] = violations(
        [ApiCall("OperatorRole", stack, "cloudformation", "DescribeStacks", {"StackName": "someone-else"})],
        transformed_template(),
    )
    assert "implicitly denied" in other_stack
    # The operator decides nothing on EC2 itself, and writes no decision record.
    service = producer.service.service_id
    refused = violations(
        [
            ApiCall("OperatorRole", stack, "ec2", "AcceptVpcEndpointConnections", {"ServiceId": service}),
            ApiCall("OperatorRole", stack, "dynamodb", "PutItem", {"TableName": stack.ref("DecisionsTable")}),
        ],
        transformed_template(),
    )
    assert len(refused) == 2


def test_no_role_gets_the_managed_queue_or_stream_policies_that_allow_on_every_resource():
    # What CloudFormation receives: SAM attaches AWSLambdaSQSQueueExecutionRole /
    # AWSLambdaDynamoDBExecutionRole ("*") to a role it generates for a function with such an event.
    template = transformed_template()
    resources = template["Resources"].items()  # Fn::ForEach loops are lists: no role is made in one
    roles = {k: v for k, v in resources if isinstance(v, dict) and v["Type"] == "AWS::IAM::Role"}
    attached = {
        logical_id: str(arn)
        for logical_id, role in roles.items()
        for arn in role["Properties"].get("ManagedPolicyArns", [])
        if "SQSQueueExecutionRole" in str(arn) or "DynamoDBExecutionRole" in str(arn)
    }
    assert attached == {}


def test_every_managed_service_of_a_twelve_service_stack_may_be_decided_and_no_other(producer_factory):
    producer = producer_factory()(services=12)
    stack = producer.stack

    def call(function: str, operation: str, service: str) -> ApiCall:
        return ApiCall(
            function, stack, "ec2", operation, {"ServiceId": service, "VpcEndpointIds": ["vpce-1"]}
        )

    allowed = [
        call(function, operation, service.service_id)
        for service in producer.services
        for function, operation in [
            ("EvaluateConnectionFunction", "AcceptVpcEndpointConnections"),
            ("EvaluateConnectionFunction", "RejectVpcEndpointConnections"),
            ("SyncTenantsFunction", "ModifyVpcEndpointServicePermissions"),
            ("ReconcileConnectionsFunction", "ModifyVpcEndpointServicePermissions"),
        ]
    ]
    assert violations(allowed, transformed_template()) == []
    unmanaged = "vpce-svc-0000000000000000d"
    refused = violations(
        [call("EvaluateConnectionFunction", "AcceptVpcEndpointConnections", unmanaged)],
        transformed_template(),
    )
    assert [p.split(": ")[0] for p in refused] == [
        "EvaluateConnectionFunction may not ec2:AcceptVpcEndpointConnections on "
        f"arn:aws:ec2:us-east-1:123456789012:vpc-endpoint-service/{unmanaged}"
    ]
    # The same managed service id asked of another Region: the condition refuses it.
    view = ContractView.build(transformed_template(), stack)
    service = producer.services[11].service_id
    other_region = Request(
        view.role_arns["EvaluateConnectionFunction"],
        "ec2:AcceptVpcEndpointConnections",
        f"arn:aws:ec2:eu-west-1:123456789012:vpc-endpoint-service/{service}",
        {"aws:RequestedRegion": "eu-west-1"},
    )
    assert (
        evaluate(other_region, view.identity["EvaluateConnectionFunction"]).outcome is Outcome.IMPLICIT_DENY
    )


def test_the_decider_may_top_up_from_its_own_queue_and_no_other(producer):
    """ReceiveMessage and DeleteMessageBatch (authorised as sqs:DeleteMessage) on DecisionQueue only."""
    stack = producer.stack

    def calls(queue: str) -> list[ApiCall]:
        url = {"QueueUrl": stack.ref(queue)}
        return [
            ApiCall("EvaluateConnectionFunction", stack, "sqs", "ReceiveMessage", url),
            ApiCall("EvaluateConnectionFunction", stack, "sqs", "DeleteMessageBatch", {**url, "Entries": []}),
        ]

    assert violations(calls("DecisionQueue"), transformed_template()) == []
    problems = violations(calls("NotificationQueue"), transformed_template())
    assert [p.split(" on ")[0] for p in problems] == [
        "EvaluateConnectionFunction may not sqs:DeleteMessage",
        "EvaluateConnectionFunction may not sqs:ReceiveMessage",
    ]
