"""The load balancer keys (issue 12): a Bool key and a StringList key the engine validates and
evaluates like any other, and the list of keys a template reads (so the caller computes only those)."""

import json
from pathlib import Path
from typing import Any

import pytest

from gatekeeper.policy import (
    CONDITION_KEYS,
    DATA_PLANE_KEYS,
    KeyType,
    TemplateInvalid,
    evaluate,
    parse_template,
)

from .builders import GOOD_CONTEXT, STANDARD

BUILTIN = sorted(Path("policy-templates").glob("*.json"))


def template(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Name": "t", "Statement": [*statements, {"Sid": "Accept", "Effect": "Allow"}]}


def review(condition: dict[str, Any]) -> dict[str, Any]:
    return {"Sid": "NoHealthyTargets", "Effect": "Review", "Condition": condition}


def test_the_keys_are_declared_with_their_types() -> None:
    assert CONDITION_KEYS["endpoint:HealthyTargets"].type is KeyType.BOOL
    assert CONDITION_KEYS["endpoint:HealthyTargetZones"].multi_valued
    assert {"endpoint:HealthyTargets", "endpoint:HealthyTargetZones"} == DATA_PLANE_KEYS


@pytest.mark.parametrize(
    ("healthy", "effect"), [(False, "Review"), (True, "Allow"), (None, "Allow")], ids=["no", "yes", "absent"]
)
def test_bool_decides_on_a_present_key_only(healthy: bool | None, effect: str) -> None:
    parsed = parse_template(template(review({"Bool": {"Endpoint:healthytargets": "false"}})))
    assert evaluate(parsed, {**GOOD_CONTEXT, "endpoint:HealthyTargets": healthy}).effect == effect


def test_an_absent_key_can_be_decided_by_the_template() -> None:
    # IAM: …IfExists is true on an absent key, so this holds when unhealthy *or* unknown.
    parsed = parse_template(template(review({"BoolIfExists": {"endpoint:HealthyTargets": "false"}})))
    assert evaluate(parsed, GOOD_CONTEXT).effect == "Review"
    assert evaluate(parsed, {**GOOD_CONTEXT, "endpoint:HealthyTargets": True}).effect == "Allow"
    parsed = parse_template(template(review({"Null": {"endpoint:HealthyTargets": "true"}})))
    assert evaluate(parsed, GOOD_CONTEXT).effect == "Review"


def test_zones_compare_as_a_string_list() -> None:
    every_zone = review({"ForAnyValue:StringNotEquals": {"endpoint:HealthyTargetZones": ["us-east-1a"]}})
    parsed = parse_template(template(every_zone))
    zones = {**GOOD_CONTEXT, "endpoint:HealthyTargetZones": ["us-east-1a", "us-east-1b"]}
    assert evaluate(parsed, zones).effect == "Review"
    assert evaluate(parsed, {**zones, "endpoint:HealthyTargetZones": ["us-east-1a"]}).effect == "Allow"
    explained = evaluate(parsed, zones).explain()[0]
    assert "endpoint:HealthyTargetZones ['us-east-1a', 'us-east-1b']" in explained


def test_an_operator_unfit_for_a_bool_key_is_refused() -> None:
    with pytest.raises(TemplateInvalid, match="NumericEquals compares numbers but endpoint:HealthyTargets"):
        parse_template(template(review({"NumericEquals": {"endpoint:HealthyTargets": 1}})))
    with pytest.raises(TemplateInvalid, match="Bool compares booleans but endpoint:HealthyTargetZones"):
        parse_template(template(review({"Bool": {"endpoint:HealthyTargetZones": "true"}})))


def test_referenced_keys_list_tested_keys_and_context_references() -> None:
    parsed = parse_template(STANDARD)
    assert parsed.referenced_keys == {
        "tenant:Status",
        "endpoint:ServiceId",
        "tenant:Services",
        "endpoint:Region",
    }
    assert not parsed.referenced_keys & DATA_PLANE_KEYS
    by_reference = template(
        review({"StringEquals": {"tenant:Labels/zone": "${endpoint:HealthyTargetZones}"}})
    )
    assert "endpoint:HealthyTargetZones" in parse_template(by_reference).referenced_keys


@pytest.mark.parametrize("path", BUILTIN, ids=lambda p: p.stem)
def test_every_built_in_template_holds_without_healthy_targets(path: Path) -> None:
    parsed = parse_template(json.loads(path.read_text()))
    assert "endpoint:HealthyTargets" in parsed.referenced_keys
    statement = parsed.statement("NoHealthyTargets")
    assert statement.effect == "Review"
    context = {**GOOD_CONTEXT, "endpoint:Region": "us-east-1", "endpoint:IpAddressType": "ipv4"}
    assert evaluate(parsed, {**context, "endpoint:HealthyTargets": True}).effect == "Allow"
    unhealthy = evaluate(parsed, {**context, "endpoint:HealthyTargets": False})
    assert (unhealthy.effect, unhealthy.deciding_sids) == ("Review", ("NoHealthyTargets",))
