"""The trimmed service models the Lambda functions' clients load (gatekeeper_ops.service_models):
current with the installed botocore, complete for every call the core makes, and really the ones
the functions' clients load, while every other session keeps botocore's full models."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.loaders
import pytest
from botocore import xform_name
from botocore.model import OperationModel, ServiceModel, Shape

from gatekeeper.wiring import services
from gatekeeper_ops.service_models import OPERATIONS, ServiceModelError, committed, stale, trimmed

ROOT = Path(__file__).resolve().parents[2]
CODE = [ROOT / "layers/core/gatekeeper", ROOT / "functions"]


@pytest.fixture(scope="module")
def loader() -> botocore.loaders.Loader:
    return botocore.loaders.create_loader()


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    services.session.cache_clear()
    yield services.session()
    services.session.cache_clear()


def test_the_committed_models_are_what_the_installed_botocore_makes():
    problems = stale()
    assert not problems, (
        "the trimmed service models are stale (botocore upgraded, or OPERATIONS changed): run "
        "`make service-models` and commit layers/core/gatekeeper/wiring/service_models\n  "
        + "\n  ".join(problems)
    )


def _calls_in_the_core(names: set[str]) -> set[str]:
    """Method names in `names` that the core or a handler calls (`x.get_item(…)`), and the
    operations it pages through (`x.get_paginator("query")`)."""
    found: set[str] = set()
    for path in (p for root in CODE for p in root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr in names:
                found.add(node.func.attr)
            elif node.func.attr == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                found.add(str(node.args[0].value))
    return found


def test_the_operation_list_is_every_call_the_core_makes(loader):
    every = {
        xform_name(operation)
        for service in OPERATIONS
        for operation in loader.load_service_model(service, "service-2")["operations"]
    }
    listed = {xform_name(operation) for operations in OPERATIONS.values() for operation in operations}
    called = _calls_in_the_core(every)
    assert called - listed == set(), (
        "the core calls operations the trimmed models lack: add them to "
        "gatekeeper_ops.service_models.OPERATIONS and run `make service-models`"
    )
    assert listed - called == set(), "OPERATIONS lists operations nothing in the core calls"


def _reachable(shape: Shape | None, seen: dict[str, Shape]) -> None:
    """Every shape under `shape`, resolved by botocore (a missing one raises NoShapeFoundError)."""
    if shape is None or shape.name in seen:
        return
    seen[shape.name] = shape
    for member in getattr(shape, "members", {}).values():
        _reachable(member, seen)
    for part in ("member", "key", "value"):
        _reachable(getattr(shape, part, None), seen)


def _shapes_of(operation: OperationModel) -> dict[str, Shape]:
    seen: dict[str, Shape] = {}
    for shape in (operation.input_shape, operation.output_shape, *operation.error_shapes):
        _reachable(shape, seen)
    return seen


@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_each_kept_operation_is_whole_and_as_botocore_defines_it(loader, service):
    full = loader.load_service_model(service, "service-2")
    [document] = [text for path, text in committed().items() if path.parts[0] == service]
    model = ServiceModel(json.loads(document), service)
    reference = ServiceModel(full, service)
    assert model.metadata == reference.metadata
    assert model.api_version == reference.api_version
    assert sorted(model.operation_names) == sorted(OPERATIONS[service])
    for name in model.operation_names:
        kept, original = model.operation_model(name), reference.operation_model(name)
        assert kept.metadata == original.metadata
        kept_shapes, original_shapes = _shapes_of(kept), _shapes_of(original)
        assert kept_shapes.keys() == original_shapes.keys(), name
        for shape_name, shape in kept_shapes.items():
            assert shape.metadata == original_shapes[shape_name].metadata, shape_name


def test_an_operation_botocore_does_not_define_is_refused(loader):
    with pytest.raises(ServiceModelError, match="DescribeVpcEndpointConnectionz"):
        trimmed(loader.load_service_model("ec2", "service-2"), ["DescribeVpcEndpointConnectionz"])


@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_the_functions_clients_load_the_trimmed_models(session, service):
    client = services.client(service)
    assert sorted(client.meta.service_model.operation_names) == sorted(OPERATIONS[service])
    data_loader = session._session.get_component("data_loader")
    version = client.meta.service_model.api_version
    _, path = data_loader.load_data_with_path(f"{service}/{version}/service-2")
    assert Path(path).is_relative_to(services.SERVICE_MODELS)
    # The rest still comes from botocore: the endpoint rule set, and paginators where the core pages.
    _, path = data_loader.load_data_with_path(f"{service}/{version}/endpoint-rule-set-1")
    assert not Path(path).is_relative_to(services.SERVICE_MODELS)


def test_the_functions_page_with_botocore_paginators(session):
    dynamodb = services.client("dynamodb")
    assert dynamodb.can_paginate("query")
    assert dynamodb.can_paginate("scan")


def test_every_other_session_keeps_botocore_full_models(session):
    services.client("ec2")
    assert len(boto3.client("ec2", region_name="us-east-1").meta.service_model.operation_names) > 500
    assert (
        len(boto3.Session().client("ec2", region_name="us-east-1").meta.service_model.operation_names) > 500
    )
    assert session is services.session()
