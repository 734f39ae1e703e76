"""template.yaml → the CloudFormation template CloudFormation actually receives (the SAM transform).

Linters and the IAM contract test look at the transformed template: the roles SAM generates, their
inline and managed policies, and intrinsic functions exactly as CloudFormation will see them (a
construct SAM accepts may still be refused by CloudFormation, e.g. a function in a Join delimiter).

Runs in the tools venv (aws-sam-translator pins its own pydantic, so it cannot join the dev venv):
    .venv-tools/bin/python -m gatekeeper_ops.sam_transform template.yaml .aws-sam/template.transformed.json
Offline: SAM only needs the managed-policy map for policies named by name (e.g. `AWSLambdaExecute`);
this template names none, so the map is static and a policy name it does not know fails the transform.

AWS::LanguageExtensions runs before SAM in CloudFormation, expanding `Fn::ForEach` with the stack's
parameter values. Offline there are none, so the `Fn::ForEach` blocks of Resources go round SAM
(which refuses them) and come back unexpanded, with `Transform: AWS::LanguageExtensions` left for
CloudFormation (and cfn-lint, which expands them itself; `gatekeeper_ops.stack.expand_for_each`
expands them for an emulated stack). That is what CloudFormation does as long as a loop makes no
SAM resource and names none that SAM generates, which `transform` checks.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from gatekeeper_ops.stack import FOR_EACH, load_template

# Managed policies `Policies:` may name by name. Add one here when the template starts to use it.
MANAGED_POLICIES: dict[str, str] = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
}


class StaticManagedPolicyLoader:
    """The `ManagedPolicyLoader` interface without IAM ListPolicies calls."""

    def load(self) -> dict[str, str]:
        return dict(MANAGED_POLICIES)


# Local code paths become the S3 locations `sam package` would upload them to.
_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


def _as_packaged(template: dict[str, Any]) -> dict[str, Any]:
    for logical_id, resource in template.get("Resources", {}).items():
        key = _CODE_PROPERTIES.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        if key and isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
            properties[key] = f"s3://packaged-code/{logical_id}.zip"
    return template


def transform(template: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform as sam_transform

    # SAM asks boto3 for a region to fill AWS::Region/AWS::Partition where it resolves them itself;
    # the output keeps `${AWS::Region}` references, so any region does.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    resources = template.get("Resources", {})
    loops = {k: v for k, v in resources.items() if k.startswith(FOR_EACH)}
    rest = {**template, "Resources": {k: v for k, v in resources.items() if k not in loops}}
    result: dict[str, Any] = sam_transform(_as_packaged(rest), {}, StaticManagedPolicyLoader())
    if loops:
        # A loop that made a SAM resource, or named one SAM generates, would need SAM after it.
        text = json.dumps(loops)
        generated = set(result["Resources"]) - set(resources)
        if "AWS::Serverless::" in text or any(f'"{name}"' in text for name in generated):
            raise ValueError(
                "an Fn::ForEach makes or names SAM resources: the offline transform cannot keep it"
            )
        result["Resources"].update(loops)
        result["Transform"] = "AWS::LanguageExtensions"
    return result


def write_transformed(source: Path, target: Path) -> None:
    """Transform `source` into `target`, atomically (parallel test workers may race to write it)."""
    transformed = transform(load_template(source))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(transformed, out, indent=1, sort_keys=True)
    Path(temporary).replace(target)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m gatekeeper_ops.sam_transform <template.yaml> <out.json>", file=sys.stderr)
        return 2
    write_transformed(Path(args[0]), Path(args[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
