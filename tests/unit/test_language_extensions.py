"""gatekeeper_ops.stack.expand_for_each: Fn::ForEach as AWS::LanguageExtensions expands it, for the
emulated stacks and the IAM contract (CloudFormation does it on deploy)."""

from __future__ import annotations

import pytest

from gatekeeper_ops.stack import expand_for_each

PARAMETERS = {"Ids": {"Type": "CommaDelimitedList"}}


def test_one_copy_per_item_with_the_identifier_replaced_in_keys_strings_and_refs():
    template = {
        "Parameters": PARAMETERS,
        "Resources": {
            "Kept": {"Type": "AWS::SNS::Topic"},
            "Fn::ForEach::Things": [
                "Id",
                {"Ref": "Ids"},
                {
                    "Thing&{Id}": {
                        "Type": "AWS::X::Y",
                        "Properties": {
                            "Id": {"Ref": "Id"},
                            "Text": {"Fn::Sub": "on ${Id} of ${AWS::Region}"},
                        },
                    }
                },
            ],
        },
    }
    resources = expand_for_each(template, {"Ids": "vpce-svc-1,vpce-svc-2"})["Resources"]
    assert list(resources) == ["Kept", "Thingvpcesvc1", "Thingvpcesvc2"]
    assert resources["Thingvpcesvc2"]["Properties"] == {
        "Id": "vpce-svc-2",
        "Text": {"Fn::Sub": "on vpce-svc-2 of ${AWS::Region}"},
    }
    assert "Fn::ForEach::Things" in template["Resources"]  # the template itself is left as it was


def test_loops_nest_and_a_literal_collection_works():
    template = {
        "Parameters": PARAMETERS,
        "Outputs": {
            "Fn::ForEach::Outer": [
                "A",
                {"Ref": "Ids"},
                {"Fn::ForEach::Inner": ["B", ["x", "y"], {"${A}${B}": {"Value": "${A}-${B}"}}]},
            ]
        },
    }
    outputs = expand_for_each(template, {"Ids": "a,b"})["Outputs"]
    assert outputs == {k: {"Value": f"{k[0]}-{k[1]}"} for k in ("ax", "ay", "bx", "by")}


@pytest.mark.parametrize(
    ("loop", "message"),
    [
        (["Id", {"Ref": "Ids"}, {"Same": {}}], "Same is defined twice"),
        (["Id", "not-a-list", {"X${Id}": {}}], "is not a list"),
        (["Id", {"Ref": "Ids"}], r"is not \[Identifier, Collection"),
    ],
)
def test_a_malformed_loop_is_refused(loop, message):
    template = {"Parameters": PARAMETERS, "Resources": {"Fn::ForEach::Bad": loop}}
    with pytest.raises(ValueError, match=message):
        expand_for_each(template, {"Ids": "a,b"})
