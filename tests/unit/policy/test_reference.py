"""Every example in the policy template reference (docs/policy-templates.md) parses, and the worked
examples decide as documented: the reference cannot rot."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gatekeeper.policy import ContextValue, evaluate, parse_template

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "policy-templates.md"
EXAMPLE_PARAMETERS = {
    "MaxEndpoints": {"Type": "Number", "Default": 3},
    "Cutoff": {"Type": "Date", "Default": "2025-01-01"},
}


@pytest.fixture(scope="module")
def reference() -> str:
    text = REFERENCE.read_text(encoding="utf-8")
    start, end = "<!-- policy-reference:start -->", "<!-- policy-reference:end -->"
    assert start in text, "docs/policy-templates.md lost its start marker"
    assert end in text, "docs/policy-templates.md lost its end marker"
    return text[text.index(start) : text.index(end)]


def json_blocks(text: str) -> list[str]:
    return re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)


def table_examples(text: str) -> list[dict[str, Any]]:
    examples: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.startswith("|"):
            examples.extend(json.loads(match) for match in re.findall(r"`(\{\"[\w:]+\": \{.*?\}\})`", line))
    return examples


def test_every_operator_example_parses(reference: str) -> None:
    # The modifiers' table, and the operator families' examples (inline, one line each).
    inline = [json.loads(m) for m in re.findall(r'`(\{"[A-Za-z:]+": \{[^`]*\}\})`', reference)]
    examples = table_examples(reference) + [e for e in inline if e not in table_examples(reference)]
    assert len(examples) >= 7  # 3 modifiers + 4 operator families
    for condition in examples:
        parse_template(
            {
                "Name": "example",
                "Parameters": EXAMPLE_PARAMETERS,
                "Statement": [{"Sid": "Example", "Effect": "Deny", "Condition": condition}],
            }
        )


def test_every_json_block_parses(reference: str) -> None:
    blocks = json_blocks(reference)
    assert len(blocks) == 3
    for block in blocks:
        document = json.loads(block if block.lstrip().startswith("{") else "{" + block + "}")
        if "Statement" not in document:
            document = {**document, "Name": "fragment", "Statement": [{"Sid": "A", "Effect": "Allow"}]}
        parse_template(document)


def test_worked_examples_decide_as_documented(reference: str) -> None:
    standard, partner = (json.loads(block) for block in json_blocks(reference) if block.startswith("{"))
    standard_template = parse_template(standard)
    good = {
        "tenant:Status": "active",
        "tenant:Services": ["vpce-svc-0123456789abcdef0"],
        "endpoint:ServiceId": "vpce-svc-0123456789abcdef0",
        "endpoint:Region": "us-east-1",
    }
    assert evaluate(standard_template, good).deciding_sids == ("Accept",)
    other_region = {**good, "endpoint:Region": "eu-west-1"}
    assert evaluate(standard_template, other_region).effect == "Review"
    assert (
        evaluate(standard_template, other_region, {"HomeRegions": ["us-east-1", "eu-west-1"]}).effect
        == "Allow"
    )
    rejected = evaluate(
        standard_template, {**good, "tenant:Status": "suspended", "endpoint:ServiceId": "vpce-svc-0fff"}
    )
    assert (rejected.effect, rejected.deciding_sids) == ("Deny", ("TenantActive", "Entitled"))

    partner_template = parse_template(partner)
    context: dict[str, ContextValue] = {
        "tenant:Labels/tier": "partner",
        "tenant:Services": ["vpce-svc-0a*"],
        "tenant:ActiveEndpoints": 5,
        "tenant:ExpiresAt": "2026-06-30T00:00:00Z",
        "endpoint:ServiceId": "vpce-svc-0a11",
        "endpoint:IpAddressType": "ipv4",
        "gatekeeper:CurrentTime": datetime(2025, 11, 27, 12, tzinfo=UTC),
    }
    held = evaluate(partner_template, context)
    assert (held.effect, held.deciding_sids) == ("Review", ("OverQuota",))
    for line in held.explain():
        assert line in reference
    accepted = evaluate(partner_template, context, {"MaxEndpoints": 10})
    assert (accepted.effect, accepted.deciding_sids) == ("Allow", ("Partner",))
