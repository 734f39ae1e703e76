"""The trimmed botocore service models the Lambda functions' clients load (`make service-models`).

Loading EC2's full model and building its client class was most of a cold start; this writes each
service's model with only the operations in `OPERATIONS` (the one list of what the core calls,
checked both ways by tests/unit/test_service_models.py) and the shapes they reach. Why and how:
docs/development.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import botocore.loaders

from gatekeeper.wiring.services import SERVICE_MODELS

# botocore service name → the operations the core calls (adapters/, dal/). elbv2 and the EC2
# calls of adapters/load_balancers.py are read lazily (some templates, accepted notices) but
# share the handlers' clients, so they are here too.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "dynamodb": (
        "BatchGetItem",
        "GetItem",
        "PutItem",
        "Query",
        "Scan",
        "TransactWriteItems",
        "UpdateItem",
    ),
    "ec2": (
        "AcceptVpcEndpointConnections",
        "DescribeInstances",
        "DescribeVpcEndpointConnections",
        "DescribeVpcEndpointServiceConfigurations",
        "DescribeVpcEndpointServicePermissions",
        "ModifyVpcEndpointServicePermissions",
        "RejectVpcEndpointConnections",
    ),
    "elbv2": (
        "DescribeListeners",
        "DescribeLoadBalancerAttributes",
        "DescribeLoadBalancers",
        "DescribeTargetGroupAttributes",
        "DescribeTargetGroups",
        "DescribeTargetHealth",
    ),
    "events": ("PutEvents",),
    "sns": ("Publish", "PublishBatch"),
    "sqs": ("DeleteMessageBatch", "ReceiveMessage"),
}
MODEL = "service-2"


class ServiceModelError(ValueError):
    """An operation in OPERATIONS that the installed botocore does not define."""


def _shape_references(shape: Mapping[str, Any]) -> Iterator[str]:
    for member in shape.get("members", {}).values():
        yield member["shape"]
    for part in ("member", "key", "value"):
        if part in shape:
            yield shape[part]["shape"]


def _operation_shapes(operation: Mapping[str, Any]) -> Iterator[str]:
    for part in ("input", "output"):
        if part in operation:
            yield operation[part]["shape"]
    for error in operation.get("errors", ()):
        yield error["shape"]


def trimmed(model: Mapping[str, Any], operations: Iterable[str]) -> dict[str, Any]:
    """`model` with only `operations` and the shapes they reach; everything else as it is, in
    botocore's order (so regenerating from the same botocore writes the same bytes)."""
    wanted = set(operations)
    unknown = wanted - set(model["operations"])
    if unknown:
        raise ServiceModelError(
            f"{model['metadata']['serviceId']} has no operation {sorted(unknown)} in botocore "
            f"{botocore.__version__}"
        )
    reached: set[str] = set()
    pending = [name for op in wanted for name in _operation_shapes(model["operations"][op])]
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending.extend(_shape_references(model["shapes"][name]))
    return {
        **model,
        "operations": {name: op for name, op in model["operations"].items() if name in wanted},
        "shapes": {name: shape for name, shape in model["shapes"].items() if name in reached},
    }


def generate(loader: botocore.loaders.Loader | None = None) -> dict[Path, str]:
    """Path under SERVICE_MODELS → the JSON text, for every service in OPERATIONS."""
    loader = loader or botocore.loaders.create_loader()
    documents: dict[Path, str] = {}
    for service, operations in sorted(OPERATIONS.items()):
        version = loader.determine_latest_version(service, MODEL)
        model = loader.load_service_model(service, MODEL, api_version=version)
        text = json.dumps(trimmed(model, operations), separators=(",", ":"), ensure_ascii=False)
        documents[Path(service, version, f"{MODEL}.json")] = text + "\n"
    return documents


def committed(root: Path = SERVICE_MODELS) -> dict[Path, str]:
    return {
        path.relative_to(root): path.read_text(encoding="utf-8")
        for path in sorted(root.glob(f"*/*/{MODEL}.json"))
    }


def stale(root: Path = SERVICE_MODELS) -> list[str]:
    """What differs between the models in `root` and what the installed botocore makes; empty when
    they are the same."""
    wanted, found = generate(), committed(root)
    return [
        f"{path}: {'missing' if path not in found else 'not generated' if path not in wanted else 'differs'}"
        for path in sorted(wanted.keys() | found.keys())
        if wanted.get(path) != found.get(path)
    ]


def write(root: Path = SERVICE_MODELS) -> list[Path]:
    """Write the models under `root`, removing any model no longer generated; the paths written."""
    documents = generate()
    for path in committed(root).keys() - documents.keys():
        (root / path).unlink()
        for directory in ((root / path).parent, (root / path).parent.parent):
            if not any(directory.iterdir()):
                directory.rmdir()
    for path, text in documents.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    return sorted(documents)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed models are stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        for problem in problems:
            print(f"stale service model: {problem} (run `make service-models`)", file=sys.stderr)
        return 1 if problems else 0
    for path in write():
        print(f"{SERVICE_MODELS / path} ({(SERVICE_MODELS / path).stat().st_size:,} bytes)")
    print(f"from botocore {botocore.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
