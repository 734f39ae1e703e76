"""template.yaml is the single source of truth: its patterns, tables, queues and IAM are checked here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from gatekeeper_ops.stack import ROOT, EmulatedStack, _Resolver, expand_for_each, load_template

TEMPLATE = load_template()
# The resources as CloudFormation makes them (AWS::LanguageExtensions first) for two managed services.
MANAGED = ["vpce-svc-0123456789abcdef0", "vpce-svc-0fedcba9876543210"]
RESOURCES: dict[str, Any] = expand_for_each(TEMPLATE, {"EndpointServiceIds": MANAGED})["Resources"]
EVENTS = ROOT / "events"
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}


def sample(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def function_dir(spec: dict[str, Any]) -> str:
    return Path(spec["Properties"]["CodeUri"]).name


def bus_event(event: dict[str, Any]) -> dict[str, Any]:
    """A sample's bus event: the event itself, or the body of its first SQS record (the rules that
    target the decision queue deliver the event as the message body)."""
    if "Records" in event and event["Records"][0].get("eventSource") == "aws:sqs":
        body = json.loads(event["Records"][0]["body"])
        return body if isinstance(body, dict) else event
    return event


BUS_SAMPLES = {p.stem: bus_event(sample(p)) for p in EVENTS.glob("*.json")}
BUS_SAMPLES = {name: event for name, event in BUS_SAMPLES.items() if "detail-type" in event}


def _queue_consumer(queue: str) -> str:
    """The function an SQS queue feeds."""
    return next(
        logical_id
        for logical_id, spec in FUNCTIONS.items()
        for event in spec["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS" and event["Properties"]["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
    )


# (function, rule, pattern): a function's own EventBridgeRule events, and the rules whose target is a
# queue a function consumes.
RULES = [
    (logical_id, event_id, event["Properties"]["Pattern"])
    for logical_id, spec in FUNCTIONS.items()
    for event_id, event in spec["Properties"].get("Events", {}).items()
    if event["Type"] == "EventBridgeRule"
] + [
    (_queue_consumer(target["Arn"]["Fn::GetAtt"][0]), logical_id, spec["Properties"]["EventPattern"])
    for logical_id, spec in RESOURCES.items()
    if spec["Type"] == "AWS::Events::Rule"
    for target in spec["Properties"]["Targets"]
]


def test_there_is_a_sample_for_every_function():
    for spec in FUNCTIONS.values():
        assert (EVENTS / f"{function_dir(spec)}.json").is_file(), f"events/{function_dir(spec)}.json missing"


@pytest.mark.parametrize(("function", "event_id", "pattern"), RULES, ids=[f"{r[0]}.{r[1]}" for r in RULES])
def test_rule_pattern_matches_its_sample_and_no_other(function, event_id, pattern):
    matcher = EventPattern.load(json.dumps(pattern))
    own = function_dir(FUNCTIONS[function])
    matched = {name for name, event in BUS_SAMPLES.items() if matcher.matches_event(event)}
    assert matched, f"no sample in events/ for {function}.{event_id}"
    assert all(name.startswith(own) for name in matched), matched


def test_rule_patterns_refuse_other_sources():
    for _, _, pattern in RULES:
        forged = {**BUS_SAMPLES["evaluate_connection"], "source": "vpce.attacker"}
        assert not EventPattern.load(json.dumps(pattern)).matches_event(forged)


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_handler_exists(logical_id):
    spec = FUNCTIONS[logical_id]["Properties"]
    module, handler = spec["Handler"].rsplit(".", 1)
    source = (ROOT / spec["CodeUri"] / f"{module}.py").read_text()
    assert f"def {handler}(" in source


def test_globals_use_the_lambda_runtime_and_powertools_settings():
    function = TEMPLATE["Globals"]["Function"]
    assert function["Runtime"] == "python3.13"
    variables = function["Environment"]["Variables"]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(
        variables
    )
    assert "POWERTOOLS_LOGGER_LOG_EVENT" not in variables  # never log whole events


@pytest.mark.parametrize(
    "logical_id", sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::DynamoDB::Table")
)
def test_tables_are_on_demand_recoverable_encrypted_and_protected(logical_id):
    properties = RESOURCES[logical_id]["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["DeletionProtectionEnabled"] == {"Ref": "TableDeletionProtection"}
    assert RESOURCES[logical_id]["DeletionPolicy"] == "Retain"


def test_sqs_sources_report_partial_failures_and_have_an_alarmed_dlq():
    # How long the queue outlasts the function: test_the_queue_outlasts_the_function_and_the_batching_window
    for spec in FUNCTIONS.values():
        for event in spec["Properties"].get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            queue = RESOURCES[event["Properties"]["Queue"]["Fn::GetAtt"][0]]["Properties"]
            dlq = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            alarms = [
                r
                for r in RESOURCES.values()
                if r["Type"] == "AWS::CloudWatch::Alarm"
                and r["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq, "QueueName"]}
            ]
            assert alarms, f"no alarm on {dlq}"


def test_async_functions_have_an_on_failure_destination():
    for logical_id, spec in FUNCTIONS.items():
        events = spec["Properties"].get("Events", {}).values()
        if any(e["Type"] == "EventBridgeRule" for e in events):
            assert (
                spec["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
            ), logical_id


def _statements() -> list[tuple[str, dict[str, Any]]]:
    """Every statement a function's role gets: its SAM `Policies`, or its own role's `Policies`."""
    found = []
    for logical_id, spec in FUNCTIONS.items():
        for policy in spec["Properties"].get("Policies", []):
            found += [(logical_id, s) for s in policy.get("Statement", [])]
        role = spec["Properties"].get("Role")
        if role:
            for named in RESOURCES[role["Fn::GetAtt"][0]]["Properties"].get("Policies", []):
                policy = named["Fn::If"][1] if "Fn::If" in named else named
                found += [(logical_id, s) for s in policy["PolicyDocument"]["Statement"]]
    return found


def test_no_wildcard_actions_and_mutations_are_scoped():
    for logical_id, statement in _statements():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(a == "*" or a.endswith(":*") for a in actions), (logical_id, statement)
        if statement["Resource"] == "*":
            # Only actions without resource-level permissions may use "*".
            assert all(a.split(":")[1].startswith("Describe") for a in actions), (logical_id, statement)


def test_notification_topic_lets_vpce_publish_for_this_account_only():
    policy = RESOURCES["ConnectionNotificationTopicPolicy"]["Properties"]["PolicyDocument"]
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "vpce.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    for name in ("ConnectionNotificationTopic", "DecisionTopic", "AlarmTopic"):
        assert "KmsMasterKeyId" in RESOURCES[name]["Properties"]


def test_samples_are_valid_for_their_handlers_models():
    from gatekeeper.models.events import connection_closed, decision_request
    from gatekeeper.models.requests import EvaluationRequest, OperatorRequest, RevocationRequest

    assert isinstance(decision_request(BUS_SAMPLES["evaluate_connection"]), EvaluationRequest)
    assert isinstance(decision_request(BUS_SAMPLES["evaluate_connection_revocation"]), RevocationRequest)
    assert isinstance(decision_request(BUS_SAMPLES["evaluate_connection_operator"]), OperatorRequest)
    connection_closed(sample(EVENTS / "close_connection.json"))


def test_operator_decisions_are_taken_only_from_the_operator_source():
    from gatekeeper.models.errors import EventRefused
    from gatekeeper.models.events import decision_request

    forged = {**BUS_SAMPLES["evaluate_connection_operator"], "source": "vpce.gatekeeper"}
    with pytest.raises(EventRefused, match="not a request the decider takes"):
        decision_request(forged)
    # and no rule of the stack delivers it
    assert not any(EventPattern.load(json.dumps(p)).matches_event(forged) for _, _, p in RULES)


def test_sweep_alarms_watch_the_reconciler_metrics_and_notify():
    alarms = {
        spec["Properties"]["MetricName"]: spec["Properties"]
        for spec in RESOURCES.values()
        if spec["Type"] == "AWS::CloudWatch::Alarm" and spec["Properties"]["Namespace"] == "VpceGatekeeper"
    }
    assert {"OldestPendingAgeSeconds", "OldestHeldAgeSeconds", "StaleClaims", "UnannouncedDecisions"} <= set(
        alarms
    )
    for metric, alarm in alarms.items():
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "vpce-gatekeeper"}], metric
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], metric
        assert alarm["TreatMissingData"] == "notBreaching", metric
    assert alarms["OldestPendingAgeSeconds"]["Threshold"] == {"Ref": "PendingRequestAlarmSeconds"}
    assert alarms["OldestHeldAgeSeconds"]["Threshold"] == {"Ref": "HeldRequestAlarmSeconds"}
    assert (
        alarms["UnannouncedDecisions"]["EvaluationPeriods"],
        alarms["UnannouncedDecisions"]["DatapointsToAlarm"],
    ) == (2, 2)


def test_reserved_concurrency_is_off_by_default():
    # A new account (10 concurrent executions) cannot reserve anything: the default must reserve nothing.
    parameter = TEMPLATE["Parameters"]["ReservedConcurrencyPerFunction"]
    assert parameter["Default"] == 0
    assert TEMPLATE["Globals"]["Function"]["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReservesConcurrency", {"Ref": "ReservedConcurrencyPerFunction"}, {"Ref": "AWS::NoValue"}]
    }
    assert TEMPLATE["Conditions"]["ReservesConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrencyPerFunction"}, "0"]}]
    }


@pytest.mark.parametrize("count", [1, 6, 12])
def test_each_managed_service_gets_its_notification_and_resets_alarm_however_many(count):
    ids = [f"vpce-svc-{i:017x}" for i in range(count)]
    resources = expand_for_each(TEMPLATE, {"EndpointServiceIds": ids})["Resources"]
    notifications = [
        r for r in resources.values() if r["Type"] == "AWS::EC2::VPCEndpointConnectionNotification"
    ]
    assert sorted(n["Properties"]["ServiceId"] for n in notifications) == ids
    for service_id in ids:
        alarm = resources[f"ResetsSentAlarm{service_id.replace('-', '')}"]["Properties"]
        assert alarm["Dimensions"] == [{"Name": "Service Id", "Value": service_id}]
        assert service_id in alarm["AlarmDescription"]["Fn::Sub"]


def _selects(value: Any) -> list[Any]:
    if isinstance(value, dict):
        found = [value["Fn::Select"]] if "Fn::Select" in value else []
        return found + [s for v in value.values() for s in _selects(v)]
    return [s for v in value for s in _selects(v)] if isinstance(value, list) else []


def test_no_construct_stops_at_an_index_of_the_managed_services():
    assert not [s for s in _selects(TEMPLATE) if "EndpointServiceIds" in json.dumps(s)]
    assert not [c for c in TEMPLATE.get("Conditions", {}) if c.startswith("ManagesService")]


@pytest.mark.parametrize("count", [1, 6, 12])
def test_ec2_mutations_name_exactly_the_managed_services_in_this_region(count):
    ids = [f"vpce-svc-{i:017x}" for i in range(count)]
    stack = EmulatedStack("gk", "eu-west-1", "111111111111", {"EndpointServiceIds": ids})
    # A Join delimiter may not hold a function: partition, region and account are wildcards.
    expected = [f"arn:*:ec2:*:*:vpc-endpoint-service/{i}" for i in ids]
    resolver = _Resolver(TEMPLATE, stack)
    evaluate = RESOURCES["EvaluateConnectionFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    [decide] = [s for s in evaluate if s["Sid"] == "DecideManagedServicesOnly"]
    modifies = list(
        FUNCTIONS["ReconcileConnectionsFunction"]["Properties"]["Policies"][1]["Fn::If"][1]["Statement"]
    )
    sync_role = RESOURCES["SyncTenantsFunctionRole"]["Properties"]["Policies"][1]["Fn::If"][1]
    modifies += sync_role["PolicyDocument"]["Statement"]
    for statement in [decide, *modifies]:
        assert resolver.resolve(statement["Resource"]) == expected, statement["Sid"]
        # ...and the Region is pinned.
        assert resolver.resolve(statement["Condition"]) == {
            "StringEquals": {"aws:RequestedRegion": "eu-west-1"}
        }
    [topic] = RESOURCES["ConnectionNotificationTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert resolver.resolve(topic["Condition"]["ArnLike"]["aws:SourceArn"]) == expected
    assert topic["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_notifications_are_not_held_back_for_a_batching_window_by_default():
    parameter = TEMPLATE["Parameters"]["NotificationBatchingWindowSeconds"]
    assert parameter["Default"] == 0
    notifications = FUNCTIONS["IngestNotificationsFunction"]["Properties"]["Events"]["Notifications"]
    assert notifications["Properties"]["MaximumBatchingWindowInSeconds"] == {
        "Ref": "NotificationBatchingWindowSeconds"
    }


def test_claims_go_stale_after_the_deciders_timeout_and_before_the_request_comes_back():
    stale = int(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["DECISION_CLAIM_STALE_SECONDS"])
    timeout = FUNCTIONS["EvaluateConnectionFunction"]["Properties"].get(
        "Timeout", TEMPLATE["Globals"]["Function"]["Timeout"]
    )
    # A failed request's message comes back after the decision queue's visibility timeout.
    redelivery = RESOURCES["DecisionQueue"]["Properties"]["VisibilityTimeout"]
    assert timeout < stale < redelivery


def test_decision_requests_reach_the_decider_through_its_queue_only_from_its_rules():
    rules = {k for k, v in RESOURCES.items() if v["Type"] == "AWS::Events::Rule"}
    assert rules == {"DecisionRequestsRule", "OperatorDecisionsRule"}
    for rule in rules:
        [target] = RESOURCES[rule]["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["DecisionQueue", "Arn"]}
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["DecisionDeadLetterQueue", "Arn"]}
    events = FUNCTIONS["EvaluateConnectionFunction"]["Properties"]["Events"]
    assert [e["Type"] for e in events.values()] == ["SQS"]  # no async invoke left to retry on its own
    assert "EventInvokeConfig" not in FUNCTIONS["EvaluateConnectionFunction"]["Properties"]
    [statement] = RESOURCES["DecisionQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": [{"Fn::GetAtt": [rule, "Arn"]} for rule in sorted(rules)]}
    }
    assert RESOURCES["DecisionQueue"]["Properties"]["SqsManagedSseEnabled"] is True


def test_one_request_is_decided_at_once_and_the_ec2_rate_is_bounded_by_the_concurrency():
    [requests] = FUNCTIONS["EvaluateConnectionFunction"]["Properties"]["Events"].values()
    props = requests["Properties"]
    parameters = TEMPLATE["Parameters"]
    assert props["ScalingConfig"]["MaximumConcurrency"] == {
        "Fn::If": [
            "ReservesConcurrency",
            {"Ref": "ReservedConcurrencyPerFunction"},
            {"Ref": "DecisionMaxConcurrency"},
        ]
    }
    assert parameters["DecisionMaxConcurrency"]["MinValue"] == 2  # AWS's minimum
    assert parameters["DecisionMaxConcurrency"]["Default"] <= 5
    # No batching window by default: a request alone is handed over at once.
    assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "DecisionBatchingWindowSeconds"}
    assert parameters["DecisionBatchingWindowSeconds"]["Default"] == 0
    # SQS mappings take more than 10 a batch only with a window: 10 when there is none.
    assert props["BatchSize"] == {"Fn::If": ["GathersDecisionBatches", {"Ref": "DecisionBatchSize"}, 10]}
    assert TEMPLATE["Conditions"]["GathersDecisionBatches"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DecisionBatchingWindowSeconds"}, 0]}]
    }
    # A message never becomes visible again while its batch (gathered, then run) may still be running.
    timeout = TEMPLATE["Globals"]["Function"]["Timeout"]
    window = parameters["DecisionBatchingWindowSeconds"]["MaxValue"]
    assert RESOURCES["DecisionQueue"]["Properties"]["VisibilityTimeout"] >= 6 * timeout + window


def test_a_full_delivery_is_topped_up_from_the_deciders_own_queue_only():
    function = FUNCTIONS["EvaluateConnectionFunction"]["Properties"]
    assert function["Environment"]["Variables"]["DECISION_QUEUE_URL"] == {"Ref": "DecisionQueue"}
    assert function["Environment"]["Variables"]["DECISION_BATCH_SIZE"] == {"Ref": "DecisionBatchSize"}
    [policy] = RESOURCES["EvaluateConnectionFunctionRole"]["Properties"]["Policies"]
    sqs = [s for s in policy["PolicyDocument"]["Statement"] if any(a.startswith("sqs:") for a in s["Action"])]
    # ReceiveMessage and DeleteMessage (DeleteMessageBatch's action) on the decision queue, nothing else.
    assert [(s["Action"], s["Resource"]) for s in sqs] == [
        (
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            {"Fn::GetAtt": ["DecisionQueue", "Arn"]},
        )
    ]
    assert TEMPLATE["Parameters"]["DecisionBatchSize"]["MaxValue"] <= 1000  # the settings' bound


# ---------------------------------------------------------------- issue 20: the template's traps
def _resolver(**parameters: Any) -> Any:
    """The template resolved for these parameters (the rest at their defaults), in eu-west-1."""
    from gatekeeper_ops.stack import EmulatedStack, _parameters, _Resolver

    values = _parameters(TEMPLATE, {"EndpointServiceIds": "vpce-svc-00000000000000001", **parameters})
    return _Resolver(TEMPLATE, EmulatedStack("gk", "eu-west-1", "111111111111", values))


def _sqs_sources() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (logical_id, event_id, event["Properties"])
        for logical_id, spec in FUNCTIONS.items()
        for event_id, event in spec["Properties"].get("Events", {}).items()
        if event["Type"] == "SQS"
    ]


@pytest.mark.parametrize("reserved", [0, 2, 5, 100])
def test_every_sqs_mapping_is_capped_at_the_reserved_concurrency(reserved):
    # SQS event source mappings do not account for reserved concurrency: above it, Lambda throttles
    # what it polled and SQS redrives it into the DLQ.
    assert _sqs_sources()
    resolver = _resolver(ReservedConcurrencyPerFunction=reserved)
    for logical_id, event_id, properties in _sqs_sources():
        scaling = resolver.resolve({"Scaling": properties.get("ScalingConfig", {})}).get("Scaling") or {}
        maximum = scaling.get("MaximumConcurrency")
        if reserved == 0:
            assert maximum is None or maximum >= 2, (logical_id, event_id)
        else:
            assert maximum is not None, (logical_id, event_id)
            assert 2 <= int(maximum) <= reserved, (logical_id, event_id, maximum)


@pytest.mark.parametrize(("reserved", "accepted"), [(0, True), (1, False), (2, True), (5, True)])
def test_a_reservation_below_the_sqs_minimum_is_refused_at_deploy(reserved, accepted):
    resolver = _resolver(ReservedConcurrencyPerFunction=reserved)
    assertions = [a for rule in TEMPLATE["Rules"].values() for a in rule["Assertions"]]
    assert all(resolver.resolve(a["Assert"]) for a in assertions) is accepted


def test_the_dashboard_name_carries_the_region():
    # Dashboard names are account-wide: the same stack name in two Regions must not share one.
    name = RESOURCES["OperationsDashboard"]["Properties"]["DashboardName"]
    assert _resolver().resolve(name) == "gk-eu-west-1-operations"
    assert TEMPLATE["Outputs"]["DashboardName"]["Value"] == {"Ref": "OperationsDashboard"}


def _sweep_alarms() -> dict[str, dict[str, Any]]:
    """The alarms that count per-sweep figures: the reconciler's metrics and its function's errors."""
    reconciler = (ROOT / "functions/reconcile_connections/app.py").read_text()  # the metrics it emits
    found = {}
    for logical_id, spec in RESOURCES.items():
        if spec["Type"] != "AWS::CloudWatch::Alarm":
            continue
        properties = spec["Properties"]
        metric = f'"{properties["MetricName"]}"'
        own_metric = properties["Namespace"] == "VpceGatekeeper" and metric in reconciler
        errors = properties["Dimensions"][0]["Value"] == {"Ref": "ReconcileConnectionsFunction"}
        if own_metric or errors:
            found[logical_id] = properties
    return found


@pytest.mark.parametrize("minutes", [1, 5, 10, 30, 60])
def test_the_sweep_alarms_periods_follow_the_reconcile_interval(minutes):
    # A fixed period shorter than the interval makes most periods hold no sweep: an alarm that needs
    # two breaching periods in a row (ReconcileErrorsAlarm) could then never fire.
    assert str(minutes) in TEMPLATE["Parameters"]["ReconcileIntervalMinutes"]["AllowedValues"]
    resolver = _resolver(ReconcileIntervalMinutes=str(minutes))
    sweep = FUNCTIONS["ReconcileConnectionsFunction"]["Properties"]["Events"]["Sweep"]["Properties"]
    unit = "minute" if minutes == 1 else "minutes"
    assert resolver.resolve(sweep["Schedule"]) == f"rate({minutes} {unit})"
    alarms = _sweep_alarms()
    assert {"ReconcileErrorsAlarm", "OldestPendingRequestAlarm", "UnannouncedDecisionsAlarm"} <= set(alarms)
    for logical_id, properties in alarms.items():
        assert int(resolver.resolve(properties["Period"])) == minutes * 60, logical_id


@pytest.mark.parametrize("window", [0, 1, 60, 300])
def test_the_queue_outlasts_the_function_and_the_batching_window(window):
    # AWS: visibility timeout >= 6 x function timeout + MaximumBatchingWindowInSeconds, or messages
    # gathered early become visible again before their batch runs.
    default_timeout = TEMPLATE["Globals"]["Function"]["Timeout"]
    for logical_id, _, properties in _sqs_sources():
        parameter = properties.get("MaximumBatchingWindowInSeconds", {}).get("Ref")
        # Each mapping's own window parameter, at this value or its largest allowed one.
        value = min(window, TEMPLATE["Parameters"][parameter]["MaxValue"]) if parameter else None
        resolver = _resolver(**{parameter: value}) if parameter else _resolver()
        batching = int(resolver.resolve(properties.get("MaximumBatchingWindowInSeconds", 0)))
        queue = RESOURCES[properties["Queue"]["Fn::GetAtt"][0]]["Properties"]
        timeout = FUNCTIONS[logical_id]["Properties"].get("Timeout", default_timeout)
        assert int(resolver.resolve(queue["VisibilityTimeout"])) >= 6 * timeout + batching, logical_id


def test_the_bus_policy_statements_are_written_one_after_another():
    # Each AWS::Events::EventBusPolicy rewrites the bus's one policy document: two at once can lose a
    # statement. They form one chain of DependsOn.
    policies = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Events::EventBusPolicy"}
    assert len(policies) >= 2
    depends = {k: v.get("DependsOn") for k, v in policies.items()}
    first = [k for k, d in depends.items() if d is None]
    assert len(first) == 1, depends
    chain = first
    while len(chain) < len(policies):
        [following] = [k for k, d in depends.items() if d == chain[-1]]
        chain.append(following)
    sids = [p["Properties"]["StatementId"] for p in policies.values()]
    assert len(set(sids)) == len(sids)


_MANAGED_STREAM_POLICIES = {"SQS", "DynamoDB", "Kinesis"}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_polling_functions_have_their_own_scoped_role(logical_id):
    # SAM gives a generated role with an SQS/DynamoDB/Kinesis event the AWS managed
    # AWSLambdaSQSQueueExecutionRole / AWSLambdaDynamoDBExecutionRole, which allow on "*".
    properties = FUNCTIONS[logical_id]["Properties"]
    sources = [e for e in properties.get("Events", {}).values() if e["Type"] in _MANAGED_STREAM_POLICIES]
    if not sources:
        return
    assert "Role" in properties, f"{logical_id} polls a queue or stream with SAM's managed policy"
    statements = [s for f, s in _statements() if f == logical_id]
    for source in sources:
        target = source["Properties"].get("Queue") or source["Properties"].get("Stream")
        assert any(s["Resource"] == target for s in statements), (logical_id, target)
    role = RESOURCES[properties["Role"]["Fn::GetAtt"][0]]["Properties"]
    managed = " ".join(str(arn) for arn in role.get("ManagedPolicyArns", []))
    assert "ExecutionRole" not in managed.replace("AWSLambdaBasicExecutionRole", "")


def test_checkov_suppressions_that_a_new_resource_could_fail_are_per_resource():
    import yaml

    stack_wide = yaml.safe_load((ROOT / ".checkov.yaml").read_text())["skip-check"]
    assert not {"CKV_AWS_27", "CKV_AWS_116"} & set(stack_wide)
    skips = {
        logical_id: {s["id"]: s.get("comment", "") for s in spec["Metadata"]["checkov"]["skip"]}
        for logical_id, spec in RESOURCES.items()
        if "checkov" in spec.get("Metadata", {})
    }
    assert all(comment.strip() for found in skips.values() for comment in found.values())
    for logical_id, found in skips.items():
        properties = RESOURCES[logical_id]["Properties"]
        if "CKV_AWS_27" in found:  # SQS encryption: only a queue encrypted with SSE-SQS may skip it
            assert properties["SqsManagedSseEnabled"] is True, logical_id
        if "CKV_AWS_116" in found:  # a function DLQ: only one whose failures land somewhere else
            events = properties.get("Events", {}).values()
            destination = properties.get("EventInvokeConfig", {}).get("DestinationConfig", {})
            sweep_only = [e["Type"] for e in events] == ["Schedule"]
            assert (
                destination.get("OnFailure")
                or sweep_only
                or all(e["Type"] in ("SQS", "DynamoDB") for e in events)
            ), logical_id


def test_verify_checks_every_fixed_source_statement_of_the_bus_policy():
    from gatekeeper.models.tenant_change import CONTROL_PLANE_SOURCE
    from gatekeeper_ops.cli.verify import BUS_POLICY_SIDS

    sids = {
        spec["Properties"]["StatementId"]
        for spec in RESOURCES.values()
        if spec["Type"] == "AWS::Events::EventBusPolicy"
    }
    # SBT's answer source is a parameter (SbtApplicationPlaneEventSource): verify cannot know it.
    assert set(BUS_POLICY_SIDS) == sids - {"OnlyTheStackAnswersSbt"}
    assert BUS_POLICY_SIDS["OnlyTheControlPlaneChangesTenants"] == CONTROL_PLANE_SOURCE
